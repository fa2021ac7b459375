"""The evaluation of one event against the live campaigns of its trigger: the compiled rule
set of a tenant, the facts of an event, each campaign's outcome, and the prompt or rewards of
those that fire.

Risk control (R1) is asked once per payment for ``reward.grant`` (its "one reward per payment"
rule sees every reward of a payment as one), and once per prompt for ``like.prompt`` (3 a day
by default). BLOCK withholds the reward; REVIEW grants nothing yet and holds the reward for an
analyst.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.campaigns import domain, effects, repository
from zanloop.campaigns.domain import (
    CampaignStatus,
    Outcome,
    PromptStatus,
    RewardStatus,
)
from zanloop.campaigns.tables import CampaignEvent, CampaignReward, LikePrompt
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.loyalty import service as loyalty
from zanloop.payments.domain import Purchase
from zanloop.payments.tables import PaymentOrder
from zanloop.quotas import service as quotas
from zanloop.quotas.service import Taken
from zanloop.risk import service as risk
from zanloop.risk.domain import Signal, Verdict
from zanloop.rules.compiler import RuleSet
from zanloop.rules.domain import (
    Facts,
    PromptLike,
    Rule,
    RuleDocument,
)

REWARD_ACTION = "reward.grant"
PROMPT_ACTION = "like.prompt"


@dataclass(frozen=True)
class _Compiled:
    version: tuple[int, datetime | None]
    rules: RuleSet


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


def member_tier(session: Session, tenant_id: str, user_id: str) -> str | None:
    """The member's tier in the points programme; for a tenant without one, the tier the
    user's campaign tracks reached most recently."""
    tier = loyalty.member_tier(session, tenant_id, user_id)
    if tier is not None:
        return tier
    reached = [p for p in repository.user_progress(session, tenant_id, user_id) if p.tier]
    return max(reached, key=lambda p: p.updated_at).tier if reached else None


def facts_for(
    session: Session,
    tenant_id: str,
    trigger: str,
    order: PaymentOrder,
    user_id: str,
    at: datetime,
) -> Facts:
    purchase = Purchase.of(order)
    return Facts(
        trigger=trigger,
        at=at,
        amount_fen=order.amount_fen,
        store_id=purchase.store_id,
        categories=purchase.categories,
        first_purchase=not repository.paid_before(session, tenant_id, user_id, order.id),
        tier=member_tier(session, tenant_id, user_id),
    )


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


def _payment_signal(action: str, user_id: str, order: PaymentOrder) -> Signal:
    """What risk is told of an action standing on a paid order: the same every time for the
    same order, so a repeated decision with the same reference replays."""
    return Signal(
        action=action,
        user_id=user_id,
        at=order.success_time or utcnow(),
        amount_fen=order.amount_fen,
        payment_account=order.payer_openid,
        payment_order_id=order.id,
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
        _payment_signal(REWARD_ACTION, user_id, order),
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
        e.template_id: effects.coupon_face_fen(session, tenant_id, e.template_id)
        for _, e in effects.coupon_effects(document)
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
        results.append(create_prompt(session, tenant_id, rule, prompt, user_id, order))
        if results[-1].get("refused") == "risk" and not domain.grants_rewards(document):
            # Nothing else to give: the campaign did not fire after all.
            quotas.give_back(session, tenant_id, [Taken.from_json(t) for t in taken])
            session.delete(reward)
            session.flush()
            return _outcome(rule, Outcome.RISK, decision_id=results[-1].get("decision_id"))
    if not held:
        results.extend(effects.apply_rewards(session, tenant_id, rule.key, reward, document))
    reward.effects = results
    session.flush()
    publish_reward(session, "campaign.reward.held" if held else "campaign.reward.granted", reward)
    return _outcome(rule, Outcome.HELD if held else Outcome.REWARDED, reward_id=reward.id)


def create_prompt(
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
        _payment_signal(PROMPT_ACTION, user_id, order),
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
    publish_prompt(session, "campaign.prompt.created", prompt)
    return {"type": "prompt_like", "prompt_id": prompt_id}


def publish_reward(session: Session, name: str, reward: CampaignReward) -> None:
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


def publish_prompt(session: Session, name: str, prompt: LikePrompt) -> None:
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
