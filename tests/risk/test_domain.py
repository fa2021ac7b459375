"""Risk rules without I/O: how reasons combine into a verdict, what the allow and block lists
do, and when each rule kind fires and what it tells the user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zanloop.errors import Unprocessable
from zanloop.risk.domain import (
    ALLOW_LIST,
    BLOCK_LIST,
    MAX_SCORE,
    REVIEW_LIST,
    CounterCheck,
    CounterKind,
    CounterReading,
    Facts,
    ListEntry,
    ListHit,
    ListIndex,
    Mode,
    PaymentFacts,
    Reason,
    RuleSet,
    Signal,
    Subject,
    Verdict,
    combine,
    describe_window,
    finish,
    normalise_list_value,
    plan,
)
from zanloop.risk.rules import (
    AmountLimit,
    DistinctUsers,
    NewAccount,
    RealName,
    RefundAfterReward,
    SplitOrder,
    Velocity,
    VerifiedPayment,
    counter_key,
)

AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TENANT = "ten_1"


def _signal(**kwargs: Any) -> Signal:
    fields: dict[str, Any] = {"action": "pin.purchase", "user_id": "u1", "at": AT}
    fields.update(kwargs)
    return Signal(**fields)


def _reason(
    verdict: Verdict = Verdict.REVIEW,
    score: int = 10,
    mode: Mode = Mode.ENFORCE,
    code: str = "test",
) -> Reason:
    return Reason(code, f"rule-{code}", verdict, score, f"{code} fired", mode)


def _common(
    rule_id: str = "r1",
    verdict: Verdict = Verdict.BLOCK,
    score: int = 50,
    mode: Mode = Mode.ENFORCE,
) -> dict[str, Any]:
    return {"rule_id": rule_id, "verdict": verdict, "score": score, "mode": mode}


def _paid(**kwargs: Any) -> PaymentFacts:
    fields: dict[str, Any] = {
        "order_id": "ord_1",
        "status": "SUCCESS",
        "amount_fen": 1000,
        "refunded_fen": 0,
        "payer_openid": "openid_1",
    }
    fields.update(kwargs)
    return PaymentFacts(**fields)


# Combining reasons into a verdict ------------------------------------------------------------


def test_no_reasons_allow_the_action_with_score_zero() -> None:
    outcome = combine([], review_score=60)

    assert outcome.verdict is Verdict.ALLOW
    assert outcome.score == 0
    assert outcome.reasons == ()


def test_the_verdict_is_the_most_severe_enforced_reason() -> None:
    reasons = [_reason(Verdict.REVIEW, 5, code="a"), _reason(Verdict.BLOCK, 5, code="b")]

    outcome = combine(reasons, review_score=60)

    assert outcome.verdict is Verdict.BLOCK
    assert outcome.score == 10
    assert outcome.reasons == tuple(reasons)


def test_a_single_review_reason_asks_for_review_even_with_a_low_score() -> None:
    outcome = combine([_reason(Verdict.REVIEW, 1)], review_score=60)

    assert outcome.verdict is Verdict.REVIEW
    assert outcome.score == 1


def test_monitor_mode_reasons_are_reported_but_do_not_change_verdict_or_score() -> None:
    monitored = _reason(Verdict.BLOCK, 100, Mode.MONITOR, code="trial")

    outcome = combine([monitored], review_score=60)

    assert outcome.verdict is Verdict.ALLOW
    assert outcome.score == 0
    assert outcome.reasons == (monitored,)


def test_the_score_is_capped_at_100() -> None:
    reasons = [_reason(Verdict.REVIEW, 70, code="a"), _reason(Verdict.REVIEW, 70, code="b")]

    assert combine(reasons, review_score=60).score == MAX_SCORE


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        pytest.param((30, 29), Verdict.ALLOW, id="sum-below-review-score"),
        pytest.param((30, 30), Verdict.REVIEW, id="sum-reaches-review-score"),
        pytest.param((80, 80), Verdict.REVIEW, id="sum-above-review-score"),
    ],
)
def test_a_summed_score_reaching_the_review_score_raises_allow_to_review(
    scores: tuple[int, int], expected: Verdict
) -> None:
    reasons = [_reason(Verdict.ALLOW, s, code=f"c{i}") for i, s in enumerate(scores)]

    assert combine(reasons, review_score=60).verdict is expected


def test_a_high_score_does_not_lower_a_block() -> None:
    outcome = combine([_reason(Verdict.BLOCK, 100)], review_score=60)

    assert outcome.verdict is Verdict.BLOCK


reasons_strategy = st.lists(
    st.builds(
        Reason,
        code=st.sampled_from(["a", "b", "c"]),
        rule_id=st.sampled_from(["r1", "r2"]),
        verdict=st.sampled_from(list(Verdict)),
        score=st.integers(min_value=0, max_value=100),
        message=st.just("m"),
        mode=st.sampled_from(list(Mode)),
    ),
    max_size=8,
)


@given(reasons=reasons_strategy, review_score=st.integers(min_value=1, max_value=100))
def test_combining_never_goes_below_an_enforced_verdict_and_ignores_monitored_reasons(
    reasons: list[Reason], review_score: int
) -> None:
    outcome = combine(reasons, review_score)
    enforced = [r for r in reasons if r.mode is Mode.ENFORCE]

    assert 0 <= outcome.score <= MAX_SCORE
    assert outcome.score == min(MAX_SCORE, sum(r.score for r in enforced))
    assert all(outcome.verdict.severity >= r.verdict.severity for r in enforced)
    assert outcome.reasons == tuple(reasons)
    without_monitored = combine(enforced, review_score)
    assert (outcome.verdict, outcome.score) == (without_monitored.verdict, without_monitored.score)
    if not enforced:
        assert outcome.verdict is Verdict.ALLOW


# Planning and finishing a decision -----------------------------------------------------------


def test_a_block_listed_user_is_blocked_with_the_note_in_the_message() -> None:
    facts = Facts(listed=(ListHit(BLOCK_LIST, Subject.USER, "u1", "chargebacks"),))

    decision = plan(RuleSet(), TENANT, _signal(), facts)

    assert decision.record is False
    (reason,) = decision.reasons
    assert (reason.code, reason.rule_id, reason.verdict, reason.score) == (
        "blocklisted",
        "blocklist",
        Verdict.BLOCK,
        100,
    )
    assert reason.message == "user u1 is on the block list (chargebacks)"


def test_a_block_listed_payment_account_without_note_has_a_plain_message() -> None:
    facts = Facts(listed=(ListHit(BLOCK_LIST, Subject.PAYMENT_ACCOUNT, "oid_9"),))

    (reason,) = plan(RuleSet(), TENANT, _signal(), facts).reasons

    assert reason.message == "payment account oid_9 is on the block list"


def test_a_blocked_plan_does_not_record_but_a_review_or_monitored_block_does() -> None:
    blocking = AmountLimit(**_common(verdict=Verdict.BLOCK), max_amount_fen=100)
    reviewing = AmountLimit(**_common(verdict=Verdict.REVIEW), max_amount_fen=100)
    monitored = AmountLimit(**_common(mode=Mode.MONITOR), max_amount_fen=100)
    signal = _signal(amount_fen=500)

    assert plan(RuleSet(local=(blocking,)), TENANT, signal, Facts()).record is False
    assert plan(RuleSet(local=(reviewing,)), TENANT, signal, Facts()).record is True
    assert plan(RuleSet(local=(monitored,)), TENANT, signal, Facts()).record is True


def test_counter_rules_ask_for_a_check_only_when_their_subject_is_known() -> None:
    by_user = Velocity(
        **_common("by-user"),
        subject=Subject.USER,
        window_seconds=60,
        max_count=5,
        max_sum_fen=None,
    )
    by_device = Velocity(
        **_common("by-device"),
        subject=Subject.DEVICE,
        window_seconds=60,
        max_count=5,
        max_sum_fen=None,
    )
    rules = RuleSet(counters=(by_user, by_device))

    decision = plan(rules, TENANT, _signal(device_id=None), Facts())

    assert decision.counter_rules == (by_user,)
    assert [c.key for c in decision.checks] == [counter_key(TENANT, "by-user", 60, "u1")]


def test_allow_listed_subjects_skip_suppressible_rules_but_not_the_fact_checks() -> None:
    # given a user on the allow list, and rules that would all fire
    rules = RuleSet(
        local=(
            AmountLimit(**_common("amount"), max_amount_fen=100),
            NewAccount(
                **_common("young"),
                min_age=timedelta(days=1),
                max_amount_fen=None,
                unknown_is_new=True,
            ),
            RefundAfterReward(**_common("refunds"), window=timedelta(days=30), max_refunds=1),
            RealName(**_common("real-name")),
            VerifiedPayment(**_common("verified")),
        ),
        counters=(
            Velocity(
                **_common("burst"),
                subject=Subject.USER,
                window_seconds=60,
                max_count=0,
                max_sum_fen=None,
            ),
        ),
    )
    facts = Facts(
        listed=(ListHit(ALLOW_LIST, Subject.USER, "u1"),),
        refunds_after_reward=5,
    )

    # when the action is planned
    decision = plan(rules, TENANT, _signal(amount_fen=500), facts)

    # then only the real-name and verified-payment checks still fire, and no counter is asked
    assert [r.rule_id for r in decision.reasons] == ["real-name", "verified"]
    assert decision.checks == ()


def test_an_allow_listed_subject_that_is_also_block_listed_is_still_blocked() -> None:
    facts = Facts(
        listed=(
            ListHit(ALLOW_LIST, Subject.USER, "u1"),
            ListHit(BLOCK_LIST, Subject.DEVICE, "dev_bad"),
        )
    )

    outcome = finish(plan(RuleSet(), TENANT, _signal(), facts), _signal(), [], 60)

    assert outcome.verdict is Verdict.BLOCK
    assert [r.code for r in outcome.reasons] == ["blocklisted"]


def test_a_user_on_the_review_list_is_held_for_review_even_when_allow_listed() -> None:
    # given a user held by a group fraud finding, and also on the allow list
    facts = Facts(
        listed=(
            ListHit(ALLOW_LIST, Subject.USER, "u1"),
            ListHit(REVIEW_LIST, Subject.USER, "u1", "fraud finding ffd_1"),
        )
    )

    # when an action of theirs is decided
    outcome = finish(plan(RuleSet(), TENANT, _signal(), facts), _signal(), [], 60)

    # then it waits for an analyst, and says why
    assert outcome.verdict is Verdict.REVIEW
    (reason,) = outcome.reasons
    assert reason.code == "held_for_review"
    assert reason.message == "user u1 is held for review (fraud finding ffd_1)"


def test_the_block_list_wins_over_the_review_list() -> None:
    facts = Facts(
        listed=(
            ListHit(REVIEW_LIST, Subject.USER, "u1"),
            ListHit(BLOCK_LIST, Subject.USER, "u1"),
        )
    )

    outcome = finish(plan(RuleSet(), TENANT, _signal(), facts), _signal(), [], 60)

    assert outcome.verdict is Verdict.BLOCK


def test_without_an_allow_listing_the_same_rules_fire() -> None:
    rules = RuleSet(local=(AmountLimit(**_common("amount"), max_amount_fen=100),))

    decision = plan(rules, TENANT, _signal(amount_fen=500), Facts())

    assert [r.rule_id for r in decision.reasons] == ["amount"]


def test_finish_judges_the_counter_readings_and_adds_extra_reasons() -> None:
    # given a device rule at its limit and a user rule under it
    device_rule = DistinctUsers(
        **_common("accounts", verdict=Verdict.REVIEW, score=30),
        subject=Subject.DEVICE,
        window_seconds=86400,
        max_users=3,
    )
    user_rule = Velocity(
        **_common("burst", score=40),
        subject=Subject.USER,
        window_seconds=60,
        max_count=5,
        max_sum_fen=None,
    )
    signal = _signal(device_id="dev_1")
    decision = plan(RuleSet(counters=(device_rule, user_rule)), TENANT, signal, Facts())
    extra = _reason(Verdict.REVIEW, 0, code="counters_unavailable")

    # when the readings come back
    outcome = finish(decision, signal, [CounterReading(3), CounterReading(4)], 60, [extra])

    # then the device rule fires, the user rule does not, and the extra reason is kept
    assert outcome.verdict is Verdict.REVIEW
    assert [r.code for r in outcome.reasons] == ["too_many_accounts", "counters_unavailable"]
    assert outcome.score == 30


# Lists ---------------------------------------------------------------------------------------


def _entry(
    subject: Subject,
    value: str,
    list_name: str = BLOCK_LIST,
    note: str = "",
    expires_at: datetime | None = None,
) -> ListEntry:
    return ListEntry(list_name, subject, value, note, expires_at)


def test_the_list_index_matches_users_devices_ips_and_payment_accounts() -> None:
    index = ListIndex(
        [
            _entry(Subject.USER, "u1", note="fraud"),
            _entry(Subject.DEVICE, "dev_1"),
            _entry(Subject.IP, "203.0.113.7"),
            _entry(Subject.PAYMENT_ACCOUNT, "oid_1", list_name=ALLOW_LIST),
        ]
    )
    signal = _signal(device_id="dev_1", ip="203.0.113.7", payment_account="oid_1")

    hits = index.match(signal)

    assert set(hits) == {
        ListHit(BLOCK_LIST, Subject.USER, "u1", "fraud"),
        ListHit(BLOCK_LIST, Subject.DEVICE, "dev_1"),
        ListHit(BLOCK_LIST, Subject.IP, "203.0.113.7"),
        ListHit(ALLOW_LIST, Subject.PAYMENT_ACCOUNT, "oid_1"),
    }


def test_the_list_index_does_not_match_other_values_or_missing_subjects() -> None:
    index = ListIndex(
        [
            _entry(Subject.USER, "u2"),
            _entry(Subject.DEVICE, "dev_1"),
            _entry(Subject.IP, "203.0.113.7"),
            _entry(Subject.PAYMENT_ACCOUNT, "oid_1"),
        ]
    )

    assert index.match(_signal(ip="203.0.113.8")) == ()


def test_a_device_value_does_not_match_a_user_entry_of_the_same_text() -> None:
    index = ListIndex([_entry(Subject.USER, "same")])

    assert index.match(_signal(user_id="other", device_id="same")) == ()


@pytest.mark.parametrize(
    ("cidr", "ip", "matches"),
    [
        pytest.param("198.51.100.0/24", "198.51.100.200", True, id="v4-inside"),
        pytest.param("198.51.100.0/24", "198.51.101.1", False, id="v4-outside"),
        pytest.param("10.0.0.0/8", "10.255.255.255", True, id="v4-last-address"),
        pytest.param("2001:db8::/32", "2001:db8:ffff::1", True, id="v6-inside"),
        pytest.param("2001:db8::/32", "2001:db9::1", False, id="v6-outside"),
        pytest.param("2001:db8::/32", "198.51.100.1", False, id="v4-address-v6-range"),
        pytest.param("0.0.0.0/0", "2001:db8::1", False, id="v6-address-v4-range"),
    ],
)
def test_ip_ranges_match_the_addresses_inside_them(cidr: str, ip: str, matches: bool) -> None:
    index = ListIndex([_entry(Subject.IP, cidr, note="farm")])

    hits = index.match(_signal(ip=ip))

    assert hits == ((ListHit(BLOCK_LIST, Subject.IP, cidr, "farm"),) if matches else ())


def test_an_address_in_a_range_and_listed_exactly_hits_both_entries() -> None:
    index = ListIndex(
        [
            _entry(Subject.IP, "198.51.100.0/24"),
            _entry(Subject.IP, "198.51.100.7", list_name=ALLOW_LIST),
        ]
    )

    hits = index.match(_signal(ip="198.51.100.7"))

    assert {h.list_name for h in hits} == {BLOCK_LIST, ALLOW_LIST}


def test_an_ipv4_mapped_address_matches_the_ipv4_range_it_belongs_to() -> None:
    index = ListIndex([_entry(Subject.IP, "198.51.100.0/24")])

    hits = index.match(_signal(ip="::ffff:198.51.100.7"))

    assert [h.value for h in hits] == ["198.51.100.0/24"]


def test_the_list_index_is_valid_until_its_first_entry_expires() -> None:
    soon, later = AT + timedelta(hours=1), AT + timedelta(days=1)
    index = ListIndex(
        [
            _entry(Subject.USER, "u1", expires_at=later),
            _entry(Subject.USER, "u2", expires_at=soon),
            _entry(Subject.USER, "u3"),
        ]
    )

    assert index.valid_until == soon
    assert ListIndex([_entry(Subject.USER, "u3")]).valid_until is None


@pytest.mark.parametrize(
    ("subject", "value", "stored"),
    [
        pytest.param(Subject.USER, "  u1 ", "u1", id="trimmed"),
        pytest.param(Subject.DEVICE, "Dev-ABC", "Dev-ABC", id="case-kept"),
        pytest.param(Subject.IP, "203.0.113.7", "203.0.113.7", id="v4"),
        pytest.param(Subject.IP, "2001:DB8:0::1", "2001:db8::1", id="v6-compressed"),
        pytest.param(Subject.IP, "198.51.100.9/24", "198.51.100.0/24", id="host-bits-dropped"),
        pytest.param(Subject.IP, "2001:db8::1/64", "2001:db8::/64", id="v6-range"),
    ],
)
def test_list_values_are_stored_in_a_normal_form(subject: Subject, value: str, stored: str) -> None:
    assert normalise_list_value(subject, value) == stored


@pytest.mark.parametrize(
    ("subject", "value", "field", "message"),
    [
        pytest.param(Subject.USER, "   ", "value", "may not be empty", id="blank"),
        pytest.param(Subject.IP, "not-an-ip", "value", "not an IP address", id="bad-ip"),
        pytest.param(Subject.IP, "10.0.0.0/33", "value", "CIDR range", id="bad-prefix"),
        pytest.param(Subject.IP_SUBNET, "10.0.0.0/24", "subject", "CIDR notation", id="subnet"),
    ],
)
def test_list_values_that_cannot_be_stored_are_refused_naming_the_field(
    subject: Subject, value: str, field: str, message: str
) -> None:
    with pytest.raises(Unprocessable, match=message) as caught:
        normalise_list_value(subject, value)

    assert [e.field for e in caught.value.errors] == [field]


@given(
    address=st.ip_addresses(),
    prefix=st.integers(min_value=0, max_value=128),
)
def test_a_normalised_range_matches_the_address_it_was_written_from(
    address: Any, prefix: int
) -> None:
    prefix = min(prefix, address.max_prefixlen)
    stored = normalise_list_value(Subject.IP, f"{address}/{prefix}")

    hits = ListIndex([_entry(Subject.IP, stored)]).match(_signal(ip=str(address)))

    assert [h.value for h in hits] == [stored]


# Describing windows --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(90, "90s"), (600, "10m"), (5400, "90m"), (3600, "1h"), (7200, "2h"), (86400, "1d")],
)
def test_windows_are_described_in_their_largest_whole_unit(seconds: int, text: str) -> None:
    assert describe_window(seconds) == text


# Local rules ---------------------------------------------------------------------------------


def test_amount_limit_allows_the_limit_itself() -> None:
    rule = AmountLimit(**_common(), max_amount_fen=10000)

    assert rule.check(_signal(amount_fen=10000), Facts()) is None


def test_amount_limit_fires_above_the_limit_with_amounts_in_cny() -> None:
    rule = AmountLimit(**_common("big", Verdict.REVIEW, 20), max_amount_fen=10000)

    reason = rule.check(_signal(amount_fen=12345), Facts())

    assert reason == Reason(
        "amount_too_large",
        "big",
        Verdict.REVIEW,
        20,
        "123.45 CNY is above the 100.00 CNY limit for pin.purchase",
    )


def _new_account(max_amount_fen: int | None = 5000, unknown_is_new: bool = True) -> NewAccount:
    return NewAccount(
        **_common("young"),
        min_age=timedelta(hours=24),
        max_amount_fen=max_amount_fen,
        unknown_is_new=unknown_is_new,
    )


def test_a_young_account_above_the_amount_is_flagged_with_its_age() -> None:
    signal = _signal(amount_fen=5001, account_created_at=AT - timedelta(hours=2))

    reason = _new_account().check(signal, Facts())

    assert reason is not None
    assert reason.code == "new_account"
    assert reason.message == (
        "account u1 is 2h old; pin.purchase above 50.00 CNY needs an account at least 1d old"
    )


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (timedelta(minutes=30), "30m"),
        (timedelta(hours=5, minutes=59), "5h"),
        (timedelta(days=3), "3d"),
        (timedelta(minutes=-5), "0m"),
    ],
)
def test_the_new_account_message_gives_the_age_in_its_largest_unit(
    age: timedelta, text: str
) -> None:
    rule = NewAccount(
        **_common(), min_age=timedelta(days=7), max_amount_fen=None, unknown_is_new=True
    )

    reason = rule.check(_signal(account_created_at=AT - age), Facts())

    assert reason is not None
    assert reason.message == (
        f"account u1 is {text} old; pin.purchase needs an account at least 7d old"
    )


@pytest.mark.parametrize(
    "signal",
    [
        pytest.param(
            _signal(amount_fen=5000, account_created_at=AT - timedelta(minutes=1)),
            id="young-but-small",
        ),
        pytest.param(
            _signal(amount_fen=99999, account_created_at=AT - timedelta(hours=24)),
            id="exactly-old-enough",
        ),
        pytest.param(
            _signal(amount_fen=99999, account_created_at=AT - timedelta(days=400)),
            id="old",
        ),
    ],
)
def test_new_account_lets_small_amounts_and_old_enough_accounts_through(signal: Signal) -> None:
    assert _new_account().check(signal, Facts()) is None


def test_an_account_of_unknown_age_is_new_only_when_the_rule_says_so() -> None:
    signal = _signal(amount_fen=9000, account_created_at=None)

    flagged = _new_account(unknown_is_new=True).check(signal, Facts())

    assert flagged is not None
    assert flagged.message.startswith("account u1 is of unknown age; ")
    assert _new_account(unknown_is_new=False).check(signal, Facts()) is None


@pytest.mark.parametrize(
    ("payment_account", "verified", "missing"),
    [
        (None, True, "no bound payment account"),
        (None, None, "no bound payment account"),
        ("oid_1", False, "not verified"),
        ("oid_1", None, "not verified"),
    ],
)
def test_real_name_requires_a_bound_verified_payer(
    payment_account: str | None, verified: bool | None, missing: str
) -> None:
    signal = _signal(payment_account=payment_account, payer_verified=verified)

    reason = RealName(**_common("real-name")).check(signal, Facts())

    assert reason is not None
    assert reason.code == "real_name_required"
    assert reason.message == f"pin.purchase needs a bound, real-name verified payer ({missing})"


def test_real_name_passes_a_bound_verified_payer() -> None:
    signal = _signal(payment_account="oid_1", payer_verified=True)

    assert RealName(**_common()).check(signal, Facts()) is None


@pytest.mark.parametrize(
    ("signal", "payment", "code", "message"),
    [
        pytest.param(
            _signal(action="reward.grant"),
            None,
            "payment_missing",
            "reward.grant must stand on a completed payment",
            id="missing",
        ),
        pytest.param(
            _signal(payment_order_id="ord_404"),
            None,
            "payment_not_found",
            "payment order ord_404 does not exist",
            id="not-found",
        ),
        pytest.param(
            _signal(payment_order_id="ord_1"),
            _paid(refunded_fen=250, status="REFUND"),
            "payment_refunded",
            "payment order ord_1 was refunded (2.50 CNY)",
            id="refunded",
        ),
        pytest.param(
            _signal(payment_order_id="ord_1"),
            _paid(status="NOTPAY"),
            "payment_not_completed",
            "payment order ord_1 is NOTPAY, not paid",
            id="not-completed",
        ),
        pytest.param(
            _signal(payment_order_id="ord_1", amount_fen=1100),
            _paid(amount_fen=1000),
            "payment_amount_mismatch",
            "the action claims 11.00 CNY but payment order ord_1 paid 10.00 CNY",
            id="amount-mismatch",
        ),
        pytest.param(
            _signal(payment_order_id="ord_1", amount_fen=1000, payment_account="openid_other"),
            _paid(),
            "payer_mismatch",
            "payment order ord_1 was paid by another payment account",
            id="payer-mismatch",
        ),
        pytest.param(
            _signal(payment_order_id="ord_1", amount_fen=1000),
            _paid(),
            "payer_mismatch",
            "the action names no payment account; it must be the payer of order ord_1",
            id="payer-not-named",
        ),
        pytest.param(
            _signal(payment_order_id="ord_1"),
            _paid(),
            "payment_amount_mismatch",
            "the action claims 0.00 CNY but payment order ord_1 paid 10.00 CNY",
            id="amount-not-named",
        ),
    ],
)
def test_verified_payment_names_what_is_wrong_with_the_payment(
    signal: Signal, payment: PaymentFacts | None, code: str, message: str
) -> None:
    reason = VerifiedPayment(**_common("verified")).check(signal, Facts(payment=payment))

    assert reason is not None
    assert (reason.code, reason.message) == (code, message)


def test_verified_payment_passes_a_completed_matching_payment() -> None:
    signal = _signal(payment_order_id="ord_1", amount_fen=1000, payment_account="openid_1")
    assert VerifiedPayment(**_common()).check(signal, Facts(payment=_paid())) is None


def test_verified_payment_refuses_a_payment_that_already_stands_behind_the_action() -> None:
    signal = _signal(payment_order_id="ord_1", amount_fen=1000, payment_account="openid_1")

    reason = VerifiedPayment(**_common()).check(
        signal, Facts(payment=_paid(), payment_used_by="rsk_first")
    )

    assert reason is not None
    assert reason.code == "payment_reused"
    assert "(decision rsk_first)" in reason.message


def test_refund_after_reward_fires_at_max_refunds() -> None:
    rule = RefundAfterReward(
        **_common("refunds", Verdict.REVIEW, 40), window=timedelta(days=30), max_refunds=2
    )

    assert rule.check(_signal(), Facts(refunds_after_reward=1)) is None
    reason = rule.check(_signal(), Facts(refunds_after_reward=2))

    assert reason is not None
    assert reason.code == "refund_after_reward"
    assert reason.message == "user u1 refunded 2 rewarded payment(s) in 30d (limit 1)"


# Counter rules -------------------------------------------------------------------------------


def _velocity(
    subject: Subject = Subject.USER,
    max_count: int | None = 5,
    max_sum_fen: int | None = None,
    **common: Any,
) -> Velocity:
    return Velocity(
        **_common("burst", **common),
        subject=subject,
        window_seconds=60,
        max_count=max_count,
        max_sum_fen=max_sum_fen,
    )


def test_a_count_velocity_counts_one_per_action_under_a_key_per_tenant_rule_and_subject() -> None:
    check = _velocity().counter(TENANT, _signal(amount_fen=999))

    assert check == CounterCheck(
        "zl:risk:{ten_1}:burst:60:u1", CounterKind.SUM, 60, 5, increment=1, blocking=True
    )


@pytest.mark.parametrize(
    ("common", "blocking"),
    [
        ({"verdict": Verdict.BLOCK}, True),
        ({"verdict": Verdict.REVIEW}, False),
        ({"verdict": Verdict.BLOCK, "mode": Mode.MONITOR}, False),
    ],
)
def test_only_an_enforced_block_rule_holds_back_recording(
    common: dict[str, Any], blocking: bool
) -> None:
    check = _velocity(**common).counter(TENANT, _signal())

    assert check is not None
    assert check.blocking is blocking


def test_a_count_velocity_fires_when_the_action_would_go_over_the_limit() -> None:
    rule = _velocity()
    check = rule.counter(TENANT, _signal())
    assert check is not None

    assert rule.judge(_signal(), check, CounterReading(4)) is None
    reason = rule.judge(_signal(), check, CounterReading(5))

    assert reason is not None
    assert reason.code == "velocity_count"
    assert reason.message == "user u1 would make 6 pin.purchase in 1m (limit 5)"


def test_a_sum_velocity_adds_the_amount_and_reports_cny() -> None:
    rule = _velocity(Subject.PAYMENT_ACCOUNT, max_count=None, max_sum_fen=200000)
    signal = _signal(payment_account="oid_1", amount_fen=50000)
    check = rule.counter(TENANT, signal)
    assert check is not None
    assert (check.increment, check.limit) == (50000, 200000)

    assert rule.judge(signal, check, CounterReading(150000)) is None
    reason = rule.judge(signal, check, CounterReading(150001))

    assert reason is not None
    assert reason.code == "velocity_amount"
    assert reason.message == (
        "payment account oid_1 would reach 2000.01 CNY of pin.purchase in 1m (limit 2000.00 CNY)"
    )


def test_a_sum_velocity_ignores_actions_without_an_amount() -> None:
    rule = _velocity(max_count=None, max_sum_fen=100)

    assert rule.counter(TENANT, _signal(amount_fen=0)) is None


def test_a_velocity_on_a_missing_subject_asks_for_no_counter() -> None:
    assert _velocity(Subject.DEVICE).counter(TENANT, _signal(device_id=None)) is None


def test_an_ip_subnet_velocity_counts_the_v4_24_or_v6_64() -> None:
    rule = _velocity(Subject.IP_SUBNET)

    v4 = rule.counter(TENANT, _signal(ip="198.51.100.77"))
    v6 = rule.counter(TENANT, _signal(ip="2001:db8:1:2:3::9"))

    assert v4 is not None
    assert v4.key.endswith(":198.51.100.0/24")
    assert v6 is not None
    assert v6.key.endswith(":2001:db8:1:2::/64")


def test_ipv4_mapped_addresses_of_different_networks_count_in_different_subnets() -> None:
    rule = _velocity(Subject.IP_SUBNET)

    first = rule.counter(TENANT, _signal(ip="::ffff:198.51.100.7"))
    second = rule.counter(TENANT, _signal(ip="::ffff:203.0.113.9"))

    assert first is not None
    assert second is not None
    assert first.key != second.key


def _distinct(subject: Subject = Subject.DEVICE) -> DistinctUsers:
    return DistinctUsers(**_common("accounts"), subject=subject, window_seconds=86400, max_users=3)


def test_distinct_users_counts_the_user_as_member_of_the_subject() -> None:
    check = _distinct().counter(TENANT, _signal(user_id="u7", device_id="dev_1"))

    assert check == CounterCheck(
        "zl:risk:{ten_1}:accounts:86400:dev_1",
        CounterKind.DISTINCT,
        86400,
        3,
        member="u7",
        blocking=True,
    )


def test_distinct_users_fires_for_one_account_too_many() -> None:
    rule = _distinct()
    signal = _signal(user_id="u4", device_id="dev_1")
    check = rule.counter(TENANT, signal)
    assert check is not None

    assert rule.judge(signal, check, CounterReading(2)) is None
    reason = rule.judge(signal, check, CounterReading(3))

    assert reason is not None
    assert reason.code == "too_many_accounts"
    assert reason.message == "device dev_1 would be used by 4 accounts in 1d (limit 3)"


def test_distinct_users_lets_an_account_already_counted_come_back() -> None:
    rule = _distinct()
    signal = _signal(device_id="dev_1")
    check = rule.counter(TENANT, signal)
    assert check is not None

    assert rule.judge(signal, check, CounterReading(3, already_member=True)) is None


def test_distinct_users_on_an_ip_subnet_names_the_subnet() -> None:
    rule = _distinct(Subject.IP_SUBNET)
    signal = _signal(ip="203.0.113.9")
    check = rule.counter(TENANT, signal)
    assert check is not None

    reason = rule.judge(signal, check, CounterReading(3))

    assert reason is not None
    assert reason.message.startswith("ip subnet 203.0.113.0/24 would be used by 4 accounts")


def _split(threshold_fen: int | None = 10000, margin_percent: int = 10) -> SplitOrder:
    return SplitOrder(
        **_common("split", Verdict.REVIEW, 40),
        subject=Subject.USER,
        window_seconds=86400,
        threshold_fen=threshold_fen,
        margin_percent=margin_percent,
        max_near_threshold=2,
    )


@pytest.mark.parametrize(
    ("amount", "counted"),
    [(9999, False), (10000, True), (10500, True), (11000, True), (11001, False)],
)
def test_split_order_counts_payments_from_the_threshold_to_the_margin_above_it(
    amount: int, counted: bool
) -> None:
    check = _split().counter(TENANT, _signal(amount_fen=amount))

    assert (check is not None) is counted
    if check is not None:
        assert (check.kind, check.increment, check.limit) == (CounterKind.SUM, 1, 2)


def test_split_order_takes_the_threshold_from_the_context_first() -> None:
    signal = _signal(amount_fen=5200, context={"reward_threshold_fen": 5000})

    assert _split(threshold_fen=10000).counter(TENANT, signal) is not None
    assert _split(threshold_fen=None).counter(TENANT, signal) is not None
    assert _split(threshold_fen=10000).counter(TENANT, _signal(amount_fen=5200)) is None


@pytest.mark.parametrize("given_threshold", [0, -5, True, "5000", 5000.0, None])
def test_split_order_ignores_a_context_threshold_that_is_not_a_positive_int(
    given_threshold: object,
) -> None:
    signal = _signal(amount_fen=5200, context={"reward_threshold_fen": given_threshold})

    assert _split(threshold_fen=10000).counter(TENANT, signal) is None
    assert _split(threshold_fen=None).counter(TENANT, signal) is None


def test_split_order_without_any_threshold_asks_for_no_counter() -> None:
    assert _split(threshold_fen=None).counter(TENANT, _signal(amount_fen=10000)) is None


def test_split_order_fires_on_one_near_threshold_payment_too_many() -> None:
    rule = _split()
    signal = _signal(amount_fen=10100)
    check = rule.counter(TENANT, signal)
    assert check is not None

    assert rule.judge(signal, check, CounterReading(1)) is None
    reason = rule.judge(signal, check, CounterReading(2))

    assert reason is not None
    assert reason.code == "split_order"
    assert reason.message == (
        "3 payments within 10% above the 100.00 CNY reward threshold in 1d (limit 2)"
    )


@given(
    threshold=st.integers(min_value=1, max_value=10**7),
    margin=st.integers(min_value=0, max_value=100),
    amount=st.integers(min_value=0, max_value=3 * 10**7),
)
def test_split_order_counts_exactly_the_amounts_in_its_band(
    threshold: int, margin: int, amount: int
) -> None:
    check = _split(threshold, margin).counter(TENANT, _signal(amount_fen=amount))

    in_band = threshold <= amount <= threshold + threshold * margin // 100
    assert (check is not None) is in_band
