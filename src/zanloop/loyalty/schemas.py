from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from zanloop.ledger.schemas import NO_NUL
from zanloop.loyalty.domain import LotStatus, RedemptionStatus, RuleStatus, Settings, TaskDocument
from zanloop.rules.domain import RuleDocument

MAX_BATCH = 5000
Name = Annotated[str, Field(min_length=1, max_length=120, pattern=NO_NUL)]
EventType = Annotated[str, Field(max_length=40, pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")]
UserRef = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Programme -----------------------------------------------------------------------------------


class Programme(BaseModel):
    settings: Settings
    rules_version: int
    expiry_rule: str
    updated_at: datetime


class DefaultsIn(_In):
    activate: bool = Field(default=False, description="Switch the seed's rules and tasks on now.")
    partner_stores: list[Annotated[str, Field(min_length=1, max_length=120)]] = Field(
        default_factory=list, max_length=500, description="Stores whose payments earn double."
    )
    double_points_from: AwareDatetime | None = None
    double_points_to: AwareDatetime | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> DefaultsIn:
        if (self.double_points_from is None) != (self.double_points_to is None):
            raise ValueError("give double_points_from and double_points_to together")
        if (
            self.double_points_from
            and self.double_points_to
            and (self.double_points_from >= self.double_points_to)
        ):
            raise ValueError("double_points_from must be before double_points_to")
        return self


class RuleCreate(_In):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "1 point a yuan",
                    "rule": {
                        "trigger": "payment.succeeded",
                        "effects": [{"type": "earn_per_yuan", "points_per_yuan": "1"}],
                    },
                }
            ]
        },
    )
    name: Name
    rule: RuleDocument
    status: RuleStatus = RuleStatus.ACTIVE


class RuleUpdate(_In):
    name: Name | None = None
    rule: RuleDocument | None = None
    status: RuleStatus | None = None


class PointsRule(BaseModel):
    id: str
    name: str
    status: RuleStatus
    rule: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


class TaskCreate(_In):
    name: Name
    task: TaskDocument
    status: RuleStatus = RuleStatus.ACTIVE


class TaskUpdate(_In):
    name: Name | None = None
    status: RuleStatus | None = None


class Task(BaseModel):
    id: str
    name: str
    status: RuleStatus
    task: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class Defaults(BaseModel):
    rules: list[PointsRule]
    tasks: list[Task]


# Events --------------------------------------------------------------------------------------


