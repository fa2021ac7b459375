"""Why was this blocked or held? An answer for a user (and an action) from the decision log,
the lists and the review queue, in sentences an analyst or a support agent can pass on."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from zanloop.kit.clock import utcnow
from zanloop.risk import repository, reviews, service
from zanloop.risk.domain import ListHit, Signal, Verdict
from zanloop.risk.tables import RiskDecision, RiskReview

RECENT = 50


@dataclass(frozen=True)
class Explanation:
    user_id: str
    action: str | None
    # CLEAR: nothing stands against the user now; HELD: a review waits; BLOCKED: listed, or the
    # latest decision was a block.
    status: str
    listed: list[ListHit]
    open_reviews: list[RiskReview]
    decisions: list[RiskDecision]
    summary: list[str]


def explain(session: Session, tenant_id: str, user_id: str, action: str | None) -> Explanation:
    recent = repository.list_decisions(
        session, tenant_id, user_id=user_id, action=action, limit=RECENT
    )
    listed = _listed(session, tenant_id, user_id, recent)
    waiting = reviews.list_reviews(session, tenant_id, reviews.PENDING, None, RECENT, user_id)
    if action is not None:
        decision_ids = {d.id for d in recent}
        waiting = [r for r in waiting if r.decision_id in decision_ids]
    stopped = [d for d in recent if d.verdict != Verdict.ALLOW.value]
    summary = [f"{hit.subject.value} {hit.value} is on the {hit.list_name} list" for hit in listed]
    summary += [_sentence(d) for d in stopped[:10]]
    if waiting:
        summary.append(f"{len(waiting)} held effect(s) wait for an analyst's review")
    if any(h.list_name == "block" for h in listed) or (
        recent and recent[0].verdict == Verdict.BLOCK.value
    ):
        status = "BLOCKED"
    elif waiting:
        status = "HELD"
    else:
        status = "CLEAR"
    if not summary:
        summary.append("no decision stopped or held this user")
    return Explanation(user_id, action, status, listed, waiting, stopped, summary)


def _sentence(decision: RiskDecision) -> str:
    reasons = [r for r in decision.reasons if r["mode"] == "enforce"]
    why = "; ".join(f"{r['message']} [{r['rule_id']}]" for r in reasons) or "score too high"
    when = decision.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{decision.verdict} {decision.action} at {when} (decision {decision.id}): {why}"


def _listed(
    session: Session, tenant_id: str, user_id: str, recent: list[RiskDecision]
) -> list[ListHit]:
    """Entries on the user, and on the devices, IPs and payment accounts the user used."""
    now = utcnow()
    version = repository.versions(session, tenant_id)[1]
    index = service.list_index(session, tenant_id, version, now)
    hits: dict[tuple[str, str, str], ListHit] = {}
    probes = [Signal("", user_id, now)] + [
        Signal("", user_id, now, device_id=d.device_id, ip=d.ip, payment_account=d.payment_account)
        for d in recent
    ]
    for probe in probes:
        for hit in index.match(probe):
            hits.setdefault((hit.list_name, hit.subject.value, hit.value), hit)
    return list(hits.values())
