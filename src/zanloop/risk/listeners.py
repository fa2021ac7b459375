"""Risk listens to payments: a refunded payment that earned a reward is remembered against the
user (the refund-after-reward rule), and a review still waiting on it is rejected."""

from __future__ import annotations

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.kit.clock import utcnow
from zanloop.risk import reviews, service


def _on_refunded(session: Session, event: events.Event) -> None:
    refs = [ref for ref in (event.data.get("order_id"), event.data.get("out_trade_no")) if ref]
    service.record_refund_after_reward(session, event.tenant_id, refs, utcnow())
    on_payment = service.decisions_on_payment(session, event.tenant_id, refs)
    reviews.reject_pending_for(session, on_payment, "the payment behind it was refunded")


def register() -> None:
    events.subscribe("payment.refunded", _on_refunded)
