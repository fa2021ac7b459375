"""Coupon rules: template terms, validity, eligibility at checkout, the discount. Pure, no I/O.

A coupon moves through one state machine::

    AVAILABLE ──checkout──▶ LOCKED ──payment.succeeded──▶ REDEEMED
        ▲  │                  │                              │
        │  │                  └──payment closed / failed─────┤ (back to AVAILABLE, or
        │  └──past expires_at──▶ EXPIRED                     │  EXPIRED if past expiry)
        └──────────────────────full refund───────────────────┘
    AVAILABLE ──revoke──▶ REVOKED

A partial refund keeps the coupon REDEEMED: the order still stands, and the discount with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from zanloop.errors import Unprocessable


class CouponKind(StrEnum):
    FIXED = "FIXED"  # amount_fen off, optionally from threshold_fen
    PERCENT = "PERCENT"  # percent_off % off, optionally capped by max_discount_fen


class TemplateStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"  # issues nothing; coupons already issued stay usable


class CouponStatus(StrEnum):
    AVAILABLE = "AVAILABLE"
    LOCKED = "LOCKED"  # held by a checkout until its payment settles
    REDEEMED = "REDEEMED"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


class Refusal(StrEnum):
    """Why a coupon cannot be issued or used (the ``reason`` of a 409 coupon-unavailable)."""

    # Issue
    PAUSED = "paused"
    ENDED = "ended"
    STOCK = "stock"
    BUDGET = "budget"
    PER_USER_LIMIT = "per_user_limit"
    # Use
    NOT_OWNER = "not_owner"
    NOT_AVAILABLE = "not_available"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    THRESHOLD = "threshold"
    STORE = "store"
    CATEGORY = "category"


REFUSAL_TEXT: dict[Refusal, str] = {
    Refusal.PAUSED: "the coupon template is paused",
    Refusal.ENDED: "the coupon template's validity has ended",
    Refusal.STOCK: "the template's stock is used up",
    Refusal.BUDGET: "the template's budget is used up",
    Refusal.PER_USER_LIMIT: "the user already holds as many of these coupons as allowed",
    Refusal.NOT_OWNER: "the coupon belongs to another user",
    Refusal.NOT_AVAILABLE: "the coupon is not available",
    Refusal.EXPIRED: "the coupon has expired",
    Refusal.NOT_YET_VALID: "the coupon is not valid yet",
    Refusal.THRESHOLD: "the order is below the coupon's threshold",
    Refusal.STORE: "the coupon does not apply in this store",
    Refusal.CATEGORY: "the coupon does not apply to these categories",
}

# What "no limit" means to a quota counter: counted all the same, so a limit set later holds.
UNLIMITED = 2**62


@dataclass(frozen=True)
class Terms:
    """What a coupon of a template is worth and where it applies."""

    kind: CouponKind
    amount_fen: int | None = None
    percent_off: int | None = None
    max_discount_fen: int | None = None
    threshold_fen: int = 0
    stores: Sequence[str] = ()
    categories: Sequence[str] = ()


@dataclass(frozen=True)
class Validity:
    valid_days: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


# Templates -----------------------------------------------------------------------------------


def check_terms(terms: Terms, budget_fen: int | None) -> None:
    """Raise ``Unprocessable`` naming the field when the terms do not make a coupon."""
    if terms.kind is CouponKind.FIXED:
        if terms.amount_fen is None:
            raise Unprocessable("a FIXED coupon needs amount_fen", field="amount_fen")
        if terms.percent_off is not None or terms.max_discount_fen is not None:
            field = "percent_off" if terms.percent_off is not None else "max_discount_fen"
            raise Unprocessable(f"{field} belongs to PERCENT coupons", field=field)
        if terms.threshold_fen > 0 and terms.amount_fen >= terms.threshold_fen:
            raise Unprocessable(
                "amount_fen must be less than threshold_fen (a coupon never pays the whole order)",
                field="amount_fen",
            )
    else:
        if terms.percent_off is None:
            raise Unprocessable("a PERCENT coupon needs percent_off (1-99)", field="percent_off")
        if terms.amount_fen is not None:
            raise Unprocessable("amount_fen belongs to FIXED coupons", field="amount_fen")
        if budget_fen is not None and terms.max_discount_fen is None:
            raise Unprocessable(
                "a PERCENT coupon with a budget needs max_discount_fen: "
                "each issue reserves that much of the budget",
                field="max_discount_fen",
            )


def check_validity(validity: Validity, now: datetime, *, check_end: bool = True) -> None:
    if validity.valid_days is None and validity.valid_until is None:
        raise Unprocessable("set valid_days, valid_until or both", field="valid_days")
    if validity.valid_until is not None and check_end:
        if validity.valid_until <= now:
            raise Unprocessable("valid_until must be in the future", field="valid_until")
        if validity.valid_from is not None and validity.valid_from >= validity.valid_until:
            raise Unprocessable("valid_from must be before valid_until", field="valid_from")


def face_value(terms: Terms) -> int:
    """What one issue reserves against the budget: the face value, or a percentage cap."""
    if terms.kind is CouponKind.FIXED:
        return terms.amount_fen or 0
    return terms.max_discount_fen or 0


# Issue ---------------------------------------------------------------------------------------


def issue_refusal(
    status: TemplateStatus, valid_until: datetime | None, now: datetime
) -> Refusal | None:
    """Why nothing can be issued from the template now, or None."""
    if status is TemplateStatus.PAUSED:
        return Refusal.PAUSED
    if valid_until is not None and valid_until <= now:
        return Refusal.ENDED
    return None


def coupon_window(validity: Validity, issued_at: datetime) -> tuple[datetime, datetime]:
    """A new coupon's (valid_from, expires_at): usable from issue (or from the template's
    valid_from, if later) for valid_days, and never past valid_until. (The days count from
    when the coupon becomes usable, so one issued ahead of its template's start is not spent
    before it begins.)"""
    starts = issued_at if validity.valid_from is None else max(issued_at, validity.valid_from)
    ends = [validity.valid_until] if validity.valid_until is not None else []
    if validity.valid_days is not None:
        ends.append(starts + timedelta(days=validity.valid_days))
    return starts, min(ends)


# Use at checkout -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Holding:
    """A coupon as it stands, to be used now."""

    user_id: str
    status: CouponStatus
    valid_from: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Basket:
    """The order a coupon is used on, before the discount."""

    user_id: str
    list_fen: int
    store_id: str | None = None
    categories: Sequence[str] = ()


def effective_status(status: CouponStatus, expires_at: datetime, now: datetime) -> CouponStatus:
    """An AVAILABLE coupon past its expiry is EXPIRED, whether or not the job has run."""
    if status is CouponStatus.AVAILABLE and expires_at <= now:
        return CouponStatus.EXPIRED
    return status


def use_refusal(holding: Holding, terms: Terms, basket: Basket, now: datetime) -> Refusal | None:
    """Why the coupon cannot be used on the basket now, or None.

    Categories: every category of the order must be one the coupon applies to (the discount
    is on the whole order, so an order with other goods in it does not qualify)."""
    if holding.user_id != basket.user_id:
        return Refusal.NOT_OWNER
    status = effective_status(holding.status, holding.expires_at, now)
    if status is CouponStatus.EXPIRED:
        return Refusal.EXPIRED
    if status is not CouponStatus.AVAILABLE:
        return Refusal.NOT_AVAILABLE
    if now < holding.valid_from:
        return Refusal.NOT_YET_VALID
    if basket.list_fen < terms.threshold_fen:
        return Refusal.THRESHOLD
    if terms.stores and basket.store_id not in terms.stores:
        return Refusal.STORE
    if terms.categories and (
        not basket.categories or not set(basket.categories) <= set(terms.categories)
    ):
        return Refusal.CATEGORY
    return None


def discount(terms: Terms, list_fen: int) -> int:
    """The discount on an order of ``list_fen``: a fixed amount, or floor(list × percent / 100)
    capped by max_discount_fen; never leaving less than 1 fen to pay."""
    if list_fen <= 1:
        return 0
    if terms.kind is CouponKind.FIXED:
        off = terms.amount_fen or 0
    else:
        off = list_fen * (terms.percent_off or 0) // 100
        if terms.max_discount_fen is not None:
            off = min(off, terms.max_discount_fen)
    return max(0, min(off, list_fen - 1))


# Metrics -------------------------------------------------------------------------------------


def ratio(numerator: int, denominator: int) -> float | None:
    """numerator / denominator to 4 places, or None when there is nothing to divide by."""
    if denominator == 0:
        return None
    return round(numerator / denominator, 4)
