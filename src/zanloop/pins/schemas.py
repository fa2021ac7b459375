from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from zanloop.kit.text import EncodableText
from zanloop.ledger.schemas import NO_NUL
from zanloop.payments.schemas import PaymentDisclosure, PayParams
from zanloop.pins.domain import ContentKind, PinMode, PinStatus, Programme, Tier

# 190: room for the "creator:" prefix of the earnings account (owners hold 200).
ExternalId = Annotated[
    EncodableText, StringConstraints(min_length=1, max_length=190, pattern=NO_NUL)
]
Title = Annotated[EncodableText, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
Rate = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class CreatorUpsert(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "熊二赶海", "programmes": ["incentive", "commerce"]}]
        },
    )

    name: Title
    programmes: list[Programme] = Field(
        default_factory=list, description="Enrolment decides whether content accepts pins."
    )
    policy: dict[str, Any] = Field(
        default_factory=dict,
        description='Overrides of the tenant\'s pin policy, e.g. {"slots": 5}.',
    )


class Creator(BaseModel):
    id: str = Field(description="The id you gave the creator.")
    name: str
    programmes: list[str]
    policy: dict[str, Any]
    created_at: datetime


class ContentUpsert(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "creator_id": "creator-42",
                    "kind": "video",
                    "title": "Low tide at dawn",
                    "completion_rate": 0.62,
                    "engagement_rate": 0.08,
                }
            ]
        },
    )

    creator_id: ExternalId
    kind: ContentKind
    title: Title
    pins_enabled: bool = True
    completion_rate: Rate | None = Field(default=None, description="0–1, from your player.")
    engagement_rate: Rate | None = Field(default=None, description="Interactions per view.")


class ContentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    pins_enabled: bool | None = None
    completion_rate: Rate | None = Field(default=None, description="null clears the figure.")
    engagement_rate: Rate | None = Field(default=None, description="null clears the figure.")

    @field_validator("title", "pins_enabled", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Left out means "unchanged"; null would mean "none", which these fields cannot be.
        if value is None:
            raise ValueError("may be left out, but not null")
        return value


class PinTerms(BaseModel):
    """What an app shows before the viewer pays."""

    min_amount_fen: int
    mode: PinMode
    tiers: list[Tier]
    slots: int


class ContentOut(BaseModel):
    id: str
    creator_id: str
    kind: ContentKind
    title: str
    pins_enabled: bool
    completion_rate: float | None
    engagement_rate: float | None
    quality_score: int | None
    accepts_pins: bool = Field(description="Show the “paid pinned like” label when true.")
    eligibility: str
    terms: PinTerms
    created_at: datetime


class PinCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "content_id": "video-1",
                    "buyer_id": "viewer-7",
                    "amount_fen": 500,
                    "message": "加油!",
                    "device_id": "fp-2b9c",
                    "ip": "203.0.113.9",
                    "region": "Guangdong",
                }
            ]
        },
    )

    content_id: ExternalId
    buyer_id: ExternalId
    amount_fen: int = Field(ge=1, le=100_000_000)
    message: Annotated[EncodableText, StringConstraints(max_length=500, pattern=NO_NUL)] = ""
    device_id: ExternalId = Field(description="The device fingerprint: risk control needs it.")
    ip: Annotated[str, StringConstraints(max_length=64, pattern=r"^[0-9A-Fa-f:.]+$")] | None = None
    region: Annotated[EncodableText, StringConstraints(max_length=64, pattern=NO_NUL)] | None = None


class Pin(BaseModel):
    id: str
    content_id: str
    creator_id: str
    buyer_id: str
    amount_fen: int
    creator_fen: int
    platform_fen: int
    message: str
    mode: PinMode
    display_seconds: int | None
    status: PinStatus
    payment_order_id: str
    decision_id: str
    region: str | None
    created_at: datetime
    activated_at: datetime | None
    expires_at: datetime | None
    ended_at: datetime | None
    end_reason: str
    removed_by: str | None
    refund_id: str | None = Field(description="The latest refund of the pin's payment.")
    refunded_fen: int


class PinPayment(BaseModel):
    order_id: str
    out_trade_no: str
    pay_params: PayParams
    expires_at: datetime


class PinPurchase(BaseModel):
    pin: Pin
    payment: PinPayment
    disclosure: PaymentDisclosure


class PinRemove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[EncodableText, StringConstraints(max_length=500, pattern=NO_NUL)] = ""
    violation: bool = Field(default=False, description="Removed for breaking the rules: no refund.")


class PinnedEntry(BaseModel):
    pin_id: str
    buyer_id: str
    amount_fen: int
    message: str
    pinned_at: datetime
    expires_at: datetime | None


class PinnedList(BaseModel):
    content_id: str
    accepts_pins: bool
    slots: int
    pinned: list[PinnedEntry] = Field(description="Shown at the top, in display order.")
    queued: list[PinnedEntry] = Field(description="Waiting for a slot, in order.")


class DayFigures(BaseModel):
    day: str
    pins: int
    amount_fen: int


class Band(BaseModel):
    name: str
    supporters: int
    amount_fen: int


class Supporter(BaseModel):
    buyer_id: str
    pins: int
    amount_fen: int


class CreatorAnalytics(BaseModel):
    creator_id: str
    since: datetime
    until: datetime
    pins: int
    gross_fen: int
    refunded_fen: int
    creator_earnings_fen: int
    supporters: int
    daily: list[DayFigures]
    regions: list[Band] = Field(description="Supporters and spend by region.")
    spend_bands: list[Band] = Field(description="Supporters by their total spend.")
    top_supporters: list[Supporter] = Field(description="Repeat, high-value supporters.")


class StreamToken(BaseModel):
    token: str
    expires_at: datetime
    url: str
