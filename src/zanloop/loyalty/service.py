"""The points programme's workflows: set-up (settings, rules, tasks, defaults), members and
their balances, ingesting events, reversing them (claw-back), and the scheduled work: pending
points maturing, lots expiring with notice, tiers re-evaluated."""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zanloop import events
from zanloop.errors import FieldError, InvalidDocument, NotFound
from zanloop.kit.clock import as_utc, utcnow
from zanloop.kit.ids import new_id
from zanloop.kit.money import Asset
from zanloop.ledger import service as ledger
from zanloop.ledger.domain import Leg, TransferRequest
from zanloop.loyalty import domain, ingest, postings, repository
from zanloop.loyalty.domain import (
    CLAWED,
    EXPIRED,
    RETURNED_PREFIX,
    EventStatus,
    LotStatus,
    RuleStatus,
    Settings,
    available_owner,
    pending_owner,
)
from zanloop.loyalty.tables import (
    LoyaltyEvent,
    LoyaltyLot,
    LoyaltyMember,
    LoyaltyProgramme,
    LoyaltyRule,
    LoyaltyTask,
    LoyaltyTierChange,
)
from zanloop.payments import service as payments
from zanloop.payments.domain import Purchase
from zanloop.quotas.service import Taken, Tally
from zanloop.rules.domain import LOYALTY_EFFECTS, RuleDocument

_TASK = TypeAdapter(domain.TaskDocument)
# Effects a points rule may have: points, and multipliers of points.
_POINT_EFFECTS = ("grant_points", *LOYALTY_EFFECTS)


def _invalid(message: str, where: str, exc: ValidationError) -> InvalidDocument:
    return InvalidDocument(
        message,
        errors=[
            FieldError(".".join([where, *(str(p) for p in err["loc"])]), err["msg"])
            for err in exc.errors()
        ],
    )


# Programme -----------------------------------------------------------------------------------


def programme(session: Session, tenant_id: str) -> LoyaltyProgramme:
    """The tenant's programme, opened with the default settings on first use."""
    found = repository.get_programme(session, tenant_id)
    if found is not None:
        return found
    now = utcnow()
    repository.insert_programme(
        session,
        {
            "tenant_id": tenant_id,
            "settings": Settings().model_dump(mode="json"),
            "rules_version": 1,
            "receipt_secret": secrets.token_hex(32),
            "created_at": now,
            "updated_at": now,
        },
    )
    found = repository.get_programme(session, tenant_id)
    assert found is not None
    return found


def find_programme(session: Session, tenant_id: str) -> LoyaltyProgramme | None:
    return repository.get_programme(session, tenant_id)


def settings(session: Session, tenant_id: str) -> Settings:
    """The programme's settings (the defaults if it was never opened)."""
    row = repository.get_programme(session, tenant_id)
    return Settings.model_validate(row.settings) if row is not None else Settings()


def put_settings(session: Session, tenant_id: str, raw: Any) -> LoyaltyProgramme:
    try:
        parsed = Settings.model_validate(raw)
    except ValidationError as exc:
        raise _invalid("the programme settings are not valid", "settings", exc) from exc
    row = programme(session, tenant_id)
    row.settings = parsed.model_dump(mode="json")
    row.rules_version += 1  # the compiled programme carries the settings too
    row.updated_at = utcnow()
    session.flush()
    return row


# Rules and tasks -----------------------------------------------------------------------------


def parse_rule(raw: Any, where: str = "rule") -> RuleDocument:
    try:
        document = RuleDocument.model_validate(raw)
    except ValidationError as exc:
        raise _invalid("the points rule is not valid", where, exc) from exc
    problems = [
        FieldError(f"{where}.effects.{i}", f"{e.type} is not a points effect")
        for i, e in enumerate(document.effects)
        if e.type not in _POINT_EFFECTS
    ]
    if problems:
        raise InvalidDocument("the points rule is not valid", errors=problems)
    return document


def create_rule(
    session: Session, tenant_id: str, name: str, raw: Any, status: RuleStatus
) -> LoyaltyRule:
    document = parse_rule(raw)
    programme(session, tenant_id)
    now = utcnow()
    row = LoyaltyRule(
        id=new_id("lrl"),
        tenant_id=tenant_id,
        name=name,
        status=status.value,
        document=document.model_dump(mode="json"),
        version=1,
        created_at=now,
        updated_at=now,
    )
    repository.add(session, row)
    repository.bump_rules_version(session, tenant_id, now)
    return row


