"""Campaigns listen to payments: a completed payment is evaluated, a refunded one takes back
what it earned. Both run in the payment's own transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.campaigns import service


def _on_paid(session: Session, event: events.Event) -> None:
    service.on_payment_succeeded(session, event.tenant_id, event.data["order_id"])


def _on_refunded(session: Session, event: events.Event) -> None:
    service.on_payment_refunded(session, event.tenant_id, event.data["order_id"])


def register() -> None:
    events.subscribe("payment.succeeded", _on_paid)
    events.subscribe("payment.refunded", _on_refunded)
