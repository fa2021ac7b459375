"""The actions queue: what an analyst does about a finding, carried out only once approved.

- ``hold`` puts the accounts on risk's ``review`` list: every reward, pin or like they earn
  from then on is decided REVIEW and waits, its effect held in the ledger, in risk's review
  queue; and their loyalty points already pending stay pending until the hold ends;
- ``block`` puts them on the block list: what they ask for is refused;
- ``revoke`` reverses what they were granted inside the finding's window: campaign rewards,
  and member events with their points (clawed back as for a refund).

Every step is audited in risk's audit log and published as an event (and so as a webhook).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.campaigns import service as campaigns
from zanloop.errors import DuplicateConflict, InvalidState, NotFound, Unprocessable
from zanloop.fraud import repository
from zanloop.fraud.service import MAX_RANGE, finding_members, get_finding
from zanloop.fraud.tables import FraudAction, FraudFinding
from zanloop.kit.clock import as_utc, utcnow
from zanloop.kit.ids import new_id
from zanloop.loyalty import service as loyalty
from zanloop.risk import service as risk
from zanloop.risk.domain import BLOCK_LIST, REVIEW_LIST, Subject

ACTIONS = ("hold", "block", "revoke")
DEFAULT_LISTING = timedelta(days=30)


def propose(
    session: Session,
    tenant_id: str,
    finding_id: str,
    action: str,
    actor: str,
    *,
    user_ids: Sequence[str] | None = None,
    note: str = "",
    expires_at: datetime | None = None,
) -> FraudAction:
    """Queue an action on a finding's accounts (all of them, or the ones named)."""
    if action not in ACTIONS:
        raise Unprocessable("action is hold, block or revoke", field="action")
    finding = get_finding(session, tenant_id, finding_id)
    if finding.status == "DISMISSED":
        raise InvalidState(f"finding {finding_id} was dismissed")
    members = [m.id for m in finding_members(session, finding_id)[0]]
    if user_ids:
        unknown = sorted(set(user_ids) - set(members))
        if unknown:
            raise Unprocessable(
                f"not accounts of finding {finding_id}: {', '.join(unknown[:5])}",
                field="user_ids",
            )
        members = sorted(set(user_ids))
    if action != "revoke":
        now = utcnow()
        expires_at = as_utc(expires_at) if expires_at else now + DEFAULT_LISTING
        if expires_at <= now:
            raise Unprocessable("expires_at must be in the future", field="expires_at")
    elif expires_at is not None:
        raise Unprocessable("a revoke does not expire", field="expires_at")
    row = FraudAction(
        id=new_id("fac"),
        tenant_id=tenant_id,
        finding_id=finding_id,
        action=action,
        status="PENDING",
        user_ids=members,
        note=note,
        expires_at=expires_at,
        requested_by=actor,
        created_at=utcnow(),
    )
    repository.add(session, row)
    _announce(session, row, "proposed", actor, {"users": len(members), "note": note})
    return row


def approve(
    session: Session, tenant_id: str, action_id: str, actor: str, note: str = ""
) -> FraudAction:
    row = _pending(session, tenant_id, action_id, "APPROVED")
    if row.status == "APPROVED":
        return row
    finding = get_finding(session, tenant_id, row.finding_id)
    if finding.status == "DISMISSED":
        raise InvalidState(f"finding {finding.id} was dismissed since; reject the action")
    reason = f"fraud finding {finding.id} ({finding.kind})"
    result = _carry_out(session, row, finding, reason, actor)
    finding.status = "ACTIONED"
    return _resolve(session, row, "APPROVED", actor, note, result)


def reject(
    session: Session, tenant_id: str, action_id: str, actor: str, note: str = ""
) -> FraudAction:
    row = _pending(session, tenant_id, action_id, "REJECTED")
    if row.status == "REJECTED":
        return row
    return _resolve(session, row, "REJECTED", actor, note, {})


def _resolve(
    session: Session,
    row: FraudAction,
    status: str,
    actor: str,
    note: str,
    result: dict[str, Any],
) -> FraudAction:
    if not repository.resolve_action(session, row.id, status, actor, note, result, utcnow()):
        raise InvalidState(f"action {row.id} was resolved concurrently")
    session.flush()
    session.refresh(row)
    _announce(session, row, status.lower(), actor, {"note": note, **_counts(result)})
    return row


def get_action(session: Session, tenant_id: str, action_id: str) -> FraudAction:
    row = repository.get_action(session, tenant_id, action_id)
    if row is None:
        raise NotFound(f"action {action_id} not found")
    return row


def list_actions(
    session: Session,
    tenant_id: str,
    status: str | None,
    finding_id: str | None,
    after_id: str | None,
    limit: int,
) -> Sequence[FraudAction]:
    return repository.list_actions(session, tenant_id, status, finding_id, after_id, limit)


def _pending(session: Session, tenant_id: str, action_id: str, outcome: str) -> FraudAction:
    row = repository.get_action(session, tenant_id, action_id, lock=True)
    if row is None:
        raise NotFound(f"action {action_id} not found")
    if row.status not in ("PENDING", outcome):
        raise InvalidState(f"action {action_id} is already {row.status}")
    return row


def _carry_out(
    session: Session, row: FraudAction, finding: FraudFinding, reason: str, actor: str
) -> dict[str, Any]:
    tenant_id = row.tenant_id
    if row.action in ("hold", "block"):
        list_name = REVIEW_LIST if row.action == "hold" else BLOCK_LIST
        listed, already = [], []
        for user_id in row.user_ids:
            try:
                with session.begin_nested():
                    entry, _ = risk.add_list_entry(
                        session,
                        tenant_id,
                        list_name=list_name,
                        subject=Subject.USER,
                        value=user_id,
                        note=reason,
                        expires_at=row.expires_at,
                        actor=actor,
                    )
                listed.append(entry.id)
            except DuplicateConflict:
                already.append(user_id)
        result: dict[str, Any] = {
            "list": list_name,
            "list_entries": listed,
            "already_listed": already,
        }
        if row.action == "hold" and row.expires_at is not None:
            # Points already pending stay pending through the hold, so they cannot be spent
            # before the analyst decides, and a revoke can still take them back.
            result["pending_lots_held"] = loyalty.hold_pending(
                session, tenant_id, row.user_ids, row.expires_at
            )
        return result
    since = finding.window_start or utcnow() - MAX_RANGE
    until = (finding.window_end or utcnow()) + timedelta(seconds=1)
    return {
        "rewards_reversed": campaigns.revoke_rewards(
            session, tenant_id, row.user_ids, since, until, reason
        ),
        "events_reversed": loyalty.revoke_events(
            session, tenant_id, row.user_ids, since, until, reason
        ),
    }


def _counts(result: dict[str, Any]) -> dict[str, Any]:
    return {k: len(v) if isinstance(v, list) else v for k, v in result.items()}


def _announce(
    session: Session, row: FraudAction, step: str, actor: str, detail: dict[str, Any]
) -> None:
    risk.audit(
        session,
        row.tenant_id,
        actor,
        f"fraud.action.{step}",
        "fraud_action",
        row.id,
        {"finding_id": row.finding_id, "action": row.action, **detail},
    )
    events.publish(
        session,
        events.Event(
            f"fraud.action.{step}",
            row.tenant_id,
            {
                "action_id": row.id,
                "finding_id": row.finding_id,
                "action": row.action,
                "users": len(row.user_ids),
            },
        ),
    )
