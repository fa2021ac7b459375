"""Alembic environment: the URL comes from zanloop's settings (or the caller's config)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from zanloop.config import get_settings
from zanloop.db import Database
from zanloop.tables import metadata

config = context.config


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            run(conn)
            conn.commit()
    finally:
        db.dispose()


main()
