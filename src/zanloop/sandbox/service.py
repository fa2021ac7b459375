"""Sandbox workflows: the provider's side of orders, refunds and notifications."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from zanloop.errors import InvalidState, NotFound, ProviderError
from zanloop.jobs import service as jobs
from zanloop.kit.clock import utcnow
from zanloop.payments import v3
from zanloop.sandbox import domain
from zanloop.sandbox.tables import (
    SandboxMerchant,
    SandboxNotification,
    SandboxOrder,
    SandboxPlatformKey,
    SandboxRefund,
)

DELIVER_JOB = "sandbox.deliver_notification"
SETTLE_REFUND_JOB = "sandbox.settle_refund"
# A delivery schedules its own next attempt; the job itself is retried only when the handler
# crashes (e.g. the database was briefly away), so the delivery is never left stranded.
JOB_ATTEMPTS = 3


# Keys ----------------------------------------------------------------------------------------


def platform_key(session: Session) -> SandboxPlatformKey:
    """The sandbox's platform key pair, created on first use."""
    key = session.scalar(
        select(SandboxPlatformKey).order_by(SandboxPlatformKey.created_at).limit(1)
    )
    if key is None:
        key = SandboxPlatformKey(
            key_id="PUB_KEY_ID_SANDBOX_" + uuid.uuid4().hex[:16].upper(),
            private_key_pem=v3.private_key_pem(v3.generate_private_key()),
        )
        session.add(key)
        session.flush()
    return key


def _load_private(pem: str) -> rsa.RSAPrivateKey:
    # The sandbox made this key itself: no need to validate it on every signature.
    return v3.load_private_key(pem, validate=False)


def platform_public_key(session: Session) -> tuple[str, str]:
    """(public key id, public key PEM): what a merchant configures to verify notifications."""
    key = platform_key(session)
    return key.key_id, v3.public_key_pem(_load_private(key.private_key_pem))


def register_merchant(session: Session) -> SandboxMerchant:
    merchant = SandboxMerchant(
        mchid=domain.new_mchid(),
        appid="wxsandbox" + uuid.uuid4().hex[:9],
        apiv3_key=domain.new_apiv3_key(),
    )
    session.add(merchant)
    session.flush()
    return merchant


def _merchant(session: Session, mchid: str) -> SandboxMerchant:
    merchant = session.get(SandboxMerchant, mchid)
    if merchant is None:
        raise ProviderError(f"sandbox: unknown mchid {mchid}")
    return merchant


# Orders --------------------------------------------------------------------------------------


def create_order(
    session: Session,
    *,
    mchid: str,
    appid: str,
    out_trade_no: str,
    description: str,
    amount_fen: int,
    payer_openid: str,
    attach: str | None,
    notify_url: str,
    expires_at: datetime,
) -> str:
    _merchant(session, mchid)
    existing = session.get(SandboxOrder, (mchid, out_trade_no))
    if existing is not None:
        if existing.amount_fen != amount_fen or existing.payer_openid != payer_openid:
            raise ProviderError(
                "sandbox: INVALID_REQUEST out_trade_no reused with other parameters"
            )
        return existing.prepay_id
    now = utcnow()
    order = SandboxOrder(
        mchid=mchid,
        out_trade_no=out_trade_no,
        appid=appid,
        prepay_id=domain.new_prepay_id(now),
        description=description,
        amount_fen=amount_fen,
        payer_openid=payer_openid,
        attach=attach,
        notify_url=notify_url,
        trade_state="NOTPAY",
        expires_at=expires_at,
        created_at=now,
    )
    session.add(order)
    session.flush()
    return order.prepay_id


def _order(session: Session, mchid: str, out_trade_no: str, *, lock: bool = False) -> SandboxOrder:
    stmt = select(SandboxOrder).where(
        SandboxOrder.mchid == mchid, SandboxOrder.out_trade_no == out_trade_no
    )
    if lock:
        stmt = stmt.with_for_update()
    order = session.scalar(stmt)
    if order is None:
        raise NotFound(f"sandbox has no order {out_trade_no}")
    return order


def _order_resource(order: SandboxOrder) -> dict[str, Any]:
    """An order as WeChat Pay describes it in a query answer or a TRANSACTION resource."""
    trade_state = order.trade_state
    data: dict[str, Any] = {
        "appid": order.appid,
        "mchid": order.mchid,
        "out_trade_no": order.out_trade_no,
        "trade_state": trade_state,
        "trade_state_desc": {
            "SUCCESS": "支付成功",
            "REFUND": "转入退款",
            "NOTPAY": "未支付",
            "CLOSED": "已关闭",
            "PAYERROR": "支付失败",
        }.get(trade_state, trade_state),
        "payer": {"openid": order.payer_openid},
        "amount": {"total": order.amount_fen, "currency": "CNY"},
    }
    if order.attach:
        data["attach"] = order.attach
    if order.transaction_id:
        data |= {
            "transaction_id": order.transaction_id,
            "trade_type": "JSAPI",
            "bank_type": "OTHERS",
            "success_time": domain.rfc3339(order.success_time or utcnow()),
        }
        data["amount"] |= {"payer_total": order.amount_fen, "payer_currency": "CNY"}
    return data


