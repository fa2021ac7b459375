"""The raw ceiling of ``zanloop bench loyalty``: what writing the very rows the ingest wrote
costs with the plain driver (``sqlite3``, ``psycopg``), and nothing else.

``Capture`` reads the tenant's rows of every table back after each batch of a product pass
(untimed) and keeps what the batch inserted and changed; ``ceiling_pass`` replays them into
another copy of the template, one transaction per batch; ``compare_ceiling`` checks that it
ends with the rows and balances the product ended with. Plain rows of every table with a
``tenant_id``: no SQLAlchemy session, no rules, nothing the product's pass runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Json
from sqlalchemy import JSON, String
from sqlalchemy.engine import make_url

import zanloop.tables  # noqa: F401 - every table in Base.metadata
from zanloop.bench import ledger as ledger_bench
from zanloop.bench.loyalty_workload import WARMUP_BATCH
from zanloop.db import Base
from zanloop.loyalty.ingest import Incoming

# Rows only ever inserted by ingest, read back incrementally by their (time-ordered) key.
APPEND_ONLY = frozenset(
    {"loyalty_events", "loyalty_lots", "loyalty_tier_changes", "ledger_transfers", "ledger_entries"}
)


# Tables, and plain driver connections --------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[str, ...]
    key: tuple[int, ...]
    json: frozenset[int]
    append_only: bool
    # The (single-column) key is a string: compared in byte order when read incrementally.
    text_key: bool

    @property
    def column_list(self) -> str:
        return ", ".join(f'"{c}"' for c in self.columns)


def table_specs() -> tuple[list[TableSpec], list[str]]:
    """Every table with a tenant_id (in foreign-key order), and the names of the others."""
    specs: list[TableSpec] = []
    others: list[str] = []
    for table in Base.metadata.sorted_tables:
        if "tenant_id" not in table.c:
            others.append(table.name)
            continue
        columns = tuple(c.name for c in table.columns)
        key = tuple(columns.index(c.name) for c in table.primary_key.columns)
        json_columns = frozenset(i for i, c in enumerate(table.columns) if isinstance(c.type, JSON))
        append_only = table.name in APPEND_ONLY and len(key) == 1
        text_key = append_only and isinstance(table.c[columns[key[0]]].type, String)
        specs.append(TableSpec(table.name, columns, key, json_columns, append_only, text_key))
    return specs, others


Row = tuple[Any, ...]


@dataclass
class BatchRows:
    """What one batch inserted and changed, per table."""

    inserted: dict[str, list[Row]] = field(default_factory=dict)
    updated: dict[str, list[Row]] = field(default_factory=dict)
    # Per table, the columns any updated row changed: the raw UPDATE sets only those.
    changed: dict[str, tuple[int, ...]] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)


class Raw:
    """A plain driver connection (``sqlite3`` or ``psycopg``), outside SQLAlchemy."""

    mark = "?"

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        raise NotImplementedError

    def write(self, statements: list[tuple[str, list[Row]]]) -> None:
        """The statements (each an executemany) in one durable transaction."""
        raise NotImplementedError

    def adapt(self, spec: TableSpec, row: Row) -> Row:
        return row

    def after(self, spec: TableSpec) -> str:
        return f'"{spec.columns[spec.key[0]]}" > {self.mark}'

    def close(self) -> None:
        raise NotImplementedError

    def insert_sql(self, spec: TableSpec) -> str:
        marks = ", ".join(self.mark for _ in spec.columns)
        return f'INSERT INTO "{spec.name}" ({spec.column_list}) VALUES ({marks})'

    def update_sql(self, spec: TableSpec, columns: Sequence[int]) -> str:
        sets = ", ".join(f'"{spec.columns[i]}" = {self.mark}' for i in columns)
        where = " AND ".join(f'"{spec.columns[i]}" = {self.mark}' for i in spec.key)
        return f'UPDATE "{spec.name}" SET {sets} WHERE {where}'

    def statements(
        self, specs: Sequence[TableSpec], rows: BatchRows
    ) -> list[tuple[str, list[Row]]]:
        """One INSERT per table in foreign-key order, then one UPDATE per table."""
        out: list[tuple[str, list[Row]]] = []
        for spec in specs:
            if rows.inserted.get(spec.name):
                out.append(
                    (self.insert_sql(spec), [self.adapt(spec, r) for r in rows.inserted[spec.name]])
                )
        for spec in specs:
            if rows.updated.get(spec.name):
                columns = rows.changed[spec.name]
                params = []
                for r in rows.updated[spec.name]:
                    r = self.adapt(spec, r)
                    params.append(tuple(r[i] for i in columns) + tuple(r[i] for i in spec.key))
                out.append((self.update_sql(spec, columns), params))
        return out


class SqliteRaw(Raw):
    def __init__(self, path: Path) -> None:
        # zanloop's pragmas: WAL, synchronous=FULL, foreign keys on.
        self.conn = ledger_bench.connect_raw(path)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(r) for r in self.conn.execute(sql, tuple(params))]

    def write(self, statements: list[tuple[str, list[Row]]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        for sql, rows in statements:
            self.conn.executemany(sql, rows)
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class PostgresRaw(Raw):
    mark = "%s"

    def __init__(self, url: str) -> None:
        conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.conn = psycopg.connect(conninfo, autocommit=True)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(r) for r in self.conn.execute(sql, tuple(params)).fetchall()]

    def write(self, statements: list[tuple[str, list[Row]]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cursor:
            for sql, rows in statements:
                cursor.executemany(sql, rows)

    def adapt(self, spec: TableSpec, row: Row) -> Row:
        if not spec.json:
            return row
        return tuple(Json(v) if i in spec.json else v for i, v in enumerate(row))

    def after(self, spec: TableSpec) -> str:
        # Byte order, as Python compares the keys read back.
        collate = ' COLLATE "C"' if spec.text_key else ""
        return f'"{spec.columns[spec.key[0]]}"{collate} > %s'

    def close(self) -> None:
        self.conn.close()


def _key(spec: TableSpec, row: Row) -> Row:
    return tuple(row[i] for i in spec.key)


# Reading back what each batch wrote ----------------------------------------------------------


class Capture:
    """Reads the tenant's rows of every table back after each batch and keeps what changed."""

    def __init__(self, raw: Raw, tenant_id: str, specs: list[TableSpec], others: list[str]):
        self.raw, self.tenant_id, self.specs, self.others = raw, tenant_id, specs, others
        self.state: dict[str, dict[Row, Row]] = {}
        self.last: dict[str, Any] = {}
        self.batches: list[BatchRows] = []
        self.other_counts = self._other_counts()
        self._read(BatchRows())

    def _other_counts(self) -> dict[str, int]:
        return {t: int(self.raw.query(f'SELECT count(*) FROM "{t}"')[0][0]) for t in self.others}

    def _read(self, rows: BatchRows) -> None:
        m = self.raw.mark
        for spec in self.specs:
            sql = f'SELECT {spec.column_list} FROM "{spec.name}" WHERE tenant_id = {m}'
            params: list[Any] = [self.tenant_id]
            if spec.append_only:
                last = self.last.get(spec.name)
                if last is not None:
                    sql += f" AND {self.raw.after(spec)}"
                    params.append(last)
                found = self.raw.query(sql, params)
                if found:
                    k = spec.key[0]
                    self.last[spec.name] = max(r[k] for r in found)
                    rows.inserted[spec.name] = found
                continue
            now = {_key(spec, r): r for r in self.raw.query(sql, params)}
            before = self.state.get(spec.name, {})
            new = [r for k, r in now.items() if k not in before]
            changed = [r for k, r in now.items() if k in before and before[k] != r]
            gone = sum(1 for k in before if k not in now)
            if new:
                rows.inserted[spec.name] = new
            if changed:
                rows.updated[spec.name] = changed
                rows.changed[spec.name] = tuple(
                    sorted(
                        {
                            i
                            for r in changed
                            for i, (a, b) in enumerate(zip(before[_key(spec, r)], r, strict=True))
                            if a != b
                        }
                    )
                )
            if gone:
                rows.deleted[spec.name] = gone
            self.state[spec.name] = now

    def batch(self) -> None:
        rows = BatchRows()
        self._read(rows)
        self.batches.append(rows)

    def uncovered(self) -> list[str]:
        """What the ceiling would not replay: tables without a tenant_id whose row counts
        changed, and deleted rows."""
        after = self._other_counts()
        out = [
            f"{t} ({self.other_counts[t]} -> {n})"
            for t, n in after.items()
            if n != self.other_counts[t]
        ]
        for b in self.batches:
            out += [f"{t}: {n} rows deleted" for t, n in b.deleted.items()]
        return out


