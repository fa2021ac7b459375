"""``zanloop bench loyalty --quick`` runs end to end and its own correctness checks pass; the
independent computation it checks the programme against means what docs/loyalty.md says; and
its raw ceiling replays exactly the rows the ingest wrote.

No timing is asserted: the figures depend on the machine. PostgreSQL (part 2) runs only when
the suite itself runs against PostgreSQL (ZANLOOP_TEST_DATABASE_URL)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from zanloop import migrate
from zanloop.bench import BENCHES, run_bench
from zanloop.bench import ledger as ledger_bench
from zanloop.bench.core import POSTGRES_URL_ENV
from zanloop.bench.loyalty_ceiling import (
    Capture,
    SqliteRaw,
    ceiling_pass,
    compare_ceiling,
    table_specs,
)
from zanloop.bench.loyalty_ingest import check_pass, ingest_pass, seed
from zanloop.bench.loyalty_workload import LoyaltySizes, Workload, expected, workload
from zanloop.db import Database
from zanloop.loyalty.ingest import Incoming

TINY = LoyaltySizes(
    members=40,
    newcomers=10,
    batch_size=120,
    batches=2,
    sqlite_passes=1,
    postgres_passes=1,
    reads=10,
    read_warmup=2,
)


@pytest.mark.slow
def test_quick_loyalty_bench_completes_and_passes_its_self_check(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: PostgreSQL only when the suite has one
    monkeypatch.setenv(POSTGRES_URL_ENV, os.environ.get("ZANLOOP_TEST_DATABASE_URL") or "off")

    # when: run_bench raises BenchFailed (a SystemExit) if a self-check fails
    run_bench("loyalty", quick=True)

    # then
    out = capsys.readouterr().out
    assert "self-check PASSED" in out
    assert "[FAIL]" not in out
    for figure in (
        "ingest_events on SQLite: events/s",
        "raw sqlite3 executemany, same rows: events/s",
        "ingest / raw ceiling",
        "rows inserted / updated per batch",
        "journal_mode=wal, synchronous=FULL",
        "ingest_events on PostgreSQL",
        "balance reads/s, HTTP, SQLite, c=4",
        "latency p99",
        "1-minute load average",
    ):
        assert figure in out
    for check in (
        "(1) SQLite: every event applied; points, balances, tiers, lots == the independent",
        "(1) raw ceiling covers every table the ingest wrote",
        "(1) raw ceiling ends with the same rows per table and account balances",
        "(3) every timed read answered 200",
        "(3) balances read == the independent computation",
    ):
        assert check in out


def test_loyalty_bench_is_registered() -> None:
    assert "loyalty" in BENCHES


def test_the_workload_is_the_same_for_the_same_seed_and_in_time_order() -> None:
    # given
    now = datetime(2026, 11, 27, 4, tzinfo=UTC)

    # when
    first, again = workload(TINY, now), workload(TINY, now)

    # then
    assert first.batches == again.batches
    events = first.events
    assert len(events) == TINY.events
    assert [(e.occurred_at, e.event_id) for e in events] == sorted(
        (e.occurred_at, e.event_id) for e in events
    )
    assert all(now - timedelta(days=61) < e.occurred_at < now for e in events)


# The independent computation on hand-made events, as docs/loyalty.md states the defaults --------

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 27, 12, tzinfo=SHANGHAI)
DAY0 = NOW - timedelta(days=30)


def at(day: int, hour: int = 12) -> datetime:
    return (DAY0 + timedelta(days=day)).replace(hour=hour)


def hand_made() -> Workload:
    n = iter(range(1_000))

    def ev(kind: str, user: str, when: datetime, **fields: Any) -> Incoming:
        return Incoming(f"ev-{next(n):04d}", kind, user, when, **fields)

    birthday = at(3)
    events = [
        # 123 yuan: 123 + 50 (100 CNY or more), normal tier
        ev("payment.succeeded", "ann", at(0), amount_fen=12_345, store_id="store-01"),
        # partner store: 50 x 2
        ev("payment.succeeded", "ann", at(1), amount_fen=5_000, store_id="mall-2"),
        # one share a day earns
        ev("share.created", "ann", at(1, 13)),
        ev("share.created", "ann", at(1, 14)),
        # birthday at the partner store: (1,750 + 50) x 2 x 2; silver from the next event on
        ev(
            "payment.succeeded",
            "ann",
            birthday,
            amount_fen=175_000,
            store_id="mall-2",
            order_id="o-1",
        ),
        # silver: 5 x 1.2 = 6
        ev("share.created", "ann", at(4)),
        # an invitation: 20 x 1.2 for ann, 20 for bob (a newcomer)
        ev("invite.accepted", "ann", at(4, 15), counterparty_id="bob"),
        # bob: 7 check-in days in a row, two on one day, then the streak starts over
        *[ev("store.checkin", "bob", at(5 + d)) for d in range(7)],
        ev("store.checkin", "bob", at(11, 20)),
        ev("store.checkin", "bob", at(12)),
        # bob tries everything once: the achievement's 500 on the last of the five
        ev("payment.succeeded", "bob", at(13), amount_fen=99, store_id="store-02"),
        ev("share.created", "bob", at(13, 13)),
        ev("comment.created", "bob", at(13, 14)),
        ev("article.read", "bob", at(13, 15), value=60),
        ev("video.completed", "bob", at(13, 16)),
        # recent, with an order id: pending
        ev("payment.succeeded", "bob", NOW - timedelta(days=2), amount_fen=800, order_id="o-2"),
    ]
    return Workload(
        now=NOW.astimezone(UTC),
        members=["ann"],
        birthdays={"ann": f"{birthday.month:02d}-{birthday.day:02d}"},
        newcomers=["bob"],
        batches=[events[:9], events[9:]],
        receipts={},
    )


def test_the_independent_computation_follows_the_documented_defaults() -> None:
    # when
    model = expected(hand_made())

    # then
    points = list(model.points.values())
    assert points[:7] == [173, 100, 5, 0, 7_200, 6, 24]
    assert points[7:16] == [5, 5, 5, 5, 5, 5, 5, 0, 5]  # the 8th day starts a new streak
    assert points[16:] == [0, 5, 2, 0, 20, 8]  # 99 fen earns nothing; a 60 % read neither
    ann, bob = model.members["ann"], model.members["bob"]
    assert (ann.tier, bob.tier) == (1, 0)
    assert ann.pending == 0  # 30 days ago: the refund window is over
    assert bob.pending == 8
    assert bob.available == 20 + 7 * 5 + 5 + 200 + 5 + 2 + 20 + 500
    assert model.tier_changes == 1


def _product(tmp_path: Path, load: Workload) -> tuple[Path, Path, list[str], list[str]]:
    """Runs ``load`` through the product on a seeded SQLite file, reading rows back, then the
    raw ceiling on a copy of the seed: (product file, raw file, problems, ceiling problems)."""
    template = tmp_path / "template.db"
    migrate.upgrade(f"sqlite:///{template}")
    db = Database(f"sqlite:///{template}")
    try:
        seeded = seed(db, load)
    finally:
        db.dispose()
    product, raw_path = tmp_path / "product.db", tmp_path / "raw.db"
    ledger_bench.copy_database(template, product)
    ledger_bench.copy_database(template, raw_path)
    batches = load.with_codes(seeded.secret)
    specs, others = table_specs()
    db = Database(f"sqlite:///{product}")
    reader = SqliteRaw(product)
    try:
        capture = Capture(reader, seeded.tenant_id, specs, others)
        result = ingest_pass(db, seeded.tenant_id, batches, capture)
        problems = check_pass(db, seeded.tenant_id, load, expected(load), result)
        problems += capture.uncovered()
        raw = SqliteRaw(raw_path)
        try:
            ceiling_pass(raw, specs, capture.batches, batches)
            ceiling_problems = compare_ceiling(reader, raw, specs, seeded.tenant_id)
        finally:
            raw.close()
    finally:
        reader.close()
        db.dispose()
    return product, raw_path, problems, ceiling_problems


def test_the_programme_earns_what_the_independent_computation_says_on_hand_made_events(
    tmp_path: Path,
) -> None:
    # when
    _, _, problems, ceiling_problems = _product(tmp_path, hand_made())

    # then
    assert problems == []
    assert ceiling_problems == []


def test_the_raw_ceiling_replays_every_row_of_a_small_stream(tmp_path: Path) -> None:
    # given
    load = workload(TINY, datetime.now(UTC))

    # when
    product, raw, problems, ceiling_problems = _product(tmp_path, load)

    # then: the same rows, table by table, byte for byte
    assert problems == []
    assert ceiling_problems == []
    specs, _ = table_specs()
    a, b = SqliteRaw(product), SqliteRaw(raw)
    try:
        for spec in specs:
            every = ", ".join(str(i + 1) for i in range(len(spec.columns)))
            sql = f'SELECT {spec.column_list} FROM "{spec.name}" ORDER BY {every}'
            assert a.query(sql) == b.query(sql), spec.name
    finally:
        a.close()
        b.close()