class EventIn(_In):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_id": "pos-8812-0001",
                    "type": "payment.succeeded",
                    "user_id": "u_1001",
                    "occurred_at": "2026-11-20T12:30:00+08:00",
                    "amount_fen": 12800,
                    "store_id": "store-7",
                    "order_id": "pos-8812",
                }
            ]
        },
    )
    event_id: str = Field(
        min_length=1,
        max_length=120,
        pattern=NO_NUL,
        description="The sender's id for the event: sending it again is a replay.",
    )
    type: EventType
    user_id: UserRef
    occurred_at: AwareDatetime
    amount_fen: int = Field(default=0, ge=0, le=10**11)
    store_id: str | None = Field(default=None, min_length=1, max_length=120, pattern=NO_NUL)
    categories: list[Annotated[str, Field(min_length=1, max_length=120)]] = Field(
        default_factory=list, max_length=20
    )
    order_id: str | None = Field(
        default=None,
        validate_default=True,
        min_length=1,
        max_length=120,
        pattern=NO_NUL,
        description="The payment behind the event: its points stay pending through the refund "
        "window, and refunding it claws them back.",
    )
    value: int = Field(
        default=0,
        ge=0,
        le=10**9,
        description="The event's measure: seconds watched, percent read...",
    )
    counterparty_id: UserRef | None = Field(
        default=None,
        validate_default=True,
        description="The other side of the event: the friend who accepted an invitation.",
    )
    code: str | None = Field(
        default=None,
        validate_default=True,
        min_length=8,
        max_length=300,
        description="A receipt QR code, for receipt.scanned.",
    )

    # Field validators (not a model validator), so an error names the field it is about.
    @field_validator("order_id")
    @classmethod
    def _refund_names_its_order(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("type") == "payment.refunded":
            raise ValueError("a payment.refunded event names the refunded order_id")
        return value

    @field_validator("counterparty_id")
    @classmethod
    def _another_user(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value == info.data.get("user_id"):
            raise ValueError("counterparty_id must be another user")
        return value

    @field_validator("code")
    @classmethod
    def _receipt_has_its_code(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("type") == "receipt.scanned":
            raise ValueError("a receipt.scanned event carries the receipt's code")
        return value


class BatchIn(_In):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class Outcome(BaseModel):
    event_id: str
    status: Literal["applied", "duplicate", "rejected"]
    points: int
    pending: bool
    reason: str | None
    tier: str | None


class Balance(BaseModel):
    user_id: str
    available: int
    pending: int
    held: int
    tier: str


class IngestResult(BaseModel):
    events: list[Outcome]
    balances: list[Balance]


class ReverseIn(_In):
    reason: str = Field(default="refunded", min_length=1, max_length=200, pattern=NO_NUL)


class ReversalOut(BaseModel):
    event_id: str
    clawed: int
    owed: int
    tier: str
    balance: Balance | None


class ReceiptIn(_In):
    store_id: str = Field(min_length=1, max_length=120, pattern=r"^[^|\x00]*$")
    amount_fen: int = Field(gt=0, le=10**11)


class ReceiptOut(BaseModel):
    code: str


# Members -------------------------------------------------------------------------------------


class MemberIn(_In):
    birthday: str | None = Field(
        default=None, pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$", examples=["04-17"]
    )


class Member(BaseModel):
    user_id: str
    tier: str
    birthday: str | None
    owed_points: int
    created_at: datetime


class Account(BaseModel):
    user_id: str
    tier: str
    multiplier: str
    available: int
    pending: int
    held: int
    owed: int
    pending_until: datetime | None
    next_expiry: datetime | None
    next_expiry_points: int
    expiry_rule: str
    qualifying: int
    next_tier: str | None
    next_tier_at: int | None


class Lot(BaseModel):
    id: str
    ref: str
    status: LotStatus
    points: int
    remaining: int
    expired: int
    clawed: int
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None
    detail: dict[str, Any]


class TaskProgress(BaseModel):
    task_id: str
    name: str
    type: str
    points: int
    completed: int
    rewarded: int
    progress: int
    goal: int
    detail: str


class TierChange(BaseModel):
    from_tier: str
    to_tier: str
    reason: str
    qualifying: int
    at: datetime


# Catalogue and redemptions -------------------------------------------------------------------


class ItemIn(_In):
    name: Name
    kind: Literal["COUPON", "GOODS"]
    price_points: int = Field(gt=0, le=10**9)
    coupon_template_id: str | None = Field(default=None, max_length=40)
    stock: int | None = Field(default=None, ge=0, le=10**9)
    per_user_limit: int | None = Field(default=None, ge=1, le=10**6)
    status: RuleStatus = RuleStatus.ACTIVE


class ItemUpdate(_In):
    name: Name | None = None
    price_points: int | None = Field(default=None, gt=0, le=10**9)
    stock: int | None = Field(default=None, ge=0, le=10**9)
    per_user_limit: int | None = Field(default=None, ge=1, le=10**6)
    status: RuleStatus | None = None


class Item(BaseModel):
    id: str
    name: str
    kind: str
    price_points: int
    coupon_template_id: str | None
    stock: int | None
    per_user_limit: int | None
    status: RuleStatus


class RedeemIn(_In):
    user_id: UserRef
    item_id: str = Field(min_length=1, max_length=40, pattern=NO_NUL)
    quantity: int = Field(default=1, ge=1, le=100)
    request_no: str = Field(
        min_length=1,
        max_length=120,
        pattern=NO_NUL,
        description="The caller's number for the redemption: a replay answers the first.",
    )
    confirm: bool = Field(default=False, description="Confirm at once instead of holding.")


class Redemption(BaseModel):
    id: str
    request_no: str
    user_id: str
    item_id: str
    quantity: int
    points: int
    status: RedemptionStatus
    allocations: dict[str, int]
    coupon_ids: list[str]
    expires_at: datetime
    created_at: datetime
    resolved_at: datetime | None
    balance: Balance | None = None


# Economics -----------------------------------------------------------------------------------


class Month(BaseModel):
    month: str
    points_issued: int
    points_clawed: int
    earning_members: int
    cost_fen: int
    cost_per_member_fen: int
    over_alert: bool


class RuleSpend(BaseModel):
    rule_id: str
    name: str
    rewards: int
    cost_fen: int
    max_rewards: int | None
    max_cost_fen: int | None


class Economics(BaseModel):
    point_value_fen: str
    points_issued: int
    points_clawed: int
    points_expired: int
    points_redeemed: int
    points_outstanding: int
    points_pending: int
    points_held: int
    liability_fen: int
    breakage_fen: int
    breakage_rate: float
    months: list[Month]
    rules: list[RuleSpend]
