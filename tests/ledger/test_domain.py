"""Ledger rules without a database: legs, fingerprints, planning, reversals, holds."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zanloop.errors import InsufficientFunds, InvalidState, Unprocessable
from zanloop.kit.money import Asset
from zanloop.ledger import domain
from zanloop.ledger.domain import (
    MAX_AMOUNT,
    MAX_HOLD_ID,
    MAX_LEGS,
    AccountState,
    HoldStatus,
    Leg,
    TransferKind,
    TransferRequest,
)


def _request(*legs: tuple[str, int], transfer_id: str = "t1", **kwargs: object) -> TransferRequest:
    return TransferRequest(
        transfer_id,
        Asset.CNY,
        tuple(Leg(o, a) for o, a in legs),
        **kwargs,  # type: ignore[arg-type]
    )


def _state(
    owner: str, balance: int = 0, pending_out: int = 0, overdraft: bool = False
) -> AccountState:
    return AccountState(f"acc_{owner}", owner, balance, pending_out, overdraft)


# Validation ---------------------------------------------------------------------------------


def test_a_balanced_multi_leg_transfer_is_valid() -> None:
    domain.validate(_request(("shop", -100), ("user:1", 60), ("fees", 40)))


@pytest.mark.parametrize(
    ("legs", "transfer_id", "field"),
    [
        pytest.param((("a", -5), ("b", 4)), "t1", "legs", id="legs-do-not-sum-to-zero"),
        pytest.param((("a", -5),), "t1", "legs", id="one-leg"),
        pytest.param(tuple((f"o{i}", 1) for i in range(MAX_LEGS + 1)), "t1", "legs", id="too-many"),
        pytest.param((("a", 0), ("b", 0)), "t1", "legs[0].amount", id="zero-leg"),
        pytest.param(
            (("a", -(MAX_AMOUNT + 1)), ("b", MAX_AMOUNT + 1)), "t1", "legs[0].amount", id="too-much"
        ),
        pytest.param((("", -5), ("b", 5)), "t1", "legs[0].owner", id="no-owner"),
        pytest.param((("a", -5), ("a", 5)), "t1", "legs", id="same-account-twice"),
        pytest.param((("a", -5), ("b", 5)), "", "transfer_id", id="empty-transfer-id"),
        pytest.param((("a", -5), ("b", 5)), "x" * 201, "transfer_id", id="transfer-id-too-long"),
    ],
)
def test_invalid_transfers_are_refused_naming_the_field(
    legs: tuple[tuple[str, int], ...], transfer_id: str, field: str
) -> None:
    with pytest.raises(Unprocessable) as refused:
        domain.validate(_request(*legs, transfer_id=transfer_id))

    assert refused.value.errors[0].field == field


@given(
    amount=st.integers(min_value=1, max_value=10**12),
    owners=st.lists(st.text(min_size=1, max_size=8), min_size=2, max_size=2, unique=True),
)
def test_two_party_transfers_always_sum_to_zero(amount: int, owners: list[str]) -> None:
    request = domain.two_party("t", Asset.POINTS, owners[0], owners[1], amount)

    domain.validate(request)
    assert sum(leg.amount for leg in request.legs) == 0
    assert request.amount == amount


def test_amount_is_what_arrives() -> None:
    assert _request(("shop", -100), ("user:1", 60), ("fees", 40)).amount == 100


def test_net_by_owner_adds_legs_of_the_same_owner() -> None:
    legs = [Leg("a", -5), Leg("b", 5), Leg("a", 3), Leg("c", -3)]

    assert domain.net_by_owner(legs) == {"a": -2, "b": 5, "c": -3}


# Fingerprints -------------------------------------------------------------------------------


def test_fingerprint_ignores_leg_order_description_and_metadata() -> None:
    first = _request(("a", -5), ("b", 5), description="one", metadata={"x": 1})
    second = _request(("b", 5), ("a", -5), description="two")

    assert first.fingerprint() == second.fingerprint()


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(_request(("a", -6), ("b", 6)), id="amount"),
        pytest.param(_request(("a", -5), ("c", 5)), id="owner"),
        pytest.param(TransferRequest("t1", Asset.POINTS, (Leg("a", -5), Leg("b", 5))), id="asset"),
        pytest.param(_request(("a", -5), ("b", 5), kind=TransferKind.REVERSAL), id="kind"),
        pytest.param(_request(("a", -5), ("b", 5), reverses_id="trf_1"), id="reverses"),
    ],
)
def test_fingerprint_changes_with_content(other: TransferRequest) -> None:
    assert _request(("a", -5), ("b", 5)).fingerprint() != other.fingerprint()


def _stored_fingerprint(request: TransferRequest) -> str:
    """The fingerprint as every transfer posted so far stored it: SHA-256 of this JSON."""
    body = {
        "asset": request.asset.value,
        "legs": sorted((leg.owner, leg.amount) for leg in request.legs),
        "kind": request.kind.value,
        "reverses": request.reverses_id,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@given(
    legs=st.lists(
        st.tuples(st.text(min_size=1), st.integers(-MAX_AMOUNT, MAX_AMOUNT)), min_size=2, max_size=5
    ),
    asset=st.sampled_from(Asset),
    kind=st.sampled_from(TransferKind),
    reverses_id=st.none() | st.text(max_size=40),
)
def test_fingerprint_is_the_one_stored_so_far(
    legs: list[tuple[str, int]], asset: Asset, kind: TransferKind, reverses_id: str | None
) -> None:
    """Replays of transfers posted before the fingerprint was written out by hand still match:
    owners with quotes, backslashes, control characters or non-ASCII text included."""
    request = TransferRequest(
        "t1", asset, tuple(Leg(o, a) for o, a in legs), kind=kind, reverses_id=reverses_id
    )

    assert request.fingerprint() == _stored_fingerprint(request)


# Planning -----------------------------------------------------------------------------------


def test_plan_moves_balances_and_records_balance_after() -> None:
    accounts = {"a": _state("a", 100), "b": _state("b", 0)}

    planned = domain.plan_entries([_request(("a", -30), ("b", 30))], accounts)

    assert [(p.account_id, p.amount, p.balance_after) for p in planned] == [
        ("acc_a", -30, 70),
        ("acc_b", 30, 30),
    ]
    assert (accounts["a"].balance, accounts["b"].balance) == (70, 30)


def test_plan_applies_transfers_in_order_so_later_ones_see_earlier_money() -> None:
    accounts = {"a": _state("a", 0), "b": _state("b", 0), "bank": _state("bank", overdraft=True)}
    batch = [
        _request(("bank", -50), ("a", 50), transfer_id="fund"),
        _request(("a", -50), ("b", 50), transfer_id="pay"),
    ]

    domain.plan_entries(batch, accounts)

    assert {o: s.balance for o, s in accounts.items()} == {"a": 0, "b": 50, "bank": -50}


@pytest.mark.parametrize(
    ("balance", "pending_out", "spend"),
    [
        pytest.param(0, 0, 1, id="empty-account"),
        pytest.param(10, 0, 11, id="one-fen-short"),
        pytest.param(100, 95, 10, id="money-promised-to-a-hold"),
    ],
)
def test_plan_refuses_to_spend_below_holds(balance: int, pending_out: int, spend: int) -> None:
    accounts = {"a": _state("a", balance, pending_out), "b": _state("b")}

    with pytest.raises(InsufficientFunds):
        domain.plan_entries([_request(("a", -spend), ("b", spend))], accounts)


def test_plan_lets_an_overdraft_account_go_negative() -> None:
    accounts = {"bank": _state("bank", overdraft=True), "b": _state("b")}

    domain.plan_entries([_request(("bank", -500), ("b", 500))], accounts)

    assert accounts["bank"].balance == -500
    assert accounts["bank"].available == -500


def test_plan_may_spend_exactly_what_is_available() -> None:
    accounts = {"a": _state("a", 100, 40), "b": _state("b")}

    domain.plan_entries([_request(("a", -60), ("b", 60))], accounts)

    assert accounts["a"].available == 0


# Reversals ----------------------------------------------------------------------------------


def test_full_reversal_negates_every_leg() -> None:
    original = (Leg("shop", -100), Leg("user", 60), Leg("fees", 40))

    legs = domain.reversal_legs(original, None, 100)

    assert legs == (Leg("shop", 100), Leg("user", -60), Leg("fees", -40))


def test_partial_reversal_of_a_two_party_transfer_moves_the_amount_back() -> None:
    legs = domain.reversal_legs((Leg("payer", -100), Leg("payee", 100)), 30, 100)

    assert set(legs) == {Leg("payer", 30), Leg("payee", -30)}


def test_partial_reversal_of_a_multi_leg_transfer_is_refused() -> None:
    original = (Leg("shop", -100), Leg("user", 60), Leg("fees", 40))

    with pytest.raises(Unprocessable):
        domain.reversal_legs(original, 30, 100)


@pytest.mark.parametrize(
    ("gross", "already", "amount", "wanted"),
    [
        pytest.param(100, 0, None, 100, id="all-of-it"),
        pytest.param(100, 30, None, 70, id="the-rest"),
        pytest.param(100, 30, 70, 70, id="exactly-the-rest"),
        pytest.param(100, 0, 1, 1, id="one-fen"),
    ],
)
def test_check_reversible_returns_what_to_reverse(
    gross: int, already: int, amount: int | None, wanted: int
) -> None:
    assert domain.check_reversible(gross, already, amount) == wanted


@pytest.mark.parametrize(
    ("gross", "already", "amount", "error"),
    [
        pytest.param(100, 100, None, InvalidState, id="fully-reversed"),
        pytest.param(100, 100, 10, InvalidState, id="fully-reversed-with-amount"),
        pytest.param(100, 30, 71, Unprocessable, id="more-than-left"),
        pytest.param(100, 0, 0, Unprocessable, id="zero"),
        pytest.param(100, 0, -5, Unprocessable, id="negative"),
    ],
)
def test_check_reversible_refuses(
    gross: int, already: int, amount: int | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        domain.check_reversible(gross, already, amount)


@given(
    gross=st.integers(min_value=1, max_value=10_000),
    parts=st.lists(st.integers(min_value=1, max_value=10_000), max_size=8),
)
def test_reversals_never_add_up_to_more_than_the_original(gross: int, parts: list[int]) -> None:
    reversed_so_far = 0
    for part in parts:
        try:
            reversed_so_far += domain.check_reversible(gross, reversed_so_far, part)
        except (InvalidState, Unprocessable):
            continue

    assert 0 <= reversed_so_far <= gross


# Holds --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("post_amount", "posted"),
    [
        pytest.param(None, 80, id="all"),
        pytest.param(30, 30, id="part"),
        pytest.param(80, 80, id="exact"),
    ],
)
def test_a_pending_hold_posts(post_amount: int | None, posted: int) -> None:
    assert domain.check_hold_postable(HoldStatus.PENDING, 80, post_amount) == posted


@pytest.mark.parametrize(
    ("status", "post_amount", "error"),
    [
        pytest.param(HoldStatus.POSTED, None, InvalidState, id="already-posted"),
        pytest.param(HoldStatus.VOIDED, None, InvalidState, id="voided"),
        pytest.param(HoldStatus.PENDING, 81, Unprocessable, id="more-than-held"),
        pytest.param(HoldStatus.PENDING, 0, Unprocessable, id="zero"),
    ],
)
def test_a_hold_refuses_to_post(
    status: HoldStatus, post_amount: int | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        domain.check_hold_postable(status, 80, post_amount)


def test_hold_fingerprint_depends_on_every_field() -> None:
    base = domain.hold_fingerprint(Asset.CNY, "a", "b", 10)

    assert base == domain.hold_fingerprint(Asset.CNY, "a", "b", 10)
    assert base != domain.hold_fingerprint(Asset.POINTS, "a", "b", 10)
    assert base != domain.hold_fingerprint(Asset.CNY, "b", "a", 10)
    assert base != domain.hold_fingerprint(Asset.CNY, "a", "b", 11)


@pytest.mark.parametrize(
    ("hold_id", "ok"),
    [
        pytest.param("h", True, id="short"),
        pytest.param("h" * MAX_HOLD_ID, True, id="longest"),
        pytest.param("h" * (MAX_HOLD_ID + 1), False, id="too-long-for-its-transfer-id"),
        pytest.param("", False, id="empty"),
    ],
)
def test_hold_ids_fit_the_transfer_they_post_as(hold_id: str, ok: bool) -> None:
    if ok:
        domain.check_hold_id(hold_id)
        domain.validate(domain.two_party(domain.hold_transfer_id(hold_id), Asset.CNY, "a", "b", 1))
    else:
        with pytest.raises(Unprocessable):
            domain.check_hold_id(hold_id)
