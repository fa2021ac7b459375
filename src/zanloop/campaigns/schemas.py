from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from zanloop.campaigns.domain import CampaignStatus, PromptStatus
from zanloop.ledger.schemas import NO_NUL
from zanloop.rules.domain import RuleDocument

COFFEE_EXAMPLE: dict[str, Any] = {
    "name": "Pay 50, like, get 5 off",
    "rule": {
        "trigger": "payment.succeeded",
        "conditions": [
            {"type": "amount_gte", "fen": 5000},
            {"type": "time_of_day", "start": "07:00", "end": "11:00"},
        ],
        "effects": [
            {
                "type": "prompt_like",
                "store": "Lujiazui",
                "image_url": "https://example.com/latte.jpg",
                "slogan": "Liked your latte? Tell us!",
            }
        ],
        "caps": {"per_user_per_day": 1},
        "budget": {"max_rewards": 10000},
    },
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CampaignCreate(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [COFFEE_EXAMPLE]})

    name: str = Field(min_length=1, max_length=120, pattern=NO_NUL)
    rule: RuleDocument
    status: CampaignStatus = CampaignStatus.ACTIVE


class CampaignUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=120, pattern=NO_NUL)
    rule: RuleDocument | None = None
    status: CampaignStatus | None = None


class Campaign(BaseModel):
    id: str
    name: str
    trigger: str
    status: CampaignStatus
    rule: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


class SimulatedEvent(_In):
    """An event to try against the live campaigns; nothing is written."""

    trigger: str = Field(default="payment.succeeded", min_length=1, max_length=40)
    at: AwareDatetime | None = Field(default=None, description="When; now if absent.")
    user_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_NUL)
    amount_fen: int = Field(default=0, ge=0, le=10**12)
    store_id: str | None = Field(default=None, min_length=1, max_length=120, pattern=NO_NUL)
    categories: list[str] = Field(default_factory=list, max_length=50)
    first_purchase: bool | None = Field(
        default=None, description="Looked up from the user's payments if absent."
    )
    tier: str | None = Field(default=None, max_length=20, description="Looked up if absent.")


class Check(BaseModel):
    path: str
    passed: bool
    message: str


class Verdict(BaseModel):
    campaign_id: str
    campaign_name: str
    outcome: str = Field(
        description="rewarded, held_for_review, conditions_not_met, budget_exhausted, "
        "user_cap_reached or risk_blocked."
    )
    message: str
    checks: list[Check]
    reward_id: str | None = None
    reward_status: str | None = None
    effects: list[dict[str, Any]] | None = None


class Simulation(BaseModel):
    trigger: str
    facts: dict[str, Any]
    verdicts: list[Verdict]


class EventExplanation(BaseModel):
    event_id: str
    trigger: str
    user_id: str | None
    occurred_at: datetime
    facts: dict[str, Any]
    verdicts: list[Verdict]


class OrderExplanation(BaseModel):
    order_id: str
    status: str
    summary: str
    events: list[EventExplanation]


class Prompt(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    campaign_id: str
    user_id: str
    order_id: str
    store: str
    image_url: str
    slogan: str
    status: PromptStatus
    created_at: datetime
    expires_at: datetime
    liked_at: datetime | None
    shared_at: datetime | None
    share_channel: str | None


class LikeCreate(_In):
    device_id: str | None = Field(default=None, max_length=128, pattern=NO_NUL)
    ip: str | None = Field(default=None, max_length=64, pattern=NO_NUL)


class ShareCreate(_In):
    channel: str = Field(default="wechat", min_length=1, max_length=40, pattern=NO_NUL)


class Interaction(BaseModel):
    prompt: Prompt
    rewards: list[Verdict] = Field(
        description="What the like or share earned, campaign by campaign."
    )
    replayed: bool


class Reward(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    campaign_id: str
    event_id: str
    user_id: str
    order_id: str | None
    status: str
    cost_fen: int
    effects: list[dict[str, Any]]
    decision_id: str | None
    created_at: datetime
    reversed_at: datetime | None
    reverse_reason: str | None


class ReviewDecision(_In):
    approve: bool
    note: str = Field(default="", max_length=500, pattern=NO_NUL)


class CampaignMetrics(BaseModel):
    campaign_id: str
    prompts: int
    likes: int
    shares: int
    like_rate: float | None
    share_rate: float | None
    rewards_granted: int
    rewards_held: int
    rewards_reversed: int
    coupons_issued: int
    coupons_redeemed: int
    reward_redemption_rate: float | None
    discount_fen: int
    spend_fen: int
    leverage: float | None = Field(description="Spend driven per fen of discount given.")
    rewarded_users: int
    repurchasers: int
    repurchase_rate: float | None
