"""``zanloop bench rules --quick`` runs end to end and its own correctness checks pass, and the
campaigns it writes for the rule libraries mean what they mean to zanloop.

No timing is asserted: the figures depend on the machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from zanloop.bench import BENCHES, run_bench
from zanloop.bench.rules import Event, campaigns, events
from zanloop.bench.rules_libraries import LIBRARIES, rule_engine_text
from zanloop.rules.compiler import RuleSet
from zanloop.rules.domain import Facts, Rule, RuleDocument


@pytest.mark.slow
def test_quick_rules_bench_completes_and_passes_its_self_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # when: run_bench raises BenchFailed (a SystemExit) if a self-check fails
    run_bench("rules", quick=True)

    # then
    out = capsys.readouterr().out
    assert "self-check PASSED" in out
    assert "[FAIL]" not in out
    for figure in (
        "zanloop RuleSet.match, fresh Facts per event: events/s",
        "match alone, Facts built beforehand",
        "latency p50 / p99 / max per event",
        "rule-engine 5.",
        "business-rules 1.",
        "zanloop / fastest library",
    ):
        assert figure in out
    for check in (
        "500 campaigns valid and compiled, on all three triggers",
        "(1) compiled match == explaining path (holds) on a sample",
        "(1) every kind of condition both holds and fails in that sample",
        "(2) rule-engine returns exactly zanloop's matches",
        "(3) business-rules returns exactly zanloop's matches",
    ):
        assert check in out


def test_rules_bench_is_registered() -> None:
    assert "rules" in BENCHES


def test_campaigns_and_events_are_the_same_for_the_same_seed() -> None:
    # when
    first, again = campaigns(50), campaigns(50)

    # then
    assert [r.document for r in first] == [r.document for r in again]
    assert events(200, 14) == events(200, 14)


# Edge cases the random stream may only graze: a window past midnight, unknown first purchase,
# no store, no tier, no categories, the last second of a date range.
SHANGHAI_MIDNIGHT = datetime(2026, 11, 4, 16, 0, tzinfo=UTC)  # Thursday 00:00 in Shanghai
END = SHANGHAI_MIDNIGHT + timedelta(hours=1)


def rule(key: str, trigger: str, *conditions: dict[str, Any]) -> Rule:
    document = {"trigger": trigger, "conditions": list(conditions), "effects": [POINTS]}
    return Rule(key, RuleDocument.model_validate(document))


POINTS = {"type": "grant_points", "points": 10}
PAID = "payment.succeeded"
EDGE_RULES = [
    rule("late-night", PAID, {"type": "time_of_day", "start": "22:00", "end": "02:00"}),
    rule("first", PAID, {"type": "first_purchase", "value": True}),
    rule("repeat", PAID, {"type": "first_purchase", "value": False}),
    rule(
        "store",
        PAID,
        {"type": "store_in", "values": ["store-01"]},
        {"type": "amount_lt", "fen": 500},
    ),
    rule("gold", "like.created", {"type": "tier_in", "values": ["gold"]}),
    rule("coffee", "like.created", {"type": "category_in", "values": ["coffee", "tea"]}),
    rule("thursday", "like.created", {"type": "weekday_in", "days": [4]}),
    rule("until", "share.created", {"type": "date_range", "end": END.isoformat()}),
    rule("anything", "share.created"),
]


def event(trigger: str, at: datetime, **kw: Any) -> Event:
    fields: dict[str, Any] = {
        "amount_fen": 0,
        "store_id": None,
        "categories": frozenset(),
        "first_purchase": None,
        "tier": None,
        **kw,
    }
    return Event(trigger, at, **fields)


EDGE_EVENTS = [
    event(PAID, SHANGHAI_MIDNIGHT - timedelta(minutes=1), amount_fen=499, store_id="store-01"),
    event(PAID, SHANGHAI_MIDNIGHT + timedelta(hours=2), amount_fen=500, first_purchase=True),
    event(PAID, SHANGHAI_MIDNIGHT + timedelta(hours=1, minutes=59), first_purchase=False),
    event("like.created", SHANGHAI_MIDNIGHT, tier="gold", categories=frozenset({"tea"})),
    event("like.created", SHANGHAI_MIDNIGHT - timedelta(seconds=1)),
    event("share.created", END - timedelta(seconds=1)),
    event("share.created", END),
]


@pytest.mark.parametrize("build", LIBRARIES, ids=lambda build: build.__name__)
def test_each_library_matches_what_zanloop_matches_on_the_edge_cases(build: Any) -> None:
    # given
    library = build(EDGE_RULES)
    ruleset = RuleSet(EDGE_RULES)

    # when
    # Which campaigns match counts, not the order the compiled tree finds them in.
    expected = [sorted(r.key for r in ruleset.match(Facts(*e))) for e in EDGE_EVENTS]
    got = [sorted(library.evaluate(e)) for e in EDGE_EVENTS]

    # then: and the edge cases do decide both ways
    assert got == expected
    assert expected == [
        ["late-night", "store"],
        ["first"],
        ["late-night", "repeat"],
        ["coffee", "gold", "thursday"],
        [],
        ["anything", "until"],
        ["anything"],
    ]


def test_a_campaign_reads_as_a_rule_engine_expression() -> None:
    # given
    late = rule(
        "late",
        PAID,
        {"type": "time_of_day", "start": "22:00", "end": "02:00"},
        {"type": "amount_gte", "fen": 3_000},
    )

    # then: cheapest first, as zanloop tests them
    assert rule_engine_text(late) == "amount_fen >= 3000 and (minute < 120 or minute >= 1320)"
