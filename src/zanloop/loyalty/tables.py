from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zanloop.db import Base, BigIntPK
from zanloop.kit.clock import utcnow


class LoyaltyProgramme(Base):
    """A tenant's points programme: its settings (``loyalty.domain.Settings``) and a version
    that every change to its rules or tasks bumps, so each process knows its compiled rules
    are stale."""

    __tablename__ = "loyalty_programmes"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rules_version: Mapped[int] = mapped_column(default=1)
    # Signs one-time receipt codes (never leaves the server).
    receipt_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoyaltyRule(Base):
    """An earning rule: a ``rules.domain.RuleDocument`` with points effects."""

    __tablename__ = "loyalty_rules"
    __table_args__ = (Index("ix_loyalty_rules_tenant_status", "tenant_id", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(120))
    # ACTIVE or PAUSED.
    status: Mapped[str] = mapped_column(String(10))
    document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoyaltyTask(Base):
    """A task (L3): a streak, an achievement or a counted (limited-time) task."""

    __tablename__ = "loyalty_tasks"
    __table_args__ = (Index("ix_loyalty_tasks_tenant_status", "tenant_id", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(10))
    document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoyaltyMember(Base):
    __tablename__ = "loyalty_members"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tier: Mapped[str] = mapped_column(String(20))
    # The tier the last scheduled evaluation confirmed: a refund never takes a member below it.
    base_tier: Mapped[str] = mapped_column(String(20))
    # "MM-DD", for birthday rules.
    birthday: Mapped[str | None] = mapped_column(String(5), default=None)
    # Points clawed back that the member no longer had: paid off from later earnings.
    owed_points: Mapped[int] = mapped_column(BigInteger, default=0)
    tier_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoyaltyEvent(Base):
    """One ingested event, once (``event_id`` is the sender's idempotency key)."""

    __tablename__ = "loyalty_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_id"),
        Index("ix_loyalty_events_order", "tenant_id", "order_id"),
        Index("ix_loyalty_events_user", "tenant_id", "user_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    event_id: Mapped[str] = mapped_column(String(120))
    type: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column()
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # The payment behind the event: refunding it claws back what the event earned.
    order_id: Mapped[str | None] = mapped_column(String(120), default=None)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    # APPLIED, REJECTED (with ``reason``) or REVERSED.
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    # The request's own fields, for explanations and the month-end audit.
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reversed_at: Mapped[datetime | None] = mapped_column(default=None)


class LoyaltyLot(Base):
    """Points granted together, with one expiry (L4). ``points`` = ``remaining`` + spent or
    held + ``expired`` + ``clawed``."""

    __tablename__ = "loyalty_lots"
    __table_args__ = (
        Index("ix_loyalty_lots_member", "tenant_id", "user_id", "status", "expires_at"),
        Index("ix_loyalty_lots_due", "status", "available_at"),
        Index("ix_loyalty_lots_expiry", "status", "expires_at"),
        Index("ix_loyalty_lots_ref", "tenant_id", "ref"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    user_id: Mapped[str] = mapped_column(String(200))
    # What earned it: "event:<pk>", "task:<task id>:<n>" or "campaign:<reward id>:<slot>".
    ref: Mapped[str] = mapped_column(String(200))
    # PENDING (inside the refund window), AVAILABLE or REVERSED.
    status: Mapped[str] = mapped_column(String(10))
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expired: Mapped[int] = mapped_column(BigInteger, default=0)
    clawed: Mapped[int] = mapped_column(BigInteger, default=0)
    # The rules (or task) that earned it: {"rules": {rule id: points}, "taken": [[scope,key,n]]}.
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    earned_at: Mapped[datetime] = mapped_column()
    available_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    notified_at: Mapped[datetime | None] = mapped_column(default=None)
    transfer_id: Mapped[str] = mapped_column(String(200))


class LoyaltyTaskProgress(Base):
    """A member's progress on a task: the events that count (``marks``: event pk -> local day
    or action) and how many completions were rewarded. Completions are derived from the marks,
    so a reversed event simply leaves them."""

    __tablename__ = "loyalty_task_progress"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    marks: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rewarded: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoyaltyTierChange(Base):
    __tablename__ = "loyalty_tier_changes"
    __table_args__ = (Index("ix_loyalty_tier_changes_member", "tenant_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    user_id: Mapped[str] = mapped_column(String(200))
    from_tier: Mapped[str] = mapped_column(String(20))
    to_tier: Mapped[str] = mapped_column(String(20))
    # earned, refund, evaluation.
    reason: Mapped[str] = mapped_column(String(20))
    qualifying: Mapped[int] = mapped_column(BigInteger, default=0)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class CatalogueItem(Base):
    __tablename__ = "loyalty_catalogue"
    __table_args__ = (Index("ix_loyalty_catalogue_tenant", "tenant_id", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(120))
    # COUPON (a coupon template) or GOODS.
    kind: Mapped[str] = mapped_column(String(10))
    price_points: Mapped[int] = mapped_column(BigInteger)
    coupon_template_id: Mapped[str | None] = mapped_column(String(40), default=None)
    stock: Mapped[int | None] = mapped_column(BigInteger, default=None)
    per_user_limit: Mapped[int | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Redemption(Base):
    __tablename__ = "loyalty_redemptions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "request_no"),
        Index("ix_loyalty_redemptions_member", "tenant_id", "user_id", "id"),
        Index("ix_loyalty_redemptions_due", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    request_no: Mapped[str] = mapped_column(String(120))
    user_id: Mapped[str] = mapped_column(String(200))
    item_id: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int] = mapped_column()
    points: Mapped[int] = mapped_column(BigInteger)
    # HELD, CONFIRMED, CANCELLED or EXPIRED.
    status: Mapped[str] = mapped_column(String(10))
    # {lot id: points}: where the points were taken from, to put them back on cancel.
    allocations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"taken": [...quota takes...], "coupon_ids": [...]}.
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
