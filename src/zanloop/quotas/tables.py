from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from zanloop.db import Base
from zanloop.kit.clock import utcnow


class QuotaCounter(Base):
    """How much of one limit is in use. The limit itself lives with whoever sets it (a coupon
    template's stock, a campaign's budget), so changing it never needs a migration of counters."""

    __tablename__ = "quota_counters"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    # What is limited, e.g. "coupon.stock" or "campaign.user.day".
    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    # Which one, e.g. a template id, or "<campaign id>:<user id>:<day>".
    key: Mapped[str] = mapped_column(String(240), primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
