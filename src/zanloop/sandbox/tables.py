from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from zanloop.db import Base
from zanloop.kit.clock import utcnow


class SandboxPlatformKey(Base):
    __tablename__ = "sandbox_platform_keys"

    key_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    private_key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SandboxMerchant(Base):
    __tablename__ = "sandbox_merchants"

    mchid: Mapped[str] = mapped_column(String(32), primary_key=True)
    appid: Mapped[str] = mapped_column(String(32))
    apiv3_key: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SandboxOrder(Base):
    __tablename__ = "sandbox_orders"

    mchid: Mapped[str] = mapped_column(String(32), primary_key=True)
    out_trade_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    appid: Mapped[str] = mapped_column(String(32))
    prepay_id: Mapped[str] = mapped_column(String(64))
    transaction_id: Mapped[str | None] = mapped_column(String(64), default=None)
    description: Mapped[str] = mapped_column(String(127))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    payer_openid: Mapped[str] = mapped_column(String(128))
    attach: Mapped[str | None] = mapped_column(String(128), default=None)
    notify_url: Mapped[str] = mapped_column(String(500))
    trade_state: Mapped[str] = mapped_column(String(12))
    expires_at: Mapped[datetime]
    success_time: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SandboxRefund(Base):
    __tablename__ = "sandbox_refunds"

    mchid: Mapped[str] = mapped_column(String(32), primary_key=True)
    out_refund_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    refund_id: Mapped[str] = mapped_column(String(64))
    out_trade_no: Mapped[str] = mapped_column(String(32))
    transaction_id: Mapped[str | None] = mapped_column(String(64), default=None)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(80), default="")
    notify_url: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    success_time: Mapped[datetime | None] = mapped_column(default=None)


class SandboxNotification(Base):
    """One notification and its delivery attempts to the merchant's notify URL."""

    __tablename__ = "sandbox_notifications"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    mchid: Mapped[str] = mapped_column(String(32), index=True)
    notify_url: Mapped[str] = mapped_column(String(500))
    event_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="PENDING")
    attempts: Mapped[int] = mapped_column(default=0)
    last_status_code: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
