"""Campaign workflows: set-up, the evaluation of an event against the live campaigns, like
prompts, likes and shares, and the reversal of everything a refunded payment earned.

Every path runs in the transaction of its cause (the payment notification, the like request,
the refund notification), so a reward exists exactly when its cause does. An event is evaluated
once: its ``event_ref`` is unique, and a replay finds the first evaluation.

Risk control (R1) is asked once per payment for ``reward.grant`` (its "one reward per payment"
rule sees every reward of a payment as one), and once per prompt for ``like.prompt`` (3 a day
by default). BLOCK withholds the reward; REVIEW grants nothing yet and holds the reward for an
analyst.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy.orm import Session

from zanloop import events
from zanloop.campaigns import domain, repository
from zanloop.campaigns.domain import (
    LIKE_TRIGGER,
    PAYMENT_TRIGGER,
    SHARE_TRIGGER,
    CampaignStatus,
    Outcome,
    PromptStatus,
    RewardStatus,
)
from zanloop.campaigns.tables import Campaign, CampaignEvent, CampaignReward, LikePrompt
from zanloop.coupons import service as coupons
from zanloop.errors import (
    CouponUnavailable,
    FieldError,
    InsufficientFunds,
    InvalidDocument,
    InvalidState,
    NotFound,
)
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.kit.money import Asset
from zanloop.ledger import service as ledger
from zanloop.ledger.domain import Leg, TransferRequest
from zanloop.payments import service as payments
from zanloop.payments.tables import PaymentOrder
from zanloop.quotas import service as quotas
from zanloop.quotas.service import Taken
from zanloop.risk import service as risk
from zanloop.risk.domain import Signal, Verdict
from zanloop.rules.domain import (
    Facts,
    GrantPoints,
    IssueCoupon,
    ProgressTier,
    PromptLike,
    Rule,
    RuleDocument,
    RuleSet,
)

log = structlog.get_logger(__name__)

REWARD_ACTION = "reward.grant"
PROMPT_ACTION = "like.prompt"
LIKE_ACTION = "like.create"


def points_owner(user_id: str) -> str:
    return f"user:{user_id}"


def _issuer(campaign_id: str) -> str:
    # Points are issued by the campaign's own account (negative: what it has given out).
    return f"campaign:{campaign_id}"


# Set-up --------------------------------------------------------------------------------------


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
    problems = []
    for path, effect in coupon_effects(document):
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


def coupon_effects(document: RuleDocument) -> list[tuple[str, IssueCoupon]]:
    found: list[tuple[str, IssueCoupon]] = []
    for i, effect in enumerate(document.effects):
        if isinstance(effect, IssueCoupon):
            found.append((f"effects.{i}", effect))
        elif isinstance(effect, ProgressTier):
            found.extend(
                (f"effects.{i}.reward.{j}", r)
                for j, r in enumerate(effect.reward)
                if isinstance(r, IssueCoupon)
            )
    return found


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


# The compiled rule set of a tenant -----------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    version: tuple[int, datetime | None]
    rules: RuleSet
    documents: dict[str, RuleDocument] = field(default_factory=dict)


_compiled: dict[str, _Compiled] = {}
_compiled_lock = threading.Lock()


def rule_set(session: Session, tenant_id: str) -> RuleSet:
    """The tenant's active campaigns, compiled; rebuilt only when a campaign changes."""
    version = repository.active_version(session, tenant_id)
    cached = _compiled.get(tenant_id)
    if cached is not None and cached.version == version:
        return cached.rules
    active = repository.list_campaigns(session, tenant_id, status=CampaignStatus.ACTIVE.value)
    rules = RuleSet(
        Rule(c.id, RuleDocument.model_validate(c.document), payload=c.version) for c in active
    )
    with _compiled_lock:
        _compiled[tenant_id] = _Compiled(version, rules)
    return rules


# Facts ---------------------------------------------------------------------------------------


def member_tier(session: Session, tenant_id: str, user_id: str) -> str | None:
    """The tier the user's campaign tracks have reached most recently (loyalty tiers will
    answer this once they exist)."""
    reached = [p for p in repository.user_progress(session, tenant_id, user_id) if p.tier]
    return max(reached, key=lambda p: p.updated_at).tier if reached else None


