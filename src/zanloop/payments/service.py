"""Payment workflows: orders, refunds, notifications and reconciliation.

A payment succeeds only on the provider's word (a verified notification or an order query).
Settling is an atomic state change guarded by the current state, followed by a ledger posting
whose transfer id is derived from the order: however often the provider repeats itself, and
however many processes hear it at once, an order settles once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.orm import Session

from zanloop import events
from zanloop.config import Settings
from zanloop.errors import (
    DuplicateConflict,
    NotFound,
    ProviderError,
    Unprocessable,
    ZanloopError,
)
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.kit.money import Asset
from zanloop.ledger import service as ledger
from zanloop.ledger.domain import Leg, TransferRequest
from zanloop.ops import metrics
from zanloop.payments import domain, repository, v3
from zanloop.payments.domain import FactsMismatch, RefundFacts, RefundStatus, TradeFacts, TradeState
from zanloop.payments.providers import OrderRequest, RefundRequest, jsapi_pay_params, provider_for
from zanloop.payments.schemas import PaymentOrderCreate, ProviderConfigUpdate, RefundCreate
from zanloop.payments.tables import PaymentOrder, PaymentProviderConfig, Refund

log = structlog.get_logger(__name__)


# Provider configuration ----------------------------------------------------------------------


def provision_sandbox(session: Session, tenant_id: str) -> PaymentProviderConfig:
    """Give a tenant a sandbox merchant: its own mchid, APIv3 key and merchant key pair."""
    from zanloop.sandbox import service as sandbox

    merchant = sandbox.register_merchant(session)
    key_id, public_pem = sandbox.platform_public_key(session)
    config = PaymentProviderConfig(
        tenant_id=tenant_id,
        provider="sandbox",
        mchid=merchant.mchid,
        appid=merchant.appid,
        merchant_serial_no=new_id("serial").upper(),
        merchant_private_key_pem=v3.private_key_pem(v3.generate_private_key()),
        apiv3_key=merchant.apiv3_key,
        platform_public_key_id=key_id,
        platform_public_key_pem=public_pem,
        updated_at=utcnow(),
    )
    repository.save_config(session, config)
    return config


def configure(
    session: Session, tenant_id: str, update: ProviderConfigUpdate
) -> PaymentProviderConfig:
    try:
        v3.load_private_key(update.merchant_private_key_pem)
    except (ValueError, TypeError) as exc:
        raise Unprocessable("not a PEM RSA private key", field="merchant_private_key_pem") from exc
    try:
        v3.load_public_key(update.platform_public_key_pem)
    except (ValueError, TypeError) as exc:
        raise Unprocessable("not a PEM RSA public key", field="platform_public_key_pem") from exc
    config = PaymentProviderConfig(tenant_id=tenant_id, updated_at=utcnow(), **update.model_dump())
    repository.save_config(session, config)
    return config


def get_config(session: Session, tenant_id: str) -> PaymentProviderConfig:
    config = repository.get_config(session, tenant_id)
    if config is None:
        raise NotFound("this tenant has no payment provider configured")
    return config


def notify_url(settings: Settings, tenant_id: str) -> str:
    return f"{settings.base_url}/v1/payments/notify/{tenant_id}"


# Orders --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedOrder:
    order: PaymentOrder
    pay_params: dict[str, str]
    replayed: bool


def create_order(
    session: Session, settings: Settings, tenant_id: str, data: PaymentOrderCreate
) -> CreatedOrder:
    config = get_config(session, tenant_id)
    now = utcnow()
    expires_at = now + timedelta(minutes=data.expire_minutes)
    order_id = new_id("pay")
    out_trade_no = data.out_trade_no or order_id.replace("_", "")[:32]
    row = {
        "id": order_id,
        "tenant_id": tenant_id,
        "out_trade_no": out_trade_no,
        "provider": config.provider,
        "mchid": config.mchid,
        "amount_fen": data.amount_fen,
        "currency": data.currency,
        "description": data.description,
        "payer_openid": data.payer_openid,
        "payee": data.payee,
        "attach": data.attach,
        "metadata": data.metadata,
        "status": TradeState.NOTPAY.value,
        "refund_reserved_fen": 0,
        "refunded_fen": 0,
        "expires_at": expires_at,
        "created_at": now,
        "updated_at": now,
    }
    if not repository.insert_order(session, row):
        existing = repository.get_order_by_out_trade_no(session, tenant_id, out_trade_no)
        assert existing is not None
        same = (existing.amount_fen, existing.payer_openid, existing.description) == (
            data.amount_fen,
            data.payer_openid,
            data.description,
        )
        if not same:
            raise DuplicateConflict(f"out_trade_no {out_trade_no} is already used by another order")
        return CreatedOrder(existing, jsapi_pay_params(config, existing.prepay_id or ""), True)
    provider = provider_for(config.provider, settings)
    prepay_id = provider.create_order(
        session,
        config,
        OrderRequest(
            out_trade_no=out_trade_no,
            description=data.description,
            amount_fen=data.amount_fen,
            currency=data.currency,
            payer_openid=data.payer_openid,
            attach=data.attach,
            notify_url=notify_url(settings, tenant_id),
            expires_at=expires_at,
        ),
    )
    repository.set_prepay_id(session, order_id, prepay_id)
    order = repository.get_order(session, tenant_id, order_id)
    assert order is not None
    return CreatedOrder(order, jsapi_pay_params(config, prepay_id), False)


def get_order(session: Session, tenant_id: str, order_id: str) -> PaymentOrder:
    order = repository.get_order(session, tenant_id, order_id)
    if order is None:
        raise NotFound(f"payment order {order_id} not found")
    return order


def find_order(session: Session, tenant_id: str, out_trade_no: str) -> PaymentOrder:
    order = repository.get_order_by_out_trade_no(session, tenant_id, out_trade_no)
    if order is None:
        raise NotFound(f"no payment order with out_trade_no {out_trade_no}")
    return order


def list_orders(
    session: Session, tenant_id: str, before_id: str | None, limit: int, status: str | None
) -> list[PaymentOrder]:
    return repository.list_orders(session, tenant_id, before_id, limit, status)


def close_order(
    session: Session, settings: Settings, tenant_id: str, order_id: str
) -> PaymentOrder:
    """Close an unpaid order. If the provider says the buyer has paid meanwhile, the order is
    settled instead and comes back SUCCESS: the money moved, so the payment stands."""
    order = get_order(session, tenant_id, order_id)
    domain.check_closable(TradeState(order.status))
    if order.status == TradeState.CLOSED.value:
        return order
    synced = sync_order(session, settings, tenant_id, order_id)
    if TradeState(synced.status) in domain.PAID:
        return synced
    config = get_config(session, tenant_id)
    provider_for(order.provider, settings).close_order(session, config, order.out_trade_no)
    moved = repository.move_order(
        session, order.id, domain.sources_for(TradeState.CLOSED), "CLOSED"
    )
    closed = get_order(session, tenant_id, order_id)
    if moved:
        _publish(session, "payment.closed", closed)
    return closed


def sync_order(session: Session, settings: Settings, tenant_id: str, order_id: str) -> PaymentOrder:
    """Ask the provider for the order's state and settle on its answer (the query fallback)."""
    order = get_order(session, tenant_id, order_id)
    config = get_config(session, tenant_id)
    facts = provider_for(order.provider, settings).query_order(session, config, order.out_trade_no)
    if facts is not None:
        try:
            apply_trade_facts(session, config.mchid, order, facts)
        except FactsMismatch as exc:
            raise ProviderError(f"the provider's answer does not match our order: {exc}") from exc
    return get_order(session, tenant_id, order_id)


