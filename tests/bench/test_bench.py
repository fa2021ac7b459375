"""``zanloop bench --quick`` runs end to end and its own correctness checks pass.

No timing is asserted: the figures depend on the machine. PostgreSQL (part c) runs only when
the suite itself runs against PostgreSQL (ZANLOOP_TEST_DATABASE_URL)."""

from __future__ import annotations

import os

import pytest

from zanloop.bench import run_bench
from zanloop.bench.core import POSTGRES_URL_ENV


@pytest.mark.slow
def test_quick_core_bench_completes_and_passes_its_self_check(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: PostgreSQL only when the suite has one
    monkeypatch.setenv(POSTGRES_URL_ENV, os.environ.get("ZANLOOP_TEST_DATABASE_URL") or "off")

    # when: run_bench raises BenchFailed (a SystemExit) if a self-check fails
    run_bench("core", quick=True)

    # then
    out = capsys.readouterr().out
    assert "self-check PASSED" in out
    assert "[FAIL]" not in out
    for figure in (
        "notifications settled/s",
        "latency p99",
        "ledger.post_many on SQLite: transfers/s",
        "raw sqlite3 executemany",
        "post_many / raw ceiling",
        "ledger.post_many on PostgreSQL",
    ):
        assert figure in out
    assert "every order is SUCCESS" in out
    assert "merchant ledger balance == sum of the orders" in out
    assert "raw ceiling inserted the same rows" in out


def test_unknown_benchmark_is_refused() -> None:
    with pytest.raises(SystemExit, match="unknown benchmark"):
        run_bench("nonsense")
