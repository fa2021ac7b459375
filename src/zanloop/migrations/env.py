"""Alembic environment: the URL comes from zanloop's settings (or the caller's config)."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from zanloop.config import get_settings
from zanloop.db import Database
from zanloop.tables import metadata

config = context.config


# Indexes with an expression (a DESC column) that autogenerate cannot compare with what it
# reads back from the database: left out of the comparison, so it does not propose to drop and
# recreate them every time.
EXPRESSION_INDEXES = frozenset({"ix_pins_content_display"})


def _comparable(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "index" and name in EXPRESSION_INDEXES)


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_comparable,
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