def apply_trade_facts(session: Session, mchid: str, order: PaymentOrder, facts: TradeFacts) -> bool:
    """Move the order (loaded in ``session``) to the provider's state, checked against the
    merchant ``mchid``; returns whether anything changed."""
    domain.check_trade_facts(
        facts, mchid=mchid, amount_fen=order.amount_fen, payer_openid=order.payer_openid
    )
    target = facts.trade_state
    if target is TradeState.REFUND:
        # Refunds settle through their own notifications; the order follows them.
        return False
    current = TradeState(order.status)
    if current == target or not domain.can_move(current, target):
        return False
    values: dict[str, Any] = {}
    if target is TradeState.SUCCESS:
        values = {
            "transaction_id": facts.transaction_id,
            "success_time": facts.success_time or utcnow(),
        }
    if not repository.move_loaded_order(
        session, order, domain.sources_for(target), target.value, **values
    ):
        return False
    if target is TradeState.SUCCESS:
        ledger.post(
            session,
            order.tenant_id,
            TransferRequest(
                transfer_id=domain.ledger_transfer_id(order.id),
                asset=Asset.CNY,
                legs=(
                    Leg(
                        domain.clearing_owner(order.provider),
                        -order.amount_fen,
                        overdraft_allowed=True,
                    ),
                    # Overdraft: a refund must post even if the payee already moved the money on.
                    Leg(order.payee, order.amount_fen, overdraft_allowed=True),
                ),
                description=f"payment {order.out_trade_no}",
                metadata={"order_id": order.id, "transaction_id": facts.transaction_id},
            ),
        )
        metrics.LEDGER_TRANSFERS.labels(kind="payment").inc()
        _publish(session, "payment.succeeded", order)
    elif target is TradeState.CLOSED:
        _publish(session, "payment.closed", order)
    elif target is TradeState.PAYERROR:
        _publish(session, "payment.failed", order)
    return True


