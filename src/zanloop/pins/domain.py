"""Pin rules: policy, tiers, revenue split, eligibility, display order. Pure, no I/O.

Display order is amount first, then time: the biggest support is shown highest, and among equal
amounts the earlier one. The first ``slots`` active pins are *pinned* (shown at the top); the
rest wait in the *queue*, in the same order, and move up when a pin above them ends. A timed
pin's display time runs from the moment it went live, so every buyer knows when it ends.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zanloop.errors import FieldError, InvalidDocument, Unprocessable
from zanloop.kit.money import format_fen


class PinMode(StrEnum):
    LASTING = "lasting"  # pinned until removed
    TIMED = "timed"  # the amount's tier decides how long it is shown


class PinStatus(StrEnum):
    PENDING = "PENDING"  # waiting for the payment
    IN_REVIEW = "IN_REVIEW"  # paid; risk control holds it for an analyst
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REMOVED = "REMOVED"  # taken down; a refund may follow
    REFUNDED = "REFUNDED"
    CANCELLED = "CANCELLED"  # the payment never completed


class Programme(StrEnum):
    INCENTIVE = "incentive"  # creator incentive plan
    COMMERCE = "commerce"  # commerce revenue sharing


class ContentKind(StrEnum):
    VIDEO = "video"
    LIVE = "live"
    POST = "post"


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_amount_fen: int = Field(ge=1)
    duration_seconds: int = Field(ge=1, le=30 * 86400, description="Display time (timed mode).")
    max_message_chars: int = Field(ge=0, le=500)


class PinPolicy(BaseModel):
    """A tenant's pin policy; a creator may override any of its fields."""

    # Frozen: parsed policies are cached and shared.
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_amount_fen: int = Field(default=10, ge=1, description="The seed's 0.10 CNY.")
    mode: PinMode = PinMode.LASTING
    tiers: list[Tier] = Field(
        default_factory=lambda: [
            Tier(min_amount_fen=10, duration_seconds=60, max_message_chars=20),
            Tier(min_amount_fen=100, duration_seconds=300, max_message_chars=50),
            Tier(min_amount_fen=1000, duration_seconds=1800, max_message_chars=100),
            Tier(min_amount_fen=5000, duration_seconds=7200, max_message_chars=200),
            Tier(min_amount_fen=10000, duration_seconds=18000, max_message_chars=300),
        ],
        min_length=1,
        max_length=20,
    )
    slots: int = Field(default=3, ge=1, le=50, description="Pins shown at the top at once.")
    queue_limit: int = Field(default=100, ge=0, le=1000, description="Queued pins listed.")
    # At least 1 %: the creator's share is what a risk review holds, and a hold is never 0.
    creator_share_percent: int = Field(default=70, ge=1, le=100)
    min_quality_score: int = Field(default=30, ge=0, le=100)
    refund_on_creator_removal: bool = True

    @model_validator(mode="after")
    def _tiers_ascend(self) -> PinPolicy:
        amounts = [t.min_amount_fen for t in self.tiers]
        if amounts != sorted(set(amounts)):
            raise ValueError("tiers must have strictly increasing min_amount_fen")
        if amounts[0] > self.min_amount_fen:
            raise ValueError("the first tier must start at or below min_amount_fen")
        return self


DEFAULT_POLICY = PinPolicy()


def parse_policy(data: Any) -> PinPolicy:
    try:
        return PinPolicy.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(
                ".".join(str(p) for p in e["loc"]) or "policy",
                e["msg"].removeprefix("Value error, "),
            )
            for e in exc.errors()
        ]
        raise InvalidDocument(f"the pin policy has {len(errors)} error(s)", errors=errors) from None


def effective_policy(tenant: dict[str, Any] | None, creator: dict[str, Any] | None) -> PinPolicy:
    """The tenant's policy with the creator's overrides laid over it, field by field."""
    merged = {**(tenant or {}), **(creator or {})}
    return _parsed(json.dumps(merged, sort_keys=True)) if merged else DEFAULT_POLICY


