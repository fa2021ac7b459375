from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from zanloop.db import Base, BigIntPK
from zanloop.kit.clock import utcnow


class Creator(Base):
    __tablename__ = "creators"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    # The integrator's id for the creator.
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    programmes: Mapped[list[str]] = mapped_column(default=list)
    # Overrides of the tenant's pin policy, field by field.
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Content(Base):
    __tablename__ = "contents"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_contents_creator", "tenant_id", "creator_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(200))
    pins_enabled: Mapped[bool] = mapped_column(default=True)
    completion_rate: Mapped[float | None] = mapped_column(default=None)
    engagement_rate: Mapped[float | None] = mapped_column(default=None)
    # Moves whenever the content's pinned list may change: readers cache by it.
    pins_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PinPolicyRow(Base):
    __tablename__ = "pin_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Pin(Base):
    __tablename__ = "pins"
    __table_args__ = (
        # The pinned list: live pins of a content in display order, and its next expiry.
        Index(
            "ix_pins_content_display",
            "content_id",
            "status",
            text("amount_fen DESC"),
            "activated_at",
            "id",
        ),
        Index("ix_pins_content_expiry", "content_id", "status", "expires_at"),
        Index("ix_pins_buyer", "tenant_id", "buyer_id", "id"),
        Index("ix_pins_creator", "tenant_id", "creator_id", "id"),
        Index("ix_pins_status_expires", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    content_id: Mapped[str] = mapped_column(ForeignKey("contents.id"))
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"))
    buyer_id: Mapped[str] = mapped_column(String(200))
    openid: Mapped[str] = mapped_column(String(128))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    creator_fen: Mapped[int] = mapped_column(BigInteger)
    platform_fen: Mapped[int] = mapped_column(BigInteger)
    message: Mapped[str] = mapped_column(String(500), default="")
    mode: Mapped[str] = mapped_column(String(10))
    display_seconds: Mapped[int | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(10))
    payment_order_id: Mapped[str] = mapped_column(String(40), unique=True)
    decision_id: Mapped[str] = mapped_column(String(40))
    region: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    end_reason: Mapped[str] = mapped_column(String(500), default="")
    removed_by: Mapped[str | None] = mapped_column(String(20), default=None)
    refund_id: Mapped[str | None] = mapped_column(String(40), default=None)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refund_on_creator_removal: Mapped[bool] = mapped_column(default=True)


class PinNotice(Base):
    """What a creator's live stream shows, in order: an outbox the SSE readers of every API
    process poll, so a pin that went live in a worker still reaches the browser."""

    __tablename__ = "pin_notices"
    __table_args__ = (Index("ix_pin_notices_creator", "tenant_id", "creator_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    creator_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PinStreamToken(Base):
    """A short-lived token for a creator's live stream: a browser's EventSource cannot send an
    Authorization header, and an API key must never travel in a URL."""

    __tablename__ = "pin_stream_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    creator_id: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[datetime]