def query_order(session: Session, mchid: str, out_trade_no: str) -> dict[str, Any] | None:
    order = session.get(SandboxOrder, (mchid, out_trade_no))
    return None if order is None else _order_resource(order)


def close_order(session: Session, mchid: str, out_trade_no: str) -> None:
    order = _order(session, mchid, out_trade_no, lock=True)
    if order.trade_state in ("SUCCESS", "REFUND"):
        raise ProviderError("sandbox: ORDERPAID the order is paid and cannot be closed")
    order.trade_state = "CLOSED"


def pay(
    session: Session, mchid: str, out_trade_no: str, payer_openid: str | None = None
) -> dict[str, Any]:
    """The buyer pays: the order succeeds and a TRANSACTION.SUCCESS notification is queued."""
    order = _order(session, mchid, out_trade_no, lock=True)
    if order.trade_state != "NOTPAY":
        raise InvalidState(f"sandbox order {out_trade_no} is {order.trade_state}, not NOTPAY")
    now = utcnow()
    if order.expires_at < now:
        raise InvalidState(
            f"sandbox order {out_trade_no} expired at {order.expires_at.isoformat()}"
        )
    if payer_openid and payer_openid != order.payer_openid:
        raise InvalidState("sandbox: this order was placed for another payer")
    order.trade_state = "SUCCESS"
    order.transaction_id = domain.new_transaction_id(now)
    order.success_time = now
    session.flush()
    resource = _order_resource(order)
    _notify(
        session,
        order.mchid,
        order.notify_url,
        "TRANSACTION.SUCCESS",
        "transaction",
        "支付成功",
        resource,
    )
    return resource


def fail(session: Session, mchid: str, out_trade_no: str) -> dict[str, Any]:
    """The buyer's payment fails (WeChat sends no notification for that; a query shows it)."""
    order = _order(session, mchid, out_trade_no, lock=True)
    if order.trade_state != "NOTPAY":
        raise InvalidState(f"sandbox order {out_trade_no} is {order.trade_state}, not NOTPAY")
    order.trade_state = "PAYERROR"
    session.flush()
    return _order_resource(order)


def find_order_mchid(session: Session, mchids: list[str], out_trade_no: str) -> str:
    mchid = session.scalar(
        select(SandboxOrder.mchid).where(
            SandboxOrder.mchid.in_(mchids), SandboxOrder.out_trade_no == out_trade_no
        )
    )
    if mchid is None:
        raise NotFound(f"sandbox has no order {out_trade_no}")
    return mchid


# Refunds -------------------------------------------------------------------------------------


def _refund_resource(refund: SandboxRefund) -> dict[str, Any]:
    data: dict[str, Any] = {
        "mchid": refund.mchid,
        "out_trade_no": refund.out_trade_no,
        "transaction_id": refund.transaction_id,
        "out_refund_no": refund.out_refund_no,
        "refund_id": refund.refund_id,
        "status": refund.status,
        "user_received_account": "支付用户零钱",
        "create_time": domain.rfc3339(refund.created_at),
        "amount": {
            "total": refund.total_fen,
            "refund": refund.amount_fen,
            "payer_total": refund.total_fen,
            "payer_refund": refund.amount_fen,
            "currency": "CNY",
        },
    }
    if refund.success_time:
        data["success_time"] = domain.rfc3339(refund.success_time)
    return data


def create_refund(
    session: Session,
    *,
    mchid: str,
    out_trade_no: str,
    out_refund_no: str,
    amount_fen: int,
    total_fen: int,
    reason: str,
    notify_url: str,
    settle_after_seconds: float = 3.0,
) -> dict[str, Any]:
    existing = session.get(SandboxRefund, (mchid, out_refund_no))
    if existing is not None:
        return _refund_resource(existing)
    order = _order(session, mchid, out_trade_no, lock=True)
    if order.trade_state not in ("SUCCESS", "REFUND"):
        raise ProviderError(
            f"sandbox: order {out_trade_no} is {order.trade_state}; nothing to refund"
        )
    if total_fen != order.amount_fen:
        raise ProviderError("sandbox: PARAM_ERROR total does not match the order")
    if order.refunded_fen + amount_fen > order.amount_fen:
        raise ProviderError("sandbox: NOT_ENOUGH refund exceeds what was paid")
    now = utcnow()
    order.refunded_fen += amount_fen
    order.trade_state = "REFUND"
    refund = SandboxRefund(
        mchid=mchid,
        out_refund_no=out_refund_no,
        refund_id=domain.new_refund_id(now),
        out_trade_no=out_trade_no,
        transaction_id=order.transaction_id,
        amount_fen=amount_fen,
        total_fen=total_fen,
        reason=reason,
        notify_url=notify_url,
        status="PROCESSING",
        created_at=now,
    )
    session.add(refund)
    session.flush()
    jobs.enqueue(
        session,
        SETTLE_REFUND_JOB,
        {"mchid": mchid, "out_refund_no": out_refund_no},
        run_at=now + timedelta(seconds=settle_after_seconds),
    )
    return _refund_resource(refund)


