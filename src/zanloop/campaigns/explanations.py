"""Simulate an event against the live campaigns (a dry run: nothing is written), and explain
why a real event did or did not earn a reward.

Both judge conditions with ``rules.domain.explain``, the slow twin of the compiled matcher
that really ran (a property test holds the two to the same answer); the explanation of a real
event reads what was recorded when it happened: the facts it was judged on, and each
campaign's outcome, so it tells what did happen, not what would happen now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from zanloop.campaigns import domain, effects, evaluation, repository
from zanloop.campaigns.domain import CampaignStatus, Outcome
from zanloop.campaigns.tables import Campaign, CampaignEvent
from zanloop.errors import NotFound
from zanloop.payments import service as payments
from zanloop.payments.domain import Purchase
from zanloop.quotas import service as quotas
from zanloop.rules.domain import Check, Facts, Rule, RuleDocument, explain


@dataclass(frozen=True)
class Verdict:
    campaign_id: str
    campaign_name: str
    outcome: str
    message: str
    checks: list[Check]
    reward_id: str | None = None
    reward_status: str | None = None
    effects: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Simulation:
    trigger: str
    facts: dict[str, Any]
    verdicts: list[Verdict]


def simulate(
    session: Session,
    tenant_id: str,
    trigger: str,
    at: datetime,
    user_id: str | None,
    amount_fen: int,
    store_id: str | None,
    categories: list[str],
    first_purchase: bool | None,
    tier: str | None,
) -> Simulation:
    """What the live campaigns would make of this event now, limits included; risk control
    is not asked (it decides on the real event)."""
    if user_id is not None:
        if first_purchase is None:
            first_purchase = not repository.paid_before(session, tenant_id, user_id, "")
        if tier is None:
            tier = evaluation.member_tier(session, tenant_id, user_id)
    facts = Facts(
        trigger=trigger,
        at=at,
        amount_fen=amount_fen,
        store_id=store_id,
        categories=frozenset(categories),
        first_purchase=first_purchase,
        tier=tier,
    )
    rules = evaluation.rule_set(session, tenant_id)
    matched = {r.key for r in rules.match(facts)}
    names = _names(session, tenant_id, [r.key for r in rules.of_trigger(trigger)])
    verdicts = []
    for rule in rules.of_trigger(trigger):
        checks = explain(rule, facts)
        if rule.key not in matched:
            verdicts.append(_not_met(rule.key, names, checks))
            continue
        full = _full_limit(session, tenant_id, rule, user_id, at)
        if full is not None:
            verdicts.append(Verdict(rule.key, names[rule.key], full.value, _words(full), checks))
            continue
        effects = [e.model_dump(mode="json") for e in rule.document.effects]
        verdicts.append(
            Verdict(
                rule.key,
                names[rule.key],
                Outcome.REWARDED.value,
                "every condition holds: this event would earn the campaign's effects",
                checks,
                effects=effects,
            )
        )
    return Simulation(trigger, evaluation.facts_json(facts), verdicts)


def _full_limit(
    session: Session, tenant_id: str, rule: Rule, user_id: str | None, at: datetime
) -> Outcome | None:
    document = rule.document
    faces = {
        e.template_id: effects.coupon_face_fen(session, tenant_id, e.template_id)
        for _, e in effects.coupon_effects(document)
    }
    cost = domain.reward_cost_fen(document, faces)
    limits = domain.limits(rule.key, document, user_id or "", at, cost)
    for ask in limits.asks():
        if user_id is None and ask in (limits.user_day, limits.user_total):
            continue
        used = quotas.used(session, tenant_id, ask.scope, [ask.key]).get(ask.key, 0)
        if used + ask.amount > ask.limit:
            return limits.outcome_of(ask)
    return None


def _names(session: Session, tenant_id: str, ids: list[str]) -> dict[str, str]:
    campaigns = repository.list_campaigns(session, tenant_id)
    return {c.id: c.name for c in campaigns if c.id in set(ids)} | {
        i: i for i in ids if i not in {c.id for c in campaigns}
    }


def _not_met(campaign_id: str, names: dict[str, str], checks: list[Check]) -> Verdict:
    failed = [c.message for c in checks if not c.passed]
    return Verdict(
        campaign_id,
        names.get(campaign_id, campaign_id),
        Outcome.CONDITIONS.value,
        "not rewarded: " + "; ".join(failed),
        checks,
    )


_WORDS = {
    Outcome.REWARDED: "rewarded",
    Outcome.HELD: "the reward waits for a risk review",
    Outcome.BUDGET: "the campaign's budget was spent",
    Outcome.CAP: "the user had reached the campaign's cap",
    Outcome.RISK: "risk control blocked the reward",
    Outcome.CONDITIONS: "the conditions did not hold",
}


def _words(outcome: Outcome) -> str:
    return _WORDS.get(outcome, outcome.value)


# Explaining what happened --------------------------------------------------------------------


@dataclass(frozen=True)
class EventExplanation:
    event_id: str
    trigger: str
    user_id: str | None
    occurred_at: datetime
    facts: dict[str, Any]
    verdicts: list[Verdict]


@dataclass(frozen=True)
class OrderExplanation:
    order_id: str
    status: str
    summary: str
    events: list[EventExplanation]


def explain_order(session: Session, tenant_id: str, order_id: str) -> OrderExplanation:
    """Why a payment (and the like and share on it) did or did not earn rewards."""
    order = payments.get_order(session, tenant_id, order_id)
    recorded = repository.events_of_order(session, tenant_id, order.id)
    explained = [explain_event(session, event) for event in recorded]
    purchase = Purchase.of(order)
    if recorded:
        rewarded = sum(
            v.outcome == Outcome.REWARDED and v.reward_status == "GRANTED"
            for e in explained
            for v in e.verdicts
        )
        summary = f"{len(recorded)} event(s) evaluated; {rewarded} reward(s) stand"
        undone = sum(v.reward_status == "REVERSED" for e in explained for v in e.verdicts)
        if order.refunded_fen and undone:
            summary += f"; the payment was refunded, so its {undone} reward(s) were reversed"
        elif order.refunded_fen:
            summary += "; the payment was refunded, and it had earned nothing"
    elif order.status not in ("SUCCESS", "REFUND"):
        summary = f"the payment is {order.status}: only completed payments trigger campaigns"
    elif purchase.user_id is None:
        summary = "the order names no user_id in its metadata, so no user could be rewarded"
    elif order.refunded_fen:
        summary = "the payment was refunded before campaigns evaluated it"
    else:
        summary = "no campaign was active when the payment completed"
    return OrderExplanation(order.id, order.status, summary, explained)


def explain_event_by_id(session: Session, tenant_id: str, event_id: str) -> EventExplanation:
    event = repository.get_event(session, tenant_id, event_id)
    if event is None:
        raise NotFound(f"campaign event {event_id} not found")
    return explain_event(session, event)


def explain_event(session: Session, event: CampaignEvent) -> EventExplanation:
    facts = evaluation.facts_from_json(event.trigger, event.facts)
    rewards = {r.campaign_id: r for r in repository.rewards_of_event(session, event.id)}
    campaigns = {
        c.id: c for c in repository.list_campaigns(session, event.tenant_id, trigger=event.trigger)
    }
    verdicts = [
        _recorded(o, campaigns.get(o["campaign_id"]), facts, rewards) for o in event.outcomes
    ]
    return EventExplanation(
        event.id, event.trigger, event.user_id, event.occurred_at, event.facts, verdicts
    )


def _recorded(
    outcome: dict[str, Any],
    campaign: Campaign | None,
    facts: Facts,
    rewards: dict[str, Any],
) -> Verdict:
    campaign_id = str(outcome["campaign_id"])
    name = campaign.name if campaign is not None else campaign_id
    kind = Outcome(outcome["outcome"])
    checks: list[Check] = []
    if campaign is not None:
        checks = explain(Rule(campaign_id, RuleDocument.model_validate(campaign.document)), facts)
    changed = campaign is not None and campaign.version != outcome.get("version")
    note = " (the campaign has changed since; the checks show its current rule)" if changed else ""
    if kind is Outcome.CONDITIONS:
        verdict = _not_met(campaign_id, {campaign_id: name}, checks)
        return Verdict(campaign_id, name, kind.value, verdict.message + note, checks)
    reward = rewards.get(campaign_id)
    message = _words(kind)
    if reward is not None and reward.status in ("REVERSED", "REJECTED"):
        message += f", then {reward.status.lower()}: {reward.reverse_reason}"
    if kind is Outcome.RISK and outcome.get("decision_id"):
        message += f" (risk decision {outcome['decision_id']})"
    return Verdict(
        campaign_id,
        name,
        kind.value,
        message + note,
        checks,
        reward_id=reward.id if reward is not None else None,
        reward_status=reward.status if reward is not None else None,
        effects=reward.effects if reward is not None else None,
    )


def active_campaigns(session: Session, tenant_id: str) -> list[Campaign]:
    return repository.list_campaigns(session, tenant_id, status=CampaignStatus.ACTIVE.value)
