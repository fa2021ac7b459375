"""``zanloop bench risk --quick`` runs end to end and its own correctness checks pass.

No timing is asserted: the figures depend on the machine. The Redis part runs when the Redis
of ZANLOOP_TEST_REDIS_URL (default: the local one) answers, and is skipped otherwise."""

from __future__ import annotations

import os

import pytest

from zanloop.bench import BENCHES, run, run_bench
from zanloop.bench.risk import ACTION, ACTIVE_RULES, REDIS_URL_ENV, policy_document
from zanloop.risk import policy


@pytest.mark.slow
def test_quick_risk_bench_completes_and_passes_its_self_check(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the suite's Redis, if any
    monkeypatch.setenv(
        REDIS_URL_ENV, os.environ.get("ZANLOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )

    # when: run_bench raises BenchFailed (a SystemExit) if a self-check fails
    run_bench("risk", quick=True)

    # then
    out = capsys.readouterr().out
    assert "self-check PASSED" in out
    assert "[FAIL]" not in out
    for figure in (
        "engine in-process (plan + MemoryCounterStore + finish): decisions/s",
        "engine with RedisCounterStore: decisions/s",
        "service.decide on SQLite + log row, commit per 100: decisions/s",
        "latency p50",
        "latency p99",
        "latency max",
    ):
        assert figure in out
    for check in (
        "policy: 20 enforced rules apply to pin.purchase",
        "(1) purchase 6 in a minute blocked by user-burst-1m (memory)",
        "(1) honest traffic mostly allowed",
        "(1) every abusive episode caught",
        "(3) one decision row per call",
        "(3) service.decide agrees with the engine",
    ):
        assert check in out
    # Redis either ran with its checks, or its row says why it did not.
    assert "(2) Redis agrees with memory" in out or "(2) skipped: " in out


@pytest.mark.slow
def test_risk_bench_without_redis_skips_that_row_and_still_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: Redis switched off
    monkeypatch.setenv(REDIS_URL_ENV, "off")

    # when
    report = run("risk", quick=True)

    # then: skipped, not failed
    assert report.passed
    assert [f.verdict.value for f in report.figures if f.section == "(2)"] == ["skipped"]
    assert not any(c.name.startswith("(2)") for c in report.checks)
    assert any("(2) skipped" in note for note in report.notes)


def test_risk_bench_is_registered_and_its_policy_has_twenty_rules_on_one_action() -> None:
    # given
    compiled = policy.compile_policy(policy.parse(policy_document()))

    # then
    assert "risk" in BENCHES
    assert len(compiled.rules_for(ACTION)) == ACTIVE_RULES