def get_rule(session: Session, tenant_id: str, rule_id: str) -> LoyaltyRule:
    row = repository.get_rule(session, tenant_id, rule_id)
    if row is None:
        raise NotFound(f"points rule {rule_id} not found")
    return row


def update_rule(
    session: Session,
    tenant_id: str,
    rule_id: str,
    *,
    name: str | None,
    raw: Any | None,
    status: RuleStatus | None,
) -> LoyaltyRule:
    row = get_rule(session, tenant_id, rule_id)
    if raw is not None:
        row.document = parse_rule(raw).model_dump(mode="json")
        row.version += 1
    if name is not None:
        row.name = name
    if status is not None:
        row.status = status.value
    row.updated_at = utcnow()
    session.flush()
    repository.bump_rules_version(session, tenant_id, row.updated_at)
    return row


def list_rules(session: Session, tenant_id: str) -> list[LoyaltyRule]:
    return repository.list_rules(session, tenant_id)


def parse_task(
    raw: Any, where: str = "task"
) -> domain.StreakTask | domain.AchievementTask | domain.CountTask:
    try:
        return _TASK.validate_python(raw)
    except ValidationError as exc:
        raise _invalid("the task is not valid", where, exc) from exc


def create_task(
    session: Session, tenant_id: str, name: str, raw: Any, status: RuleStatus
) -> LoyaltyTask:
    document = parse_task(raw)
    programme(session, tenant_id)
    now = utcnow()
    row = LoyaltyTask(
        id=new_id("ltk"),
        tenant_id=tenant_id,
        name=name,
        status=status.value,
        document=document.model_dump(mode="json"),
        created_at=now,
        updated_at=now,
    )
    repository.add(session, row)
    repository.bump_rules_version(session, tenant_id, now)
    return row


def get_task(session: Session, tenant_id: str, task_id: str) -> LoyaltyTask:
    row = repository.get_task(session, tenant_id, task_id)
    if row is None:
        raise NotFound(f"task {task_id} not found")
    return row


def update_task(
    session: Session, tenant_id: str, task_id: str, *, name: str | None, status: RuleStatus | None
) -> LoyaltyTask:
    """A task's terms are fixed once members make progress on it; pause it and add another."""
    row = get_task(session, tenant_id, task_id)
    if name is not None:
        row.name = name
    if status is not None:
        row.status = status.value
    row.updated_at = utcnow()
    session.flush()
    repository.bump_rules_version(session, tenant_id, row.updated_at)
    return row


def list_tasks(session: Session, tenant_id: str) -> list[LoyaltyTask]:
    return repository.list_tasks(session, tenant_id)


# Members -------------------------------------------------------------------------------------


def _member(session: Session, tenant_id: str, user_id: str) -> LoyaltyMember:
    found = repository.get_member(session, tenant_id, user_id)
    if found is not None:
        return found
    first = settings(session, tenant_id).first_tier
    now = utcnow()
    repository.ensure_members(
        session,
        [
            {
                "tenant_id": tenant_id,
                "user_id": user_id,
                "tier": first,
                "base_tier": first,
                "birthday": None,
                "owed_points": 0,
                "tier_changed_at": now,
                "created_at": now,
            }
        ],
    )
    found = repository.get_member(session, tenant_id, user_id)
    assert found is not None
    return found


def member_tier(session: Session, tenant_id: str, user_id: str) -> str | None:
    """The member's tier, or None if the tenant runs no programme or the user is not in it."""
    if repository.get_programme(session, tenant_id) is None:
        return None
    member = repository.get_member(session, tenant_id, user_id)
    return member.tier if member is not None else None


