from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zanloop.db import Base, BigIntPK
from zanloop.kit.clock import utcnow


class RiskPolicy(Base):
    """A tenant's own policy (none: the defaults) and the versions that tell every process
    when its cached copy of the policy or of the lists is stale."""

    __tablename__ = "risk_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    document: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    version: Mapped[int] = mapped_column(default=0)
    lists_version: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskListEntry(Base):
    __tablename__ = "risk_list_entries"
    __table_args__ = (UniqueConstraint("tenant_id", "list_name", "subject", "value"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    list_name: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(20))
    # An IP entry may be a range in CIDR notation.
    value: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(String(500), default="")
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskDecision(Base):
    __tablename__ = "risk_decisions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "action", "reference"),
        Index("ix_risk_decisions_tenant_user", "tenant_id", "user_id", "id"),
        Index("ix_risk_decisions_tenant_id", "tenant_id", "id"),
        Index("ix_risk_decisions_tenant_payment", "tenant_id", "payment_order_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    # The caller's id for the action: a second decision with it returns the first.
    reference: Mapped[str | None] = mapped_column(String(200), default=None)
    action: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(200))
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    device_id: Mapped[str | None] = mapped_column(String(200), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    payment_account: Mapped[str | None] = mapped_column(String(200), default=None)
    payment_order_id: Mapped[str | None] = mapped_column(String(200), default=None)
    verdict: Mapped[str] = mapped_column(String(10))
    score: Mapped[int] = mapped_column(default=0)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    policy_version: Mapped[int] = mapped_column(default=0)
    # How many rules applied to the action: 0 means no rule knows it (a misspelled action?).
    rules_evaluated: Mapped[int] = mapped_column(default=0)
    # What the caller said, hashed: the same reference with another body is refused.
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskReview(Base):
    """A REVIEW decision whose effect waits, as a ledger hold, for an analyst."""

    __tablename__ = "risk_reviews"
    __table_args__ = (Index("ix_risk_reviews_tenant_status", "tenant_id", "status", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    decision_id: Mapped[str] = mapped_column(ForeignKey("risk_decisions.id"), unique=True)
    status: Mapped[str] = mapped_column(String(10))
    hold_id: Mapped[str] = mapped_column(String(200))
    asset: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(BigInteger)
    from_owner: Mapped[str] = mapped_column(String(200))
    to_owner: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(500), default="")
    resolved_by: Mapped[str | None] = mapped_column(String(40), default=None)
    note: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)


class RiskSignal(Base):
    """A durable fact about a user that later decisions weigh (a rewarded payment refunded)."""

    __tablename__ = "risk_signals"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "ref"),
        Index("ix_risk_signals_user", "tenant_id", "user_id", "kind", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    user_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    ref: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskAudit(Base):
    """Who changed what in risk control: reviews resolved, list entries, policy versions."""

    __tablename__ = "risk_audit"
    __table_args__ = (
        Index("ix_risk_audit_tenant_id", "tenant_id", "id"),
        Index("ix_risk_audit_subject", "tenant_id", "subject_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    actor: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
