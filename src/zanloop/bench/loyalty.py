"""``zanloop bench loyalty``: member events ingested per second in batches (events -> rules ->
lots -> ledger), on SQLite and PostgreSQL, each beside the raw insert ceiling for the very rows
it wrote; and a member's balance read over HTTP.

Setup, untimed: a database migrated by ``zanloop.migrate.upgrade``; a tenant
(``tenancy.service.create_tenant``) whose programme runs the default rules and tasks, switched
on (``loyalty.service.install_defaults(activate=True, partner_stores=["mall-2"])``, what
``POST /v1/loyalty/defaults`` runs), and ``members`` enrolled, a third with a birthday in the
stream's window. That seeded database is the template every pass starts from: a file copy on
SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL. The events: ``loyalty_workload``.

(1) SQLite, (2) PostgreSQL: each pass ingests the whole stream into a fresh copy of the template
through the product's ``zanloop.db.Database``, one batch per
``with db.session(): loyalty.service.ingest_events(session, tenant_id, batch)``, i.e. one durable
commit each (SQLite WAL with ``synchronous=FULL``; PostgreSQL ``synchronous_commit=on``). The
first batch warms up untimed; events/s is timed events / the sum of the timed batches' wall
times; the figure is the median pass. The first pass also records, between batches (untimed),
every row each batch inserted or changed, by reading the tenant's rows of every table back with
the plain driver and diffing them with what was there before.

The **raw ceiling** starts from another copy of the template and writes those rows batch by
batch with the plain driver (``sqlite3``, ``psycopg``): per table in foreign-key order one
``executemany`` INSERT of the rows the batch inserted, then per table one ``executemany`` UPDATE
(by primary key) of the rows it changed, setting the columns the batch changed, in one
transaction per batch with the same durability. No reads, no rules, no Python objects: what
writing these rows costs at the least.

(3) ``GET /v1/loyalty/members/{user}/balance`` against a live API (``python -m zanloop.cli
serve --no-worker``, one uvicorn worker) serving the last SQLite pass's file, from
``READ_CONCURRENCY`` raw-socket client threads (closed loop, keep-alive), members drawn
uniformly.

Self-checks, on every pass: every event applied, with the points the independent computation
(``loyalty_workload.expected``) gives it, as the outcome and as stored; every member's
available and pending balance and tier equal to it; lots and tier changes as many as it says;
the tenant's POINTS balances sum to 0 and each equals the sum of its entries. The ceiling: it
covers every table the ingest wrote, and ends with the same rows per table and the same account
balances as the product. The reads: every answer 200 and equal to the independent computation.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Json
from sqlalchemy import JSON, String, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

import zanloop.tables  # noqa: F401 - every table in Base.metadata
from zanloop import migrate
from zanloop.bench import ledger as ledger_bench
from zanloop.bench.core import POSTGRES_URL_ENV, postgres_url
from zanloop.bench.loyalty_workload import (
    KINDS,
    PARTNER_STORE,
    Expected,
    LoyaltySizes,
    Workload,
    expected,
    workload,
)
from zanloop.bench.notify import server_stack
from zanloop.bench.pins import RawResult, http_request, raw_load
from zanloop.bench.postgres import Unreachable, private_database
from zanloop.bench.report import Report, load_average, load_note, ms, percentile
from zanloop.bench.server import COMMAND, ServerProcess
from zanloop.db import Base, Database, normalise_url
from zanloop.kit.clock import utcnow
from zanloop.kit.money import Asset
from zanloop.ledger import service as ledger
from zanloop.ledger.tables import LedgerAccount, LedgerEntry
from zanloop.loyalty import service
from zanloop.loyalty.domain import ISSUER, available_owner, pending_owner
from zanloop.loyalty.ingest import Incoming
from zanloop.loyalty.tables import LoyaltyEvent, LoyaltyLot, LoyaltyMember, LoyaltyTierChange
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import TenantKind

SEED_SECTION = "seed"
SQLITE_SECTION = "(1)"
POSTGRES_SECTION = "(2)"
READ_SECTION = "(3)"
TARGET_SQLITE_PER_SECOND = 40_000
TARGET_POSTGRES_PER_SECOND = 20_000
TARGET_READ_P99_SECONDS = 0.002
READ_CONCURRENCY = 4
WARMUP_BATCH = 0
# Rows only ever inserted by ingest, read back incrementally by their (time-ordered) key.
APPEND_ONLY = frozenset(
    {"loyalty_events", "loyalty_lots", "loyalty_tier_changes", "ledger_transfers", "ledger_entries"}
)

DEFAULT = LoyaltySizes(
    members=5_000,
    newcomers=1_000,
    batch_size=2_000,
    batches=10,
    sqlite_passes=3,
    postgres_passes=3,
    reads=5_000,
    read_warmup=500,
)
QUICK = LoyaltySizes(
    members=200,
    newcomers=50,
    batch_size=250,
    batches=3,
    sqlite_passes=1,
    postgres_passes=1,
    reads=300,
    read_warmup=30,
)


def run_loyalty(*, quick: bool = False) -> Report:
    sizes = QUICK if quick else DEFAULT
    report = Report(
        f"zanloop bench loyalty ({'quick' if quick else 'default'} sizes) | "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs"
    )
    load_before = load_average()
    load = workload(sizes, utcnow())
    model = expected(load)
    _report_workload(report, load, model, sizes)
    took: list[str] = []
    with tempfile.TemporaryDirectory(prefix="zanloop-bench-loyalty-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        served = sqlite_part(report, workdir, load, model, sizes)
        took.append(f"(1) {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        postgres_part(report, load, model, sizes, postgres_url())
        took.append(f"(2) {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        reads(report, workdir, served, model, sizes)
        took.append(f"(3) {time.perf_counter() - started:.1f} s")
    report.notes.append("wall time with setup and checks: " + ", ".join(took))
    report.notes.append(load_note(load_before, "the API server and the client share them in (3)"))
    return report


def _report_workload(report: Report, load: Workload, model: Expected, sizes: LoyaltySizes) -> None:
    kinds = load.kinds()
    mix = ", ".join(f"{kind} {kinds.get(kind, 0) / sizes.events:.0%}" for kind, _ in KINDS)
    tiers = Counter(model.balance(u)[2] for u in model.members)
    report.add(
        SEED_SECTION,
        "members enrolled before / after the stream",
        f"{sizes.members:,} / {len(model.members):,}",
    )
    report.add(
        SEED_SECTION,
        "events: batches x size (+1 warm-up batch), over 60 days",
        f"{sizes.batches} x {sizes.batch_size:,} (+{sizes.batch_size:,})",
    )
    report.add(
        SEED_SECTION,
        "points the stream earns, lots, tiers at the end",
        f"{model.issued:,}, {model.lots:,}, "
        + " / ".join(f"{t} {tiers.get(t, 0):,}" for t in ("normal", "silver", "gold")),
    )
    report.notes.append(f"event mix: {mix}")


# Setup ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    tenant_id: str
    api_key: str
    secret: str
    seconds: float


def seed(db: Database, load: Workload) -> Seeded:
    """The tenant, its programme with the default rules and tasks on, and the members."""
    started = time.perf_counter()
    now = utcnow()
    with db.session() as session:
        tenant, issued = tenancy.create_tenant(session, "bench loyalty", TenantKind.MERCHANT)
        service.install_defaults(session, tenant.id, activate=True, partner_stores=[PARTNER_STORE])
        programme = service.programme(session, tenant.id)
        first_tier = service.settings(session, tenant.id).first_tier
        session.execute(
            insert(LoyaltyMember),
            [
                {
                    "tenant_id": tenant.id,
                    "user_id": user,
                    "tier": first_tier,
                    "base_tier": first_tier,
                    "birthday": load.birthdays.get(user),
                    "owed_points": 0,
                    "tier_changed_at": now,
                    "created_at": now,
                }
                for user in load.members
            ],
        )
        secret = programme.receipt_secret
    return Seeded(tenant.id, issued.plaintext, secret, time.perf_counter() - started)


# Plain driver connections: reading rows back, and the raw ceiling ----------------------------


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


# One pass of ingest --------------------------------------------------------------------------


@dataclass
class Pass:
    batch_seconds: list[float]
    cpu_seconds: float
    events: int
    statuses: Counter[str]
    outcome_points: dict[str, int]

    @property
    def seconds(self) -> float:
        return sum(self.batch_seconds)

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def ingest_pass(
    db: Database, tenant_id: str, batches: list[list[Incoming]], capture: Capture | None
) -> Pass:
    batch_seconds: list[float] = []
    cpu = 0.0
    statuses: Counter[str] = Counter()
    points: dict[str, int] = {}
    for index, batch in enumerate(batches):
        c0, t0 = time.process_time(), time.perf_counter()
        with db.session() as session:
            result = service.ingest_events(session, tenant_id, batch)
        seconds, cpu_used = time.perf_counter() - t0, time.process_time() - c0
        if index != WARMUP_BATCH:
            batch_seconds.append(seconds)
            cpu += cpu_used
        for outcome in result.outcomes:
            statuses[outcome.status] += 1
            points[outcome.event_id] = outcome.points
        if capture is not None:
            capture.batch()
    timed = sum(len(b) for i, b in enumerate(batches) if i != WARMUP_BATCH)
    return Pass(batch_seconds, cpu, timed, statuses, points)


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


# Checks --------------------------------------------------------------------------------------


def stored_key(load: Workload, event_id: str) -> str:
    """A receipt scan is stored under its code's nonce, not the sender's id."""
    receipt = load.receipts.get(event_id)
    return f"receipt:{receipt[0]}" if receipt is not None else event_id


def check_pass(
    db: Database, tenant_id: str, load: Workload, model: Expected, result: Pass
) -> list[str]:
    """What differs from the independent computation (empty: nothing)."""
    problems: list[str] = []
    total = sum(len(b) for b in load.batches)
    if result.statuses != Counter({"applied": total}):
        problems.append(f"outcomes {dict(result.statuses)}")
    wrong = [e for e, p in model.points.items() if result.outcome_points.get(e) != p]
    if wrong:
        problems.append(f"{len(wrong)} outcomes' points differ, first {wrong[0]}")
    with db.read_session() as session:
        stored = {
            key: (status, points)
            for key, status, points in session.execute(
                select(LoyaltyEvent.event_id, LoyaltyEvent.status, LoyaltyEvent.points).where(
                    LoyaltyEvent.tenant_id == tenant_id
                )
            )
        }
        users = sorted(model.members)
        tiers = dict(
            session.execute(
                select(LoyaltyMember.user_id, LoyaltyMember.tier).where(
                    LoyaltyMember.tenant_id == tenant_id
                )
            ).all()
        )
        owners = [available_owner(u) for u in users] + [pending_owner(u) for u in users]
        balances = ledger.balances(session, tenant_id, owners, Asset.POINTS)
        issuer = ledger.balance(session, tenant_id, ISSUER, Asset.POINTS).balance
        lots, lot_points = session.execute(
            select(func.count(), func.coalesce(func.sum(LoyaltyLot.points), 0)).where(
                LoyaltyLot.tenant_id == tenant_id
            )
        ).one()
        tier_changes = session.scalar(
            select(func.count()).where(LoyaltyTierChange.tenant_id == tenant_id)
        )
        accounts = session.execute(
            select(LedgerAccount.id, LedgerAccount.balance).where(
                LedgerAccount.tenant_id == tenant_id, LedgerAccount.asset == Asset.POINTS.value
            )
        ).all()
        entry_sums = dict(
            session.execute(
                select(LedgerEntry.account_id, func.sum(LedgerEntry.amount))
                .where(LedgerEntry.tenant_id == tenant_id)
                .group_by(LedgerEntry.account_id)
            ).all()
        )
    expected_stored = {stored_key(load, e): ("APPLIED", p) for e, p in model.points.items()}
    if stored != expected_stored:
        differ = [k for k, v in expected_stored.items() if stored.get(k) != v]
        problems.append(
            f"{len(stored):,} events stored, {len(differ)} differ from the independent "
            f"computation" + (f", first {differ[0]}: {stored.get(differ[0])}" if differ else "")
        )
    members_wrong = [
        u
        for u in users
        if (
            balances[available_owner(u)].balance,
            balances[pending_owner(u)].balance,
            tiers.get(u),
        )
        != model.balance(u)
    ]
    if members_wrong or len(tiers) != len(users):
        u = members_wrong[0] if members_wrong else "-"
        problems.append(
            f"{len(members_wrong)} of {len(users):,} members' balances or tiers differ "
            f"({len(tiers):,} members stored), first {u}"
        )
    if (lots, lot_points, -issuer) != (model.lots, model.issued, model.issued):
        problems.append(
            f"lots {lots:,} of {lot_points:,} points, issuer {issuer:,}; expected "
            f"{model.lots:,} of {model.issued:,}"
        )
    if tier_changes != model.tier_changes:
        problems.append(f"{tier_changes} tier changes, expected {model.tier_changes}")
    if sum(b for _, b in accounts) != 0:
        problems.append(f"POINTS balances sum to {sum(b for _, b in accounts)}")
    if any(entry_sums.get(a, 0) != b for a, b in accounts):
        problems.append("an account's balance differs from the sum of its entries")
    return problems


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


# Reporting a part ----------------------------------------------------------------------------


def _short(table: str) -> str:
    return table.removeprefix("loyalty_").removeprefix("ledger_").replace("_", " ")


def _rows_per_batch(captured: list[BatchRows], which: str) -> tuple[float, str]:
    """Mean rows per timed batch: in all, and per table (largest first)."""
    timed = [b for i, b in enumerate(captured) if i != WARMUP_BATCH]
    totals: Counter[str] = Counter()
    for b in timed:
        for table, rows in getattr(b, which).items():
            totals[table] += len(rows)
    n = max(1, len(timed))
    detail = ", ".join(f"{_short(t)} {count / n:,.0f}" for t, count in totals.most_common())
    return sum(totals.values()) / n, detail or "none"


def report_part(
    report: Report,
    section: str,
    engine: str,
    driver: str,
    target: int,
    passes: list[Pass],
    ceilings: list[Ceiling],
    captured: list[BatchRows],
    sizes: LoyaltySizes,
) -> None:
    rates = sorted(p.per_second for p in passes)
    median = statistics.median(rates)
    batch = f"{sizes.batch_size:,}"
    report.add(
        section,
        f"ingest_events on {engine}: events/s, median of {len(passes)} pass(es)",
        f"{median:,.0f}/s",
        f">= {target:,}/s",
        median >= target,
    )
    if len(rates) > 1:
        report.add(section, "  passes (slowest-fastest)", f"{rates[0]:,.0f}-{rates[-1]:,.0f}/s")
    all_batches = [s for p in passes for s in p.batch_seconds]
    report.add(
        section,
        f"  median ms per {batch}-event batch (1 commit)",
        ms(statistics.median(all_batches)),
    )
    cpu = statistics.median(p.cpu_seconds / p.events for p in passes)
    report.add(
        section,
        "  bench process CPU per event (one-core ceiling)",
        f"{cpu * 1e6:,.0f} us ({1 / cpu:,.0f}/s)" if cpu > 0 else "n/a",
    )
    if ceilings:
        raw_rates = sorted(c.per_second for c in ceilings)
        raw_median = statistics.median(raw_rates)
        report.add(
            section,
            f"raw {driver} executemany, same rows: events/s",
            f"{raw_median:,.0f}/s",
        )
        raw_batches = [s for c in ceilings for s in c.batch_seconds]
        report.add(
            section,
            f"  median ms per {batch}-event batch (1 commit)",
            ms(statistics.median(raw_batches)),
        )
        report.add(
            section, "ingest / raw ceiling", f"{median / raw_median:.2f}" if raw_median else "n/a"
        )
    if captured:
        inserted, inserted_detail = _rows_per_batch(captured, "inserted")
        updated, updated_detail = _rows_per_batch(captured, "updated")
        report.add(
            section, "rows inserted / updated per batch (mean)", f"{inserted:,.0f} / {updated:,.0f}"
        )
        body = (
            f"rows per {batch}-event batch, read back from the first pass: "
            f"inserted {inserted_detail}; updated {updated_detail}"
        )
        earlier = next((n for n in report.notes if n.endswith(body)), None)
        report.notes.append(
            f"{section} {body}"
            if earlier is None
            else f"{section} rows per batch: the same as {earlier.split()[0]}"
        )


# (1) SQLite ----------------------------------------------------------------------------------


def sqlite_part(
    report: Report, workdir: Path, load: Workload, model: Expected, sizes: LoyaltySizes
) -> tuple[Path, Seeded]:
    """Returns the last pass's file and its tenant, for (3)."""
    section = SQLITE_SECTION
    template = workdir / "template.db"
    url = f"sqlite:///{template}"
    migrate.upgrade(url)
    db = Database(url)
    try:
        seeded = seed(db, load)
    finally:
        db.dispose()
    with sqlite3.connect(template, isolation_level=None) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    report.add(
        SEED_SECTION, "seeding the template (SQLite), not in any figure", f"{seeded.seconds:.1f} s"
    )
    batches = load.with_codes(seeded.secret)
    specs, others = table_specs()
    passes: list[Pass] = []
    problems: list[str] = []
    captured: list[BatchRows] = []
    uncovered: list[str] = []
    path = template
    pragmas = ""
    for n in range(sizes.sqlite_passes):
        path = workdir / f"pass-{n}.db"
        ledger_bench.copy_database(template, path)
        db = Database(f"sqlite:///{path}")
        raw = SqliteRaw(path) if n == 0 else None
        try:
            capture = Capture(raw, seeded.tenant_id, specs, others) if raw else None
            result = ingest_pass(db, seeded.tenant_id, batches, capture)
            passes.append(result)
            problems += [
                f"pass {n + 1}: {p}" for p in check_pass(db, seeded.tenant_id, load, model, result)
            ]
            if capture is not None:
                captured, uncovered = capture.batches, capture.uncovered()
            pragmas = ledger_bench.sqlite_pragmas(db)
        finally:
            db.dispose()
            if raw is not None:
                raw.close()
    ceilings: list[Ceiling] = []
    ceiling_problems: list[str] = []
    product = SqliteRaw(workdir / "pass-0.db")
    try:
        for n in range(sizes.sqlite_passes):
            raw_path = workdir / f"raw-{n}.db"
            ledger_bench.copy_database(template, raw_path)
            raw = SqliteRaw(raw_path)
            try:
                ceilings.append(ceiling_pass(raw, specs, captured, batches))
                ceiling_problems += compare_ceiling(product, raw, specs, seeded.tenant_id)
            finally:
                raw.close()
            raw_path.unlink()
    finally:
        product.close()
    report_part(
        report,
        section,
        "SQLite",
        "sqlite3",
        TARGET_SQLITE_PER_SECOND,
        passes,
        ceilings,
        captured,
        sizes,
    )
    report.add(section, "durability", pragmas)
    _checks(report, section, "SQLite", problems, uncovered, ceiling_problems, model)
    return path, seeded


