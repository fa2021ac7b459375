"""The review queue (R3): a REVIEW decision's effect waits as a ledger hold.

The caller (a reward, a pin) opens a review with the transfer it wanted to make; the money or
points are reserved from the payer at once, so they can neither be spent twice nor lost. An
analyst approves (the hold posts exactly the held amount) or rejects (the hold is voided and
every balance is as before). Each step is audited and published as an event, so the feature
that asked can finish or undo its own part (``risk.review.approved`` / ``.rejected``).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy.orm import Session

from zanloop import events
from zanloop.errors import DuplicateConflict, InvalidState, NotFound
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.kit.money import Asset
from zanloop.ledger import service as ledger
from zanloop.ledger.domain import MANAGED_HOLD_PREFIX
from zanloop.ops import metrics
from zanloop.risk import repository, service
from zanloop.risk.domain import Signal, Verdict
from zanloop.risk.service import SYSTEM, audit
from zanloop.risk.tables import RiskDecision, RiskReview

log = structlog.get_logger(__name__)

PENDING = "PENDING"
APPROVED = "APPROVED"
REJECTED = "REJECTED"


@dataclass(frozen=True)
class HoldSpec:
    """The transfer the action would have made, had it been allowed."""

    asset: Asset
    from_owner: str
    to_owner: str
    amount: int
    description: str = ""


def hold_id_for(decision_id: str) -> str:
    return f"{MANAGED_HOLD_PREFIX}risk-review:{decision_id}"


def hold_for_review(
    session: Session, decision: RiskDecision, hold: HoldSpec, actor: str = SYSTEM
) -> RiskReview:
    """Reserve the effect of a REVIEW decision and queue it; idempotent per decision."""
    if decision.verdict != Verdict.REVIEW.value:
        raise InvalidState(f"decision {decision.id} is {decision.verdict}, not REVIEW")
    existing = repository.review_of_decision(session, decision.id)
    if existing is not None:
        if (existing.asset, existing.from_owner, existing.to_owner, existing.amount) != (
            hold.asset.value,
            hold.from_owner,
            hold.to_owner,
            hold.amount,
        ):
            raise DuplicateConflict(f"decision {decision.id} already holds another effect")
        return existing
    hold_id = hold_id_for(decision.id)
    ledger.place_hold(
        session,
        decision.tenant_id,
        hold_id,
        hold.asset,
        hold.from_owner,
        hold.to_owner,
        hold.amount,
        description=hold.description or f"{decision.action} held for review",
    )
    review = RiskReview(
        id=new_id("rev"),
        tenant_id=decision.tenant_id,
        decision_id=decision.id,
        status=PENDING,
        hold_id=hold_id,
        asset=hold.asset.value,
        amount=hold.amount,
        from_owner=hold.from_owner,
        to_owner=hold.to_owner,
        description=hold.description,
        created_at=utcnow(),
    )
    repository.add(session, review)
    audit(
        session,
        decision.tenant_id,
        actor,
        "review.opened",
        "review",
        review.id,
        {"decision_id": decision.id, "hold_id": hold_id, "amount": hold.amount},
    )
    metrics.RISK_REVIEWS.labels("opened").inc()
    _publish(session, "risk.review.opened", review, decision)
    return review


def approve(
    session: Session, tenant_id: str, review_id: str, actor: str, note: str = ""
) -> RiskReview:
    return _resolve(session, tenant_id, review_id, APPROVED, actor, note)


def reject(
    session: Session, tenant_id: str, review_id: str, actor: str, note: str = ""
) -> RiskReview:
    return _resolve(session, tenant_id, review_id, REJECTED, actor, note)


def _resolve(
    session: Session, tenant_id: str, review_id: str, outcome: str, actor: str, note: str
) -> RiskReview:
    review = repository.get_review(session, tenant_id, review_id, lock=True)
    if review is None:
        raise NotFound(f"review {review_id} not found")
    if review.status == outcome:
        return review  # the same answer again: nothing more to do
    if review.status != PENDING:
        raise InvalidState(f"review {review_id} is already {review.status}")
    decision = repository.get_decision(session, tenant_id, review.decision_id)
    assert decision is not None
    if outcome == APPROVED and service.payment_refunded(session, decision):
        raise InvalidState(
            f"the payment behind review {review_id} was refunded; it can only be rejected"
        )
    # The ledger first: if the hold cannot be settled the review stays pending.
    if outcome == APPROVED:
        ledger.post_hold(session, tenant_id, review.hold_id)
    else:
        ledger.void_hold(session, tenant_id, review.hold_id)
    if not repository.resolve_review(session, review.id, outcome, actor, note, utcnow()):
        raise InvalidState(f"review {review_id} was resolved concurrently")
    session.refresh(review)
    audit(
        session,
        tenant_id,
        actor,
        f"review.{outcome.lower()}",
        "review",
        review.id,
        {"decision_id": review.decision_id, "hold_id": review.hold_id, "note": note},
    )
    metrics.RISK_REVIEWS.labels(outcome.lower()).inc()
    _publish(session, f"risk.review.{outcome.lower()}", review, decision)
    return review


def reject_pending_for(
    session: Session, decisions: list[RiskDecision], note: str
) -> list[RiskReview]:
    """Reject what waits on decisions whose ground is gone (their payment was refunded).
    Called from the refund's own transaction, so it never fails it: a review resolved in the
    meantime is left as it is."""
    rejected = []
    for review in repository.pending_reviews_of(session, [d.id for d in decisions]):
        try:
            with session.begin_nested():
                rejected.append(reject(session, review.tenant_id, review.id, SYSTEM, note))
        except InvalidState as exc:
            log.warning("review not rejected after refund", review_id=review.id, error=str(exc))
    return rejected


def decide_with_hold(
    session: Session,
    tenant_id: str,
    signal: Signal,
    hold: HoldSpec | None,
    *,
    reference: str | None = None,
    actor: str = SYSTEM,
) -> tuple[RiskDecision, RiskReview | None]:
    """Decide, and if the verdict is REVIEW hold the action's effect for an analyst."""
    decision = service.decide(session, tenant_id, signal, reference=reference)
    if hold is None or decision.verdict != Verdict.REVIEW.value:
        return decision, repository.review_of_decision(session, decision.id)
    return decision, hold_for_review(session, decision, hold, actor)


