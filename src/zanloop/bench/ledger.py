"""(b) and (c): ledger transfers posted in batches through ``ledger.service.post_many``.

Each batch of two-leg transfers between a few hundred accounts is one durable commit (SQLite in
WAL mode with ``synchronous=FULL``; PostgreSQL with ``synchronous_commit=on``). The raw ceiling
inserts the very rows zanloop wrote (read back from its file) into an identical copy of the
seeded database with plain ``sqlite3`` ``executemany``, one commit per batch, same pragmas.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from zanloop.db import Database
from zanloop.kit.money import Asset
from zanloop.ledger import service as ledger
from zanloop.ledger.domain import TransferRequest, two_party
from zanloop.ledger.tables import LedgerAccount, LedgerEntry, LedgerTransfer
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import TenantKind

ASSET = Asset.CNY
# Batch 0 warms caches (compiled statements, the page cache) and is not timed.
WARMUP_BATCH = 0


@dataclass(frozen=True)
class LedgerSizes:
    accounts: int
    batches: int
    batch_size: int

    @property
    def transfers(self) -> int:
        return self.batches * self.batch_size


@dataclass(frozen=True)
class Workload:
    owners: list[str]
    # Index 0 is the warm-up batch.
    batches: list[list[TransferRequest]]

    def expected_balances(self) -> dict[str, int]:
        balances = dict.fromkeys(self.owners, 0)
        for batch in self.batches:
            for request in batch:
                for leg in request.legs:
                    balances[leg.owner] += leg.amount
        return balances

    @property
    def total(self) -> int:
        return sum(len(b) for b in self.batches)


def workload(sizes: LedgerSizes, seed: int = 11) -> Workload:
    rng = random.Random(seed)
    owners = [f"acct-{i:04d}" for i in range(sizes.accounts)]
    batches: list[list[TransferRequest]] = []
    for b in range(sizes.batches + 1):
        batch = []
        for i in range(sizes.batch_size):
            source, target = rng.sample(owners, 2)
            batch.append(
                two_party(
                    f"t{b:05d}-{i:05d}",
                    ASSET,
                    source,
                    target,
                    rng.randint(1, 100_000),
                    from_overdraft=True,
                    description="bench",
                )
            )
        batches.append(batch)
    return Workload(owners, batches)


def batch_of(transfer_id: str) -> int:
    return int(transfer_id[1:6])


@dataclass(frozen=True)
class Timing:
    seconds: float
    transfers: int
    batch_seconds: list[float]

    @property
    def per_second(self) -> float:
        return self.transfers / self.seconds if self.seconds > 0 else 0.0

    @property
    def median_batch(self) -> float:
        return statistics.median(self.batch_seconds) if self.batch_seconds else float("nan")


def seed(db: Database, load: Workload) -> str:
    """A tenant and its accounts (overdraft allowed, so any order of transfers posts)."""
    with db.session() as session:
        tenant, _ = tenancy.create_tenant(session, "bench ledger", TenantKind.MERCHANT)
        for owner in load.owners:
            ledger.open_account(session, tenant.id, owner, ASSET, overdraft_allowed=True)
    return tenant.id


def post_batches(db: Database, tenant_id: str, load: Workload) -> Timing:
    with db.session() as session:
        ledger.post_many(session, tenant_id, load.batches[WARMUP_BATCH])
    batch_seconds = []
    started = time.perf_counter()
    for batch in load.batches[WARMUP_BATCH + 1 :]:
        t0 = time.perf_counter()
        with db.session() as session:
            ledger.post_many(session, tenant_id, batch)
        batch_seconds.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - started
    return Timing(seconds, load.total - len(load.batches[WARMUP_BATCH]), batch_seconds)


def check_posted(db: Database, tenant_id: str, load: Workload) -> tuple[bool, str]:
    """Balances equal the workload's arithmetic and the sum of each account's entries."""
    expected = load.expected_balances()
    with db.read_session() as session:
        balances = dict(
            session.execute(
                select(LedgerAccount.owner, LedgerAccount.balance).where(
                    LedgerAccount.tenant_id == tenant_id, LedgerAccount.asset == ASSET.value
                )
            ).all()
        )
        entry_sums = dict(
            session.execute(
                select(LedgerAccount.owner, func.sum(LedgerEntry.amount))
                .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
                .where(LedgerEntry.tenant_id == tenant_id)
                .group_by(LedgerAccount.owner)
            ).all()
        )
        transfers = session.scalar(
            select(func.count()).where(LedgerTransfer.tenant_id == tenant_id)
        )
        entries = session.scalar(select(func.count()).where(LedgerEntry.tenant_id == tenant_id))
    problems = []
    if transfers != load.total or entries != 2 * load.total:
        problems.append(f"{transfers} transfers / {entries} entries for {load.total} transfers")
    if balances != expected:
        wrong = sum(1 for o in expected if balances.get(o) != expected[o])
        problems.append(f"{wrong} account balances differ from the workload's arithmetic")
    if any(entry_sums.get(o, 0) != balances.get(o) for o in expected):
        problems.append("an account balance differs from the sum of its entries")
    if sum(balances.values()) != 0:
        problems.append(f"balances sum to {sum(balances.values())}, not 0")
    if problems:
        return False, "; ".join(problems)
    return True, (
        f"{transfers:,} transfers, {entries:,} entries, {len(balances)} balances match, sum 0"
    )


# The raw ceiling ---------------------------------------------------------------------------


def sqlite_path(db: Database) -> Path:
    return Path(db.url.split("///", 1)[1])


def connect_raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with zanloop's pragmas (see ``zanloop.db``)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def copy_database(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


@dataclass(frozen=True)
class RawBatches:
    transfer_sql: str
    entry_sql: str
    batches: dict[int, tuple[list[tuple[object, ...]], list[tuple[object, ...]]]]


def read_back(path: Path) -> RawBatches:
    """zanloop's own ledger rows, grouped by the batch that wrote them."""
    conn = sqlite3.connect(path)
    try:
        transfer_cols = [r[1] for r in conn.execute("PRAGMA table_info(ledger_transfers)")]
        entry_cols = [
            r[1] for r in conn.execute("PRAGMA table_info(ledger_entries)") if r[1] != "id"
        ]
        batches: dict[int, tuple[list[tuple[object, ...]], list[tuple[object, ...]]]] = defaultdict(
            lambda: ([], [])
        )
        batch_by_pk: dict[str, int] = {}
        select_transfers = f"SELECT {', '.join(transfer_cols)} FROM ledger_transfers ORDER BY rowid"
        pk, tid = transfer_cols.index("id"), transfer_cols.index("transfer_id")
        for row in conn.execute(select_transfers):
            b = batch_of(str(row[tid]))
            batch_by_pk[str(row[pk])] = b
            batches[b][0].append(tuple(row))
        select_entries = f"SELECT {', '.join(entry_cols)} FROM ledger_entries ORDER BY id"
        tpk = entry_cols.index("transfer_pk")
        for row in conn.execute(select_entries):
            batches[batch_by_pk[str(row[tpk])]][1].append(tuple(row))
    finally:
        conn.close()

    def insert(table: str, cols: Sequence[str]) -> str:
        return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"

    return RawBatches(
        insert("ledger_transfers", transfer_cols),
        insert("ledger_entries", entry_cols),
        dict(batches),
    )


