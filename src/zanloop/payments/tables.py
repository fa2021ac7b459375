from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zanloop.db import Base
from zanloop.kit.clock import utcnow


class PaymentProviderConfig(Base):
    """How one tenant reaches its payment provider. Secrets stay server-side."""

    __tablename__ = "payment_provider_configs"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    mchid: Mapped[str] = mapped_column(String(32))
    appid: Mapped[str] = mapped_column(String(32))
    merchant_serial_no: Mapped[str] = mapped_column(String(64))
    merchant_private_key_pem: Mapped[str] = mapped_column(Text)
    apiv3_key: Mapped[str] = mapped_column(String(32))
    platform_public_key_id: Mapped[str] = mapped_column(String(80))
    platform_public_key_pem: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PaymentOrder(Base):
    __tablename__ = "payment_orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "out_trade_no"),
        Index("ix_payment_orders_status_created_at", "status", "created_at"),
        Index("ix_payment_orders_tenant_id_id", "tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    out_trade_no: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(20))
    mchid: Mapped[str] = mapped_column(String(32))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    description: Mapped[str] = mapped_column(String(127))
    payer_openid: Mapped[str] = mapped_column(String(128))
    payee: Mapped[str] = mapped_column(String(200))
    attach: Mapped[str | None] = mapped_column(String(128), default=None)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    status: Mapped[str] = mapped_column(String(12))
    prepay_id: Mapped[str | None] = mapped_column(String(64), default=None)
    transaction_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # Reserved by refund requests (processing or done), so refunds never exceed the amount.
    refund_reserved_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime]
    success_time: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Refund(Base):
    __tablename__ = "payment_refunds"
    __table_args__ = (UniqueConstraint("tenant_id", "out_refund_no"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    order_id: Mapped[str] = mapped_column(ForeignKey("payment_orders.id"), index=True)
    out_refund_no: Mapped[str] = mapped_column(String(64))
    refund_id: Mapped[str | None] = mapped_column(String(64), default=None)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(80), default="")
    status: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    success_time: Mapped[datetime | None] = mapped_column(default=None)


class ProviderNotification(Base):
    """Every accepted notification, keyed by the provider's id: the de-duplication record."""

    __tablename__ = "payment_notifications"
    __table_args__ = (UniqueConstraint("tenant_id", "notification_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    notification_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(40))
    out_trade_no: Mapped[str | None] = mapped_column(String(32), default=None)
    out_refund_no: Mapped[str | None] = mapped_column(String(64), default=None)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