# Replaying it raw ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ceiling:
    batch_seconds: list[float]
    events: int

    @property
    def per_second(self) -> float:
        seconds = sum(self.batch_seconds)
        return self.events / seconds if seconds > 0 else 0.0


def ceiling_pass(
    raw: Raw, specs: list[TableSpec], captured: list[BatchRows], batches: list[list[Incoming]]
) -> Ceiling:
    # Parameters are prepared before the clock starts: the ceiling times the writes only.
    prepared = [raw.statements(specs, rows) for rows in captured]
    raw.write(prepared[WARMUP_BATCH])
    batch_seconds = []
    for index, statements in enumerate(prepared):
        if index == WARMUP_BATCH:
            continue
        t0 = time.perf_counter()
        raw.write(statements)
        batch_seconds.append(time.perf_counter() - t0)
    timed = sum(len(b) for i, b in enumerate(batches) if i != WARMUP_BATCH)
    return Ceiling(batch_seconds, timed)


def compare_ceiling(product: Raw, raw: Raw, specs: list[TableSpec], tenant_id: str) -> list[str]:
    problems = []
    m = product.mark
    for spec in specs:
        sql = f'SELECT count(*) FROM "{spec.name}" WHERE tenant_id = {m}'
        a, b = product.query(sql, [tenant_id])[0][0], raw.query(sql, [tenant_id])[0][0]
        if a != b:
            problems.append(f"{spec.name}: {a} vs {b}")
    sql = f"SELECT owner, asset, balance FROM ledger_accounts WHERE tenant_id = {m}"
    if sorted(product.query(sql, [tenant_id])) != sorted(raw.query(sql, [tenant_id])):
        problems.append("account balances differ")
    return problems