@dataclass(frozen=True)
class PaymentFacts:
    """What a paid order says about the purchase, by the metadata contract of checkouts:
    ``user_id``, ``store_id`` and ``categories``."""

    user_id: str | None
    store_id: str | None
    categories: frozenset[str]

    @classmethod
    def of(cls, order: PaymentOrder) -> PaymentFacts:
        meta = order.metadata_ or {}
        user = meta.get("user_id")
        store = meta.get("store_id")
        cats = meta.get("categories") or []
        return cls(
            str(user) if user else None,
            str(store) if store else None,
            frozenset(str(c) for c in cats) if isinstance(cats, list) else frozenset(),
        )


def _facts(
    session: Session,
    tenant_id: str,
    trigger: str,
    order: PaymentOrder,
    user_id: str,
    at: datetime,
) -> Facts:
    purchase = PaymentFacts.of(order)
    return Facts(
        trigger=trigger,
        at=at,
        amount_fen=order.amount_fen,
        store_id=purchase.store_id,
        categories=purchase.categories,
        first_purchase=not repository.paid_before(session, tenant_id, user_id, order.id),
        tier=member_tier(session, tenant_id, user_id),
    )


# Evaluation ----------------------------------------------------------------------------------


def on_payment_succeeded(session: Session, tenant_id: str, order_id: str) -> None:
    """A completed payment: evaluate the payment.succeeded campaigns (C1, C2)."""
    order = payments.get_order(session, tenant_id, order_id)
    purchase = PaymentFacts.of(order)
    if purchase.user_id is None or order.status != "SUCCESS" or order.refunded_fen:
        return
    if not repository.active_version(session, tenant_id)[0]:
        return  # a tenant without campaigns keeps no campaign log
    at = order.success_time or utcnow()
    facts = _facts(session, tenant_id, PAYMENT_TRIGGER, order, purchase.user_id, at)
    evaluate(session, tenant_id, f"{PAYMENT_TRIGGER}:{order.id}", facts, purchase.user_id, order)


def evaluate(
    session: Session,
    tenant_id: str,
    event_ref: str,
    facts: Facts,
    user_id: str,
    order: PaymentOrder,
) -> CampaignEvent:
    """Run one event through the live campaigns of its trigger, once."""
    event_id = new_id("cev")
    inserted = repository.insert_event(
        session,
        {
            "id": event_id,
            "tenant_id": tenant_id,
            "event_ref": event_ref,
            "trigger": facts.trigger,
            "user_id": user_id,
            "order_id": order.id,
            "amount_fen": facts.amount_fen,
            "facts": facts_json(facts),
            "outcomes": [],
            "occurred_at": facts.at,
            "created_at": utcnow(),
        },
    )
    event = repository.get_event_by_ref(session, tenant_id, event_ref)
    assert event is not None
    if not inserted:
        return event  # evaluated before: a replay changes nothing
    rules = rule_set(session, tenant_id)
    matched = {r.key for r in rules.match(facts)}
    outcomes: list[dict[str, Any]] = []
    reward_verdict: tuple[str, str | None] | None = None
    for rule in rules.of_trigger(facts.trigger):
        if rule.key not in matched:
            outcomes.append(_outcome(rule, Outcome.CONDITIONS))
            continue
        document = rule.document
        if domain.grants_rewards(document) and reward_verdict is None:
            reward_verdict = _reward_verdict(session, tenant_id, user_id, order)
        outcomes.append(_fire(session, tenant_id, event, rule, user_id, order, reward_verdict))
    repository.set_outcomes(session, event.id, outcomes)
    event.outcomes = outcomes
    return event


def _outcome(rule: Rule, outcome: Outcome, **extra: Any) -> dict[str, Any]:
    return {"campaign_id": rule.key, "version": rule.payload, "outcome": outcome.value, **extra}


def facts_json(facts: Facts) -> dict[str, Any]:
    return {
        "amount_fen": facts.amount_fen,
        "store_id": facts.store_id,
        "categories": sorted(facts.categories),
        "first_purchase": facts.first_purchase,
        "tier": facts.tier,
        "at": facts.at.isoformat(),
    }


def facts_from_json(trigger: str, data: dict[str, Any]) -> Facts:
    return Facts(
        trigger=trigger,
        at=datetime.fromisoformat(data["at"]),
        amount_fen=int(data["amount_fen"]),
        store_id=data.get("store_id"),
        categories=frozenset(data.get("categories") or ()),
        first_purchase=data.get("first_purchase"),
        tier=data.get("tier"),
    )