def insert_raw(path: Path, rows: RawBatches) -> Timing:
    conn = connect_raw(path)
    try:

        def one(batch: int) -> int:
            transfers, entries = rows.batches[batch]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(rows.transfer_sql, transfers)
            conn.executemany(rows.entry_sql, entries)
            conn.execute("COMMIT")
            return len(transfers)

        one(WARMUP_BATCH)
        timed = sorted(b for b in rows.batches if b != WARMUP_BATCH)
        batch_seconds = []
        count = 0
        started = time.perf_counter()
        for b in timed:
            t0 = time.perf_counter()
            count += one(b)
            batch_seconds.append(time.perf_counter() - t0)
        return Timing(time.perf_counter() - started, count, batch_seconds)
    finally:
        conn.close()


def check_raw(orm: Path, raw: Path) -> tuple[bool, str]:
    query = (
        "SELECT count(*), sum(amount), sum(balance_after), count(DISTINCT transfer_pk) "
        "FROM ledger_entries"
    )
    answers = []
    for path in (orm, raw):
        conn = sqlite3.connect(path)
        try:
            answers.append(
                (
                    conn.execute(query).fetchone(),
                    conn.execute("SELECT count(*) FROM ledger_transfers").fetchone(),
                )
            )
        finally:
            conn.close()
    ok = answers[0] == answers[1]
    return ok, f"same {answers[1][1][0]:,} transfers and {answers[1][0][0]:,} entries" if ok else (
        f"zanloop {answers[0]} vs raw {answers[1]}"
    )


def sqlite_pragmas(db: Database) -> str:
    with db.engine.connect() as conn:
        journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        synchronous = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        conn.rollback()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return f"journal_mode={journal}, synchronous={names.get(int(synchronous or 0), synchronous)}"