def settle_refund(session: Session, mchid: str, out_refund_no: str) -> None:
    refund = session.get(SandboxRefund, (mchid, out_refund_no))
    if refund is None or refund.status != "PROCESSING":
        return
    refund.status = "SUCCESS"
    refund.success_time = utcnow()
    session.flush()
    resource = _refund_resource(refund)
    resource["refund_status"] = resource.pop("status")
    _notify(session, mchid, refund.notify_url, "REFUND.SUCCESS", "refund", "退款成功", resource)


def query_refund(session: Session, mchid: str, out_refund_no: str) -> dict[str, Any] | None:
    refund = session.get(SandboxRefund, (mchid, out_refund_no))
    return None if refund is None else _refund_resource(refund)


# Notifications -------------------------------------------------------------------------------


def notification_body(
    merchant: SandboxMerchant,
    notification_id: str,
    event_type: str,
    original_type: str,
    summary: str,
    resource: dict[str, Any],
    now: datetime,
) -> str:
    encrypted = v3.encrypt_resource(
        merchant.apiv3_key,
        json.dumps(resource, ensure_ascii=False, separators=(",", ":")),
        associated_data=original_type,
        original_type=original_type,
    )
    return json.dumps(
        {
            "id": notification_id,
            "create_time": domain.rfc3339(now),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": encrypted,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _notify(
    session: Session,
    mchid: str,
    notify_url: str,
    event_type: str,
    original_type: str,
    summary: str,
    resource: dict[str, Any],
) -> SandboxNotification:
    now = utcnow()
    notification_id = str(uuid.uuid4())
    notification = SandboxNotification(
        id=notification_id,
        mchid=mchid,
        notify_url=notify_url,
        event_type=event_type,
        # The body, and so its id, stays the same across retries, as WeChat's does.
        body=notification_body(
            _merchant(session, mchid),
            notification_id,
            event_type,
            original_type,
            summary,
            resource,
            now,
        ),
        status="PENDING",
        next_attempt_at=now,
        created_at=now,
    )
    session.add(notification)
    session.flush()
    jobs.enqueue(
        session, DELIVER_JOB, {"notification_id": notification.id}, max_attempts=JOB_ATTEMPTS
    )
    return notification


def signed_delivery(session: Session, notification_id: str) -> tuple[str, str, dict[str, str]]:
    """(notify_url, body, headers) for the next delivery attempt, signed now."""
    notification = session.get(SandboxNotification, notification_id)
    if notification is None:
        raise NotFound(f"sandbox notification {notification_id} not found")
    key = platform_key(session)
    headers = v3.sign_body(
        _load_private(key.private_key_pem), key.key_id, notification.body, int(utcnow().timestamp())
    ).as_dict()
    headers["Content-Type"] = "application/json"
    return notification.notify_url, notification.body, headers


def record_attempt(
    session: Session,
    notification_id: str,
    status_code: int | None,
    error: str | None,
    retry_scale: float,
) -> None:
    notification = session.get(SandboxNotification, notification_id)
    if notification is None:
        return
    now = utcnow()
    notification.attempts += 1
    notification.last_status_code = status_code
    notification.last_error = error
    if status_code is not None and domain.acknowledged(status_code):
        notification.status = "DELIVERED"
        notification.delivered_at = now
        notification.next_attempt_at = None
        return
    delay = domain.retry_delay(notification.attempts, retry_scale)
    if delay is None:
        notification.status = "FAILED"
        notification.next_attempt_at = None
        return
    notification.status = "RETRYING"
    notification.next_attempt_at = now + timedelta(seconds=delay)
    jobs.enqueue(
        session,
        DELIVER_JOB,
        {"notification_id": notification_id},
        run_at=notification.next_attempt_at,
        max_attempts=JOB_ATTEMPTS,
    )


def list_notifications(session: Session, mchid: str, limit: int = 50) -> list[SandboxNotification]:
    return list(
        session.scalars(
            select(SandboxNotification)
            .where(SandboxNotification.mchid == mchid)
            .order_by(SandboxNotification.created_at.desc())
            .limit(limit)
        )
    )


def get_merchant(session: Session, mchid: str) -> SandboxMerchant:
    return _merchant(session, mchid)
