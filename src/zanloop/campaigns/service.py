"""Campaign workflows: set-up, a completed payment's evaluation, likes and shares on a
prompt, the reversal of everything a refunded payment earned, and the review of held rewards.

Every path runs in the transaction of its cause (the payment notification, the like request,
the refund notification), so a reward exists exactly when its cause does. An event is evaluated
once: its ``event_ref`` is unique, and a replay finds the first evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from zanloop.campaigns import effects, evaluation, repository
from zanloop.campaigns.domain import (
    LIKE_TRIGGER,
    PAYMENT_TRIGGER,
    SHARE_TRIGGER,
    CampaignStatus,
    PromptStatus,
    RewardStatus,
)
from zanloop.campaigns.tables import Campaign, CampaignEvent, CampaignReward, LikePrompt
from zanloop.coupons import service as coupons
from zanloop.errors import (
    FieldError,
    InvalidDocument,
    InvalidState,
    NotFound,
)
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.payments import service as payments
from zanloop.payments.domain import Purchase
from zanloop.quotas import service as quotas
from zanloop.quotas.service import Taken
from zanloop.risk import service as risk
from zanloop.risk.domain import Signal
from zanloop.rules.domain import LOYALTY_EFFECTS, GrantPoints, RuleDocument

LIKE_ACTION = "like.create"


def parse_rule(session: Session, tenant_id: str, raw: Any, where: str = "rule") -> RuleDocument:
    """Validate a rule document; errors name the field (``rule.conditions.0.fen``)."""
    try:
        document = RuleDocument.model_validate(raw)
    except ValidationError as exc:
        raise InvalidDocument(
            "the campaign rule is not valid",
            errors=[
                FieldError(".".join([where, *(str(p) for p in err["loc"])]), err["msg"])
                for err in exc.errors()
            ],
        ) from exc
    problems = [
        FieldError(f"{where}.effects.{i}", f"{e.type} belongs to the points programme")
        for i, e in enumerate(document.effects)
        if e.type in LOYALTY_EFFECTS or (isinstance(e, GrantPoints) and e.to != "user")
    ]
    for path, effect in effects.coupon_effects(document):
        try:
            coupons.face_value_fen(session, tenant_id, effect.template_id)
        except NotFound:
            problems.append(
                FieldError(
                    f"{where}.{path}.template_id", f"no coupon template {effect.template_id}"
                )
            )
    if problems:
        raise InvalidDocument("the campaign rule is not valid", errors=problems)
    return document


def create_campaign(
    session: Session, tenant_id: str, name: str, rule: Any, status: CampaignStatus
) -> Campaign:
    document = parse_rule(session, tenant_id, rule)
    now = utcnow()
    campaign = Campaign(
        id=new_id("cmp"),
        tenant_id=tenant_id,
        name=name,
        trigger=document.trigger,
        status=status.value,
        document=document.model_dump(mode="json"),
        version=1,
        created_at=now,
        updated_at=now,
    )
    repository.add(session, campaign)
    return campaign


def update_campaign(
    session: Session,
    tenant_id: str,
    campaign_id: str,
    *,
    name: str | None = None,
    rule: Any = None,
    status: CampaignStatus | None = None,
) -> Campaign:
    campaign = get_campaign(session, tenant_id, campaign_id)
    if campaign.status == CampaignStatus.ENDED and status != CampaignStatus.ENDED:
        raise InvalidState(f"campaign {campaign_id} has ended")
    if rule is not None:
        document = parse_rule(session, tenant_id, rule)
        campaign.document = document.model_dump(mode="json")
        campaign.trigger = document.trigger
        campaign.version += 1
    if name is not None:
        campaign.name = name
    if status is not None:
        campaign.status = status.value
    campaign.updated_at = utcnow()
    session.flush()
    return campaign


def get_campaign(session: Session, tenant_id: str, campaign_id: str) -> Campaign:
    campaign = repository.get_campaign(session, tenant_id, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def list_campaigns(
    session: Session, tenant_id: str, status: str | None, after_id: str | None, limit: int
) -> list[Campaign]:
    return repository.list_campaigns(
        session, tenant_id, status=status, after_id=after_id, limit=limit
    )


def on_payment_succeeded(session: Session, tenant_id: str, order_id: str) -> None:
    """A completed payment: evaluation.evaluate the payment.succeeded campaigns (C1, C2)."""
    order = payments.get_order(session, tenant_id, order_id)
    purchase = Purchase.of(order)
    if purchase.user_id is None or order.status != "SUCCESS" or order.refunded_fen:
        return
    if not repository.active_version(session, tenant_id)[0]:
        return  # a tenant without campaigns keeps no campaign log
    at = order.success_time or utcnow()
    facts = evaluation.facts_for(session, tenant_id, PAYMENT_TRIGGER, order, purchase.user_id, at)
    evaluation.evaluate(
        session, tenant_id, f"{PAYMENT_TRIGGER}:{order.id}", facts, purchase.user_id, order
    )


def get_prompt(session: Session, tenant_id: str, prompt_id: str) -> LikePrompt:
    prompt = repository.get_prompt(session, tenant_id, prompt_id)
    if prompt is None:
        raise NotFound(f"like prompt {prompt_id} not found")
    return prompt


def user_prompts(
    session: Session, tenant_id: str, user_id: str, status: str | None, limit: int
) -> list[LikePrompt]:
    return repository.user_prompts(session, tenant_id, user_id, status, limit)


@dataclass(frozen=True)
class Interaction:
    prompt: LikePrompt
    event: CampaignEvent | None
    replayed: bool


def like(
    session: Session,
    tenant_id: str,
    prompt_id: str,
    *,
    device_id: str | None = None,
    ip: str | None = None,
) -> Interaction:
    """The buyer likes the purchase (C4): once per payment; it may earn like.created rewards."""
    prompt = repository.get_prompt(session, tenant_id, prompt_id, lock=True)
    if prompt is None:
        raise NotFound(f"like prompt {prompt_id} not found")
    if prompt.status == PromptStatus.LIKED:
        return Interaction(prompt, _event(session, tenant_id, LIKE_TRIGGER, prompt), True)
    now = utcnow()
    if prompt.status == PromptStatus.OPEN and prompt.expires_at <= now:
        repository.move_prompt(session, prompt.id, PromptStatus.OPEN, PromptStatus.EXPIRED)
        prompt.status = PromptStatus.EXPIRED.value
    if prompt.status != PromptStatus.OPEN:
        raise InvalidState(f"like prompt {prompt_id} is {prompt.status.lower()}")
    order = payments.get_order(session, tenant_id, prompt.order_id)
    decision = risk.decide(
        session,
        tenant_id,
        Signal(
            action=LIKE_ACTION,
            user_id=prompt.user_id,
            at=now,
            amount_fen=order.amount_fen,
            device_id=device_id,
            ip=ip,
            payment_account=order.payer_openid,
            payment_order_id=order.id,
        ),
        reference=f"campaign-like:{prompt.id}",
    )
    risk.require_allowed(decision)
    repository.move_prompt(session, prompt.id, PromptStatus.OPEN, PromptStatus.LIKED, liked_at=now)
    session.refresh(prompt)
    evaluation.publish_prompt(session, "campaign.prompt.liked", prompt)
    event = evaluation.evaluate(
        session,
        tenant_id,
        f"{LIKE_TRIGGER}:{prompt.id}",
        evaluation.facts_for(session, tenant_id, LIKE_TRIGGER, order, prompt.user_id, now),
        prompt.user_id,
        order,
    )
    return Interaction(prompt, event, False)


def share(session: Session, tenant_id: str, prompt_id: str, channel: str) -> Interaction:
    """The buyer shares the liked purchase: the first share may earn share.created rewards."""
    prompt = repository.get_prompt(session, tenant_id, prompt_id, lock=True)
    if prompt is None:
        raise NotFound(f"like prompt {prompt_id} not found")
    if prompt.shared_at is not None:
        return Interaction(prompt, _event(session, tenant_id, SHARE_TRIGGER, prompt), True)
    if prompt.status != PromptStatus.LIKED:
        raise InvalidState(f"like prompt {prompt_id} must be liked before it is shared")
    now = utcnow()
    prompt.shared_at = now
    prompt.share_channel = channel
    session.flush()
    evaluation.publish_prompt(session, "campaign.prompt.shared", prompt)
    order = payments.get_order(session, tenant_id, prompt.order_id)
    event = evaluation.evaluate(
        session,
        tenant_id,
        f"{SHARE_TRIGGER}:{prompt.id}",
        evaluation.facts_for(session, tenant_id, SHARE_TRIGGER, order, prompt.user_id, now),
        prompt.user_id,
        order,
    )
    return Interaction(prompt, event, False)


def _event(
    session: Session, tenant_id: str, trigger: str, prompt: LikePrompt
) -> CampaignEvent | None:
    return repository.get_event_by_ref(session, tenant_id, f"{trigger}:{prompt.id}")


def expire_prompts(session: Session, now: datetime) -> int:
    return repository.expire_prompts(session, now)


def on_payment_refunded(session: Session, tenant_id: str, order_id: str) -> int:
    """A refund (whole or part) takes back everything the payment earned (C2): open prompts
    are revoked, rewards reversed, budgets and caps given back. Returns rewards reversed."""
    now = utcnow()
    prompt = repository.prompt_of_order(session, tenant_id, order_id)
    if prompt is not None and repository.move_prompt(
        session, prompt.id, PromptStatus.OPEN, PromptStatus.REVOKED, revoked_at=now
    ):
        session.refresh(prompt)
        evaluation.publish_prompt(session, "campaign.prompt.revoked", prompt)
    reversed_count = 0
    for reward in repository.rewards_of_order(session, tenant_id, order_id, lock=True):
        if reward.status in (RewardStatus.GRANTED, RewardStatus.HELD):
            reverse_reward(session, reward, "payment refunded")
            reversed_count += 1
    return reversed_count


def reverse_reward(session: Session, reward: CampaignReward, reason: str) -> None:
    """Undo one reward: what it granted, its progress step, and the limits it took."""
    tenant_id = reward.tenant_id
    campaign = get_campaign(session, tenant_id, reward.campaign_id)
    document = RuleDocument.model_validate(campaign.document)
    undone: list[dict[str, Any]] = []
    was_granted = reward.status == RewardStatus.GRANTED
    for effect in reward.effects if was_granted else []:
        kind = effect.get("type")
        if kind in ("grant_points", "issue_coupon"):
            undone.append(effects.take_back(session, tenant_id, effect, reason))
        elif kind == "progress_tier":
            undone.extend(effects.step_back(session, tenant_id, reward, document, reason))
    quotas.give_back(session, tenant_id, [Taken.from_json(t) for t in reward.quotas])
    reward.status = (RewardStatus.REVERSED if was_granted else RewardStatus.REJECTED).value
    reward.reversed_at = utcnow()
    reward.reverse_reason = reason
    reward.effects = [*reward.effects, {"type": "reversal", "undone": undone}]
    session.flush()
    evaluation.publish_reward(session, "campaign.reward.reversed", reward)


def resolve_held(
    session: Session, tenant_id: str, reward_id: str, *, approve: bool, actor: str
) -> CampaignReward:
    """An analyst's word on a reward risk held: approved, it is granted now; rejected, its
    limits are given back."""
    reward = get_reward(session, tenant_id, reward_id)
    if reward.status != RewardStatus.HELD:
        raise InvalidState(f"reward {reward_id} is {reward.status.lower()}, not held")
    if not approve:
        reverse_reward(session, reward, f"rejected by {actor}")
        return reward
    campaign = get_campaign(session, tenant_id, reward.campaign_id)
    document = RuleDocument.model_validate(campaign.document)
    reward.effects = [
        *reward.effects,
        *effects.apply_rewards(session, tenant_id, campaign.id, reward, document),
    ]
    reward.status = RewardStatus.GRANTED.value
    session.flush()
    evaluation.publish_reward(session, "campaign.reward.granted", reward)
    return reward


def get_reward(session: Session, tenant_id: str, reward_id: str) -> CampaignReward:
    reward = repository.get_reward(session, tenant_id, reward_id)
    if reward is None:
        raise NotFound(f"reward {reward_id} not found")
    return reward


def list_rewards(
    session: Session,
    tenant_id: str,
    *,
    user_id: str | None = None,
    campaign_id: str | None = None,
    order_id: str | None = None,
    status: str | None = None,
    before_id: str | None = None,
    limit: int = 50,
) -> list[CampaignReward]:
    return repository.list_rewards(
        session,
        tenant_id,
        user_id=user_id,
        campaign_id=campaign_id,
        order_id=order_id,
        status=status,
        before_id=before_id,
        limit=limit,
    )


def interactions(
    session: Session, tenant_id: str, since: datetime, until: datetime
) -> list[tuple[str, str, datetime]]:
    """Who liked which campaign's prompt, for group fraud detection (``campaign:<id>``)."""
    return [
        (user, f"campaign:{campaign}", at)
        for user, campaign, at in repository.liked_prompts(session, tenant_id, since, until)
    ]


def revoke_rewards(
    session: Session,
    tenant_id: str,
    user_ids: Sequence[str],
    since: datetime,
    until: datetime,
    reason: str,
) -> list[str]:
    """Reverse the users' rewards granted (or held) in ``[since, until)``; their ids."""
    rewards = repository.granted_rewards_of(session, tenant_id, user_ids, since, until)
    for reward in rewards:
        reverse_reward(session, reward, reason)
    return [r.id for r in rewards]
