"""Every query of the risk area."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from zanloop.db import dialect_insert, insert_unless_exists
from zanloop.kit.clock import utcnow
from zanloop.risk.tables import (
    RiskAudit,
    RiskDecision,
    RiskListEntry,
    RiskPolicy,
    RiskReview,
    RiskSignal,
)

# Policy and list versions ------------------------------------------------------------------


def versions(session: Session, tenant_id: str) -> tuple[int, int]:
    row = session.execute(
        select(RiskPolicy.version, RiskPolicy.lists_version).where(
            RiskPolicy.tenant_id == tenant_id
        )
    ).first()
    return (0, 0) if row is None else (row[0], row[1])


def get_policy(session: Session, tenant_id: str) -> RiskPolicy | None:
    return session.get(RiskPolicy, tenant_id)


def _ensure_policy_row(session: Session, tenant_id: str) -> None:
    insert_unless_exists(
        session,
        RiskPolicy,
        {"tenant_id": tenant_id, "document": None, "version": 0, "lists_version": 0},
        ["tenant_id"],
    )


def save_policy(session: Session, tenant_id: str, document: dict[str, Any] | None) -> int:
    """Store a new policy (None: back to the defaults); returns its version."""
    _ensure_policy_row(session, tenant_id)
    return int(
        session.execute(
            update(RiskPolicy)
            .where(RiskPolicy.tenant_id == tenant_id)
            .values(document=document, version=RiskPolicy.version + 1, updated_at=utcnow())
            .returning(RiskPolicy.version)
        ).scalar_one()
    )


def bump_lists_version(session: Session, tenant_id: str) -> None:
    _ensure_policy_row(session, tenant_id)
    session.execute(
        update(RiskPolicy)
        .where(RiskPolicy.tenant_id == tenant_id)
        .values(lists_version=RiskPolicy.lists_version + 1)
    )


# Lists ---------------------------------------------------------------------------------------


def live_list_entries(session: Session, tenant_id: str, now: datetime) -> list[RiskListEntry]:
    return list(
        session.scalars(
            select(RiskListEntry).where(
                RiskListEntry.tenant_id == tenant_id,
                or_(RiskListEntry.expires_at.is_(None), RiskListEntry.expires_at > now),
            )
        )
    )


def insert_list_entry(session: Session, row: dict[str, Any]) -> bool:
    return insert_unless_exists(
        session, RiskListEntry, row, ["tenant_id", "list_name", "subject", "value"]
    )


def find_list_entry(
    session: Session, tenant_id: str, list_name: str, subject: str, value: str
) -> RiskListEntry | None:
    return session.scalars(
        select(RiskListEntry).where(
            RiskListEntry.tenant_id == tenant_id,
            RiskListEntry.list_name == list_name,
            RiskListEntry.subject == subject,
            RiskListEntry.value == value,
        )
    ).first()


def get_list_entry(session: Session, tenant_id: str, entry_id: str) -> RiskListEntry | None:
    return session.scalars(
        select(RiskListEntry).where(
            RiskListEntry.tenant_id == tenant_id, RiskListEntry.id == entry_id
        )
    ).first()


def delete_list_entry(session: Session, entry: RiskListEntry) -> None:
    session.execute(delete(RiskListEntry).where(RiskListEntry.id == entry.id))


def list_entries(
    session: Session, tenant_id: str, list_name: str | None, after_id: str | None, limit: int
) -> list[RiskListEntry]:
    stmt = select(RiskListEntry).where(RiskListEntry.tenant_id == tenant_id)
    if list_name:
        stmt = stmt.where(RiskListEntry.list_name == list_name)
    if after_id:
        stmt = stmt.where(RiskListEntry.id > after_id)
    return list(session.scalars(stmt.order_by(RiskListEntry.id).limit(limit)))


# Decisions -----------------------------------------------------------------------------------


def find_decision(
    session: Session, tenant_id: str, action: str, reference: str
) -> RiskDecision | None:
    return session.scalars(
        select(RiskDecision).where(
            RiskDecision.tenant_id == tenant_id,
            RiskDecision.action == action,
            RiskDecision.reference == reference,
        )
    ).first()


_insert_decision: dict[str, Any] = {}


def insert_decision(session: Session, row: dict[str, Any]) -> bool:
    """Log a decision unless its reference was logged already (then False). The statement is
    built once per dialect and takes the row as parameters: it runs on every decision."""
    dialect = session.get_bind().dialect.name
    stmt = _insert_decision.get(dialect)
    if stmt is None:
        stmt = (
            dialect_insert(session, RiskDecision.__table__)
            .on_conflict_do_nothing(index_elements=["tenant_id", "action", "reference"])
            .returning(RiskDecision.__table__.c.id)
        )
        _insert_decision[dialect] = stmt
    return session.execute(stmt, row).first() is not None


def get_decision(session: Session, tenant_id: str, decision_id: str) -> RiskDecision | None:
    return session.scalars(
        select(RiskDecision).where(
            RiskDecision.tenant_id == tenant_id, RiskDecision.id == decision_id
        )
    ).first()


def list_decisions(
    session: Session,
    tenant_id: str,
    *,
    user_id: str | None = None,
    action: str | None = None,
    verdicts: Sequence[str] = (),
    before_id: str | None = None,
    limit: int = 50,
) -> list[RiskDecision]:
    stmt = select(RiskDecision).where(RiskDecision.tenant_id == tenant_id)
    if user_id is not None:
        stmt = stmt.where(RiskDecision.user_id == user_id)
    if action is not None:
        stmt = stmt.where(RiskDecision.action == action)
    if verdicts:
        stmt = stmt.where(RiskDecision.verdict.in_(verdicts))
    if before_id is not None:
        stmt = stmt.where(RiskDecision.id < before_id)
    return list(session.scalars(stmt.order_by(RiskDecision.id.desc()).limit(limit)))


def decisions_on_payment(
    session: Session, tenant_id: str, payment_refs: Sequence[str], actions: Sequence[str] | None
) -> list[RiskDecision]:
    stmt = select(RiskDecision).where(
        RiskDecision.tenant_id == tenant_id, RiskDecision.payment_order_id.in_(payment_refs)
    )
    if actions is not None:
        stmt = stmt.where(RiskDecision.action.in_(actions))
    return list(session.scalars(stmt))


def prior_use(session: Session, tenant_id: str, order_id: str, action: str) -> str | None:
    """The id of an earlier decision that let ``action`` stand on this payment, if any."""
    return session.execute(
        select(RiskDecision.id)
        .where(
            RiskDecision.tenant_id == tenant_id,
            RiskDecision.payment_order_id == order_id,
            RiskDecision.action == action,
            RiskDecision.verdict != "BLOCK",
        )
        .limit(1)
    ).scalar_one_or_none()


# Signals -------------------------------------------------------------------------------------


def insert_signal(session: Session, row: dict[str, Any]) -> bool:
    return insert_unless_exists(session, RiskSignal, row, ["tenant_id", "kind", "ref"])


def count_signals(
    session: Session, tenant_id: str, user_id: str, kind: str, since: datetime
) -> int:
    return int(
        session.execute(
            select(func.count()).where(
                RiskSignal.tenant_id == tenant_id,
                RiskSignal.user_id == user_id,
                RiskSignal.kind == kind,
                RiskSignal.created_at >= since,
            )
        ).scalar_one()
    )


# Reviews -------------------------------------------------------------------------------------


def add(session: Session, obj: Any) -> None:
    session.add(obj)
    session.flush()


def review_of_decision(session: Session, decision_id: str) -> RiskReview | None:
    return session.scalars(select(RiskReview).where(RiskReview.decision_id == decision_id)).first()


def get_review(
    session: Session, tenant_id: str, review_id: str, *, lock: bool = False
) -> RiskReview | None:
    stmt = select(RiskReview).where(RiskReview.tenant_id == tenant_id, RiskReview.id == review_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def resolve_review(
    session: Session, review_id: str, status: str, actor: str, note: str, now: datetime
) -> bool:
    """Move a PENDING review on; False when another request resolved it first."""
    result = session.execute(
        update(RiskReview)
        .where(RiskReview.id == review_id, RiskReview.status == "PENDING")
        .values(status=status, resolved_by=actor, note=note, resolved_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def list_reviews(
    session: Session,
    tenant_id: str,
    status: str | None,
    before_id: str | None,
    limit: int,
    user_id: str | None = None,
) -> list[RiskReview]:
    stmt = select(RiskReview).where(RiskReview.tenant_id == tenant_id)
    if status is not None:
        stmt = stmt.where(RiskReview.status == status)
    if before_id is not None:
        stmt = stmt.where(RiskReview.id < before_id)
    if user_id is not None:
        stmt = stmt.join(RiskDecision, RiskDecision.id == RiskReview.decision_id).where(
            RiskDecision.user_id == user_id
        )
    return list(session.scalars(stmt.order_by(RiskReview.id.desc()).limit(limit)))


def pending_reviews_of(session: Session, decision_ids: Sequence[str]) -> list[RiskReview]:
    if not decision_ids:
        return []
    return list(
        session.scalars(
            select(RiskReview).where(
                RiskReview.decision_id.in_(decision_ids), RiskReview.status == "PENDING"
            )
        )
    )


# Audit ---------------------------------------------------------------------------------------


def list_audit(
    session: Session, tenant_id: str, subject_id: str | None, before_id: str | None, limit: int
) -> list[RiskAudit]:
    stmt = select(RiskAudit).where(RiskAudit.tenant_id == tenant_id)
    if subject_id is not None:
        stmt = stmt.where(RiskAudit.subject_id == subject_id)
    if before_id is not None:
        stmt = stmt.where(RiskAudit.id < before_id)
    return list(session.scalars(stmt.order_by(RiskAudit.id.desc()).limit(limit)))


def sightings(
    session: Session, tenant_id: str, since: datetime, until: datetime
) -> Sequence[tuple[str, str | None, str | None, datetime]]:
    """(user, device, address, time) of every decision that named a device or an address."""
    stmt = select(
        RiskDecision.user_id, RiskDecision.device_id, RiskDecision.ip, RiskDecision.created_at
    ).where(
        RiskDecision.tenant_id == tenant_id,
        RiskDecision.created_at >= since,
        RiskDecision.created_at < until,
        or_(RiskDecision.device_id.is_not(None), RiskDecision.ip.is_not(None)),
    )
    return [(u, d, ip, at) for u, d, ip, at in session.execute(stmt)]
