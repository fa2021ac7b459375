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

Here: the sizes, the run and the workload's figures. The parts, each in its own module:
``loyalty_workload`` (the events and the independent computation), ``loyalty_ingest`` (the
seeded template, one pass of ingest and its check, a part's figures and checks),
``loyalty_ceiling`` (the rows read back and replayed raw), ``loyalty_sqlite`` (1),
``loyalty_postgres`` (2) and ``loyalty_reads`` (3).
"""

from __future__ import annotations

import os
import platform
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path

from zanloop.bench.core import postgres_url
from zanloop.bench.loyalty_ingest import SEED_SECTION
from zanloop.bench.loyalty_postgres import postgres_part
from zanloop.bench.loyalty_reads import reads
from zanloop.bench.loyalty_sqlite import sqlite_part
from zanloop.bench.loyalty_workload import (
    KINDS,
    Expected,
    LoyaltySizes,
    Workload,
    expected,
    workload,
)
from zanloop.bench.report import Report, load_average, load_note
from zanloop.kit.clock import utcnow

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


__all__ = ["DEFAULT", "QUICK", "run_loyalty"]
