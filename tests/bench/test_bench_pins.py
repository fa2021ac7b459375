"""``zanloop bench pins --quick`` runs end to end and its own correctness checks pass.

No timing is asserted: the figures depend on the machine."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from zanloop.bench import BENCHES, run_bench
from zanloop.bench.pins import QUICK, _expected_list, zipf_cumulative


@pytest.mark.slow
def test_quick_pins_bench_completes_and_passes_its_self_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # when: run_bench raises BenchFailed (a SystemExit) if a self-check fails
    run_bench("pins", quick=True)

    # then
    out = capsys.readouterr().out
    assert "self-check PASSED" in out
    assert "[FAIL]" not in out
    assert f"{QUICK.pins:,}" in out
    for figure in (
        "database: tenant, creators, contents, pins",
        "seeding time, file size (not in any figure)",
        "pinned-list reads/s, HTTP, SQLite, c=4",
        "latency p99",
        "hottest 1% of contents",
        "server CPU per read",
        "setup: viewers bound/s",
        "setup: purchases placed/s",
        "purchases settled/s (notification -> pin ACTIVE), c=8",
        "server CPU per settlement",
    ):
        assert figure in out
    for check in (
        "seed: rows in the database",
        "(1) every timed read answered 200",
        "(2) every purchase answered 201",
        "(2) every replayed notification answered 204",
        "(2) every purchased pin is ACTIVE",
        "(2) each went live exactly once",
        "(2) ledger: pins:sales 0, creators and platform hold their shares",
        "pinned lists equal the independent computation",
    ):
        assert check in out


def test_pins_bench_is_registered() -> None:
    assert "pins" in BENCHES


def test_popularity_falls_with_rank() -> None:
    # when
    cumulative = zipf_cumulative(1_000)
    weights = [b - a for a, b in zip([0.0, *cumulative], cumulative, strict=False)]

    # then: the hottest 1 % draw several times their share, the coldest half far less
    total = cumulative[-1]
    assert sum(weights[:10]) / total > 0.05
    assert sum(weights[500:]) / total < 0.25
    assert weights == sorted(weights, reverse=True)


def test_the_independent_list_orders_by_amount_then_time_and_hides_what_is_not_showing() -> None:
    # given: pins as SQLAlchemy stores them on SQLite (naive UTC text)
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    def stamp(minutes: int) -> str:
        return (now + timedelta(minutes=minutes)).replace(tzinfo=None).isoformat(" ")

    raw = sqlite3.connect(":memory:")
    raw.execute(
        "CREATE TABLE pins (id TEXT, content_id TEXT, status TEXT, amount_fen INTEGER, "
        "activated_at TEXT, expires_at TEXT)"
    )
    raw.executemany(
        "INSERT INTO pins VALUES (?, 'c', ?, ?, ?, ?)",
        [
            ("small", "ACTIVE", 100, stamp(-50), None),
            ("big-late", "ACTIVE", 500, stamp(-10), None),
            ("big-early", "ACTIVE", 500, stamp(-40), None),
            ("run-out", "ACTIVE", 9_000, stamp(-90), stamp(-1)),
            ("timed", "ACTIVE", 300, stamp(-5), stamp(60)),
            ("removed", "REMOVED", 9_000, stamp(-30), None),
        ],
    )

    # when
    listed = _expected_list(raw, "c", now.replace(tzinfo=None))

    # then
    assert listed == ["big-early", "big-late", "timed", "small"]
