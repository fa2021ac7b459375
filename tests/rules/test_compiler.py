"""The compiler: the generated tree agrees with the explaining path on any rules and events,
and rule values never reach the generated source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.rules.test_domain import ZONES, rule_json
from zanloop.rules.compiler import RuleSet
from zanloop.rules.domain import Facts, Rule, RuleDocument, explain, holds

STORES = ["s1", "s2", "s3", "s4"]
CATEGORIES = ["coffee", "tea", "beans", "cake"]
TRIGGERS = ["payment.succeeded", "like.created", "share.created"]
# hypothesis takes naive bounds and adds the zone itself.
EVENTS_FROM = datetime(2025, 6, 1)  # noqa: DTZ001
EVENTS_TO = datetime(2027, 6, 1)  # noqa: DTZ001
HOURS = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]

condition = st.one_of(
    st.builds(lambda f: {"type": "amount_gte", "fen": f}, st.integers(0, 20_000)),
    st.builds(lambda f: {"type": "amount_lt", "fen": f}, st.integers(1, 20_000)),
    st.builds(
        lambda v: {"type": "store_in", "values": v},
        st.lists(st.sampled_from(STORES), min_size=1, max_size=3, unique=True),
    ),
    st.builds(
        lambda v: {"type": "category_in", "values": v},
        st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3, unique=True),
    ),
    st.builds(
        lambda a, b: {"type": "time_of_day", "start": a, "end": b},
        st.sampled_from(HOURS),
        st.sampled_from(HOURS),
    ).filter(lambda c: c["start"] != c["end"]),
    st.builds(
        lambda d: {"type": "weekday_in", "days": d},
        st.lists(st.integers(1, 7), min_size=1, max_size=7, unique=True),
    ),
    st.builds(lambda b: {"type": "first_purchase", "value": b}, st.booleans()),
    st.builds(lambda b: {"type": "birthday", "value": b}, st.booleans()),
    st.builds(lambda v: {"type": "value_gte", "value": v}, st.integers(0, 60)),
    st.builds(
        lambda v: {"type": "tier_in", "values": v},
        st.lists(st.sampled_from(["silver", "gold"]), min_size=1, unique=True),
    ),
    st.builds(
        lambda d: {
            "type": "date_range",
            "start": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=d),
            "end": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=d + 30),
        },
        st.integers(0, 300),
    ),
)


def _unique_kinds(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    kept = []
    for c in conditions:
        if c["type"] in ("store_in", "amount_gte", "amount_lt", "date_range"):
            if c["type"] in seen:
                continue
            seen.add(c["type"])
        kept.append(c)
    return kept


rule_document = st.builds(
    lambda trigger, conditions, zone: RuleDocument.model_validate(
        {
            "trigger": trigger,
            "conditions": _unique_kinds(conditions),
            "effects": [{"type": "grant_points", "points": 1}],
            "timezone": zone,
        }
    ),
    st.sampled_from(TRIGGERS),
    st.lists(condition, max_size=5),
    st.sampled_from(ZONES),
)

facts = st.builds(
    Facts,
    trigger=st.sampled_from(TRIGGERS),
    at=st.datetimes(min_value=EVENTS_FROM, max_value=EVENTS_TO, timezones=st.just(UTC)),
    amount_fen=st.integers(0, 25_000),
    store_id=st.none() | st.sampled_from([*STORES, "s9"]),
    categories=st.frozensets(st.sampled_from(CATEGORIES), max_size=3),
    first_purchase=st.none() | st.booleans(),
    tier=st.none() | st.sampled_from(["silver", "gold", "normal"]),
    birthday=st.none() | st.booleans(),
    value=st.integers(0, 60),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(rule_document, min_size=1, max_size=12), st.lists(facts, min_size=1, max_size=8))
def test_the_compiled_matcher_agrees_with_the_explanations(
    documents: list[RuleDocument], events: list[Facts]
) -> None:
    rules = [Rule(f"r{i}", d) for i, d in enumerate(documents)]
    compiled = RuleSet(rules)
    for event in events:
        fast = [r.key for r in compiled.match(event)]
        slow = [r.key for r in rules if r.document.trigger == event.trigger and holds(r, event)]
        assert sorted(fast) == sorted(slow)


def test_rule_values_are_never_pasted_into_the_generated_source() -> None:
    sneaky = "s1') or True or ('"
    doc = RuleDocument.model_validate(
        rule_json(conditions=[{"type": "category_in", "values": [sneaky]}])
    )
    compiled = RuleSet([Rule("r", doc)])
    event = Facts(
        "payment.succeeded", datetime(2026, 11, 26, tzinfo=UTC), categories=frozenset({"tea"})
    )
    assert compiled.match(event) == []
    assert compiled.match(Facts("payment.succeeded", event.at, categories=frozenset({sneaky})))


def test_a_time_window_past_midnight_and_its_explanation() -> None:
    doc = RuleDocument.model_validate(
        rule_json(conditions=[{"type": "time_of_day", "start": "22:00", "end": "02:00"}])
    )
    rule = Rule("late", doc)
    late = Facts(
        "payment.succeeded", datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
    )  # 23:30 in Shanghai
    noon = Facts("payment.succeeded", datetime(2026, 11, 26, 4, 0, tzinfo=UTC))
    assert RuleSet([rule]).match(late) == [rule]
    assert RuleSet([rule]).match(noon) == []
    [check] = explain(rule, noon)
    assert check.message == "local time 12:00 (Asia/Shanghai) is outside 22:00-02:00"
