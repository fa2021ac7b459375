"""Pins listen to payments (a pin's order paid, failed, refunded) and to the risk review queue
(a held pin approved or rejected). Each runs in the transaction of its cause."""

from __future__ import annotations

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.pins import service


def _is_pin(event: events.Event) -> bool:
    return (event.data.get("metadata") or {}).get("kind") == service.PIN_KIND


def _on_paid(session: Session, event: events.Event) -> None:
    if _is_pin(event):
        service.on_paid(session, event.data["order_id"])


def _on_failed(session: Session, event: events.Event) -> None:
    if _is_pin(event):
        service.on_payment_failed(session, event.data["order_id"])


def _on_refunded(session: Session, event: events.Event) -> None:
    if _is_pin(event):
        service.on_refunded(session, event.data["order_id"], event.data["refund"]["id"])


def _on_refund_failed(session: Session, event: events.Event) -> None:
    if _is_pin(event):
        service.on_refund_failed(session, event.data["order_id"])


def _on_review(session: Session, event: events.Event) -> None:
    if event.data.get("action") == "pin.purchase":
        service.on_review_resolved(
            session,
            event.tenant_id,
            event.data["decision_id"],
            approved=event.name == "risk.review.approved",
        )


def register() -> None:
    events.subscribe("payment.succeeded", _on_paid)
    events.subscribe("payment.closed", _on_failed)
    events.subscribe("payment.failed", _on_failed)
    events.subscribe("payment.refunded", _on_refunded)
    events.subscribe("refund.failed", _on_refund_failed)
    events.subscribe("risk.review.approved", _on_review)
    events.subscribe("risk.review.rejected", _on_review)
