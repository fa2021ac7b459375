"""The programme listens to payments made through zanloop: a completed payment is ingested as
a ``payment.succeeded`` event of its buyer, and a refund claws back what it earned. Both run in
the payment's own transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.loyalty import service


def _on_paid(session: Session, event: events.Event) -> None:
    service.on_payment_succeeded(session, event.tenant_id, event.data["order_id"])


def _on_refunded(session: Session, event: events.Event) -> None:
    service.reverse_order(session, event.tenant_id, event.data["order_id"], "payment refunded")


def register() -> None:
    events.subscribe("payment.succeeded", _on_paid)
    events.subscribe("payment.refunded", _on_refunded)
