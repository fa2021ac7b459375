"""Database engine, sessions and the declarative base.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` so a commit is durable,
and every write transaction starts with ``BEGIN IMMEDIATE``: writers queue on the database lock
up front instead of failing halfway when a read lock cannot be upgraded. SQLite admits one
writer at a time anyway, so the write engine holds a single connection: writers in this process
queue for it in arrival order, instead of polling the file lock in SQLite's busy handler (which
favours no one and starves some for seconds). The busy handler still arbitrates between
processes (the API and a separate job worker). Reads use a second engine with plain deferred
transactions so they never wait for writers.

So never open a write session while holding another in the same thread: the second would wait
for the connection the first holds (for ``WRITE_TIMEOUT_SECONDS``, then fail). Work that
needs a network call reads through ``read_session()`` first and writes afterwards.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Engine, Integer, MetaData, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from zanloop.kit.clock import as_utc

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which stores naive text) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use kit.clock.utcnow()")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


# An auto-increment 64-bit key that is still SQLite's rowid alias.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
        list[dict[str, Any]]: JSON(),
    }


def normalise_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


# How long a writer waits, for the write connection as for SQLite's lock (another process).
WRITE_TIMEOUT_SECONDS = 30


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    # One writer at a time: waiters queue for the connection in the pool, first come first
    # served. Readers never block each other in WAL mode and get a pool of their own.
    pool: dict[str, Any] = (
        {"pool_size": 1, "max_overflow": 0, "pool_timeout": WRITE_TIMEOUT_SECONDS}
        if immediate
        else {"pool_size": 8, "max_overflow": 16}
    )
    engine = sa_create_engine(
        url, connect_args={"check_same_thread": False, "timeout": WRITE_TIMEOUT_SECONDS}, **pool
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={WRITE_TIMEOUT_SECONDS * 1000}")
        # Savepoint journals and sort spills stay in memory instead of temp files.
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """Engines and session factories for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self._readers = threading.local()
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            path = self.url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = _sqlite_engine(self.url, immediate=True)
            self.read_engine = _sqlite_engine(self.url, immediate=False)
        else:
            self.engine = sa_create_engine(
                self.url, pool_size=10, max_overflow=20, pool_pre_ping=True
            )
            self.read_engine = self.engine
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write unit of work: committed when the block ends, rolled back on an exception."""
        with self._write() as session, session.begin():
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        with self._read() as session:
            try:
                yield session
            finally:
                session.rollback()

    def sqlite_reader(self) -> sqlite3.Connection:
        """A plain read-only ``sqlite3`` connection of this thread, for the hottest look-ups,
        where even SQLAlchemy's Core costs more than the query. Each statement sees the latest
        commit (autocommit reads in WAL mode)."""
        reader: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if reader is None:
            path = self.url.split("///", 1)[-1]
            reader = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
            )
            reader.execute(f"PRAGMA busy_timeout={WRITE_TIMEOUT_SECONDS * 1000}")
            self._readers.conn = reader
        return reader

    def new_session(self) -> Session:
        return self._write()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


def dialect_insert(session: Session, table: Any) -> Any:
    """An INSERT that knows ``ON CONFLICT`` on both SQLite and PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert_unless_exists(
    session: Session, model: type[Base], row: dict[str, Any], unique: list[str]
) -> bool:
    """Insert ``row`` unless another row already holds its ``unique`` key; returns whether it
    was inserted. Race-free: the database decides, never a prior SELECT."""
    table = model.__table__
    result = session.execute(
        dialect_insert(session, model)
        .values(row)
        .on_conflict_do_nothing(index_elements=unique)
        .returning(table.c[unique[-1]])
    )
    return result.first() is not None


_binders: dict[tuple[str, str, str], Any] = {}


def _sqlite_stamp(value: datetime) -> str:
    """What SQLAlchemy's SQLite DateTime stores for a UTC datetime, formatted directly (it is
    the costliest value of a batch row otherwise)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; use kit.clock.utcnow()")
    v = value.astimezone(UTC) if value.utcoffset() else value
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031 - the fastest formatting
        v.year,
        v.month,
        v.day,
        v.hour,
        v.minute,
        v.second,
        v.microsecond,
    )


def _bind(dialect: Dialect, table: Any, column: str) -> Any:
    key = (dialect.name, table.name, column)
    if key not in _binders:
        kind = table.c[column].type
        if dialect.name == "sqlite" and isinstance(kind, UTCDateTime):
            _binders[key] = _sqlite_stamp
        else:
            _binders[key] = kind.dialect_impl(dialect).bind_processor(dialect)
    return _binders[key]


def _params(
    session: Session, table: Any, names: list[str], rows: list[dict[str, Any]]
) -> tuple[str, list[tuple[Any, ...]]]:
    """The driver's placeholder, and each row's values of ``names`` bound as SQLAlchemy would
    bind them (UTC datetimes, JSON)."""
    dialect = session.get_bind().dialect
    binders = [_bind(dialect, table, name) for name in names]
    values = itemgetter(*names)
    params = [
        tuple(
            v if b is None or v is None else b(v) for v, b in zip(values(row), binders, strict=True)
        )
        for row in rows
    ]
    return ("%s" if dialect.name == "postgresql" else "?"), params


def bulk_insert(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Insert many rows with one driver ``executemany``. For batch paths, where the ORM's bulk
    insert costs more per row than the database does; every row must have the first row's
    keys."""
    if not rows:
        return
    table: Any = model.__table__
    names = list(rows[0])
    mark, params = _params(session, table, names, rows)
    session.connection().exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})",
        params,
    )


def bulk_update(
    session: Session, model: type[Base], keys: list[str], rows: list[dict[str, Any]]
) -> None:
    """``UPDATE`` many rows, each found by its ``keys`` columns, setting the row's other
    columns, with one driver ``executemany``."""
    if not rows:
        return
    table: Any = model.__table__
    sets = [name for name in rows[0] if name not in keys]
    mark, params = _params(session, table, [*sets, *keys], rows)
    session.connection().exec_driver_sql(
        f"UPDATE {table.name} SET {', '.join(f'{n} = {mark}' for n in sets)}"
        f" WHERE {' AND '.join(f'{n} = {mark}' for n in keys)}",
        params,
    )
