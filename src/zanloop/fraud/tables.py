from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from zanloop.db import Base
from zanloop.kit.clock import utcnow


class FraudScan(Base):
    """One run of the group detectors over a tenant's interactions in a time range."""

    __tablename__ = "fraud_scans"
    __table_args__ = (Index("ix_fraud_scans_tenant", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    # "database" (the tenant's own tables) or "file:<name>".
    source: Mapped[str] = mapped_column(String(300))
    since: Mapped[datetime]
    until: Mapped[datetime]
    # RUNNING, DONE or FAILED.
    status: Mapped[str] = mapped_column(String(10))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Interactions, users, targets, sightings read; groups found by kind; seconds taken.
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(String(1000), default=None)
    requested_by: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class FraudFinding(Base):
    """A group one detector found: the members are in ``fraud_finding_members``."""

    __tablename__ = "fraud_findings"
    __table_args__ = (
        Index("ix_fraud_findings_tenant", "tenant_id", "id"),
        Index("ix_fraud_findings_scan", "scan_id", "score"),
        Index("ix_fraud_findings_fingerprint", "tenant_id", "fingerprint", unique=True),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    scan_id: Mapped[str] = mapped_column(ForeignKey("fraud_scans.id"))
    kind: Mapped[str] = mapped_column(String(20))
    # The kind and the sorted member accounts, hashed: a later scan that finds exactly the
    # same group does not report it again.
    fingerprint: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    users: Mapped[int] = mapped_column()
    targets: Mapped[int] = mapped_column()
    window_start: Mapped[datetime | None] = mapped_column(default=None)
    window_end: Mapped[datetime | None] = mapped_column(default=None)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # OPEN, ACTIONED (an action was approved) or DISMISSED.
    status: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FraudFindingMember(Base):
    __tablename__ = "fraud_finding_members"
    __table_args__ = (Index("ix_fraud_finding_members_member", "tenant_id", "role", "member_id"),)

    finding_id: Mapped[str] = mapped_column(ForeignKey("fraud_findings.id"), primary_key=True)
    # "user" or "target".
    role: Mapped[str] = mapped_column(String(10), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    hits: Mapped[int] = mapped_column(BigInteger)
    expected: Mapped[float] = mapped_column(Float)


class FraudAction(Base):
    """An action on a finding's members, proposed then approved or rejected by an analyst."""

    __tablename__ = "fraud_actions"
    __table_args__ = (
        Index("ix_fraud_actions_tenant_status", "tenant_id", "status", "id"),
        Index("ix_fraud_actions_finding", "finding_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    finding_id: Mapped[str] = mapped_column(ForeignKey("fraud_findings.id"))
    # hold, block or revoke.
    action: Mapped[str] = mapped_column(String(10))
    # PENDING, APPROVED or REJECTED.
    status: Mapped[str] = mapped_column(String(10))
    user_ids: Mapped[list[str]] = mapped_column(default=list)
    note: Mapped[str] = mapped_column(String(1000), default="")
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # What approving did: list entries made, rewards and events reversed.
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requested_by: Mapped[str] = mapped_column(String(40))
    resolved_by: Mapped[str | None] = mapped_column(String(40), default=None)
    resolution_note: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
