"""The payment state machines and the checks a provider's word must pass: pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from zanloop.errors import InvalidState, Unprocessable
from zanloop.payments import domain
from zanloop.payments.domain import (
    FactsMismatch,
    RefundFacts,
    RefundStatus,
    TradeFacts,
    TradeState,
)

S = TradeState
ALLOWED = {
    (S.NOTPAY, S.USERPAYING),
    (S.NOTPAY, S.SUCCESS),
    (S.NOTPAY, S.CLOSED),
    (S.NOTPAY, S.PAYERROR),
    (S.USERPAYING, S.SUCCESS),
    (S.USERPAYING, S.PAYERROR),
    (S.USERPAYING, S.CLOSED),
    (S.PAYERROR, S.SUCCESS),
    (S.PAYERROR, S.CLOSED),
    # The provider is the truth: money that moved after we closed the order still settles.
    (S.CLOSED, S.SUCCESS),
    (S.SUCCESS, S.REFUND),
    (S.REFUND, S.REFUND),
}


@pytest.mark.parametrize(
    ("current", "new"),
    [pytest.param(a, b, id=f"{a.value}->{b.value}") for a in S for b in S],
)
def test_transition_table(current: TradeState, new: TradeState) -> None:
    assert domain.can_move(current, new) is ((current, new) in ALLOWED)


@pytest.mark.parametrize(
    ("target", "sources"),
    [
        pytest.param(S.SUCCESS, {S.NOTPAY, S.USERPAYING, S.PAYERROR, S.CLOSED}, id="SUCCESS"),
        pytest.param(S.CLOSED, {S.NOTPAY, S.USERPAYING, S.PAYERROR}, id="CLOSED"),
        pytest.param(S.REFUND, {S.SUCCESS, S.REFUND}, id="REFUND"),
        pytest.param(S.NOTPAY, set(), id="NOTPAY"),
    ],
)
def test_sources_for_is_the_table_read_backwards(
    target: TradeState, sources: set[TradeState]
) -> None:
    assert domain.sources_for(target) == sources


@pytest.mark.parametrize("state", [S.NOTPAY, S.USERPAYING, S.PAYERROR, S.CLOSED], ids=str)
def test_unpaid_and_closed_orders_can_be_closed(state: TradeState) -> None:
    domain.check_closable(state)


@pytest.mark.parametrize("state", [S.SUCCESS, S.REFUND, S.REVOKED], ids=str)
def test_paid_or_revoked_orders_cannot_be_closed(state: TradeState) -> None:
    with pytest.raises(InvalidState):
        domain.check_closable(state)


@pytest.mark.parametrize(
    ("state", "reserved", "wanted"),
    [
        pytest.param(S.SUCCESS, 0, 1000, id="all-at-once"),
        pytest.param(S.SUCCESS, 0, 1, id="one-fen"),
        pytest.param(S.REFUND, 700, 300, id="the-rest-after-a-partial"),
    ],
)
def test_refundable(state: TradeState, reserved: int, wanted: int) -> None:
    domain.check_refundable(state, 1000, reserved, wanted)


@pytest.mark.parametrize(
    ("state", "reserved", "wanted", "error"),
    [
        pytest.param(S.NOTPAY, 0, 100, InvalidState, id="unpaid"),
        pytest.param(S.CLOSED, 0, 100, InvalidState, id="closed"),
        pytest.param(S.PAYERROR, 0, 100, InvalidState, id="payerror"),
        pytest.param(S.SUCCESS, 0, 0, Unprocessable, id="zero"),
        pytest.param(S.SUCCESS, 0, -5, Unprocessable, id="negative"),
        pytest.param(S.SUCCESS, 0, 1001, Unprocessable, id="more-than-paid"),
        pytest.param(S.REFUND, 700, 301, Unprocessable, id="more-than-left"),
    ],
)
def test_not_refundable(
    state: TradeState, reserved: int, wanted: int, error: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        domain.check_refundable(state, 1000, reserved, wanted)
    if isinstance(raised.value, Unprocessable):
        assert [e.field for e in raised.value.errors] == ["amount_fen"]


def facts(**changes: Any) -> TradeFacts:
    base: dict[str, Any] = {
        "mchid": "1900000001",
        "out_trade_no": "ORDER0001",
        "trade_state": S.SUCCESS,
        "transaction_id": "4200000001",
        "total_fen": 990,
        "payer_openid": "o_buyer",
        "success_time": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return TradeFacts(**(base | changes))


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(facts(), id="matching"),
        pytest.param(facts(payer_openid=None), id="payer-not-told"),
        pytest.param(facts(trade_state=S.NOTPAY, total_fen=None), id="unpaid-without-amount"),
        pytest.param(facts(trade_state=S.CLOSED, total_fen=1), id="unpaid-amount-not-checked"),
    ],
)
def test_trade_facts_that_match(given: TradeFacts) -> None:
    domain.check_trade_facts(given, mchid="1900000001", amount_fen=990, payer_openid="o_buyer")


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(facts(mchid="1900000002"), id="other-merchant"),
        pytest.param(facts(total_fen=989), id="other-amount"),
        pytest.param(facts(total_fen=None), id="paid-without-amount"),
        pytest.param(facts(trade_state=S.REFUND, total_fen=1), id="refund-other-amount"),
        pytest.param(facts(payer_openid="o_other"), id="other-payer"),
    ],
)
def test_trade_facts_that_do_not_match(given: TradeFacts) -> None:
    with pytest.raises(FactsMismatch):
        domain.check_trade_facts(given, mchid="1900000001", amount_fen=990, payer_openid="o_buyer")


@pytest.mark.parametrize(
    ("given", "ok"),
    [
        pytest.param({"mchid": "M1", "refund_fen": 300}, True, id="matching"),
        pytest.param({"mchid": None, "refund_fen": None, "out_trade_no": None}, True, id="absent"),
        pytest.param({"mchid": "M2", "refund_fen": 300}, False, id="other-merchant"),
        pytest.param({"mchid": "M1", "refund_fen": 301}, False, id="other-amount"),
        pytest.param(
            {"mchid": "M1", "refund_fen": 300, "out_trade_no": "O2"}, False, id="other-order"
        ),
    ],
)
def test_refund_facts(given: dict[str, Any], ok: bool) -> None:
    refund = RefundFacts(
        **{
            "out_trade_no": "ORDER0001",
            "out_refund_no": "RF1",
            "refund_id": "5030001",
            "status": RefundStatus.SUCCESS,
            "success_time": None,
        }
        | given
    )
    expected = {"mchid": "M1", "amount_fen": 300, "out_trade_no": "ORDER0001"}
    if ok:
        domain.check_refund_facts(refund, **expected)
    else:
        with pytest.raises(FactsMismatch):
            domain.check_refund_facts(refund, **expected)


TRANSACTION: dict[str, Any] = {
    "mchid": "1900000001",
    "appid": "wx1",
    "out_trade_no": "ORDER0001",
    "transaction_id": "4200000001",
    "trade_state": "SUCCESS",
    "success_time": "2026-01-01T08:00:05+08:00",
    "payer": {"openid": "o_buyer"},
    "amount": {"total": 990, "payer_total": 990, "currency": "CNY"},
}


def test_a_transaction_resource_becomes_trade_facts() -> None:
    parsed = domain.trade_facts_from_resource(TRANSACTION)

    assert parsed == facts(success_time=datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC))
    assert parsed.success_time is not None
    assert parsed.success_time.utcoffset() is not None


def test_an_unpaid_query_answer_has_no_transaction_or_time() -> None:
    parsed = domain.trade_facts_from_resource(
        {"mchid": "1", "out_trade_no": "O1", "trade_state": "NOTPAY", "amount": {"total": 5}}
    )

    assert (parsed.trade_state, parsed.transaction_id, parsed.success_time) == (
        S.NOTPAY,
        None,
        None,
    )
    assert parsed.payer_openid is None


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({k: v for k, v in TRANSACTION.items() if k != "trade_state"}, id="no-state"),
        pytest.param(TRANSACTION | {"trade_state": "PAID"}, id="unknown-state"),
        pytest.param({k: v for k, v in TRANSACTION.items() if k != "mchid"}, id="no-mchid"),
        pytest.param(TRANSACTION | {"amount": {"total": "lots"}}, id="amount-not-a-number"),
    ],
)
def test_a_malformed_transaction_resource_is_a_mismatch(broken: dict[str, Any]) -> None:
    with pytest.raises(FactsMismatch):
        domain.trade_facts_from_resource(broken)


def test_a_bad_success_time_is_dropped_not_fatal() -> None:
    assert (
        domain.trade_facts_from_resource(TRANSACTION | {"success_time": "soon"}).success_time
        is None
    )


@pytest.mark.parametrize(
    ("status_key", "status"),
    [
        pytest.param("refund_status", "SUCCESS", id="notification"),
        pytest.param("status", "PROCESSING", id="query-answer"),
    ],
)
def test_a_refund_resource_becomes_refund_facts(status_key: str, status: str) -> None:
    parsed = domain.refund_facts_from_resource(
        {
            "mchid": "M1",
            "out_trade_no": "ORDER0001",
            "out_refund_no": "RF1",
            "refund_id": "5030001",
            status_key: status,
            "amount": {"total": 990, "refund": 300},
        }
    )

    assert parsed.status is RefundStatus(status)
    assert (parsed.out_refund_no, parsed.refund_fen, parsed.mchid) == ("RF1", 300, "M1")


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"out_refund_no": "RF1"}, id="no-status"),
        pytest.param({"out_refund_no": "RF1", "status": "DONE"}, id="unknown-status"),
        pytest.param({"status": "SUCCESS"}, id="no-out-refund-no"),
    ],
)
def test_a_malformed_refund_resource_is_a_mismatch(broken: dict[str, Any]) -> None:
    with pytest.raises(FactsMismatch):
        domain.refund_facts_from_resource(broken)


def test_ledger_ids_are_derived_from_the_order_and_refund() -> None:
    assert domain.ledger_transfer_id("pay_1") == "payment:pay_1"
    assert domain.refund_transfer_id("rfd_1") == "refund:rfd_1"
    assert domain.clearing_owner("sandbox") == "provider:sandbox"
