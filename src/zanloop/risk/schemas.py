from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    StringConstraints,
)

from zanloop.kit.money import Asset
from zanloop.kit.text import EncodableText
from zanloop.ledger.domain import MAX_AMOUNT
from zanloop.ledger.schemas import NO_NUL, OWNER
from zanloop.risk.domain import Mode, Subject, Verdict
from zanloop.risk.policy import ACTION_PATTERN, PolicyDocument

ContextKey = Annotated[
    EncodableText, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)
]
Id = Annotated[EncodableText, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
ContextValue = (
    Annotated[EncodableText, StringConstraints(max_length=500, pattern=NO_NUL)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | Annotated[int, Field(ge=-(10**15), le=10**15)]
    | bool
    | None
)


class ListName(StrEnum):
    BLOCK = "block"
    ALLOW = "allow"
    REVIEW = "review"


class ListSubject(StrEnum):
    USER = "user"
    DEVICE = "device"
    IP = "ip"
    PAYMENT_ACCOUNT = "payment_account"


class HoldCreate(BaseModel):
    """The transfer the action makes if allowed: held for review when the verdict is REVIEW."""

    model_config = ConfigDict(extra="forbid")

    asset: Asset
    from_owner: str = OWNER
    to_owner: str = OWNER
    amount: int = Field(ge=1, le=MAX_AMOUNT)
    description: str = Field(default="", max_length=500, pattern=NO_NUL)


class DecisionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "action": "reward.grant",
                    "user_id": "user:42",
                    "amount_fen": 5200,
                    "device_id": "fp-9c1e",
                    "ip": "203.0.113.7",
                    "payment_account": "o-openid-42",
                    "payment_order_id": "pay_01JD...",
                    "reference": "reward-for-pay_01JD...",
                    "context": {"reward_threshold_fen": 5000},
                    "hold": {
                        "asset": "POINTS",
                        "from_owner": "merchant:coffee",
                        "to_owner": "user:42",
                        "amount": 500,
                    },
                }
            ]
        },
    )

    action: str = Field(pattern=ACTION_PATTERN, max_length=64, examples=["pin.purchase"])
    user_id: Id
    amount_fen: int = Field(default=0, ge=0, le=MAX_AMOUNT, description="The payment amount.")
    device_id: Id | None = None
    ip: IPvAnyAddress | None = None
    payment_account: Id | None = Field(default=None, description="The openid.")
    payment_order_id: Id | None = Field(
        default=None, description="zanloop's order id or your out_trade_no."
    )
    account_created_at: AwareDatetime | None = None
    payer_verified: bool | None = Field(
        default=None, description="The payment account is bound and real-name verified."
    )
    reference: Id | None = Field(
        default=None,
        description="Your id for the action: deciding it again returns the first decision.",
    )
    context: dict[ContextKey, ContextValue] = Field(
        default_factory=dict,
        max_length=50,
        description="Facts for the rules, e.g. `reward_threshold_fen`: text, numbers, booleans.",
    )
    hold: HoldCreate | None = Field(
        default=None,
        description="Held for review when the verdict is REVIEW (needs the merchant scope).",
    )


class ReasonOut(BaseModel):
    code: str
    rule_id: str
    verdict: Verdict
    score: int
    message: str
    mode: Mode


class Review(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    decision_id: str
    status: str
    hold_id: str
    asset: Asset
    amount: int
    from_owner: str
    to_owner: str
    description: str
    note: str
    resolved_by: str | None
    created_at: datetime
    resolved_at: datetime | None


class Decision(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    action: str
    user_id: str
    reference: str | None
    verdict: Verdict
    score: int
    reasons: list[ReasonOut]
    amount_fen: int
    device_id: str | None
    ip: str | None
    payment_account: str | None
    payment_order_id: str | None
    context: dict[str, Any]
    policy_version: int
    rules_evaluated: int = Field(
        description="Rules that applied to the action; 0: no rule knows it (misspelled?)."
    )
    created_at: datetime
    review: Review | None = None


class ReviewResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=1000, pattern=NO_NUL)


class ListEntryCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"list": "block", "subject": "ip", "value": "198.51.100.0/24", "note": "farm"}
            ]
        },
    )

    list: ListName
    subject: ListSubject
    value: str = Field(
        min_length=1,
        max_length=200,
        pattern=NO_NUL,
        description="An id; for subject ip, an address or a CIDR range.",
    )
    note: str = Field(default="", max_length=500, pattern=NO_NUL)
    expires_at: AwareDatetime | None = None


class ListEntry(BaseModel):
    id: str
    list: str
    subject: Subject
    value: str
    note: str
    expires_at: datetime | None
    created_by: str
    created_at: datetime


class Policy(BaseModel):
    version: int
    is_default: bool = Field(description="True while the tenant runs the built-in defaults.")
    updated_at: datetime | None
    document: PolicyDocument


class AuditEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    actor: str
    action: str
    subject_type: str
    subject_id: str
    detail: dict[str, Any]
    created_at: datetime


class ListHitOut(BaseModel):
    list: str
    subject: Subject
    value: str
    note: str


class Explanation(BaseModel):
    user_id: str
    action: str | None
    status: str = Field(description="CLEAR, HELD (a review waits) or BLOCKED.")
    summary: list[str]
    listed: list[ListHitOut]
    open_reviews: list[Review]
    decisions: list[Decision] = Field(description="Recent decisions that blocked or held.")