def _checks(
    report: Report,
    section: str,
    engine: str,
    problems: list[str],
    uncovered: list[str],
    ceiling_problems: list[str],
    model: Expected,
) -> None:
    report.check(
        f"{section} {engine}: every event applied; points, balances, tiers, lots == the "
        "independent computation; POINTS sum to 0, each account == its entries",
        not problems,
        "; ".join(problems[:3])
        if problems
        else f"{len(model.points):,} events, {len(model.members):,} members, "
        f"{model.lots:,} lots, {model.tier_changes:,} tier changes",
    )
    report.check(
        f"{section} raw ceiling covers every table the ingest wrote",
        not uncovered,
        "; ".join(uncovered[:3]),
    )
    report.check(
        f"{section} raw ceiling ends with the same rows per table and account balances",
        not ceiling_problems,
        "; ".join(ceiling_problems[:3]),
    )


# (2) PostgreSQL ------------------------------------------------------------------------------


@contextmanager
def clones(url: str) -> Iterator[Callable[[str], str]]:
    """``clone(name)`` makes a copy of the database at ``url`` named ``<its name>_<name>`` and
    returns its URL; every copy is dropped at the end."""
    parsed = make_url(normalise_url(url))
    template = str(parsed.database)
    admin = create_engine(
        parsed.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    made: list[str] = []

    def clone(suffix: str) -> str:
        name = f"{template}_{suffix}"
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        made.append(name)
        return parsed.set(database=name).render_as_string(hide_password=False)

    try:
        yield clone
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_part(
    report: Report, load: Workload, model: Expected, sizes: LoyaltySizes, url: str | None
) -> None:
    section = POSTGRES_SECTION
    label = f"ingest_events on PostgreSQL: events/s, median of {sizes.postgres_passes} pass(es)"
    if url is None:
        report.skip(section, label, f"{POSTGRES_URL_ENV} is off")
        return
    try:
        with private_database(url) as own:
            _postgres(report, own, load, model, sizes)
    except Unreachable as exc:
        report.skip(section, label, f"PostgreSQL unreachable ({exc})")


def _postgres(
    report: Report, own: str, load: Workload, model: Expected, sizes: LoyaltySizes
) -> None:
    section = POSTGRES_SECTION
    db = Database(own)
    try:
        seeded = seed(db, load)
    finally:
        db.dispose()
    batches = load.with_codes(seeded.secret)
    specs, others = table_specs()
    passes: list[Pass] = []
    problems: list[str] = []
    captured: list[BatchRows] = []
    uncovered: list[str] = []
    ceilings: list[Ceiling] = []
    ceiling_problems: list[str] = []
    settings = ("", "", "", "")
    with clones(own) as clone:
        first = ""
        for n in range(sizes.postgres_passes):
            url = clone(f"p{n}")
            first = first or url
            db = Database(url)
            raw = PostgresRaw(url) if n == 0 else None
            try:
                capture = Capture(raw, seeded.tenant_id, specs, others) if raw else None
                result = ingest_pass(db, seeded.tenant_id, batches, capture)
                passes.append(result)
                problems += [
                    f"pass {n + 1}: {p}"
                    for p in check_pass(db, seeded.tenant_id, load, model, result)
                ]
                if capture is not None:
                    captured, uncovered = capture.batches, capture.uncovered()
                with db.engine.connect() as conn:
                    settings = (
                        str(conn.execute(text("SHOW synchronous_commit")).scalar()),
                        str(conn.execute(text("SHOW fsync")).scalar()),
                        str(conn.execute(text("SHOW server_version")).scalar()),
                        str(db.engine.url.database),
                    )
            finally:
                db.dispose()
                if raw is not None:
                    raw.close()
        product = PostgresRaw(first)
        try:
            for n in range(sizes.postgres_passes):
                raw = PostgresRaw(clone(f"raw{n}"))
                try:
                    ceilings.append(ceiling_pass(raw, specs, captured, batches))
                    ceiling_problems += compare_ceiling(product, raw, specs, seeded.tenant_id)
                finally:
                    raw.close()
        finally:
            product.close()
    report_part(
        report,
        section,
        "PostgreSQL",
        "psycopg",
        TARGET_POSTGRES_PER_SECOND,
        passes,
        ceilings,
        captured,
        sizes,
    )
    synchronous_commit, fsync, version, database = settings
    report.add(
        section,
        "SHOW synchronous_commit / fsync",
        f"{synchronous_commit} / {fsync}",
        "on",
        synchronous_commit == "on",
    )
    report.add(
        section,
        "databases (private copies, dropped after)",
        f"{database.rsplit('_', 1)[0]}_* on PostgreSQL {version.split()[0]}",
    )
    report.check(
        f"{section} synchronous_commit is on", synchronous_commit == "on", synchronous_commit
    )
    _checks(report, section, "PostgreSQL", problems, uncovered, ceiling_problems, model)


# (3) Balance reads over HTTP -----------------------------------------------------------------


def reads(
    report: Report,
    workdir: Path,
    served: tuple[Path, Seeded],
    model: Expected,
    sizes: LoyaltySizes,
) -> None:
    section = READ_SECTION
    path, seeded = served
    rng = random.Random(20261128)
    users = sorted(model.members)
    picks = [rng.choice(users) for _ in range(sizes.read_warmup + sizes.reads)]
    auth = {"Authorization": f"Bearer {seeded.api_key}"}
    c = READ_CONCURRENCY
    with ServerProcess(f"sqlite:///{path}", workdir) as server:
        requests = [
            http_request("GET", f"/v1/loyalty/members/{u}/balance", server.port, auth)
            for u in picks
        ]
        warmup = raw_load(server.port, requests[: sizes.read_warmup], c)
        timed_requests = requests[sizes.read_warmup :]
        cpu_before, client_before = server.cpu_seconds(), time.process_time()
        timed = raw_load(server.port, timed_requests, c, keep=True)
        cpu_after, client_after = server.cpu_seconds(), time.process_time()
    latencies = sorted(timed.latencies)
    p99 = percentile(latencies, 99)
    report.add(
        section,
        f"balance reads/s, HTTP, SQLite, c={c}",
        f"{timed.count / timed.seconds:,.0f}/s" if timed.seconds else "n/a",
    )
    report.add(section, "latency p50", ms(percentile(latencies, 50)))
    report.add(
        section,
        "latency p99",
        ms(p99),
        f"<= {ms(TARGET_READ_P99_SECONDS)}",
        p99 <= TARGET_READ_P99_SECONDS,
    )
    report.add(section, "latency max", ms(latencies[-1] if latencies else float("nan")))
    if cpu_before is not None and cpu_after is not None and timed.count:
        server_cpu = (cpu_after - cpu_before) / timed.count
        report.add(section, "server CPU per read", ms(server_cpu))
        report.add(section, "  => one-core ceiling at that cost", f"{1 / server_cpu:,.0f}/s")
    if timed.count:
        client_cpu = (client_after - client_before) / timed.count
        report.add(section, f"client CPU per read ({c} raw-socket threads)", ms(client_cpu))
    report.add(section, "reads timed (+ untimed warm-up)", f"{timed.count:,} (+{warmup.count:,})")
    report.add(section, "server: a child process, 1 worker", COMMAND)
    report.add(section, "  HTTP stack", server_stack(python_is_ours=True))
    _check_status(report, f"{section} every warm-up read answered 200", warmup, sizes.read_warmup)
    _check_status(report, f"{section} every timed read answered 200", timed, sizes.reads)
    wrong = []
    for i, body in timed.bodies.items():
        user = picks[sizes.read_warmup + i]
        available, pending, tier = model.balance(user)
        want = {
            "user_id": user,
            "available": available,
            "pending": pending,
            "held": 0,
            "tier": tier,
        }
        try:
            got = json.loads(body)
        except ValueError:
            got = body
        if got != want:
            wrong.append(f"{user}: {got} != {want}")
    report.check(
        f"{section} balances read == the independent computation",
        not wrong and len(timed.bodies) == sizes.reads,
        f"{len(timed.bodies):,} answers"
        + (f"; {len(wrong)} differ, first {wrong[0]}" if wrong else ""),
    )


def _check_status(report: Report, name: str, result: RawResult, expected_count: int) -> None:
    ok = dict(result.statuses) == {200: expected_count} and not result.errors
    detail = f"{expected_count:,} x 200" if ok else f"statuses {dict(result.statuses)}"
    if result.errors:
        detail += f"; {len(result.errors)} errors, first: {result.errors[0]}"
    report.check(name, ok, detail)


__all__ = ["DEFAULT", "QUICK", "run_loyalty"]
