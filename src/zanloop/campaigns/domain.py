"""Campaign rules that need no database: statuses, what a reward costs and which limits it
takes, progress arithmetic and the ratios of the merchant metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from zanloop.quotas.service import Ask
from zanloop.rules.domain import GrantPoints, IssueCoupon, ProgressTier, RuleDocument, local_day


class CampaignStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    ENDED = "ENDED"


class PromptStatus(StrEnum):
    OPEN = "OPEN"
    LIKED = "LIKED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


class RewardStatus(StrEnum):
    GRANTED = "GRANTED"
    # Risk control asked for a review: limits are taken, effects wait for an analyst.
    HELD = "HELD"
    REVERSED = "REVERSED"
    REJECTED = "REJECTED"


class Outcome(StrEnum):
    """What one campaign made of one event."""

    REWARDED = "rewarded"
    HELD = "held_for_review"
    CONDITIONS = "conditions_not_met"
    BUDGET = "budget_exhausted"
    CAP = "user_cap_reached"
    RISK = "risk_blocked"
    NOT_TRIGGERED = "payment_not_eligible"


# Events that stand on a payment: their rewards go when it is refunded.
PAYMENT_TRIGGER = "payment.succeeded"
LIKE_TRIGGER = "like.created"
SHARE_TRIGGER = "share.created"


def grants_rewards(document: RuleDocument) -> bool:
    """Whether any effect gives the user something of value (a prompt alone does not)."""
    return any(isinstance(e, IssueCoupon | GrantPoints | ProgressTier) for e in document.effects)


def reward_cost_fen(document: RuleDocument, coupon_face_fen: dict[str, int]) -> int:
    """What one firing costs the merchant, for ``budget.max_cost_fen``: coupons at face value
    (a percentage coupon at its cap), points at ``budget.point_cost_fen`` each. What reaching a
    progress goal grants is not counted here: it is not known to happen yet."""
    cost = 0
    for effect in document.effects:
        if isinstance(effect, IssueCoupon):
            cost += coupon_face_fen.get(effect.template_id, 0)
        elif isinstance(effect, GrantPoints):
            cost += effect.points * document.budget.point_cost_fen
    return cost


@dataclass(frozen=True)
class Limits:
    budget_rewards: Ask | None
    budget_cost: Ask | None
    user_day: Ask | None
    user_total: Ask | None

    def asks(self) -> list[Ask]:
        return [
            a
            for a in (self.budget_rewards, self.budget_cost, self.user_day, self.user_total)
            if a is not None
        ]

    def outcome_of(self, refused: Ask) -> Outcome:
        return Outcome.CAP if refused in (self.user_day, self.user_total) else Outcome.BUDGET


def limits(
    campaign_id: str, document: RuleDocument, user_id: str, at: datetime, cost_fen: int
) -> Limits:
    """The quotas one firing takes: the campaign's budget, and the user's caps (a day is the
    campaign's local day)."""
    budget, caps = document.budget, document.caps
    day = local_day(at, document.timezone)
    return Limits(
        budget_rewards=Ask("campaign.rewards", campaign_id, 1, budget.max_rewards)
        if budget.max_rewards is not None
        else None,
        budget_cost=Ask("campaign.cost", campaign_id, cost_fen, budget.max_cost_fen)
        if budget.max_cost_fen is not None
        else None,
        user_day=Ask(
            "campaign.user.day", f"{campaign_id}:{user_id}:{day}", 1, caps.per_user_per_day
        )
        if caps.per_user_per_day is not None
        else None,
        user_total=Ask("campaign.user", f"{campaign_id}:{user_id}", 1, caps.per_user_total)
        if caps.per_user_total is not None
        else None,
    )


def completions_allowed(effect: ProgressTier, count: int) -> int:
    """How many times a track with ``count`` events has reached its goal."""
    reached = count // effect.goal
    return reached if effect.repeat else min(reached, 1)


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