def put_member(
    session: Session, tenant_id: str, user_id: str, birthday: str | None
) -> LoyaltyMember:
    member = _member(session, tenant_id, user_id)
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
    _, pending_until = repository.pending_summary(session, tenant_id, user_id)
    expiry = repository.next_expiry(session, tenant_id, user_id)
    qualifying = _qualifying(session, tenant_id, conf, [user_id], now).get(user_id, 0)
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
    return repository.member_lots(
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


def _qualifying(
    session: Session, tenant_id: str, conf: Settings, users: Sequence[str], now: datetime
) -> dict[str, int]:
    since = now - timedelta(days=conf.tier_window_days)
    if conf.tier_basis == "points":
        return repository.qualifying_points(session, tenant_id, users, since)
    return repository.qualifying_spend(session, tenant_id, users, since)


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


# Points granted by other areas --------------------------------------------------------------


def grant(
    session: Session,
    tenant_id: str,
    user_id: str,
    points: int,
    *,
    ref: str,
    transfer_id: str,
    issuer: str,
    description: str,
    metadata: dict[str, Any] | None = None,
) -> LoyaltyLot:
    """Points another area grants (a campaign's reward): a lot like any other, so they are
    spent, expired and clawed back the same way. Once per ``ref``."""
    for lot in repository.lots_by_ref(session, tenant_id, [ref]):
        return lot
    conf = settings(session, tenant_id)
    _member(session, tenant_id, user_id)
    now = utcnow()
    ledger.post(
        session,
        tenant_id,
        TransferRequest(
            transfer_id=transfer_id,
            asset=Asset.POINTS,
            legs=(
                Leg(issuer, -points, overdraft_allowed=True),
                Leg(available_owner(user_id), points),
            ),
            description=description,
            metadata=metadata or {},
        ),
    )
    lot = LoyaltyLot(
        id=new_id("lot"),
        tenant_id=tenant_id,
        user_id=user_id,
        ref=ref,
        status=LotStatus.AVAILABLE.value,
        points=points,
        remaining=points,
        expired=0,
        clawed=0,
        detail={"issuer": issuer},
        earned_at=now,
        available_at=now,
        expires_at=domain.expires_at(conf, now),
        transfer_id=transfer_id,
    )
    repository.add(session, lot)
    return lot


def claw_back(session: Session, tenant_id: str, ref: str, reason: str) -> tuple[int, int]:
    """Take back a grant's points (``grant``'s ``ref``): (points taken back, points owed)."""
    lots_ = [
        lot
        for lot in repository.lots_by_ref(session, tenant_id, [ref])
        if lot.status != LotStatus.REVERSED.value
    ]
    members = {
        m.user_id: m
        for m in repository.lock_members(session, tenant_id, {lot.user_id for lot in lots_})
    }
    claw = _Claw(session, tenant_id, members)
    for lot in lots_:
        claw.lot(lot)
    claw.post(reason)
    session.flush()
    return sum(claw.clawed.values()), sum(claw.owed_by_lot.values())


def put_back(
    session: Session,
    tenant_id: str,
    member: LoyaltyMember,
    lot: LoyaltyLot,
    points: int,
    hold_id: str,
) -> None:
    """Points a cancelled redemption returns to the lot they were held from. A lot reversed
    meanwhile (its payment was refunded) cannot take them back: they pay off what the member
    came to owe, and any rest is a lot of its own with the old lot's expiry."""
    if lot.status != LotStatus.REVERSED.value:
        lot.remaining += points
        return
    settle = min(member.owed_points, points)
    if settle:
        member.owed_points -= settle
        lot.clawed += settle
        requests, _ = postings.from_counter(
            "settle",
            CLAWED,
            {available_owner(member.user_id): -settle},
            "owed points paid off",
            overdraft=False,
        )
        ledger.post_many(session, tenant_id, requests)
    rest = points - settle
    if rest:
        repository.add(
            session,
            LoyaltyLot(
                id=new_id("lot"),
                tenant_id=tenant_id,
                user_id=member.user_id,
                ref=f"{RETURNED_PREFIX}{hold_id}:{lot.id}",
                status=LotStatus.AVAILABLE.value,
                points=rest,
                remaining=rest,
                expired=0,
                clawed=0,
                detail={"returned_from": lot.id},
                earned_at=lot.earned_at,
                available_at=lot.available_at,
                expires_at=lot.expires_at,
                transfer_id=hold_id,
            ),
        )


# Reversal (claw-back) ------------------------------------------------------------------------


@dataclass
class Reversal:
    event_id: str
    clawed: int
    owed: int
    tier: str


def reverse_event(
    session: Session, tenant_id: str, event_id: str, reason: str, now: datetime | None = None
) -> Reversal:
    event = repository.get_event(session, tenant_id, event_id, lock=True)
    if event is None:
        raise NotFound(f"event {event_id} not found")
    return _reverse(session, tenant_id, [event], reason, now or utcnow())[0]


def reverse_order(
    session: Session, tenant_id: str, order_id: str, reason: str, now: datetime | None = None
) -> list[Reversal]:
    """A refund of ``order_id``: every event it earned on is reversed."""
    found = repository.events_of_order(session, tenant_id, order_id)
    return _reverse(session, tenant_id, found, reason, now or utcnow())


def _reverse(
    session: Session, tenant_id: str, found: Sequence[LoyaltyEvent], reason: str, now: datetime
) -> list[Reversal]:
    todo = [e for e in found if e.status == EventStatus.APPLIED.value]
    if not todo:  # reversed already: nothing more to take back
        return [
            Reversal(e.event_id, 0, 0, member_tier(session, tenant_id, e.user_id) or "")
            for e in found
        ]
    conf = settings(session, tenant_id)
    # Members before their lots, as redemptions and ingest lock them: one lock order.
    members = {
        m.user_id: m for m in repository.lock_members(session, tenant_id, {e.user_id for e in todo})
    }
    refs = [r for e in todo for r in (f"event:{e.event_id}", f"event:{e.event_id}:counterparty")]
    granted = [
        lot
        for lot in repository.lots_by_ref(session, tenant_id, refs)
        if lot.status != LotStatus.REVERSED.value
    ]
    users = {e.user_id for e in todo} | {lot.user_id for lot in granted}
    if users - members.keys():  # an invitation's other side
        members.update(
            (m.user_id, m)
            for m in repository.lock_members(session, tenant_id, users - members.keys())
        )
    for e in todo:
        e.status, e.reversed_at = EventStatus.REVERSED.value, now
    claw = _Claw(session, tenant_id, members)
    taken = [Taken.from_json(t) for lot in granted for t in lot.detail.get("taken", [])]
    if taken:
        tally = Tally(session, tenant_id, [(t.scope, t.key) for t in taken])
        tally.give_back(taken)
        tally.save()
    for lot in granted:
        claw.lot(lot)
    # Tasks: the events leave the marks; completions that no longer stand are clawed too.
    keys = {e.event_id for e in todo}
    tasks = {t.id: t for t in repository.list_tasks(session, tenant_id)}
    task_lots: dict[str, list[str]] = defaultdict(list)
    for user_id in sorted(users):
        for row in repository.member_progress(session, tenant_id, user_id):
            if not keys & row.marks.keys() or row.task_id not in tasks:
                continue
            row.marks = {k: v for k, v in row.marks.items() if k not in keys}
            due = domain.completions(parse_task(tasks[row.task_id].document), row.marks.values())
            if due < row.rewarded:
                lost = [f"task:{row.task_id}:{n}" for n in range(due + 1, row.rewarded + 1)]
                for lot in repository.lots_by_ref(session, tenant_id, lost):
                    if lot.user_id == user_id and lot.status != LotStatus.REVERSED.value:
                        claw.lot(lot)
                        task_lots[user_id].append(lot.id)
                row.rewarded = due
            row.updated_at = now
    claw.post(reason)
    session.flush()
    # Tiers: an upgrade the refund undid is undone, never below the last evaluated tier.
    qualifying = _qualifying(session, tenant_id, conf, sorted(users), now)
    changes = []
    for member in members.values():
        tier = domain.tier_after_refund(
            conf, member.tier, member.base_tier, qualifying.get(member.user_id, 0)
        )
        if tier != member.tier:
            changes.append(
                _tier_change(member, tier, "refund", qualifying.get(member.user_id, 0), now)
            )
    repository.add_tier_changes(session, changes)
    session.flush()
    out = []
    for e in found:
        # What the event's lots gave back, and the task rewards it took down with it (counted
        # on the first of a member's reversed events).
        mine = [lot.id for lot in granted if lot.ref == f"event:{e.event_id}"]
        mine += task_lots.pop(e.user_id, []) if e in todo else []
        out.append(
            Reversal(
                e.event_id,
                sum(claw.clawed.get(lot_id, 0) for lot_id in mine),
                sum(claw.owed_by_lot.get(lot_id, 0) for lot_id in mine),
                members[e.user_id].tier if e.user_id in members else "",
            )
        )
    for e, r in zip(found, out, strict=True):
        if e not in todo:
            continue
        events.publish(
            session,
            events.Event(
                "loyalty.points.reversed",
                tenant_id,
                {
                    "event_id": e.event_id,
                    "user_id": e.user_id,
                    "order_id": e.order_id,
                    "reason": reason,
                    "points_clawed": r.clawed,
                    "points_owed": r.owed,
                    "tier": r.tier,
                },
            ),
        )
    return out


def _tier_change(
    member: LoyaltyMember, tier: str, reason: str, qualifying: int, at: datetime
) -> dict[str, Any]:
    row = {
        "tenant_id": member.tenant_id,
        "user_id": member.user_id,
        "from_tier": member.tier,
        "to_tier": tier,
        "reason": reason,
        "qualifying": qualifying,
        "at": at,
    }
    member.tier, member.tier_changed_at = tier, at
    return row


class _Claw:
    """Takes lots' points back: pending points from the pending account; available ones from
    the lot, then the member's other lots (soonest-expiring first); what the member no longer
    has is recorded as owed and paid off from later earnings."""

    def __init__(self, session: Session, tenant_id: str, members: dict[str, LoyaltyMember]) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.members = members
        self.debits: dict[str, int] = defaultdict(int)
        self.clawed: dict[str, int] = {}
        self.owed_by_lot: dict[str, int] = {}
        self._others: dict[str, list[LoyaltyLot]] = {}

    def lot(self, lot: LoyaltyLot) -> None:
        if lot.status == LotStatus.PENDING.value:
            self.debits[pending_owner(lot.user_id)] += lot.remaining
            got, owed = lot.remaining, 0
            lot.clawed += lot.remaining
            lot.remaining = 0
        else:
            want = lot.points - lot.expired - lot.clawed
            own = min(lot.remaining, want)
            lot.remaining -= own
            lot.clawed += own
            rest = want - own
            from_others = self._from_others(lot, rest) if rest else 0
            owed = rest - from_others
            got = own + from_others
            self.debits[available_owner(lot.user_id)] += got
            if owed:
                member = self.members.get(lot.user_id) or _locked(
                    self.session, self.tenant_id, lot.user_id
                )
                member.owed_points += owed
        lot.status = LotStatus.REVERSED.value
        self.clawed[lot.id] = got
        self.owed_by_lot[lot.id] = owed

    def _from_others(self, lot: LoyaltyLot, want: int) -> int:
        if lot.user_id not in self._others:
            self._others[lot.user_id] = repository.spendable_lots(
                self.session, self.tenant_id, lot.user_id
            )
        spendable = [x for x in self._others[lot.user_id] if x.id != lot.id and x.remaining > 0]
        total = sum(x.remaining for x in spendable)
        plan = (
            domain.allocate(
                [
                    domain.Spendable(
                        x.id,
                        x.remaining,
                        as_utc(x.expires_at) if x.expires_at else None,
                        as_utc(x.earned_at),
                    )
                    for x in spendable
                ],
                min(want, total),
            )
            or {}
        )
        for x in spendable:
            take = plan.get(x.id, 0)
            x.remaining -= take
            x.clawed += take
        return sum(plan.values())

    def post(self, reason: str) -> None:
        if any(self.debits.values()):
            requests, _ = postings.from_counter(
                "claw",
                CLAWED,
                {o: -p for o, p in self.debits.items()},
                f"points clawed back: {reason}"[:500],
                overdraft=False,
            )
            ledger.post_many(self.session, self.tenant_id, requests)


def _locked(session: Session, tenant_id: str, user_id: str) -> LoyaltyMember:
    return repository.lock_members(session, tenant_id, [user_id])[0]


# Scheduled work ------------------------------------------------------------------------------


def mature_due(session: Session, now: datetime | None = None, limit: int = 2000) -> int:
    """Pending lots whose refund window has closed become available."""
    now = now or utcnow()
    due = repository.due_lots(session, now, limit)
    by_tenant: dict[str, list[LoyaltyLot]] = defaultdict(list)
    for lot in due:
        by_tenant[lot.tenant_id].append(lot)
    for tenant_id, lots_ in by_tenant.items():
        moves = [(pending_owner(x.user_id), available_owner(x.user_id), x.remaining) for x in lots_]
        owing = {
            m.user_id: m
            for m in repository.owing_members(session, tenant_id, {x.user_id for x in lots_})
        }
        settled: dict[str, int] = defaultdict(int)
        for lot in lots_:
            lot.status = LotStatus.AVAILABLE.value
            member = owing.get(lot.user_id)
            if member is not None and member.owed_points:
                # What a member owes is paid off from points as they become available.
                settle = min(member.owed_points, lot.remaining)
                member.owed_points -= settle
                lot.remaining -= settle
                lot.clawed += settle
                settled[available_owner(lot.user_id)] -= settle
        requests = postings.pairs("mature", moves, "pending points became available")
        if settled:
            requests += postings.from_counter(
                "settle", CLAWED, settled, "owed points paid off", overdraft=False
            )[0]
        if requests:
            ledger.post_many(session, tenant_id, requests)
    session.flush()
    return len(due)


def expire_due(
    session: Session,
    now: datetime | None = None,
    limit: int = 2000,
    tenant_id: str | None = None,
    user_id: str | None = None,
) -> int:
    """Lots past their expiry lose what remains of them (breakage), FIFO by expiry."""
    now = now or utcnow()
    due = repository.expired_lots(session, now, limit, tenant_id, user_id)
    by_tenant: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    expired_by: dict[tuple[str, str], int] = defaultdict(int)
    for lot in due:
        by_tenant[lot.tenant_id][available_owner(lot.user_id)] -= lot.remaining
        expired_by[(lot.tenant_id, lot.user_id)] += lot.remaining
        lot.expired += lot.remaining
        lot.remaining = 0
    for tenant, amounts in by_tenant.items():
        requests, _ = postings.from_counter(
            "expire", EXPIRED, amounts, "points expired", overdraft=False
        )
        ledger.post_many(session, tenant, requests)
    for (tenant, user), points in sorted(expired_by.items()):
        events.publish(
            session,
            events.Event("loyalty.points.expired", tenant, {"user_id": user, "points": points}),
        )
    session.flush()
    return len(due)


def notify_expiring(session: Session, now: datetime | None = None, limit: int = 2000) -> int:
    """Tell members, once per lot, that points expire within the programme's notice period."""
    now = now or utcnow()
    notices: dict[tuple[str, str], list[LoyaltyLot]] = defaultdict(list)
    # Each programme with its own notice period, so one tenant's lots never crowd out another's.
    for tenant_id, raw in repository.programme_settings(session):
        notice_days = Settings.model_validate(raw).expiry.notice_days
        if not notice_days:
            continue  # the programme sends no notice
        horizon = now + timedelta(days=notice_days)
        for lot in repository.expiring_unnotified(session, tenant_id, horizon, limit):
            notices[(tenant_id, lot.user_id)].append(lot)
    for (tenant_id, user_id), lots_ in sorted(notices.items()):
        first = min(as_utc(x.expires_at) for x in lots_ if x.expires_at is not None)
        for lot in lots_:
            lot.notified_at = now
        events.publish(
            session,
            events.Event(
                "loyalty.points.expiring",
                tenant_id,
                {
                    "user_id": user_id,
                    "points": sum(x.remaining for x in lots_),
                    "expires_at": first.isoformat(),
                },
            ),
        )
    session.flush()
    return sum(len(v) for v in notices.values())


def evaluate_tiers(
    session: Session, now: datetime | None = None, tenant_id: str | None = None, batch: int = 500
) -> int:
    """The scheduled re-evaluation (L2): every member's tier against the rolling window, down
    as the downgrade policy says; the result is the floor a later refund cannot go below."""
    now = now or utcnow()
    changed = 0
    after: tuple[str, str] | None = None
    while True:
        ids = repository.member_ids(session, tenant_id, after, batch)
        if not ids:
            return changed
        after = ids[-1]
        by_tenant: dict[str, list[str]] = defaultdict(list)
        for t, u in ids:
            by_tenant[t].append(u)
        for tenant, users in by_tenant.items():
            conf = settings(session, tenant)
            qualifying = _qualifying(session, tenant, conf, users, now)
            rows = []
            for member in repository.lock_members(session, tenant, users):
                q = qualifying.get(member.user_id, 0)
                tier = domain.tier_after_evaluation(conf, member.tier, q)
                if tier != member.tier:
                    rows.append(_tier_change(member, tier, "evaluation", q, now))
                member.base_tier = member.tier
            repository.add_tier_changes(session, rows)
            changed += len(rows)
        session.flush()


# Defaults ------------------------------------------------------------------------------------


def _rule(
    trigger: str,
    effect: dict[str, Any],
    conditions: Sequence[dict[str, Any]] = (),
    per_day: int | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {"trigger": trigger, "effects": [effect]}
    if conditions:
        document["conditions"] = list(conditions)
    if per_day is not None:
        document["caps"] = {"per_user_per_day": per_day}
    return document


def default_rules(
    partner_stores: Iterable[str] = (),
    double_points: tuple[datetime, datetime] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The seed article's programme (L1), as rules: name and document."""
    pay = domain.PAYMENT_TRIGGER
    per_yuan = {"type": "earn_per_yuan", "points_per_yuan": "1"}
    double = {"type": "multiply_points", "factor": "2"}

    def points(n: int) -> dict[str, Any]:
        return {"type": "grant_points", "points": n}

    rules: list[tuple[str, dict[str, Any]]] = [
        ("1 point a yuan", _rule(pay, per_yuan)),
        (
            "+50 for a payment of 100 CNY or more",
            _rule(pay, points(50), [{"type": "amount_gte", "fen": 10000}]),
        ),
        ("Birthday: double points", _rule(pay, double, [{"type": "birthday"}])),
        ("Invite a friend: 20 each", _rule("invite.accepted", {**points(20), "to": "both"})),
        ("Daily share: 5", _rule("share.created", points(5), per_day=1)),
        ("Comment: 2", _rule("comment.created", points(2), per_day=5)),
        ("Like: 2", _rule("like.created", points(2), per_day=5)),
        (
            "Read a whole article: 15",
            _rule("article.read", points(15), [{"type": "value_gte", "value": 100}], 3),
        ),
        (
            "Watch 30 seconds: 10",
            _rule("video.watched", points(10), [{"type": "value_gte", "value": 30}], 3),
        ),
        ("Watch to the end: +20", _rule("video.completed", points(20), per_day=3)),
        ("Store check-in: 5", _rule("store.checkin", points(5), per_day=1)),
        ("Receipt QR: 1 point a yuan", _rule(domain.RECEIPT_TRIGGER, per_yuan)),
    ]
    stores = sorted(set(partner_stores))
    if stores:
        rules.append(
            (
                "Partner merchants: double points",
                _rule(pay, double, [{"type": "store_in", "values": stores}]),
            )
        )
    if double_points is not None:
        window = {
            "type": "date_range",
            "start": double_points[0].isoformat(),
            "end": double_points[1].isoformat(),
        }
        rules.append(("Limited-time event: double points", _rule(pay, double, [window])))
    return rules


def default_tasks() -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "Check in 7 days in a row: 200",
            {"type": "streak", "trigger": "store.checkin", "days": 7, "points": 200},
        ),
        (
            "Try everything once: 500",
            {
                "type": "achievement",
                "points": 500,
                "actions": [
                    "payment.succeeded",
                    "share.created",
                    "comment.created",
                    "article.read",
                    "video.completed",
                ],
            },
        ),
    ]


def install_defaults(
    session: Session,
    tenant_id: str,
    *,
    activate: bool,
    partner_stores: Iterable[str] = (),
    double_points: tuple[datetime, datetime] | None = None,
) -> tuple[list[LoyaltyRule], list[LoyaltyTask]]:
    status = RuleStatus.ACTIVE if activate else RuleStatus.PAUSED
    # The rules count their days (caps, birthdays) in the programme's own time zone.
    zone = settings(session, tenant_id).timezone
    rules = [
        create_rule(session, tenant_id, name, {**doc, "timezone": zone}, status)
        for name, doc in default_rules(partner_stores, double_points)
    ]
    tasks = [create_task(session, tenant_id, name, doc, status) for name, doc in default_tasks()]
    return rules, tasks