# Refunds -------------------------------------------------------------------------------------


def request_refund(
    session: Session, settings: Settings, tenant_id: str, order_id: str, data: RefundCreate
) -> Refund:
    order = get_order(session, tenant_id, order_id)
    if data.out_refund_no:
        existing = repository.get_refund_by_out_refund_no(session, tenant_id, data.out_refund_no)
        if existing is not None:
            if existing.order_id != order.id or (
                data.amount_fen is not None and existing.amount_fen != data.amount_fen
            ):
                raise DuplicateConflict(
                    f"out_refund_no {data.out_refund_no} is used by another refund"
                )
            return existing
    amount = (
        data.amount_fen
        if data.amount_fen is not None
        else order.amount_fen - order.refund_reserved_fen
    )
    domain.check_refundable(
        TradeState(order.status), order.amount_fen, order.refund_reserved_fen, amount
    )
    if not repository.reserve_refund(session, order.id, amount):
        raise Unprocessable("the refund exceeds what is left to refund", field="amount_fen")
    refund_pk = new_id("rfd")
    out_refund_no = data.out_refund_no or refund_pk.replace("_", "")
    if not repository.insert_refund(
        session,
        {
            "id": refund_pk,
            "tenant_id": tenant_id,
            "order_id": order.id,
            "out_refund_no": out_refund_no,
            "amount_fen": amount,
            "reason": data.reason,
            "status": RefundStatus.PROCESSING.value,
            "created_at": utcnow(),
        },
    ):
        raise DuplicateConflict(f"out_refund_no {out_refund_no} is used by another refund")
    config = get_config(session, tenant_id)
    facts = provider_for(order.provider, settings).refund(
        session,
        config,
        RefundRequest(
            out_trade_no=order.out_trade_no,
            out_refund_no=out_refund_no,
            amount_fen=amount,
            total_fen=order.amount_fen,
            reason=data.reason,
            notify_url=notify_url(settings, tenant_id),
        ),
    )
    refund = repository.get_refund(session, tenant_id, refund_pk)
    assert refund is not None
    if facts.refund_id:
        refund.refund_id = facts.refund_id
    apply_refund_facts(session, config.mchid, refund, facts)
    return refund


def apply_refund_facts(session: Session, mchid: str, refund: Refund, facts: RefundFacts) -> bool:
    """Settle the refund on the provider's facts, checked against the merchant ``mchid``;
    returns whether anything changed."""
    order = repository.get_order(session, refund.tenant_id, refund.order_id)
    assert order is not None
    domain.check_refund_facts(
        facts, mchid=mchid, amount_fen=refund.amount_fen, out_trade_no=order.out_trade_no
    )
    if facts.status is RefundStatus.PROCESSING:
        return False
    values: dict[str, Any] = {"refund_id": facts.refund_id or refund.refund_id}
    if facts.status is RefundStatus.SUCCESS:
        values["success_time"] = facts.success_time or utcnow()
    if not repository.move_refund(session, refund.id, facts.status.value, **values):
        return False
    if facts.status is RefundStatus.SUCCESS:
        repository.add_refunded(session, order.id, refund.amount_fen)
        repository.move_order(session, order.id, domain.sources_for(TradeState.REFUND), "REFUND")
        ledger.reverse(
            session,
            order.tenant_id,
            domain.ledger_transfer_id(order.id),
            domain.refund_transfer_id(refund.id),
            amount=refund.amount_fen,
            description=f"refund {refund.out_refund_no} of {order.out_trade_no}",
        )
        metrics.LEDGER_TRANSFERS.labels(kind="refund").inc()
        session.refresh(refund)
        _publish(session, "payment.refunded", get_order(session, order.tenant_id, order.id), refund)
    else:
        repository.release_refund(session, order.id, refund.amount_fen)
        session.refresh(refund)
        _publish(session, "refund.failed", get_order(session, order.tenant_id, order.id), refund)
    return True


