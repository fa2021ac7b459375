"""Part (2) of ``zanloop bench loyalty``: ingest on PostgreSQL (``synchronous_commit=on``),
each pass on a copy of the seeded template (``CREATE DATABASE ... TEMPLATE``) inside a private
database, every copy dropped at the end, beside the raw ``psycopg`` ceiling for the same rows.
Skipped when ``ZANLOOP_BENCH_POSTGRES_URL`` is off or the server is unreachable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from zanloop.bench.core import POSTGRES_URL_ENV
from zanloop.bench.loyalty_ceiling import (
    BatchRows,
    Capture,
    Ceiling,
    PostgresRaw,
    ceiling_pass,
    compare_ceiling,
    table_specs,
)
from zanloop.bench.loyalty_ingest import (
    Pass,
    check_part,
    check_pass,
    ingest_pass,
    report_part,
    seed,
)
from zanloop.bench.loyalty_workload import Expected, LoyaltySizes, Workload
from zanloop.bench.postgres import Unreachable, private_database
from zanloop.bench.report import Report
from zanloop.db import Database, normalise_url

POSTGRES_SECTION = "(2)"
TARGET_POSTGRES_PER_SECOND = 20_000


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
    check_part(report, section, "PostgreSQL", problems, uncovered, ceiling_problems, model)
