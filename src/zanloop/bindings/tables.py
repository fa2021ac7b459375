from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from zanloop.db import Base, BigIntPK
from zanloop.kit.clock import utcnow


class PayerBinding(Base):
    """A user's current payment account; ``openid`` is None once unbound."""

    __tablename__ = "payer_bindings"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    openid: Mapped[str | None] = mapped_column(String(128), default=None)
    real_name_verified: Mapped[bool] = mapped_column(default=False)
    bound_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PayerBindingEvent(Base):
    """Every bind and unbind, for support and for risk ("accounts per payment account")."""

    __tablename__ = "payer_binding_events"
    __table_args__ = (Index("ix_payer_binding_events_user", "tenant_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    user_id: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(10))
    openid: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
