"""The points programme's API, the one module other areas, the endpoints and the jobs call.

Here: what a member sees (balances, lots, tier history, task progress) and ingesting events (a
batch, a payment made through zanloop, a receipt's QR code). Re-exported from the workflows kept
in modules of their own: ``setup`` (settings, rules, tasks, the defaults), ``clawback``
(reversals, grants from other areas and their claw-back), ``schedule`` (maturing, expiry,
notices, tier evaluation) and ``members`` (``member_tier``). Those modules never import this one:
it imports them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zanloop.errors import NotFound
from zanloop.kit.clock import as_utc, utcnow
from zanloop.kit.ids import new_id
from zanloop.loyalty import domain, ingest, lots_repository, repository
from zanloop.loyalty.clawback import (
    Reversal,
    claw_back,
    grant,
    put_back,
    reverse_event,
    reverse_order,
)
from zanloop.loyalty.domain import LotStatus, RuleStatus
from zanloop.loyalty.members import ensure_member, member_tier, qualifying_totals
from zanloop.loyalty.schedule import evaluate_tiers, expire_due, mature_due, notify_expiring
from zanloop.loyalty.setup import (
    create_rule,
    create_task,
    default_rules,
    default_tasks,
    find_programme,
    get_rule,
    get_task,
    install_defaults,
    list_rules,
    list_tasks,
    parse_rule,
    parse_task,
    programme,
    put_settings,
    settings,
    update_rule,
    update_task,
)
from zanloop.loyalty.tables import LoyaltyEvent, LoyaltyLot, LoyaltyMember, LoyaltyTierChange
from zanloop.payments import service as payments
from zanloop.payments.domain import Purchase

__all__ = [
    "Account",
    "Reversal",
    "TaskView",
    "account",
    "balance",
    "claw_back",
    "create_rule",
    "create_task",
    "default_rules",
    "default_tasks",
    "evaluate_tiers",
    "expire_due",
    "find_programme",
    "get_event",
    "get_member",
    "get_rule",
    "get_task",
    "grant",
    "ingest_events",
    "install_defaults",
    "list_rules",
    "list_tasks",
    "lots",
    "mature_due",
    "member_tier",
    "notify_expiring",
    "on_payment_succeeded",
    "parse_rule",
    "parse_task",
    "programme",
    "put_back",
    "put_member",
    "put_settings",
    "receipt_code",
    "reverse_event",
    "reverse_order",
    "settings",
    "task_progress",
    "tier_history",
    "update_rule",
    "update_task",
]


# Members -------------------------------------------------------------------------------------


def put_member(
    session: Session, tenant_id: str, user_id: str, birthday: str | None
) -> LoyaltyMember:
    member = ensure_member(session, tenant_id, user_id)
    member.birthday = birthday
    session.flush()
    return member


def get_member(session: Session, tenant_id: str, user_id: str) -> LoyaltyMember:
    member = repository.get_member(session, tenant_id, user_id)
    if member is None:
        raise NotFound(f"member {user_id} not found")
    return member


@dataclass(frozen=True)
class Account:
    """What a member sees: balances, the next expiry, the expiry rule, the tier and how far
    the next one is."""

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


def account(session: Session, tenant_id: str, user_id: str, now: datetime | None = None) -> Account:
    now = now or utcnow()
    member = get_member(session, tenant_id, user_id)
    conf = settings(session, tenant_id)
    bal = ingest.member_balances(session, tenant_id, {user_id: member.tier})[user_id]
    _, pending_until = lots_repository.pending_summary(session, tenant_id, user_id)
    expiry = lots_repository.next_expiry(session, tenant_id, user_id)
    qualifying = qualifying_totals(session, tenant_id, conf, [user_id], now).get(user_id, 0)
    index = conf.tier_index(member.tier)
    upper = conf.tiers[index + 1] if index + 1 < len(conf.tiers) else None
    return Account(
        user_id=user_id,
        tier=member.tier,
        multiplier=str(conf.multiplier(member.tier)),
        available=bal.available,
        pending=bal.pending,
        held=bal.held,
        owed=member.owed_points,
        pending_until=as_utc(pending_until) if pending_until else None,
        next_expiry=as_utc(expiry[0]) if expiry else None,
        next_expiry_points=expiry[1] if expiry else 0,
        expiry_rule=domain.expiry_rule(conf),
        qualifying=qualifying,
        next_tier=upper.name if upper else None,
        next_tier_at=upper.threshold if upper else None,
    )


def balance(session: Session, tenant_id: str, user_id: str) -> ingest.MemberBalance:
    member = get_member(session, tenant_id, user_id)
    return ingest.member_balances(session, tenant_id, {user_id: member.tier})[user_id]


def lots(
    session: Session,
    tenant_id: str,
    user_id: str,
    status: LotStatus | None,
    after: str | None,
    limit: int,
) -> list[LoyaltyLot]:
    return lots_repository.member_lots(
        session, tenant_id, user_id, status.value if status else None, after, limit
    )


def tier_history(
    session: Session, tenant_id: str, user_id: str, limit: int
) -> list[LoyaltyTierChange]:
    return repository.tier_changes(session, tenant_id, user_id, limit)


@dataclass(frozen=True)
class TaskView:
    task_id: str
    name: str
    type: str
    points: int
    completed: int
    rewarded: int
    progress: int
    goal: int
    detail: str


def task_progress(
    session: Session, tenant_id: str, user_id: str, now: datetime | None = None
) -> list[TaskView]:
    conf = settings(session, tenant_id)
    today = domain.local_date(now or utcnow(), conf.zone())
    mine = {p.task_id: p for p in repository.member_progress(session, tenant_id, user_id)}
    out = []
    for task in repository.list_tasks(session, tenant_id):
        if task.status != RuleStatus.ACTIVE.value and task.id not in mine:
            continue
        doc = parse_task(task.document)
        row = mine.get(task.id)
        seen = domain.describe(doc, row.marks.values() if row else [], today)
        out.append(
            TaskView(
                task.id,
                task.name,
                doc.type,
                doc.points,
                seen.completed,
                row.rewarded if row else 0,
                seen.progress,
                seen.goal,
                seen.detail,
            )
        )
    return out


# Ingest --------------------------------------------------------------------------------------


def ingest_events(
    session: Session,
    tenant_id: str,
    incoming: Sequence[ingest.Incoming],
    now: datetime | None = None,
) -> ingest.Result:
    """Ingest a batch. A ``payment.refunded`` event (a refund at the till) reverses what its
    ``order_id`` earned, after the batch's earnings, and answers with the points taken back."""
    row = programme(session, tenant_id)
    try:
        with session.begin_nested():
            result = ingest.ingest(session, row, incoming, now)
    except IntegrityError:
        # PostgreSQL: a concurrent batch committed one of these event ids first (the insert
        # waited for it). Once more, the ids it wrote are replays.
        with session.begin_nested():
            result = ingest.ingest(session, row, incoming, now)
    refunds = [
        (outcome, e)
        for outcome, e in zip(result.outcomes, incoming, strict=True)
        if e.type == domain.REFUND_TRIGGER and e.order_id and outcome.status == "applied"
    ]
    for outcome, e in refunds:
        assert e.order_id is not None
        reversed_ = reverse_order(session, tenant_id, e.order_id, "payment refunded", now)
        outcome.points = -sum(r.clawed for r in reversed_)
        outcome.tier = get_member(session, tenant_id, e.user_id).tier
    if refunds:
        tiers = {u: b.tier for u, b in result.balances.items()}
        for u in tiers:
            tiers[u] = get_member(session, tenant_id, u).tier
        result.balances = ingest.member_balances(session, tenant_id, tiers)
    return result


