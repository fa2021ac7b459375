"""Payment order and refund state machines, and the checks a provider's word must pass.

States follow WeChat Pay's ``trade_state``. The provider is the source of truth: a SUCCESS it
reports is accepted from any unpaid state, because the buyer's money has moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from zanloop.errors import InvalidState, Unprocessable


class TradeState(StrEnum):
    NOTPAY = "NOTPAY"
    USERPAYING = "USERPAYING"
    SUCCESS = "SUCCESS"
    REFUND = "REFUND"
    CLOSED = "CLOSED"
    PAYERROR = "PAYERROR"
    REVOKED = "REVOKED"


class RefundStatus(StrEnum):
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    ABNORMAL = "ABNORMAL"
    CLOSED = "CLOSED"


UNPAID = frozenset({TradeState.NOTPAY, TradeState.USERPAYING, TradeState.PAYERROR})
PAID = frozenset({TradeState.SUCCESS, TradeState.REFUND})

# from → states the provider may move us to
TRANSITIONS: dict[TradeState, frozenset[TradeState]] = {
    TradeState.NOTPAY: frozenset(
        {TradeState.USERPAYING, TradeState.SUCCESS, TradeState.CLOSED, TradeState.PAYERROR}
    ),
    TradeState.USERPAYING: frozenset({TradeState.SUCCESS, TradeState.PAYERROR, TradeState.CLOSED}),
    TradeState.PAYERROR: frozenset({TradeState.SUCCESS, TradeState.CLOSED}),
    TradeState.CLOSED: frozenset({TradeState.SUCCESS}),
    TradeState.SUCCESS: frozenset({TradeState.REFUND}),
    TradeState.REFUND: frozenset({TradeState.REFUND}),
    TradeState.REVOKED: frozenset(),
}


def can_move(current: TradeState, new: TradeState) -> bool:
    return new in TRANSITIONS[current]


def sources_for(new: TradeState) -> frozenset[TradeState]:
    return frozenset(s for s, targets in TRANSITIONS.items() if new in targets)


def check_closable(state: TradeState) -> None:
    if state in PAID:
        raise InvalidState(f"the order is {state.value}; refund it instead of closing")
    if state is TradeState.CLOSED:
        return
    if not can_move(state, TradeState.CLOSED):
        raise InvalidState(f"an order in {state.value} cannot be closed")


def check_refundable(
    state: TradeState, amount_fen: int, reserved_fen: int, wanted_fen: int
) -> None:
    if state not in PAID:
        raise InvalidState(f"the order is {state.value}; only paid orders can be refunded")
    if wanted_fen <= 0:
        raise Unprocessable("refund amount must be positive", field="amount_fen")
    if reserved_fen + wanted_fen > amount_fen:
        raise Unprocessable(
            f"refund of {wanted_fen} fen exceeds the {amount_fen - reserved_fen} fen left",
            field="amount_fen",
        )


@dataclass(frozen=True)
class TradeFacts:
    """What the provider says about an order (from a notification or an order query)."""

    mchid: str
    out_trade_no: str
    trade_state: TradeState
    transaction_id: str | None
    total_fen: int | None
    payer_openid: str | None
    success_time: datetime | None


@dataclass(frozen=True)
class RefundFacts:
    mchid: str | None
    out_trade_no: str | None
    out_refund_no: str
    refund_id: str | None
    status: RefundStatus
    refund_fen: int | None
    success_time: datetime | None


class FactsMismatch(ValueError):
    """The provider's facts do not match our record: never settle on them."""


def check_trade_facts(facts: TradeFacts, *, mchid: str, amount_fen: int, payer_openid: str) -> None:
    if facts.mchid != mchid:
        raise FactsMismatch(f"mchid {facts.mchid} is not this merchant's")
    if facts.trade_state in PAID and facts.total_fen != amount_fen:
        raise FactsMismatch(f"amount {facts.total_fen} fen does not match the order's {amount_fen}")
    if facts.payer_openid and payer_openid and facts.payer_openid != payer_openid:
        raise FactsMismatch("payer does not match the order's payer")


def check_refund_facts(
    facts: RefundFacts, *, mchid: str, amount_fen: int, out_trade_no: str | None = None
) -> None:
    if facts.mchid is not None and facts.mchid != mchid:
        raise FactsMismatch(f"mchid {facts.mchid} is not this merchant's")
    if None not in (facts.out_trade_no, out_trade_no) and facts.out_trade_no != out_trade_no:
        raise FactsMismatch(
            f"refund {facts.out_refund_no} is of order {out_trade_no}, not {facts.out_trade_no}"
        )
    if facts.refund_fen is not None and facts.refund_fen != amount_fen:
        raise FactsMismatch(
            f"refund amount {facts.refund_fen} fen does not match our {amount_fen} fen"
        )


def ledger_transfer_id(order_id: str) -> str:
    return f"payment:{order_id}"


def refund_transfer_id(refund_id: str) -> str:
    return f"refund:{refund_id}"


PROVIDER_CLEARING_OWNER = "provider:{provider}"


def clearing_owner(provider: str) -> str:
    return PROVIDER_CLEARING_OWNER.format(provider=provider)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def trade_facts_from_resource(data: dict[str, object]) -> TradeFacts:
    """Facts from a decrypted TRANSACTION.* resource or an order-query answer (same shape)."""
    amount = data.get("amount")
    payer = data.get("payer")
    try:
        state = TradeState(str(data["trade_state"]))
        return TradeFacts(
            mchid=str(data["mchid"]),
            out_trade_no=str(data["out_trade_no"]),
            trade_state=state,
            transaction_id=str(data["transaction_id"]) if data.get("transaction_id") else None,
            total_fen=int(amount["total"])
            if isinstance(amount, dict) and "total" in amount
            else None,
            payer_openid=str(payer["openid"])
            if isinstance(payer, dict) and payer.get("openid")
            else None,
            success_time=_parse_time(data.get("success_time")),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise FactsMismatch(f"malformed transaction resource: {exc}") from exc


def refund_facts_from_resource(data: dict[str, object]) -> RefundFacts:
    """Facts from a decrypted REFUND.* resource (``refund_status``) or a refund query
    (``status``)."""
    amount = data.get("amount")
    try:
        status = RefundStatus(str(data.get("refund_status") or data["status"]))
        return RefundFacts(
            mchid=str(data["mchid"]) if data.get("mchid") else None,
            out_trade_no=str(data["out_trade_no"]) if data.get("out_trade_no") else None,
            out_refund_no=str(data["out_refund_no"]),
            refund_id=str(data["refund_id"]) if data.get("refund_id") else None,
            status=status,
            refund_fen=int(amount["refund"])
            if isinstance(amount, dict) and "refund" in amount
            else None,
            success_time=_parse_time(data.get("success_time")),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise FactsMismatch(f"malformed refund resource: {exc}") from exc


@dataclass(frozen=True)
class Purchase:
    """What a paid order says about the purchase, by the metadata contract of checkouts:
    ``user_id``, ``store_id`` and ``categories`` (read by campaigns and the points programme)."""

    user_id: str | None
    store_id: str | None
    categories: frozenset[str]

    @classmethod
    def of(cls, order: Any) -> Purchase:
        meta = order.metadata_ or {}
        user = meta.get("user_id")
        store = meta.get("store_id")
        cats = meta.get("categories") or []
        return cls(
            str(user) if user else None,
            str(store) if store else None,
            frozenset(str(c) for c in cats) if isinstance(cats, list) else frozenset(),
        )
