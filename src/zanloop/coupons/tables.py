from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zanloop.db import Base
from zanloop.kit.clock import utcnow


class CouponTemplate(Base):
    """What a coupon is worth and where it applies (K1). Stock, budget and per-user limits are
    counted in ``quota_counters``; this row only holds the limits."""

    __tablename__ = "coupon_templates"
    __table_args__ = (Index("ix_coupon_templates_tenant", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(120))
    # FIXED (amount_fen off) or PERCENT (percent_off % off, capped by max_discount_fen).
    kind: Mapped[str] = mapped_column(String(10))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    percent_off: Mapped[int | None] = mapped_column(default=None)
    max_discount_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # The order must be at least this much before the discount; 0 = no threshold.
    threshold_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # A coupon is valid from issue for valid_days, and never past valid_until.
    valid_days: Mapped[int | None] = mapped_column(default=None)
    valid_from: Mapped[datetime | None] = mapped_column(default=None)
    valid_until: Mapped[datetime | None] = mapped_column(default=None)
    per_user_limit: Mapped[int | None] = mapped_column(default=None)
    stock: Mapped[int | None] = mapped_column(BigInteger, default=None)
    budget_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # Empty: any store / category of the tenant.
    stores: Mapped[list[str]] = mapped_column(default=list)
    categories: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(10), default="ACTIVE")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Coupon(Base):
    """One coupon in one user's wallet (K2), and what became of it (K3)."""

    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("tenant_id", "template_id", "request_no"),
        Index("ix_coupons_wallet", "tenant_id", "user_id", "status"),
        Index("ix_coupons_order", "tenant_id", "order_id"),
        Index("ix_coupons_expiry", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    template_id: Mapped[str] = mapped_column(ForeignKey("coupon_templates.id"))
    user_id: Mapped[str] = mapped_column(String(200))
    # The issuer's request number: issuing again with it returns this coupon.
    request_no: Mapped[str] = mapped_column(String(120))
    # AVAILABLE, LOCKED (at checkout), REDEEMED, EXPIRED or REVOKED.
    status: Mapped[str] = mapped_column(String(10))
    # What issued it: "api", or "campaign:<reward id>".
    source: Mapped[str] = mapped_column(String(120), default="api")
    # Reserved against budget at issue: the face value, or a percentage coupon's cap.
    face_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    valid_from: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    # The checkout's payment order while LOCKED, and after REDEEMED.
    order_id: Mapped[str | None] = mapped_column(String(40), default=None)
    list_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    discount_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    redeemed_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoke_reason: Mapped[str | None] = mapped_column(String(120), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