def on_payment_succeeded(session: Session, tenant_id: str, order_id: str) -> None:
    """A payment made through zanloop earns as a ``payment.succeeded`` event of its buyer
    (``user_id`` in the order's metadata), for tenants that run a programme."""
    row = repository.get_programme(session, tenant_id)
    if row is None:
        return
    order = payments.get_order(session, tenant_id, order_id)
    purchase = Purchase.of(order)
    if purchase.user_id is None or order.status != "SUCCESS" or order.refunded_fen:
        return
    at = as_utc(order.success_time) if order.success_time else utcnow()
    ingest.ingest(
        session,
        row,
        [
            ingest.Incoming(
                event_id=f"order:{order.id}",
                type=domain.PAYMENT_TRIGGER,
                user_id=purchase.user_id,
                occurred_at=at,
                amount_fen=order.amount_fen,
                store_id=purchase.store_id,
                categories=tuple(sorted(purchase.categories)),
                order_id=order.id,
            )
        ],
    )


def get_event(session: Session, tenant_id: str, event_id: str) -> LoyaltyEvent:
    event = repository.get_event(session, tenant_id, event_id)
    if event is None:
        raise NotFound(f"event {event_id} not found")
    return event


def receipt_code(session: Session, tenant_id: str, store_id: str, amount_fen: int) -> str:
    """A one-time code for a paper receipt's QR: scanning it earns points once, by one user."""
    row = programme(session, tenant_id)
    return domain.sign_receipt(
        row.receipt_secret, domain.Receipt(new_id("rcp"), store_id, amount_fen)
    )


def interactions(
    session: Session, tenant_id: str, since: datetime, until: datetime
) -> list[tuple[str, str, datetime]]:
    """Member events that name a store (``store:<id>``) or another member (``user:<id>``, an
    invitation), for group fraud detection."""
    found = []
    for event in repository.applied_events(session, tenant_id, since, until):
        if store := event.data.get("store_id"):
            found.append((event.user_id, f"store:{store}", event.occurred_at))
        if friend := event.data.get("counterparty_id"):
            found.append((event.user_id, f"user:{friend}", event.occurred_at))
    return found


def revoke_events(
    session: Session,
    tenant_id: str,
    user_ids: Sequence[str],
    since: datetime,
    until: datetime,
    reason: str,
) -> list[str]:
    """Reverse the members' applied events in ``[since, until)`` (their points are clawed
    back as for a refund); the event ids reversed."""
    reversed_ids = []
    for event in repository.applied_events(session, tenant_id, since, until, user_ids):
        reverse_event(session, tenant_id, event.event_id, reason)
        reversed_ids.append(event.event_id)
    return reversed_ids


def hold_pending(session: Session, tenant_id: str, user_ids: Sequence[str], until: datetime) -> int:
    """Keep the members' pending points pending until ``until`` (a fraud hold): they cannot be
    spent meanwhile, and a revoke can still claw them back before they mature."""
    return lots_repository.delay_pending(session, tenant_id, user_ids, as_utc(until))