def _reward_verdict(
    session: Session, tenant_id: str, user_id: str, order: PaymentOrder
) -> tuple[str, str | None]:
    """Risk's word on rewarding this payment: decided once per payment, then reused, since
    risk counts every reward of one payment as one (its "one reward per payment" rule)."""
    for earlier in risk.decisions_on_payment(session, tenant_id, [order.id]):
        if earlier.action == REWARD_ACTION:
            return earlier.verdict, earlier.id
    decision = risk.decide(
        session,
        tenant_id,
        Signal(
            action=REWARD_ACTION,
            user_id=user_id,
            at=order.success_time or utcnow(),
            amount_fen=order.amount_fen,
            payment_account=order.payer_openid,
            payment_order_id=order.id,
        ),
        reference=f"campaign-reward:{order.id}",
    )
    return decision.verdict, decision.id


def _fire(
    session: Session,
    tenant_id: str,
    event: CampaignEvent,
    rule: Rule,
    user_id: str,
    order: PaymentOrder,
    reward_verdict: tuple[str, str | None] | None,
) -> dict[str, Any]:
    document = rule.document
    if (
        reward_verdict is not None
        and reward_verdict[0] == Verdict.BLOCK
        and (domain.grants_rewards(document))
    ):
        return _outcome(rule, Outcome.RISK, decision_id=reward_verdict[1])
    faces = {
        e.template_id: coupon_face_fen(session, tenant_id, e.template_id)
        for _, e in coupon_effects(document)
    }
    cost = domain.reward_cost_fen(document, faces)
    limits = domain.limits(rule.key, document, user_id, event.occurred_at, cost)
    refused = quotas.take_all(session, tenant_id, limits.asks())
    if refused is not None:
        return _outcome(rule, limits.outcome_of(refused), limit=refused.scope)
    taken = [Taken(a.scope, a.key, a.amount).to_json() for a in limits.asks() if a.amount]
    held = reward_verdict is not None and reward_verdict[0] == Verdict.REVIEW
    reward = CampaignReward(
        id=new_id("rwd"),
        tenant_id=tenant_id,
        campaign_id=rule.key,
        event_id=event.id,
        user_id=user_id,
        order_id=order.id,
        status=(RewardStatus.HELD if held else RewardStatus.GRANTED).value,
        cost_fen=cost,
        effects=[],
        quotas=taken,
        decision_id=reward_verdict[1] if reward_verdict else None,
        created_at=utcnow(),
    )
    repository.add(session, reward)
    prompt = next((e for e in document.effects if isinstance(e, PromptLike)), None)
    results: list[dict[str, Any]] = []
    if prompt is not None:
        results.append(_prompt(session, tenant_id, rule, prompt, user_id, order))
        if results[-1].get("refused") == "risk" and not domain.grants_rewards(document):
            # Nothing else to give: the campaign did not fire after all.
            quotas.give_back(session, tenant_id, [Taken.from_json(t) for t in taken])
            session.delete(reward)
            session.flush()
            return _outcome(rule, Outcome.RISK, decision_id=results[-1].get("decision_id"))
    if not held:
        results.extend(_apply_rewards(session, tenant_id, rule.key, reward, document))
    reward.effects = results
    session.flush()
    _publish(session, "campaign.reward.held" if held else "campaign.reward.granted", reward)
    return _outcome(rule, Outcome.HELD if held else Outcome.REWARDED, reward_id=reward.id)


def coupon_face_fen(session: Session, tenant_id: str, template_id: str) -> int:
    try:
        return coupons.face_value_fen(session, tenant_id, template_id)
    except NotFound:
        return 0


