from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from zanloop.coupons.domain import CouponKind, CouponStatus, TemplateStatus
from zanloop.kit.text import EncodableText
from zanloop.ledger.schemas import NO_NUL
from zanloop.payments.schemas import OUT_NO_PATTERN, PayParams

# The payment order metadata a checkout writes itself (other areas read them).
RESERVED_METADATA = frozenset(
    {"user_id", "store_id", "categories", "coupon_id", "list_fen", "discount_fen"}
)
MAX_FEN = 100_000_000  # 1,000,000 CNY: the most one payment order may be

ExternalId = Annotated[
    EncodableText, StringConstraints(min_length=1, max_length=190, pattern=NO_NUL)
]
Name = Annotated[EncodableText, StringConstraints(min_length=1, max_length=120, pattern=NO_NUL)]
RequestNo = Annotated[
    EncodableText, StringConstraints(min_length=1, max_length=120, pattern=NO_NUL)
]
ObjectId = Annotated[EncodableText, StringConstraints(min_length=1, max_length=40, pattern=NO_NUL)]
Fen = Annotated[int, Field(ge=1, le=MAX_FEN)]
Labels = Annotated[list[ExternalId], Field(max_length=100)]


def _utc(value: datetime) -> datetime:
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        value = datetime.max.replace(tzinfo=UTC)
    if not 1970 <= value.year <= 2999:
        raise ValueError("the time must fall between the years 1970 and 2999")
    return value


When = Annotated[AwareDatetime, AfterValidator(_utc)]


class TemplateCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "5 CNY off from 30 CNY",
                    "kind": "FIXED",
                    "amount_fen": 500,
                    "threshold_fen": 3000,
                    "valid_days": 7,
                    "per_user_limit": 1,
                    "stock": 1000,
                    "budget_fen": 500000,
                },
                {
                    "name": "20 % off coffee, at most 10 CNY",
                    "kind": "PERCENT",
                    "percent_off": 20,
                    "max_discount_fen": 1000,
                    "valid_until": "2030-01-01T00:00:00Z",
                    "categories": ["coffee"],
                },
            ]
        },
    )

    name: Name
    kind: CouponKind
    amount_fen: Fen | None = Field(default=None, description="FIXED: fen off the order.")
    percent_off: int | None = Field(default=None, ge=1, le=99, description="PERCENT: % off.")
    max_discount_fen: Fen | None = Field(
        default=None, description="PERCENT: the most one coupon takes off (needed with a budget)."
    )
    threshold_fen: int = Field(
        default=0, ge=0, le=MAX_FEN, description="The order (list price) must be at least this."
    )
    valid_days: int | None = Field(
        default=None, ge=1, le=3650, description="A coupon is valid this many days from issue."
    )
    valid_from: When | None = Field(default=None, description="No coupon is usable before this.")
    valid_until: When | None = Field(
        default=None, description="No coupon is usable after this, nor issued."
    )
    per_user_limit: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Coupons one user may hold from it."
    )
    stock: int | None = Field(
        default=None, ge=1, le=10**12, description="How many coupons may be issued."
    )
    budget_fen: int | None = Field(
        default=None,
        ge=1,
        le=10**14,
        description="Face value all issues may reserve (FIXED: amount_fen; PERCENT: the cap).",
    )
    stores: Labels = Field(default_factory=list, description="Where it applies; empty: anywhere.")
    categories: Labels = Field(
        default_factory=list,
        description="Product categories it applies to; empty: any. Every category of the order "
        "must be one of them.",
    )


