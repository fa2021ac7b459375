"""The risk policy document: what a valid policy compiles into, and how an invalid one is
refused with errors that name the offending field."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zanloop.errors import InvalidDocument
from zanloop.risk import rules
from zanloop.risk.domain import Mode, Subject, Verdict
from zanloop.risk.policy import (
    DEFAULT_POLICY,
    KNOWN_ACTIONS,
    MAX_WINDOW_SECONDS,
    PolicyDocument,
    compile_policy,
    parse,
    parse_window,
    parse_yaml,
)


def _policy(*rule_docs: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"rules": list(rule_docs), **top}


def _velocity(rule_id: str = "v1", **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": rule_id,
        "type": "velocity",
        "actions": ["pin.purchase"],
        "window": "1m",
        "max_count": 5,
    }
    doc.update(fields)
    return doc


def _errors(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidDocument) as caught:
        parse(data)
    return [(e.field, e.message) for e in caught.value.errors]


def _fields(data: Any) -> list[str]:
    return [field for field, _ in _errors(data)]


# The default policy --------------------------------------------------------------------------


def test_the_default_policy_parses_and_compiles() -> None:
    compiled = compile_policy(parse(DEFAULT_POLICY), version=3)

    assert compiled.version == 3
    assert compiled.review_score == 60
    assert set(compiled.by_action) <= set(KNOWN_ACTIONS)
    total = sum(1 for doc in DEFAULT_POLICY["rules"] for action in doc["actions"] if action != "*")
    assert sum(len(rule_set) for rule_set in compiled.by_action.values()) == total


def test_the_default_policy_checks_paid_pins_for_bursts_accounts_and_real_names() -> None:
    pins = compile_policy(parse(DEFAULT_POLICY)).rules_for("pin.purchase")

    assert [r.rule_id for r in pins.local] == ["real-name", "new-account"]
    assert [r.rule_id for r in pins.counters] == [
        "pin-burst-user",
        "pin-burst-device",
        "pin-amount-day",
        "accounts-per-device",
        "accounts-per-ip-subnet",
    ]
    assert pins.needs_payment is False
    assert pins.refunds_window is None


def test_the_default_policy_checks_rewards_against_payments_and_refunds() -> None:
    rewards = compile_policy(parse(DEFAULT_POLICY)).rules_for("reward.grant")

    assert rewards.needs_payment is True
    assert rewards.refunds_window == timedelta(days=30)
    assert {type(r) for r in rewards.local} == {
        rules.NewAccount,
        rules.VerifiedPayment,
        rules.RefundAfterReward,
    }


def test_the_default_policy_limits_like_prompts_to_three_a_day() -> None:
    (rule,) = compile_policy(parse(DEFAULT_POLICY)).rules_for("like.prompt").counters

    assert isinstance(rule, rules.Velocity)
    assert (rule.subject, rule.window_seconds, rule.max_count) == (Subject.USER, 86400, 3)
    assert rule.blocking


def test_an_action_the_default_policy_does_not_name_has_no_rules() -> None:
    compiled = compile_policy(parse(DEFAULT_POLICY))

    assert len(compiled.rules_for("my.own_action")) == 0


def test_parsing_does_not_change_the_default_policy_dictionary() -> None:
    before = copy.deepcopy(DEFAULT_POLICY)

    compile_policy(parse(DEFAULT_POLICY))

    assert before == DEFAULT_POLICY


# Compiling -----------------------------------------------------------------------------------


def test_wildcard_rules_apply_to_named_actions_and_to_every_other_action() -> None:
    # given one rule for every action and one for paid pins
    document = parse(
        _policy(
            {"id": "everywhere", "type": "amount_limit", "max_amount_fen": 100},
            _velocity("pins-only", actions=["pin.purchase"]),
        )
    )

    # when compiled
    compiled = compile_policy(document)

    # then paid pins get both, and any other action the wildcard rule alone
    pins = compiled.rules_for("pin.purchase")
    assert [r.rule_id for r in pins.local] == ["everywhere"]
    assert [r.rule_id for r in pins.counters] == ["pins-only"]
    other = compiled.rules_for("checkin")
    assert [r.rule_id for r in other.local] == ["everywhere"]
    assert other.counters == ()


def test_a_rule_naming_its_action_and_the_wildcard_runs_once() -> None:
    compiled = compile_policy(parse(_policy(_velocity(actions=["*", "pin.purchase"]))))

    assert len(compiled.rules_for("pin.purchase")) == 1
    assert len(compiled.rules_for("other")) == 1


def test_rules_omitting_actions_apply_to_every_action() -> None:
    compiled = compile_policy(parse(_policy({"id": "rn", "type": "real_name"})))

    assert [r.rule_id for r in compiled.rules_for("anything.at_all").local] == ["rn"]


def test_an_empty_policy_compiles_to_no_rules() -> None:
    compiled = compile_policy(parse({}))

    assert compiled.review_score == 60
    assert compiled.by_action == {}
    assert len(compiled.rules_for("pin.purchase")) == 0


def test_every_rule_type_compiles_with_its_settings() -> None:
    document = parse(
        _policy(
            _velocity("count", subject="device", window="10m", max_count=7),
            _velocity("sum", subject="payment_account", max_count=None, max_sum_fen=9900),
            {
                "id": "accounts",
                "type": "distinct_users",
                "subject": "ip_subnet",
                "window": "1h",
                "max_users": 4,
                "verdict": "REVIEW",
                "score": 15,
                "mode": "monitor",
            },
            {"id": "young", "type": "new_account", "min_age": "7d", "max_amount_fen": 300},
            {"id": "big", "type": "amount_limit", "max_amount_fen": 50000},
            {"id": "rn", "type": "real_name"},
            {"id": "paid", "type": "verified_payment"},
            {"id": "split", "type": "split_order", "window": "24h", "threshold_fen": 5000},
            {"id": "refunds", "type": "refund_after_reward", "window": "7d", "max_refunds": 2},
        )
    )

    by_id = {r.rule_id: r for r in _all_rules(compile_policy(document).rules_for("pin.purchase"))}

    assert by_id["count"] == rules.Velocity(
        "count", Verdict.BLOCK, 50, Mode.ENFORCE, Subject.DEVICE, 600, 7, None
    )
    assert by_id["sum"] == rules.Velocity(
        "sum", Verdict.BLOCK, 50, Mode.ENFORCE, Subject.PAYMENT_ACCOUNT, 60, None, 9900
    )
    assert by_id["accounts"] == rules.DistinctUsers(
        "accounts", Verdict.REVIEW, 15, Mode.MONITOR, Subject.IP_SUBNET, 3600, 4
    )
    assert by_id["young"] == rules.NewAccount(
        "young", Verdict.BLOCK, 50, Mode.ENFORCE, timedelta(days=7), 300, True
    )
    assert by_id["big"] == rules.AmountLimit("big", Verdict.BLOCK, 50, Mode.ENFORCE, 50000)
    assert by_id["rn"] == rules.RealName("rn", Verdict.BLOCK, 50, Mode.ENFORCE)
    assert by_id["paid"] == rules.VerifiedPayment("paid", Verdict.BLOCK, 50, Mode.ENFORCE)
    assert by_id["split"] == rules.SplitOrder(
        "split", Verdict.BLOCK, 50, Mode.ENFORCE, Subject.USER, 86400, 5000, 10, 2
    )
    assert by_id["refunds"] == rules.RefundAfterReward(
        "refunds", Verdict.BLOCK, 50, Mode.ENFORCE, timedelta(days=7), 2
    )


def _all_rules(rule_set: Any) -> list[Any]:
    return [*rule_set.local, *rule_set.counters]


# Windows -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("24h", 86400),
        ("7d", 604800),
        (" 10m ", 600),
        (45, 45),
        (1, 1),
        ("90d", MAX_WINDOW_SECONDS),
    ],
)
def test_windows_are_written_in_seconds_minutes_hours_days_or_as_seconds(
    window: Any, seconds: int
) -> None:
    document = parse(_policy(_velocity(window=window)))

    (rule,) = compile_policy(document).rules_for("pin.purchase").counters
    assert isinstance(rule, rules.Velocity)
    assert rule.window_seconds == seconds


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("10", "a window is a number of seconds or text such as 10m, 24h or 7d"),
        ("10M", "a window is a number of seconds or text such as 10m, 24h or 7d"),
        ("1w", "a window is a number of seconds or text such as 10m, 24h or 7d"),
        ("-5m", "a window is a number of seconds or text such as 10m, 24h or 7d"),
        ("", "a window is a number of seconds or text such as 10m, 24h or 7d"),
        (1.5, "a window is a number of seconds or text such as 10m, 24h or 7d"),
        (True, "a window is a number of seconds or text such as 10m, 24h or 7d"),
        (None, "a window is a number of seconds or text such as 10m, 24h or 7d"),
        (0, "a window lasts 1 second to 90 days"),
        ("0s", "a window lasts 1 second to 90 days"),
        (-60, "a window lasts 1 second to 90 days"),
        ("91d", "a window lasts 1 second to 90 days"),
        (MAX_WINDOW_SECONDS + 1, "a window lasts 1 second to 90 days"),
    ],
)
def test_an_invalid_window_is_refused_naming_the_rule_and_field(window: Any, message: str) -> None:
    document = _policy({"id": "rn", "type": "real_name"}, _velocity(window=window))

    assert _errors(document) == [("rules.1.window", message)]


def test_an_invalid_minimum_account_age_names_min_age() -> None:
    document = _policy({"id": "young", "type": "new_account", "min_age": "a day"})

    assert _fields(document) == ["rules.0.min_age"]


@given(
    amount=st.integers(min_value=1, max_value=90),
    unit=st.sampled_from([("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]),
)
def test_a_window_in_any_unit_is_that_many_seconds(amount: int, unit: tuple[str, int]) -> None:
    suffix, size = unit
    seconds = amount * size

    if seconds <= MAX_WINDOW_SECONDS:
        assert parse_window(f"{amount}{suffix}") == seconds
    else:
        with pytest.raises(ValueError, match="90 days"):
            parse_window(f"{amount}{suffix}")


# Errors naming the field ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({"max_count": 5, "max_sum_fen": 100}, id="both"),
        pytest.param({"max_count": None}, id="neither"),
    ],
)
def test_a_velocity_rule_with_both_or_neither_limit_names_max_count(
    limits: dict[str, Any],
) -> None:
    document = _policy({"id": "rn", "type": "real_name"}, _velocity(**limits))

    assert _errors(document) == [
        ("rules.1.max_count", "give exactly one of max_count and max_sum_fen")
    ]


def test_a_duplicate_rule_id_is_refused_naming_the_later_rule() -> None:
    document = _policy(_velocity("same"), _velocity("other"), _velocity("same"))

    assert _errors(document) == [("rules.2.id", "rule id 'same' is used twice")]


def test_a_rule_error_and_a_duplicate_id_are_reported_together() -> None:
    document = _policy(_velocity("same", max_count=None), _velocity("same"))

    assert _fields(document) == ["rules.0.max_count", "rules.1.id"]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        pytest.param(_policy({"id": "x", "type": "nope"}), "rules.0", id="unknown-type"),
        pytest.param(_policy({"id": "x"}), "rules.0", id="missing-type"),
        pytest.param(
            _policy({"id": "x", "type": "real_name", "colour": "red"}),
            "rules.0.colour",
            id="extra-rule-key",
        ),
        pytest.param(
            _policy(_velocity(), _velocity("v2", max_counts=3)),
            "rules.1.max_counts",
            id="misspelt-limit",
        ),
        pytest.param({"rules": [], "review": 50}, "review", id="extra-top-level-key"),
        pytest.param(_policy(review_score=0), "review_score", id="review-score-zero"),
        pytest.param(_policy(review_score=101), "review_score", id="review-score-over-100"),
        pytest.param(_policy(_velocity(score=101)), "rules.0.score", id="score-over-100"),
        pytest.param(_policy(_velocity(max_count=-1)), "rules.0.max_count", id="negative-count"),
        pytest.param(_policy(_velocity(verdict="PASS")), "rules.0.verdict", id="unknown-verdict"),
        pytest.param(_policy(_velocity(mode="shadow")), "rules.0.mode", id="unknown-mode"),
        pytest.param(_policy(_velocity(actions=[])), "rules.0.actions", id="no-actions"),
        pytest.param(_policy(_velocity(id="bad id!")), "rules.0.id", id="bad-id"),
        pytest.param(
            _policy({"id": "d", "type": "distinct_users", "subject": "user", "window": 60}),
            "rules.0.subject",
            id="distinct-users-per-user",
        ),
        pytest.param(
            _policy({"id": "d", "type": "distinct_users", "subject": "device", "window": 60}),
            "rules.0.max_users",
            id="distinct-users-without-limit",
        ),
        pytest.param(
            _policy({"id": "s", "type": "split_order", "window": 60, "margin_percent": 150}),
            "rules.0.margin_percent",
            id="margin-over-100",
        ),
        pytest.param(
            _policy({"id": "a", "type": "amount_limit"}),
            "rules.0.max_amount_fen",
            id="amount-limit-without-amount",
        ),
        pytest.param(
            _policy({"id": "r", "type": "refund_after_reward"}),
            "rules.0.window",
            id="refunds-without-window",
        ),
        pytest.param([], "policy", id="not-a-mapping"),
        pytest.param(None, "policy", id="nothing"),
    ],
)
def test_an_invalid_policy_is_refused_naming_the_field(document: Any, field: str) -> None:
    assert field in _fields(document)


def test_every_error_of_a_policy_is_reported_at_once() -> None:
    document = _policy(
        _velocity("ok"),
        _velocity("late", window="soon"),
        {"id": "big", "type": "amount_limit", "max_amount_fen": -1},
        review_score=0,
    )

    with pytest.raises(InvalidDocument) as caught:
        parse(document)

    assert sorted(e.field for e in caught.value.errors) == [
        "review_score",
        "rules.1.window",
        "rules.2.max_amount_fen",
    ]
    assert caught.value.message == "the risk policy has 3 error(s)"
    assert caught.value.status_code == 422


def test_an_invalid_action_name_is_one_error_on_that_action() -> None:
    document = _policy(_velocity(actions=["pin.purchase", "Pin Purchase"]))

    assert _fields(document) == ["rules.0.actions.1"]


def test_too_many_rules_are_refused() -> None:
    document = _policy(*[_velocity(f"v{i}") for i in range(201)])

    assert _fields(document) == ["rules"]


def test_a_valid_document_round_trips_through_its_json_form() -> None:
    document = parse(DEFAULT_POLICY)

    again = parse(document.model_dump(mode="json"))

    assert again == document
    assert isinstance(again, PolicyDocument)


# YAML ----------------------------------------------------------------------------------------


def test_a_yaml_policy_parses_like_its_json_equivalent() -> None:
    text = """