def _apply_rewards(
    session: Session,
    tenant_id: str,
    campaign_id: str,
    reward: CampaignReward,
    document: RuleDocument,
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for i, effect in enumerate(document.effects):
        if isinstance(effect, IssueCoupon | GrantPoints):
            results.append(_grant(session, tenant_id, campaign_id, reward, effect, f"{i}"))
        elif isinstance(effect, ProgressTier):
            results.append(_progress(session, tenant_id, campaign_id, reward, effect, i))
    return results


def _grant(
    session: Session,
    tenant_id: str,
    campaign_id: str,
    reward: CampaignReward,
    effect: IssueCoupon | GrantPoints,
    slot: str,
) -> dict[str, Any]:
    if isinstance(effect, GrantPoints):
        transfer_id = f"campaign-reward:{reward.id}:{slot}"
        ledger.post(
            session,
            tenant_id,
            TransferRequest(
                transfer_id=transfer_id,
                asset=Asset.POINTS,
                legs=(
                    Leg(_issuer(campaign_id), -effect.points, overdraft_allowed=True),
                    Leg(points_owner(reward.user_id), effect.points),
                ),
                description=f"campaign {campaign_id} reward",
                metadata={"campaign_id": campaign_id, "reward_id": reward.id},
            ),
        )
        return {"type": "grant_points", "points": effect.points, "transfer_id": transfer_id}
    try:
        issued = coupons.issue(
            session,
            tenant_id,
            effect.template_id,
            reward.user_id,
            f"{reward.id}:{slot}",
            source=f"campaign:{campaign_id}:{reward.id}",
        )
    except (CouponUnavailable, NotFound) as exc:
        return {"type": "issue_coupon", "template_id": effect.template_id, "refused": str(exc)}
    return {
        "type": "issue_coupon",
        "template_id": effect.template_id,
        "coupon_id": issued.coupon.id,
    }


def _progress(
    session: Session,
    tenant_id: str,
    campaign_id: str,
    reward: CampaignReward,
    effect: ProgressTier,
    index: int,
) -> dict[str, Any]:
    progress = repository.lock_progress(session, tenant_id, campaign_id, reward.user_id)
    progress.count += 1
    result: dict[str, Any] = {"type": "progress_tier", "count": progress.count, "goal": effect.goal}
    if domain.completions_allowed(effect, progress.count) > progress.completions:
        progress.completions += 1
        if effect.tier is not None:
            progress.tier = effect.tier
        result["completed"] = progress.completions
        result["tier"] = effect.tier
        result["granted"] = [
            _grant(session, tenant_id, campaign_id, reward, r, f"{index}.{j}")
            for j, r in enumerate(effect.reward)
        ]
    progress.updated_at = utcnow()
    session.flush()
    return result


# Prompts, likes and shares -------------------------------------------------------------------


def _prompt(
    session: Session,
    tenant_id: str,
    rule: Rule,
    effect: PromptLike,
    user_id: str,
    order: PaymentOrder,
) -> dict[str, Any]:
    existing = repository.prompt_of_order(session, tenant_id, order.id)
    if existing is not None:
        return {"type": "prompt_like", "prompt_id": existing.id, "shared_with": rule.key}
    decision = risk.decide(
        session,
        tenant_id,
        Signal(
            action=PROMPT_ACTION,
            user_id=user_id,
            at=order.success_time or utcnow(),
            amount_fen=order.amount_fen,
            payment_account=order.payer_openid,
            payment_order_id=order.id,
        ),
        reference=f"campaign-prompt:{order.id}",
    )
    if decision.verdict == Verdict.BLOCK:
        return {"type": "prompt_like", "refused": "risk", "decision_id": decision.id}
    now = utcnow()
    prompt_id = new_id("lkp")
    repository.insert_prompt(
        session,
        {
            "id": prompt_id,
            "tenant_id": tenant_id,
            "campaign_id": rule.key,
            "user_id": user_id,
            "order_id": order.id,
            "store": effect.store,
            "image_url": effect.image_url,
            "slogan": effect.slogan,
            "status": PromptStatus.OPEN.value,
            "decision_id": decision.id,
            "created_at": now,
            "expires_at": now + timedelta(hours=effect.expires_hours),
        },
    )
    prompt = repository.get_prompt(session, tenant_id, prompt_id)
    assert prompt is not None
    _publish_prompt(session, "campaign.prompt.created", prompt)
    return {"type": "prompt_like", "prompt_id": prompt_id}


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
    _publish_prompt(session, "campaign.prompt.liked", prompt)
    event = evaluate(
        session,
        tenant_id,
        f"{LIKE_TRIGGER}:{prompt.id}",
        _facts(session, tenant_id, LIKE_TRIGGER, order, prompt.user_id, now),
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
    _publish_prompt(session, "campaign.prompt.shared", prompt)
    order = payments.get_order(session, tenant_id, prompt.order_id)
    event = evaluate(
        session,
        tenant_id,
        f"{SHARE_TRIGGER}:{prompt.id}",
        _facts(session, tenant_id, SHARE_TRIGGER, order, prompt.user_id, now),
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


# Refunds -------------------------------------------------------------------------------------


def on_payment_refunded(session: Session, tenant_id: str, order_id: str) -> int:
    """A refund (whole or part) takes back everything the payment earned (C2): open prompts
    are revoked, rewards reversed, budgets and caps given back. Returns rewards reversed."""
    now = utcnow()
    prompt = repository.prompt_of_order(session, tenant_id, order_id)
    if prompt is not None and repository.move_prompt(
        session, prompt.id, PromptStatus.OPEN, PromptStatus.REVOKED, revoked_at=now
    ):
        session.refresh(prompt)
        _publish_prompt(session, "campaign.prompt.revoked", prompt)
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
            undone.append(_take_back(session, tenant_id, effect, reason))
        elif kind == "progress_tier":
            undone.extend(_step_back(session, tenant_id, reward, document, reason))
    quotas.give_back(session, tenant_id, [Taken.from_json(t) for t in reward.quotas])
    reward.status = (RewardStatus.REVERSED if was_granted else RewardStatus.REJECTED).value
    reward.reversed_at = utcnow()
    reward.reverse_reason = reason
    reward.effects = [*reward.effects, {"type": "reversal", "undone": undone}]
    session.flush()
    _publish(session, "campaign.reward.reversed", reward)


def _take_back(
    session: Session, tenant_id: str, effect: dict[str, Any], reason: str
) -> dict[str, Any]:
    if effect.get("type") == "grant_points":
        transfer_id = str(effect["transfer_id"])
        try:
            ledger.reverse(session, tenant_id, transfer_id, f"{transfer_id}:reversal", None, reason)
        except InsufficientFunds:
            # The points were spent already: take back what is left, record the rest as owed.
            transfer = ledger.get_transfer(session, tenant_id, transfer_id)
            owner = next(
                leg.owner for leg in ledger.transfer_legs(session, transfer) if leg.amount > 0
            )
            left = max(ledger.balance(session, tenant_id, owner, Asset.POINTS).available, 0)
            if left:
                ledger.reverse(
                    session, tenant_id, transfer_id, f"{transfer_id}:reversal", left, reason
                )
            return {"type": "grant_points", "points": left, "owed": int(effect["points"]) - left}
        return {"type": "grant_points", "points": int(effect["points"])}
    coupon_id = effect.get("coupon_id")
    if coupon_id is None:
        return {"type": "issue_coupon", "coupon_id": None}
    coupon = coupons.revoke(session, tenant_id, str(coupon_id), reason)
    return {"type": "issue_coupon", "coupon_id": coupon_id, "status": coupon.status}


def _step_back(
    session: Session,
    tenant_id: str,
    reward: CampaignReward,
    document: RuleDocument,
    reason: str,
) -> list[dict[str, Any]]:
    """Count the reward's step off the track; if the track now stands below a goal it had
    reached, the newest completion's grants are taken back too."""
    effect = next((e for e in document.effects if isinstance(e, ProgressTier)), None)
    progress = repository.lock_progress(session, tenant_id, reward.campaign_id, reward.user_id)
    progress.count = max(progress.count - 1, 0)
    undone: list[dict[str, Any]] = [{"type": "progress_tier", "count": progress.count}]
    allowed = domain.completions_allowed(effect, progress.count) if effect else progress.completions
    if progress.completions > allowed:
        for holder in repository.completing_rewards(
            session, tenant_id, reward.campaign_id, reward.user_id
        ):
            step = next((e for e in holder.effects if e.get("type") == "progress_tier"), None)
            if step is None or "completed" not in step or step.get("taken_back"):
                continue
            undone.extend(
                _take_back(session, tenant_id, g, reason) for g in step.get("granted", [])
            )
            holder.effects = [{**e, "taken_back": True} if e is step else e for e in holder.effects]
            break
        progress.completions = allowed
        if allowed == 0:
            progress.tier = None
    progress.updated_at = utcnow()
    session.flush()
    return undone


# Review --------------------------------------------------------------------------------------


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
        *_apply_rewards(session, tenant_id, campaign.id, reward, document),
    ]
    reward.status = RewardStatus.GRANTED.value
    session.flush()
    _publish(session, "campaign.reward.granted", reward)
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


# Events out ----------------------------------------------------------------------------------


def _publish(session: Session, name: str, reward: CampaignReward) -> None:
    events.publish(
        session,
        events.Event(
            name,
            reward.tenant_id,
            {
                "reward_id": reward.id,
                "campaign_id": reward.campaign_id,
                "user_id": reward.user_id,
                "order_id": reward.order_id,
                "status": reward.status,
                "effects": reward.effects,
            },
        ),
    )


def _publish_prompt(session: Session, name: str, prompt: LikePrompt) -> None:
    events.publish(
        session,
        events.Event(
            name,
            prompt.tenant_id,
            {
                "prompt_id": prompt.id,
                "campaign_id": prompt.campaign_id,
                "user_id": prompt.user_id,
                "order_id": prompt.order_id,
                "status": prompt.status,
                "store": prompt.store,
                "image_url": prompt.image_url,
                "slogan": prompt.slogan,
                "expires_at": prompt.expires_at.isoformat(),
            },
        ),
    )
