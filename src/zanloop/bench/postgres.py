"""A private PostgreSQL database for one benchmark run: created beside the configured one,
migrated, and dropped at the end. The configured database's own tables are never touched."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from zanloop import migrate
from zanloop.db import normalise_url

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


class Unreachable(Exception):
    """PostgreSQL cannot be reached (or refuses to create a database)."""


def _admin(url: str) -> Engine:
    return create_engine(
        normalise_url(url), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )


@contextmanager
def private_database(url: str) -> Iterator[str]:
    """Yield the URL of a fresh, migrated ``zanloop_bench_<pid>`` database."""
    admin = _admin(url)
    name = f"zanloop_bench_{os.getpid()}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as exc:
        admin.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise Unreachable(reason[:160]) from exc
    own = make_url(normalise_url(url)).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(own)
        yield own
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