review_score: 50
rules:
  - id: pin-burst
    type: velocity
    actions: [pin.purchase]
    subject: device
    window: 10m
    max_count: 3
  - id: everyone-real
    type: real_name
    verdict: REVIEW
    score: 20
"""
    document = parse_yaml(text)

    assert document == parse(
        _policy(
            _velocity("pin-burst", subject="device", window="10m", max_count=3),
            {"id": "everyone-real", "type": "real_name", "verdict": "REVIEW", "score": 20},
            review_score=50,
        )
    )


def test_a_yaml_window_written_as_a_number_is_seconds() -> None:
    document = parse_yaml("rules:\n  - {id: v, type: velocity, window: 90, max_count: 1}\n")

    (rule,) = compile_policy(document).rules_for("x").counters
    assert isinstance(rule, rules.Velocity)
    assert rule.window_seconds == 90


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("rules: [", id="unclosed-flow"),
        pytest.param("review_score: 60\n  rules: : -", id="bad-mapping"),
        pytest.param("a: b: c", id="nested-colons"),
    ],
)
def test_text_that_is_not_yaml_is_refused_on_the_policy_field(text: str) -> None:
    with pytest.raises(InvalidDocument, match="not valid YAML") as caught:
        parse_yaml(text)

    assert [e.field for e in caught.value.errors] == ["policy"]
    assert caught.value.errors[0].message


def test_yaml_errors_in_the_document_name_the_field() -> None:
    text = "rules:\n  - {id: rn, type: real_name}\n  - {id: v, type: velocity, window: 5x}\n"

    with pytest.raises(InvalidDocument) as caught:
        parse_yaml(text)

    assert "rules.1.window" in [e.field for e in caught.value.errors]


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text"])
def test_yaml_that_is_not_a_mapping_is_refused(text: str) -> None:
    with pytest.raises(InvalidDocument) as caught:
        parse_yaml(text)

    assert [e.field for e in caught.value.errors] == ["policy"]
