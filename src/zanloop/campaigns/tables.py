from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zanloop.db import Base
from zanloop.kit.clock import utcnow


class Campaign(Base):
    """A merchant's campaign: a rule (trigger, conditions, effects) with budget and caps."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_tenant_status", "tenant_id", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(120))
    trigger: Mapped[str] = mapped_column(String(40))
    # ACTIVE, PAUSED or ENDED.
    status: Mapped[str] = mapped_column(String(10))
    # The validated rule document (see rules.domain.RuleDocument).
    document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignEvent(Base):
    """One event the engine evaluated, and what each campaign of its trigger made of it: the
    record behind "why was I (not) rewarded?"."""

    __tablename__ = "campaign_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_ref"),
        Index("ix_campaign_events_user", "tenant_id", "user_id", "trigger"),
        Index("ix_campaign_events_order", "tenant_id", "order_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    # e.g. "payment.succeeded:<order id>" or "like.created:<prompt id>".
    event_ref: Mapped[str] = mapped_column(String(120))
    trigger: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[str | None] = mapped_column(String(200), default=None)
    # The payment the event stands on: a refund of it reverses what the event earned.
    order_id: Mapped[str | None] = mapped_column(String(40), default=None)
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # [{"campaign_id", "fired", "reasons": [...]}], one per campaign of the trigger.
    outcomes: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignReward(Base):
    """What one campaign granted for one event; reversed as a whole when its payment is
    refunded."""

    __tablename__ = "campaign_rewards"
    __table_args__ = (
        UniqueConstraint("campaign_id", "event_id"),
        Index("ix_campaign_rewards_order", "tenant_id", "order_id"),
        Index("ix_campaign_rewards_campaign", "tenant_id", "campaign_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    event_id: Mapped[str] = mapped_column(ForeignKey("campaign_events.id"))
    user_id: Mapped[str] = mapped_column(String(200))
    order_id: Mapped[str | None] = mapped_column(String(40), default=None)
    # GRANTED or REVERSED.
    status: Mapped[str] = mapped_column(String(10))
    cost_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # What each effect did: [{"type", ...ids...}], so a reversal knows what to undo.
    effects: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    # The quota keys taken, given back on reversal.
    quotas: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    decision_id: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reversed_at: Mapped[datetime | None] = mapped_column(default=None)
    reverse_reason: Mapped[str | None] = mapped_column(String(120), default=None)


class LikePrompt(Base):
    """A request to like, shown to the buyer after a triggering payment (C3); one per payment,
    so one like per payment (C4)."""

    __tablename__ = "like_prompts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "order_id"),
        Index("ix_like_prompts_user", "tenant_id", "user_id", "status"),
        Index("ix_like_prompts_campaign", "tenant_id", "campaign_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    user_id: Mapped[str] = mapped_column(String(200))
    order_id: Mapped[str] = mapped_column(String(40))
    # The merchant's template: store, product image, slogan.
    store: Mapped[str] = mapped_column(String(120), default="")
    image_url: Mapped[str] = mapped_column(String(500), default="")
    slogan: Mapped[str] = mapped_column(String(200), default="")
    # OPEN, LIKED, REVOKED or EXPIRED.
    status: Mapped[str] = mapped_column(String(10))
    decision_id: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    liked_at: Mapped[datetime | None] = mapped_column(default=None)
    shared_at: Mapped[datetime | None] = mapped_column(default=None)
    share_channel: Mapped[str | None] = mapped_column(String(40), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class CampaignProgress(Base):
    """A user's progress on a campaign's track (C5: "5 likes -> free coffee", "3 likes ->
    silver"); counted up by events, counted down by reversals."""

    __tablename__ = "campaign_progress"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    completions: Mapped[int] = mapped_column(default=0)
    # The tier the track has reached, if it grants one.
    tier: Mapped[str | None] = mapped_column(String(20), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