class TemplateUpdate(BaseModel):
    """What may change once coupons are out: limits and validity for later issues. The terms
    (amount, percentage, threshold, stores, categories) are what issued coupons promise, so
    they stay; make a new template instead."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"status": "PAUSED"}, {"stock": 2000}]}
    )

    name: Name | None = None
    status: TemplateStatus | None = None
    stock: int | None = Field(default=None, ge=1, le=10**12, description="null: no limit.")
    budget_fen: int | None = Field(default=None, ge=1, le=10**14, description="null: no limit.")
    per_user_limit: int | None = Field(
        default=None, ge=1, le=1_000_000, description="null: no limit."
    )
    valid_days: int | None = Field(default=None, ge=1, le=3650)
    valid_until: When | None = Field(
        default=None, description="For coupons issued from now on; those issued keep their end."
    )

    @field_validator("name", "status", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Left out means "unchanged"; null would mean "none", which these fields cannot be.
        if value is None:
            raise ValueError("may be left out, but not null")
        return value


class Template(BaseModel):
    id: str
    name: str
    kind: CouponKind
    amount_fen: int | None
    percent_off: int | None
    max_discount_fen: int | None
    threshold_fen: int
    currency: str = "CNY"
    valid_days: int | None
    valid_from: datetime | None
    valid_until: datetime | None
    per_user_limit: int | None
    stock: int | None
    budget_fen: int | None
    stores: list[str]
    categories: list[str]
    status: TemplateStatus
    issued: int = Field(description="Coupons issued from it (including revoked ones).")
    redeemed: int
    stock_left: int | None = Field(description="null: no stock limit.")
    budget_left: int | None = Field(description="Fen of budget not yet reserved; null: none set.")
    created_at: datetime
    updated_at: datetime


class CouponIssue(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"template_id": "ctpl_01J...", "user_id": "user-42", "request_no": "r-1"}]
        },
    )

    template_id: ObjectId
    user_id: ExternalId
    request_no: RequestNo = Field(
        description="Your number for this issue: sending it again returns the same coupon."
    )


class CouponClaim(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": "user-42", "request_no": "claim-user-42"}]},
    )

    user_id: ExternalId
    request_no: RequestNo = Field(
        description="Your number for this claim: sending it again returns the same coupon."
    )


class CouponRevoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[EncodableText, StringConstraints(max_length=120, pattern=NO_NUL)] = ""


class CouponTerms(BaseModel):
    """What the coupon is worth and where it applies (its template's terms)."""

    name: str
    kind: CouponKind
    amount_fen: int | None
    percent_off: int | None
    max_discount_fen: int | None
    threshold_fen: int
    stores: list[str]
    categories: list[str]


class Coupon(BaseModel):
    id: str
    template_id: str
    user_id: str
    request_no: str
    status: CouponStatus = Field(description="An AVAILABLE coupon past expires_at shows EXPIRED.")
    source: str
    face_fen: int
    terms: CouponTerms
    issued_at: datetime
    valid_from: datetime
    expires_at: datetime
    order_id: str | None = Field(
        description="The checkout's payment order while LOCKED and once REDEEMED; after a "
        "checkout that was not paid, the last order it was locked to."
    )
    list_fen: int | None
    discount_fen: int | None
    redeemed_at: datetime | None
    revoked_at: datetime | None
    revoke_reason: str | None


class CheckoutCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "user_id": "user-42",
                    "payer_openid": "o_user_42",
                    "amount_fen": 3800,
                    "description": "Latte and croissant",
                    "store_id": "store-1",
                    "categories": ["coffee"],
                    "coupon_id": "cpn_01J...",
                }
            ]
        },
    )

    user_id: ExternalId
    payer_openid: Annotated[
        EncodableText, StringConstraints(min_length=1, max_length=128, pattern=NO_NUL)
    ] = Field(description="The buyer's WeChat openid.")
    amount_fen: Fen = Field(description="The list price, before any coupon.")
    description: Annotated[
        EncodableText, StringConstraints(min_length=1, max_length=127, pattern=NO_NUL)
    ]
    store_id: ExternalId | None = None
    categories: Labels = Field(default_factory=list)
    coupon_id: ObjectId | None = None
    out_trade_no: str | None = Field(default=None, pattern=OUT_NO_PATTERN)
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        max_length=50,
        description="Kept on the payment order beside user_id, store_id, categories, coupon_id, "
        "list_fen and discount_fen (which the checkout sets itself).",
    )

    @field_validator("metadata")
    @classmethod
    def _own_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        taken = sorted(RESERVED_METADATA & value.keys())
        if taken:
            raise ValueError(f"the checkout sets {', '.join(taken)} itself")
        return value


class CheckoutOrder(BaseModel):
    id: str
    out_trade_no: str
    status: str
    amount_fen: int = Field(description="What the buyer pays: the list price less the discount.")
    currency: str
    expires_at: datetime


class Checkout(BaseModel):
    order: CheckoutOrder
    list_fen: int
    discount_fen: int
    coupon: Coupon | None
    pay_params: PayParams


class Metrics(BaseModel):
    template_id: str | None
    issued: int
    redeemed: int
    expired: int
    revoked: int
    redemption_rate: float | None = Field(description="redeemed / issued; null when none.")
    discount_fen: int = Field(description="Discount given on redeemed coupons.")
    spend_fen: int = Field(description="What buyers paid on the orders that redeemed a coupon.")
    list_fen: int
    leverage: float | None = Field(description="spend_fen / discount_fen; null when no discount.")
