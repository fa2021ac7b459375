"""The per-tenant risk policy: a validated document (JSON or YAML) compiled into rules.

A tenant without a policy of its own runs ``DEFAULT_POLICY``, whose limits come from the source
articles: at most 3 like prompts a user a day, real-name payers for paid pins, no bursts of
payments or likes, no batches of accounts on one device or IP cluster, no split orders or
refunds after a reward. Windows are written ``90s``, ``10m``, ``24h``, ``7d`` (or seconds).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from zanloop.errors import FieldError, InvalidDocument
from zanloop.risk import rules
from zanloop.risk.domain import (
    CompiledPolicy,
    Mode,
    RuleSet,
    Subject,
    Verdict,
)

ACTION_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$"
# In a rule, "*" stands for every action.
RULE_ACTION_PATTERN = r"^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*)$"
ANY_ACTION = "*"
MAX_RULES = 200
MAX_WINDOW_SECONDS = 90 * 86400
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WINDOW = re.compile(r"^(\d+)([smhd])$")

# The actions zanloop's own areas decide on; integrators may use their own names too.
KNOWN_ACTIONS = (
    "pin.purchase",
    "like.prompt",
    "like.create",
    "share.create",
    "reward.grant",
    "checkin",
    "points.redeem",
    "coupon.redeem",
    "paylater.create",
)


def parse_window(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a window is a number of seconds or text such as 10m, 24h or 7d")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and (match := _WINDOW.match(value.strip())):
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError("a window is a number of seconds or text such as 10m, 24h or 7d")
    if not 1 <= seconds <= MAX_WINDOW_SECONDS:
        raise ValueError(f"a window lasts 1 second to {MAX_WINDOW_SECONDS // 86400} days")
    return seconds


Window = Annotated[int, Field(description="seconds, or text such as 10m, 24h, 7d")]
RuleAction = Annotated[str, Field(pattern=RULE_ACTION_PATTERN, max_length=64)]


class RuleDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    actions: list[RuleAction] = Field(default=[ANY_ACTION], min_length=1)
    # ALLOW: the rule only adds its score; weak signals together reach review_score.
    verdict: Literal["BLOCK", "REVIEW", "ALLOW"] = "BLOCK"
    score: int = Field(default=50, ge=0, le=100)
    mode: Mode = Mode.ENFORCE
    description: str = Field(default="", max_length=500)


class WindowedDoc(RuleDoc):
    window: Window

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> int:
        return parse_window(value)


class VelocityDoc(WindowedDoc):
    """Count (``max_count``) or sum (``max_sum_fen``) of an action per subject in a window."""

    type: Literal["velocity"]
    subject: Subject = Subject.USER
    max_count: int | None = Field(default=None, ge=0)
    max_sum_fen: int | None = Field(default=None, ge=0)


class DistinctUsersDoc(WindowedDoc):
    """Accounts seen on one device, IP, IP subnet or payment account in a window."""

    type: Literal["distinct_users"]
    subject: Literal["device", "ip", "ip_subnet", "payment_account"]
    max_users: int = Field(ge=1)


class NewAccountRuleDoc(RuleDoc):
    """Accounts younger than ``min_age`` doing the action (above ``max_amount_fen``)."""

    type: Literal["new_account"]
    min_age: Window
    max_amount_fen: int | None = Field(default=None, ge=0)
    unknown_is_new: bool = True

    @field_validator("min_age", mode="before")
    @classmethod
    def _min_age(cls, value: Any) -> int:
        return parse_window(value)


class AmountLimitDoc(RuleDoc):
    type: Literal["amount_limit"]
    max_amount_fen: int = Field(ge=0)


class RealNameDoc(RuleDoc):
    """The payer must be bound and real-name verified."""

    type: Literal["real_name"]


class VerifiedPaymentDoc(RuleDoc):
    """The action must stand on a completed, not refunded payment of the same amount and payer."""

    type: Literal["verified_payment"]


class SplitOrderDoc(WindowedDoc):
    """Payments within ``margin_percent`` above a reward threshold (the rule's, or the
    ``reward_threshold_fen`` the caller puts in the context), more than ``max_near_threshold``
    times in a window."""

    type: Literal["split_order"]
    subject: Subject = Subject.USER
    threshold_fen: int | None = Field(default=None, ge=1)
    margin_percent: int = Field(default=10, ge=0, le=100)
    max_near_threshold: int = Field(default=2, ge=0)


class RefundAfterRewardDoc(WindowedDoc):
    """Users whose rewarded payments were refunded ``max_refunds`` times in a window."""

    type: Literal["refund_after_reward"]
    max_refunds: int = Field(default=1, ge=1)


Rule = Annotated[
    VelocityDoc
    | DistinctUsersDoc
    | NewAccountRuleDoc
    | AmountLimitDoc
    | RealNameDoc
    | VerifiedPaymentDoc
    | SplitOrderDoc
    | RefundAfterRewardDoc,
    Field(discriminator="type"),
]

RULE_TYPES = frozenset(
    {
        "velocity",
        "distinct_users",
        "new_account",
        "amount_limit",
        "real_name",
        "verified_payment",
        "split_order",
        "refund_after_reward",
    }
)


class PolicyDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    review_score: int = Field(
        default=60, ge=1, le=100, description="a summed score this high asks for a review"
    )
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_RULES)


def _semantic_errors(document: PolicyDocument) -> list[FieldError]:
    """What the field types cannot say: one limit per velocity rule, unique rule ids."""
    errors = []
    seen: set[str] = set()
    for index, rule in enumerate(document.rules):
        if isinstance(rule, VelocityDoc) and (rule.max_count is None) == (rule.max_sum_fen is None):
            errors.append(
                FieldError(
                    f"rules.{index}.max_count", "give exactly one of max_count and max_sum_fen"
                )
            )
        if rule.id in seen:
            errors.append(FieldError(f"rules.{index}.id", f"rule id {rule.id!r} is used twice"))
        seen.add(rule.id)
    return errors


def parse(data: Any) -> PolicyDocument:
    """Validate a policy given as parsed JSON/YAML; errors name the field (``rules.2.window``)."""
    try:
        document = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(_field(e["loc"]), e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        ]
    else:
        errors = _semantic_errors(document)
        if not errors:
            return document
    raise InvalidDocument(f"the risk policy has {len(errors)} error(s)", errors=errors)


def _field(loc: tuple[int | str, ...]) -> str:
    # Drop the union's tag that pydantic puts after the rule's index: rules.2.window, not
    # rules.2.velocity.window.
    parts = [
        str(part)
        for i, part in enumerate(loc)
        if not (i > 0 and isinstance(loc[i - 1], int) and part in RULE_TYPES)
    ]
    return ".".join(parts) or "policy"


def parse_yaml(text: str) -> PolicyDocument:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidDocument(
            "the policy is not valid YAML", errors=[FieldError("policy", str(exc))]
        ) from None
    return parse(data)


# Compiling -----------------------------------------------------------------------------------


def _compile_rule(doc: Any) -> rules.RuleBase:
    common = {
        "rule_id": doc.id,
        "verdict": Verdict(doc.verdict),
        "score": doc.score,
        "mode": doc.mode,
    }
    if isinstance(doc, VelocityDoc):
        return rules.Velocity(
            **common,
            subject=doc.subject,
            window_seconds=doc.window,
            max_count=doc.max_count,
            max_sum_fen=doc.max_sum_fen,
        )
    if isinstance(doc, DistinctUsersDoc):
        return rules.DistinctUsers(
            **common,
            subject=Subject(doc.subject),
            window_seconds=doc.window,
            max_users=doc.max_users,
        )
    if isinstance(doc, NewAccountRuleDoc):
        return rules.NewAccount(
            **common,
            min_age=timedelta(seconds=doc.min_age),
            max_amount_fen=doc.max_amount_fen,
            unknown_is_new=doc.unknown_is_new,
        )
    if isinstance(doc, AmountLimitDoc):
        return rules.AmountLimit(**common, max_amount_fen=doc.max_amount_fen)
    if isinstance(doc, RealNameDoc):
        return rules.RealName(**common)
    if isinstance(doc, VerifiedPaymentDoc):
        return rules.VerifiedPayment(**common)
    if isinstance(doc, SplitOrderDoc):
        return rules.SplitOrder(
            **common,
            subject=doc.subject,
            window_seconds=doc.window,
            threshold_fen=doc.threshold_fen,
            margin_percent=doc.margin_percent,
            max_near_threshold=doc.max_near_threshold,
        )
    assert isinstance(doc, RefundAfterRewardDoc)
    return rules.RefundAfterReward(
        **common, window=timedelta(seconds=doc.window), max_refunds=doc.max_refunds
    )


def _rule_set(compiled: list[rules.RuleBase]) -> RuleSet:
    local = tuple(r for r in compiled if isinstance(r, rules.LOCAL))
    counters = tuple(r for r in compiled if isinstance(r, rules.COUNTERS))
    refund_windows = [r.window for r in compiled if isinstance(r, rules.RefundAfterReward)]
    return RuleSet(
        local=local,
        counters=counters,
        needs_payment=any(isinstance(r, rules.VerifiedPayment) for r in compiled),
        refunds_window=max(refund_windows, default=None),
    )


def compile_policy(document: PolicyDocument, version: int = 0) -> CompiledPolicy:
    """Index the rules by action once, so a decision only walks the rules of its action."""
    compiled = [(doc.actions, _compile_rule(doc)) for doc in document.rules]
    actions = {a for doc_actions, _ in compiled for a in doc_actions if a != ANY_ACTION}
    by_action = {
        action: _rule_set([r for acts, r in compiled if action in acts or ANY_ACTION in acts])
        for action in actions
    }
    wildcard = _rule_set([r for acts, r in compiled if ANY_ACTION in acts])
    return CompiledPolicy(version, document.review_score, by_action, wildcard)


DEFAULT_POLICY: dict[str, Any] = {
    "review_score": 60,
    "rules": [
        {
            "id": "pin-burst-user",
            "type": "velocity",
            "description": "abnormally frequent payments (seed 000)",
            "actions": ["pin.purchase"],
            "subject": "user",
            "window": "1m",
            "max_count": 5,
            "verdict": "BLOCK",
            "score": 40,
        },
        {
            "id": "pin-burst-device",
            "type": "velocity",
            "description": "abnormally frequent payments from one device (seed 000)",
            "actions": ["pin.purchase"],
            "subject": "device",
            "window": "1m",
            "max_count": 10,
            "verdict": "BLOCK",
            "score": 40,
        },
        {
            "id": "pin-amount-day",
            "type": "velocity",
            "description": "a day's pin spending per payment account",
            "actions": ["pin.purchase"],
            "subject": "payment_account",
            "window": "1d",
            "max_sum_fen": 200000,
            "verdict": "REVIEW",
            "score": 30,
        },
        {
            "id": "real-name",
            "type": "real_name",
            "description": "paid pins and pay-later need a real-name payer (seed 000)",
            "actions": ["pin.purchase", "paylater.create"],
            "verdict": "BLOCK",
            "score": 60,
        },
        {
            "id": "like-prompts-day",
            "type": "velocity",
            "description": "at most 3 like prompts a user a day (seed 001)",
            "actions": ["like.prompt"],
            "subject": "user",
            "window": "1d",
            "max_count": 3,
            "verdict": "BLOCK",
            "score": 10,
        },
        {
            "id": "like-burst-user",
            "type": "velocity",
            "description": "many likes in a short time (seed 001)",
            "actions": ["like.create"],
            "subject": "user",
            "window": "1m",
            "max_count": 10,
            "verdict": "BLOCK",
            "score": 40,
        },
        {
            "id": "like-batch-ip",
            "type": "velocity",
            "description": "batches of likes from one IP (seed 001)",
            "actions": ["like.create"],
            "subject": "ip",
            "window": "1m",
            "max_count": 30,
            "verdict": "REVIEW",
            "score": 40,
        },
        {
            "id": "accounts-per-device",
            "type": "distinct_users",
            "description": "batch-registered accounts on one device (seeds 000, 003)",
            "actions": [
                "pin.purchase",
                "like.create",
                "reward.grant",
                "checkin",
                "paylater.create",
            ],
            "subject": "device",
            "window": "1d",
            "max_users": 3,
            "verdict": "BLOCK",
            "score": 60,
        },
        {
            "id": "accounts-per-ip-subnet",
            "type": "distinct_users",
            "description": "clusters of accounts on one IP range (seed 003)",
            "actions": ["pin.purchase", "like.create", "reward.grant", "checkin"],
            "subject": "ip_subnet",
            "window": "1h",
            "max_users": 20,
            "verdict": "REVIEW",
            "score": 30,
        },
        {
            "id": "new-account",
            "type": "new_account",
            "description": "young accounts with larger amounts",
            "actions": ["pin.purchase", "reward.grant", "paylater.create"],
            "min_age": "24h",
            "max_amount_fen": 5000,
            "unknown_is_new": False,
            "verdict": "REVIEW",
            "score": 30,
        },
        {
            "id": "verified-payment",
            "type": "verified_payment",
            "description": "rewards and likes only for completed, not refunded payments (seed 001)",
            "actions": ["reward.grant", "like.create"],
            "verdict": "BLOCK",
            "score": 100,
        },
        {
            "id": "split-orders",
            "type": "split_order",
            "description": "split orders just above a reward threshold (seed 001)",
            "actions": ["reward.grant"],
            "subject": "user",
            "window": "1d",
            "margin_percent": 10,
            "max_near_threshold": 2,
            "verdict": "REVIEW",
            "score": 40,
        },
        {
            "id": "refund-after-reward",
            "type": "refund_after_reward",
            "description": "fake refunds after a reward (seed 001)",
            "actions": ["reward.grant"],
            "window": "30d",
            "max_refunds": 1,
            "verdict": "REVIEW",
            "score": 40,
        },
        {
            "id": "checkin-device",
            "type": "velocity",
            "description": "check-ins and points per device fingerprint (seed 003)",
            "actions": ["checkin"],
            "subject": "device",
            "window": "1d",
            "max_count": 3,
            "verdict": "BLOCK",
            "score": 40,
        },
        {
            "id": "reward-burst-user",
            "type": "velocity",
            "description": "rewards in a burst",
            "actions": ["reward.grant"],
            "subject": "user",
            "window": "1h",
            "max_count": 20,
            "verdict": "REVIEW",
            "score": 30,
        },
    ],
}

DEFAULT_DOCUMENT = parse(DEFAULT_POLICY)
