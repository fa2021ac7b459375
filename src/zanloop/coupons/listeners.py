"""Coupons listen to payments: a checkout's payment paid, closed, failed or refunded settles
the coupon it used. Each runs in the payment's transaction, and each is a guarded UPDATE, so a
replayed event changes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.coupons import checkout


def _coupon_metadata(event: events.Event) -> dict[str, Any] | None:
    """The order's metadata if a checkout used a coupon on it (other orders cost no query)."""
    metadata: dict[str, Any] = event.data.get("metadata") or {}
    return metadata if metadata.get("coupon_id") else None


def _on_paid(session: Session, event: events.Event) -> None:
    metadata = _coupon_metadata(event)
    if metadata is not None:
        checkout.on_paid(session, event.tenant_id, event.data["order_id"], metadata)


def _on_unpaid(session: Session, event: events.Event) -> None:
    metadata = _coupon_metadata(event)
    if metadata is not None:
        checkout.on_unpaid(
            session, event.tenant_id, event.data["order_id"], str(metadata["coupon_id"])
        )


def _on_refunded(session: Session, event: events.Event) -> None:
    metadata = _coupon_metadata(event)
    if metadata is not None:
        checkout.on_refunded(
            session,
            event.tenant_id,
            event.data["order_id"],
            str(metadata["coupon_id"]),
            int(event.data["amount_fen"]),
            int(event.data["refunded_fen"]),
        )


def register() -> None:
    events.subscribe("payment.succeeded", _on_paid)
    events.subscribe("payment.closed", _on_unpaid)
    events.subscribe("payment.failed", _on_unpaid)
    events.subscribe("payment.refunded", _on_refunded)