@functools.lru_cache(maxsize=1024)
def _parsed(document: str) -> PinPolicy:
    # Policies are read on every purchase and payment and change rarely: validate each once.
    # PinPolicy is shared by every caller; nobody mutates it.
    return parse_policy(json.loads(document))


def tier_for(policy: PinPolicy, amount_fen: int) -> Tier:
    if amount_fen < policy.min_amount_fen:
        raise Unprocessable(
            f"a pinned like costs at least {format_fen(policy.min_amount_fen)}", field="amount_fen"
        )
    return [t for t in policy.tiers if t.min_amount_fen <= amount_fen][-1]


def check_message(tier: Tier, message: str) -> None:
    if len(message) > tier.max_message_chars:
        raise Unprocessable(
            f"at this amount a message has at most {tier.max_message_chars} characters",
            field="message",
        )


def split(amount_fen: int, creator_share_percent: int) -> tuple[int, int]:
    """(creator, platform): the platform's fee rounds down, so the creator gets any odd fen."""
    platform = amount_fen * (100 - creator_share_percent) // 100
    return amount_fen - platform, platform


def display_seconds(policy: PinPolicy, tier: Tier) -> int | None:
    return tier.duration_seconds if policy.mode is PinMode.TIMED else None


def quality_score(completion_rate: float | None, engagement_rate: float | None) -> int | None:
    """0–100 from the integrator's figures: completion weighs 60 %, engagement 40 % (an
    engagement rate of 10 % or more counts in full). None while there are no figures."""
    if completion_rate is None and engagement_rate is None:
        return None
    completion = completion_rate or 0.0
    engagement = min(1.0, (engagement_rate or 0.0) / 0.10)
    return round(100 * (0.6 * completion + 0.4 * engagement))


@dataclass(frozen=True)
class Eligibility:
    accepts_pins: bool
    reason: str


def eligibility(
    programmes: Iterable[str], pins_enabled: bool, score: int | None, min_quality_score: int
) -> Eligibility:
    """P1 and P9: enrolled creators only, content not switched off, quality not too low (new
    content without figures is accepted)."""
    if not set(programmes) & {p.value for p in Programme}:
        return Eligibility(False, "the creator is in no incentive or commerce programme")
    if not pins_enabled:
        return Eligibility(False, "paid pins are switched off for this content")
    if score is not None and score < min_quality_score:
        return Eligibility(
            False, f"the content's quality score {score} is below {min_quality_score}"
        )
    return Eligibility(True, "accepts paid pinned likes")


def disclosure_terms(policy: PinPolicy, tier: Tier, refund_on_creator_removal: bool) -> str:
    shown = (
        "until it is removed"
        if policy.mode is PinMode.LASTING
        else f"for {_duration(tier.duration_seconds)} once it is live"
    )
    refund = (
        "refunded in full if the creator removes it; "
        if refund_on_creator_removal
        else "not refunded if the creator removes it; "
    )
    return (
        f"Shown {shown}; with more than {policy.slots} pinned likes the higher amounts show "
        f"first and the rest wait in a queue. {refund.capitalize()}not refunded if removed for "
        f"breaking the rules; never charged if the payment does not complete."
    )


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


# Display time --------------------------------------------------------------------------------
# (The display order itself is the pinned-list query's ORDER BY, served by an index.)


def expires_at(activated_at: datetime, seconds: int | None) -> datetime | None:
    return None if seconds is None else activated_at + timedelta(seconds=seconds)


# Creator analytics ---------------------------------------------------------------------------

SPEND_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("under 1 CNY", 0, 100),
    ("1–10 CNY", 100, 1000),
    ("10–50 CNY", 1000, 5000),
    ("50–100 CNY", 5000, 10000),
    ("100 CNY and more", 10000, None),
)


def spend_band(total_fen: int) -> str:
    for name, low, high in SPEND_BANDS:
        if total_fen >= low and (high is None or total_fen < high):
            return name
    raise AssertionError("bands cover every amount")
