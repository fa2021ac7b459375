"""Part (1) of ``zanloop bench loyalty``: ingest on SQLite (WAL, ``synchronous=FULL``), each
pass on a file copy of the seeded template, beside the raw ``sqlite3`` ceiling for the same
rows. The last pass's file is left for the balance reads of (3).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from zanloop import migrate
from zanloop.bench import ledger as ledger_bench
from zanloop.bench.loyalty_ceiling import (
    BatchRows,
    Capture,
    Ceiling,
    SqliteRaw,
    ceiling_pass,
    compare_ceiling,
    table_specs,
)
from zanloop.bench.loyalty_ingest import (
    SEED_SECTION,
    Pass,
    Seeded,
    check_part,
    check_pass,
    ingest_pass,
    report_part,
    seed,
)
from zanloop.bench.loyalty_workload import Expected, LoyaltySizes, Workload
from zanloop.bench.report import Report
from zanloop.db import Database

SQLITE_SECTION = "(1)"
TARGET_SQLITE_PER_SECOND = 40_000


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
    check_part(report, section, "SQLite", problems, uncovered, ceiling_problems, model)
    return path, seeded