def get_refund(session: Session, tenant_id: str, refund_id: str) -> Refund:
    refund = repository.get_refund(session, tenant_id, refund_id)
    if refund is None:
        raise NotFound(f"refund {refund_id} not found")
    return refund


def list_refunds(session: Session, tenant_id: str, order_id: str) -> list[Refund]:
    get_order(session, tenant_id, order_id)
    return repository.list_refunds(session, tenant_id, order_id)


# Reconciliation ------------------------------------------------------------------------------


def reconcile(session: Session, settings: Settings, limit: int = 100) -> dict[str, int]:
    """Settle what notifications missed: query unpaid orders older than the reconcile delay
    (closing those past their expiry) and refunds still processing.

    Each order and refund is reconciled in a savepoint of its own: one the provider cannot
    answer for (its gateway is down, its facts do not match ours) is logged and left for the
    next run, and does not stop every other tenant's reconciliation."""
    cutoff = utcnow() - timedelta(seconds=settings.reconcile_after_seconds)
    changed = {"orders": 0, "closed": 0, "refunds": 0}
    for order in repository.stale_unpaid(session, cutoff, limit):
        outcome = _isolated(session, order.id, _reconcile_order, settings, order)
        if outcome is not None:
            changed[outcome] += 1
    for refund in repository.processing_refunds(session, cutoff, limit):
        if _isolated(session, refund.id, _reconcile_refund, settings, refund):
            changed["refunds"] += 1
    return changed


def _isolated(
    session: Session, what: str, work: Callable[..., str | None], *args: Any
) -> str | None:
    try:
        with session.begin_nested():
            return work(session, *args)
    except (ZanloopError, FactsMismatch) as exc:
        log.error("reconciliation skipped", id=what, error=str(exc), type=type(exc).__name__)
        return None


def _reconcile_order(session: Session, settings: Settings, order: PaymentOrder) -> str | None:
    config = repository.get_config(session, order.tenant_id)
    if config is None:
        return None
    provider = provider_for(order.provider, settings)
    facts = provider.query_order(session, config, order.out_trade_no)
    if facts is not None and apply_trade_facts(session, config.mchid, order, facts):
        return "orders"
    if order.expires_at < utcnow():
        provider.close_order(session, config, order.out_trade_no)
        if repository.move_order(
            session, order.id, domain.sources_for(TradeState.CLOSED), "CLOSED"
        ):
            _publish(session, "payment.closed", get_order(session, order.tenant_id, order.id))
            return "closed"
    return None


def _reconcile_refund(session: Session, settings: Settings, refund: Refund) -> str | None:
    config = repository.get_config(session, refund.tenant_id)
    order = repository.get_order(session, refund.tenant_id, refund.order_id)
    if config is None or order is None:
        return None
    provider = provider_for(order.provider, settings)
    facts = provider.query_refund(session, config, refund.out_refund_no)
    if facts is not None and apply_refund_facts(session, config.mchid, refund, facts):
        return "refunds"
    return None


# Events --------------------------------------------------------------------------------------


def _publish(
    session: Session, name: str, order: PaymentOrder, refund: Refund | None = None
) -> None:
    """Publish an event about ``order`` as it now stands in the database (and ``refund``)."""
    data: dict[str, Any] = {
        "order_id": order.id,
        "out_trade_no": order.out_trade_no,
        "status": order.status,
        "amount_fen": order.amount_fen,
        "refunded_fen": order.refunded_fen,
        "currency": order.currency,
        "payer_openid": order.payer_openid,
        "payee": order.payee,
        "attach": order.attach,
        "metadata": order.metadata_,
        "transaction_id": order.transaction_id,
    }
    if refund is not None:
        data["refund_id"] = refund.id
        data["refund"] = {
            "id": refund.id,
            "out_refund_no": refund.out_refund_no,
            "amount_fen": refund.amount_fen,
            "status": refund.status,
        }
    events.publish(session, events.Event(name, order.tenant_id, data))
