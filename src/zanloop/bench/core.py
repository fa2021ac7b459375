"""``zanloop bench core``: the three headline figures in one run, with their self-checks."""

from __future__ import annotations

import os
import platform
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from zanloop import migrate
from zanloop.bench import ledger as ledger_bench
from zanloop.bench import notify
from zanloop.bench.postgres import DEFAULT_URL, Unreachable, private_database
from zanloop.bench.report import Report, load_average, load_note, ms, rate
from zanloop.db import Database

POSTGRES_URL_ENV = "ZANLOOP_BENCH_POSTGRES_URL"
SQLITE_RATIO_TARGET = 0.5
POSTGRES_TARGET = 20_000


@dataclass(frozen=True)
class Sizes:
    notify: notify.NotifySizes
    ledger: ledger_bench.LedgerSizes


DEFAULT = Sizes(
    notify=notify.NotifySizes(
        min_orders=600, max_orders=6_000, setup_seconds=30.0, warmup=100, replays=100
    ),
    ledger=ledger_bench.LedgerSizes(accounts=300, batches=20, batch_size=1_000),
)
QUICK = Sizes(
    notify=notify.NotifySizes(
        min_orders=96, max_orders=96, setup_seconds=0.0, warmup=16, replays=16
    ),
    ledger=ledger_bench.LedgerSizes(accounts=50, batches=2, batch_size=500),
)


def postgres_url() -> str | None:
    """``ZANLOOP_BENCH_POSTGRES_URL`` (``off`` or empty skips PostgreSQL), else the default."""
    value = os.environ.get(POSTGRES_URL_ENV, DEFAULT_URL).strip()
    return None if value.lower() in ("", "off", "none", "skip") else value


def run_core(what: str, parts: tuple[str, ...], *, quick: bool) -> Report:
    sizes = QUICK if quick else DEFAULT
    report = Report(
        f"zanloop bench {what} ({'quick' if quick else 'default'} sizes) | "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs"
    )
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="zanloop-bench-") as tmp:
        workdir = Path(tmp)
        took: list[str] = []
        steps: list[tuple[str, str, Callable[[], None]]] = [
            ("notify", "(a)", lambda: notify.run(report, workdir, sizes.notify)),
            ("sqlite", "(b)", lambda: sqlite_ledger(report, workdir, sizes.ledger)),
            ("postgres", "(c)", lambda: postgres_ledger(report, sizes.ledger, postgres_url())),
        ]
        for part, section, run in steps:
            if part in parts:
                started = time.perf_counter()
                run()
                took.append(f"{section} {time.perf_counter() - started:.1f} s")
        report.notes.append("wall time with setup and checks: " + ", ".join(took))
    report.notes.append(load_note(load_before))
    return report


def sqlite_ledger(report: Report, workdir: Path, sizes: ledger_bench.LedgerSizes) -> None:
    section = "(b)"
    path, raw_path = workdir / "ledger.db", workdir / "ledger-raw.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    load = ledger_bench.workload(sizes)
    db = Database(url)
    try:
        tenant_id = ledger_bench.seed(db, load)
        # The raw ceiling starts from the very same migrated, seeded database.
        ledger_bench.copy_database(path, raw_path)
        timing = ledger_bench.post_batches(db, tenant_id, load)
        ok, detail = ledger_bench.check_posted(db, tenant_id, load)
        report.check("(b) SQLite ledger balances and entries", ok, detail)
        pragmas = ledger_bench.sqlite_pragmas(db)
    finally:
        db.dispose()
    raw = ledger_bench.insert_raw(raw_path, ledger_bench.read_back(path))
    ok, detail = ledger_bench.check_raw(path, raw_path)
    report.check("(b) raw ceiling inserted the same rows", ok, detail)

    ratio = timing.per_second / raw.per_second if raw.per_second else 0.0
    batch = f"{sizes.batch_size:,}"
    report.add(
        section, "ledger.post_many on SQLite: transfers/s", rate(timing.transfers, timing.seconds)
    )
    report.add(
        section, f"  median ms per {batch}-transfer batch (1 commit)", ms(timing.median_batch)
    )
    report.add(
        section, "raw sqlite3 executemany, same rows: transfers/s", rate(raw.transfers, raw.seconds)
    )
    report.add(section, f"  median ms per {batch}-transfer batch (1 commit)", ms(raw.median_batch))
    report.add(
        section,
        "post_many / raw ceiling",
        f"{ratio:.2f}",
        f">= {SQLITE_RATIO_TARGET}",
        ratio >= SQLITE_RATIO_TARGET,
    )
    report.add(
        section,
        "transfers timed (batches x size), accounts",
        f"{timing.transfers:,} ({sizes.batches} x {batch}), {sizes.accounts}",
    )
    report.add(section, "durability", pragmas)


def postgres_ledger(report: Report, sizes: ledger_bench.LedgerSizes, url: str | None) -> None:
    section = "(c)"
    label = "ledger.post_many on PostgreSQL: transfers/s"
    if url is None:
        report.skip(section, label, f"{POSTGRES_URL_ENV} is off")
        return
    load = ledger_bench.workload(sizes)
    try:
        with private_database(url) as own:
            db = Database(own)
            try:
                tenant_id = ledger_bench.seed(db, load)
                timing = ledger_bench.post_batches(db, tenant_id, load)
                ok, detail = ledger_bench.check_posted(db, tenant_id, load)
                report.check("(c) PostgreSQL ledger balances and entries", ok, detail)
                with db.engine.connect() as conn:
                    synchronous_commit = str(conn.execute(text("SHOW synchronous_commit")).scalar())
                    fsync = str(conn.execute(text("SHOW fsync")).scalar())
                    version = str(conn.execute(text("SHOW server_version")).scalar())
                database = db.engine.url.database
            finally:
                db.dispose()
    except Unreachable as exc:
        report.skip(section, label, f"PostgreSQL unreachable ({exc})")
        return
    per_second = timing.per_second
    report.add(
        section,
        label,
        rate(timing.transfers, timing.seconds),
        f">= {POSTGRES_TARGET:,}/s",
        per_second >= POSTGRES_TARGET,
    )
    report.add(
        section,
        f"  median ms per {sizes.batch_size:,}-transfer batch (1 commit)",
        ms(timing.median_batch),
    )
    report.add(
        section,
        "SHOW synchronous_commit / fsync",
        f"{synchronous_commit} / {fsync}",
        "on",
        synchronous_commit == "on",
    )
    report.add(
        section,
        "database (private, dropped after)",
        f"{database} on PostgreSQL {version.split()[0]}",
    )
    report.check("(c) synchronous_commit is on", synchronous_commit == "on", synchronous_commit)
