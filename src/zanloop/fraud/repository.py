from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zanloop.db import bulk_insert, insert_unless_exists
from zanloop.fraud.tables import FraudAction, FraudFinding, FraudFindingMember, FraudScan


def add(session: Session, row: FraudScan | FraudAction) -> None:
    session.add(row)
    session.flush()


def add_members(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        bulk_insert(session, FraudFindingMember, rows)


def get_scan(session: Session, tenant_id: str, scan_id: str) -> FraudScan | None:
    scan = session.get(FraudScan, scan_id)
    return scan if scan is not None and scan.tenant_id == tenant_id else None


def list_scans(
    session: Session, tenant_id: str, after_id: str | None, limit: int
) -> Sequence[FraudScan]:
    stmt = select(FraudScan).where(FraudScan.tenant_id == tenant_id)
    if after_id:
        stmt = stmt.where(FraudScan.id < after_id)
    return session.scalars(stmt.order_by(FraudScan.id.desc()).limit(limit)).all()


def get_finding(
    session: Session, tenant_id: str, finding_id: str, lock: bool = False
) -> FraudFinding | None:
    stmt = select(FraudFinding).where(
        FraudFinding.tenant_id == tenant_id, FraudFinding.id == finding_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def add_finding(session: Session, row: dict[str, Any]) -> bool:
    """Insert a finding unless the tenant already has one with its fingerprint."""
    return insert_unless_exists(session, FraudFinding, row, ["tenant_id", "fingerprint"])


def list_findings(
    session: Session,
    tenant_id: str,
    *,
    scan_id: str | None,
    kind: str | None,
    status: str | None,
    user_id: str | None,
    after_id: str | None,
    limit: int,
) -> Sequence[FraudFinding]:
    stmt = select(FraudFinding).where(FraudFinding.tenant_id == tenant_id)
    if scan_id:
        stmt = stmt.where(FraudFinding.scan_id == scan_id)
    if kind:
        stmt = stmt.where(FraudFinding.kind == kind)
    if status:
        stmt = stmt.where(FraudFinding.status == status)
    if user_id:
        stmt = stmt.where(
            FraudFinding.id.in_(
                select(FraudFindingMember.finding_id).where(
                    FraudFindingMember.tenant_id == tenant_id,
                    FraudFindingMember.role == "user",
                    FraudFindingMember.member_id == user_id,
                )
            )
        )
    if after_id:
        stmt = stmt.where(FraudFinding.id < after_id)
    return session.scalars(stmt.order_by(FraudFinding.id.desc()).limit(limit)).all()


def members(session: Session, finding_id: str, role: str) -> Sequence[FraudFindingMember]:
    stmt = (
        select(FraudFindingMember)
        .where(FraudFindingMember.finding_id == finding_id, FraudFindingMember.role == role)
        .order_by(FraudFindingMember.hits.desc(), FraudFindingMember.member_id)
    )
    return session.scalars(stmt).all()


def get_action(
    session: Session, tenant_id: str, action_id: str, lock: bool = False
) -> FraudAction | None:
    stmt = select(FraudAction).where(
        FraudAction.tenant_id == tenant_id, FraudAction.id == action_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def list_actions(
    session: Session,
    tenant_id: str,
    status: str | None,
    finding_id: str | None,
    after_id: str | None,
    limit: int,
) -> Sequence[FraudAction]:
    stmt = select(FraudAction).where(FraudAction.tenant_id == tenant_id)
    if status:
        stmt = stmt.where(FraudAction.status == status)
    if finding_id:
        stmt = stmt.where(FraudAction.finding_id == finding_id)
    if after_id:
        stmt = stmt.where(FraudAction.id < after_id)
    return session.scalars(stmt.order_by(FraudAction.id.desc()).limit(limit)).all()


def resolve_action(
    session: Session,
    action_id: str,
    status: str,
    actor: str,
    note: str,
    result: dict[str, Any],
    at: datetime,
) -> bool:
    """Only a PENDING action resolves; False if another request resolved it first."""
    done = session.execute(
        update(FraudAction)
        .where(FraudAction.id == action_id, FraudAction.status == "PENDING")
        .values(
            status=status, resolved_by=actor, resolution_note=note, result=result, resolved_at=at
        )
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]