def review_of(session: Session, decision: RiskDecision) -> RiskReview | None:
    return repository.review_of_decision(session, decision.id)


def review_of_decision(session: Session, tenant_id: str, decision_id: str) -> RiskReview | None:
    review = repository.review_of_decision(session, decision_id)
    return review if review is not None and review.tenant_id == tenant_id else None


def get_review(session: Session, tenant_id: str, review_id: str) -> RiskReview:
    review = repository.get_review(session, tenant_id, review_id)
    if review is None:
        raise NotFound(f"review {review_id} not found")
    return review


def list_reviews(
    session: Session,
    tenant_id: str,
    status: str | None,
    before_id: str | None,
    limit: int,
    user_id: str | None = None,
) -> list[RiskReview]:
    return repository.list_reviews(session, tenant_id, status, before_id, limit, user_id)


def _publish(session: Session, name: str, review: RiskReview, decision: RiskDecision) -> None:
    events.publish(
        session,
        events.Event(
            name,
            review.tenant_id,
            {
                "review_id": review.id,
                "status": review.status,
                "decision_id": decision.id,
                "action": decision.action,
                "user_id": decision.user_id,
                "reference": decision.reference,
                "hold_id": review.hold_id,
                "asset": review.asset,
                "amount": review.amount,
                "from_owner": review.from_owner,
                "to_owner": review.to_owner,
            },
        ),
    )
