"""Ingesting events (L1): one batch, one transaction, a handful of statements.

A batch is priced in memory and written with one statement per table: the events, their lots,
the ledger transfers (one per 31 members, each a multi-leg transfer from ``loyalty:issued``),
task progress, tier changes and the counters of caps and budgets. Everything the batch reads
and changes (members, counters, accounts, task progress) is locked first, in key order, so
concurrent batches on PostgreSQL queue rather than deadlock or overshoot a cap.

Events are applied in time order (then by id), and a member's tier, caps and tasks move with
each event, so a month of events earns the same whether sent one by one or in batches.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.db import is_postgres
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.kit.money import Asset
from zanloop.ledger import service as ledger
from zanloop.loyalty import domain, lots_repository, postings, repository
from zanloop.loyalty.domain import (
    ISSUER,
    EventStatus,
    LotStatus,
    Settings,
    available_owner,
    pending_owner,
)
from zanloop.loyalty.tables import LoyaltyProgramme
from zanloop.quotas.service import Ask, Tally
from zanloop.rules.compiler import RuleSet
from zanloop.rules.domain import Facts, Rule, RuleDocument, local_day

# Clocks differ: an event may claim to be this far in the future.
FUTURE_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class Incoming:
    """One event as sent (``schemas.EventIn`` after validation)."""

    event_id: str
    type: str
    user_id: str
    occurred_at: datetime
    amount_fen: int = 0
    store_id: str | None = None
    categories: tuple[str, ...] = ()
    order_id: str | None = None
    value: int = 0
    counterparty_id: str | None = None
    code: str | None = None

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.store_id is not None:
            out["store_id"] = self.store_id
        if self.categories:
            out["categories"] = list(self.categories)
        if self.value:
            out["value"] = self.value
        if self.counterparty_id is not None:
            out["counterparty_id"] = self.counterparty_id
        return out


@dataclass
class Outcome:
    event_id: str
    status: str  # applied, duplicate or rejected
    points: int = 0
    pending: bool = False
    reason: str | None = None
    tier: str | None = None


@dataclass(frozen=True)
class MemberBalance:
    user_id: str
    available: int
    pending: int
    held: int
    tier: str


@dataclass
class Result:
    outcomes: list[Outcome]
    balances: dict[str, MemberBalance]


# The compiled programme ----------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    id: str
    document: domain.StreakTask | domain.AchievementTask | domain.CountTask


@dataclass(frozen=True)
class Compiled:
    version: int
    settings: Settings
    rules: RuleSet
    tasks: tuple[Task, ...]
    secret: str
    # Keys of rules with caps or budgets, and each multiplying rule's factor.
    limited: frozenset[str]
    factors: dict[str, Decimal]


_compiled: dict[str, Compiled] = {}
_lock = threading.Lock()


def compiled(session: Session, programme: LoyaltyProgramme) -> Compiled:
    """The programme's active rules and tasks, compiled once per version of them."""
    cached = _compiled.get(programme.tenant_id)
    if cached is not None and cached.version == programme.rules_version:
        return cached
    from pydantic import TypeAdapter

    task_adapter: TypeAdapter[Any] = TypeAdapter(domain.TaskDocument)
    active = domain.RuleStatus.ACTIVE.value
    rules = RuleSet(
        Rule(r.id, RuleDocument.model_validate(r.document))
        for r in repository.list_rules(session, programme.tenant_id, status=active)
    )
    tasks = tuple(
        Task(t.id, task_adapter.validate_python(t.document))
        for t in repository.list_tasks(session, programme.tenant_id, status=active)
    )
    built = Compiled(
        programme.rules_version,
        Settings.model_validate(programme.settings),
        rules,
        tasks,
        programme.receipt_secret,
        frozenset(r.key for r in rules.rules if _limited(r)),
        {r.key: f for r in rules.rules if (f := domain.factor(r.document)) is not None},
    )
    with _lock:
        _compiled[programme.tenant_id] = built
    return built


# Caps and budgets ----------------------------------------------------------------------------


def _limited(rule: Rule) -> bool:
    doc = rule.document
    return (
        doc.caps.per_user_per_day is not None
        or doc.caps.per_user_total is not None
        or doc.budget.max_rewards is not None
        or doc.budget.max_cost_fen is not None
    )


def _asks(rule: Rule, user_id: str, at: datetime, points: int, value_fen: Decimal) -> list[Ask]:
    """The limits an event at ``at`` takes of ``rule``: a day is a local day in the rule's own
    time zone."""
    doc = rule.document
    asks: list[Ask] = []
    if doc.caps.per_user_per_day is not None:
        day = local_day(at, doc.timezone)
        asks.append(Ask("loyalty.day", f"{rule.key}:{user_id}:{day}", 1, doc.caps.per_user_per_day))
    if doc.caps.per_user_total is not None:
        asks.append(Ask("loyalty.user", f"{rule.key}:{user_id}", 1, doc.caps.per_user_total))
    if doc.budget.max_rewards is not None:
        asks.append(Ask("loyalty.rewards", rule.key, 1, doc.budget.max_rewards))
    if doc.budget.max_cost_fen is not None:
        cost = int((points * value_fen).to_integral_value(ROUND_CEILING))
        asks.append(Ask("loyalty.cost", rule.key, cost, doc.budget.max_cost_fen))
    return asks


def _counter_keys(rule: Rule, user_id: str, at: datetime) -> list[tuple[str, str]]:
    return [(a.scope, a.key) for a in _asks(rule, user_id, at, 0, Decimal(0))]


# The batch -----------------------------------------------------------------------------------


@dataclass
class _Member:
    row: repository.MemberState
    qualifying: int


@dataclass
class _Writes:
    tenant_id: str
    now: datetime
    events: list[dict[str, Any]] = field(default_factory=list)
    lots: list[dict[str, Any]] = field(default_factory=list)
    tier_changes: list[dict[str, Any]] = field(default_factory=list)
    # Lot index -> owner it credits, to fill in the transfer id once transfers are cut.
    credits: list[tuple[int, str]] = field(default_factory=list)
    settle: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lapsed: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def ingest(
    session: Session,
    programme: LoyaltyProgramme,
    incoming: Sequence[Incoming],
    now: datetime | None = None,
) -> Result:
    now = now or utcnow()
    tenant_id = programme.tenant_id
    program = compiled(session, programme)
    settings = program.settings
    tz = settings.zone()

    # Receipt scans are one-time: the code, not the sender's id, names the event.
    keyed: list[tuple[str, Incoming, str | None]] = []
    for e in incoming:
        key, refusal = e.event_id, None
        if e.type == domain.RECEIPT_TRIGGER:
            receipt = domain.read_receipt(program.secret, e.code or "")
            if receipt is None:
                refusal = "the receipt code is not valid"
            else:
                key = f"receipt:{receipt.nonce}"
                e = replace(
                    e, amount_fen=receipt.amount_fen, store_id=receipt.store_id, order_id=None
                )
        keyed.append((key, e, refusal))

    seen = repository.existing_events(session, tenant_id, {k for k, _, _ in keyed})
    outcomes: dict[int, Outcome] = {}
    fresh: list[tuple[int, str, Incoming, str | None]] = []
    # Each key's first place in the batch: a second copy answers as the first does.
    batch_keys: dict[str, int] = {}
    copies: list[tuple[int, int]] = []
    for index, (key, e, refusal) in enumerate(keyed):
        stored = seen.get(key)
        if stored is not None:
            outcomes[index] = _replayed(e, stored)
            continue
        if key in batch_keys:
            copies.append((index, batch_keys[key]))
            continue
        batch_keys[key] = index
        if refusal is None:
            refusal = _too_old_or_new(e, settings, now)
        fresh.append((index, key, e, refusal))
    fresh.sort(key=lambda f: (f[2].occurred_at, f[1]))

    users = {e.user_id for _, _, e, r in fresh} | {
        e.counterparty_id for _, _, e, r in fresh if e.counterparty_id and r is None
    }
    members = _members(session, tenant_id, settings, users, now)

    # Counters every candidate rule may touch, locked up front.
    keys: list[tuple[str, str]] = []
    for _, _, e, refusal in fresh:
        if refusal is None:
            for rule in program.rules.of_trigger(e.type):
                if rule.key in program.limited:
                    keys.extend(_counter_keys(rule, e.user_id, e.occurred_at))
    tally = Tally(session, tenant_id, keys)
    pairs = {
        (t.id, e.user_id)
        for _, _, e, refusal in fresh
        if refusal is None
        for t in program.tasks
        if domain.task_mark(t.document, e.type, e.occurred_at, tz) is not None
    }
    progress = repository.task_tracks(session, tenant_id, pairs)

    writes = _Writes(tenant_id, now)
    value_fen = settings.point_value_fen
    window = timedelta(days=settings.refund_window_days)
    for index, key, e, refusal in fresh:
        row: dict[str, Any] = {
            "tenant_id": tenant_id,
            "event_id": key,
            "type": e.type,
            "user_id": e.user_id,
            "occurred_at": e.occurred_at,
            "amount_fen": e.amount_fen,
            "order_id": e.order_id,
            "points": 0,
            "status": EventStatus.APPLIED.value,
            "reason": None,
            "data": e.data() if key == e.event_id else {**e.data(), "sent_as": e.event_id},
            "created_at": now,
            "reversed_at": None,
        }
        writes.events.append(row)
        if refusal is not None:
            row["status"], row["reason"] = EventStatus.REJECTED.value, refusal
            outcomes[index] = Outcome(e.event_id, "rejected", reason=refusal)
            continue
        member = members[e.user_id]
        local = domain.local_date(e.occurred_at, tz)
        facts = Facts(
            e.type,
            e.occurred_at,
            amount_fen=e.amount_fen,
            store_id=e.store_id,
            categories=frozenset(e.categories),
            tier=member.row.tier,
            birthday=domain.is_birthday(member.row.birthday, local),
            value=e.value,
        )
        granted, extras, other = _earn(
            program, tally, facts, e.user_id, settings.multiplier(member.row.tier)
        )
        taken = [
            tally.take(a)
            for rule, points in (*granted.items(), *extras.items())
            if rule in program.limited
            for a in _asks(program.rules.by_key(rule), e.user_id, e.occurred_at, points, value_fen)
        ]
        points = sum(granted.values())
        pending = bool(e.order_id) and e.occurred_at + window > now
        available_at = e.occurred_at + window if e.order_id else e.occurred_at
        if points:
            detail: dict[str, Any] = {"rules": granted, "taken": [t.to_json() for t in taken]}
            if extras:
                detail["multiplied"] = extras
            _lot(
                writes,
                members,
                settings,
                e.user_id,
                f"event:{key}",
                points,
                pending,
                e.occurred_at,
                available_at,
                detail,
            )
        elif taken:
            tally.give_back(taken)  # a multiplier alone on nothing earns nothing
        counterparty = sum(other.values())
        if counterparty and e.counterparty_id and e.counterparty_id != e.user_id:
            _lot(
                writes,
                members,
                settings,
                e.counterparty_id,
                f"event:{key}:counterparty",
                counterparty,
                False,
                e.occurred_at,
                e.occurred_at,
                {"rules": other},
            )
            _qualify(writes, members[e.counterparty_id], settings, counterparty, e.occurred_at)
        row["points"] = points
        spent = e.amount_fen if e.type == domain.PAYMENT_TRIGGER else 0
        held = available_at if e.order_id else None
        earned = points + _tasks(writes, members, settings, program, progress, key, e, held, now)
        # The tier moves with each event, so batches earn what single events would.
        _qualify(
            writes,
            member,
            settings,
            earned if settings.tier_basis == "points" else spent,
            e.occurred_at,
        )
        outcomes[index] = Outcome(e.event_id, "applied", points, pending, tier=member.row.tier)

    _write(session, tenant_id, writes, members, progress, tally, now)
    for index, first in copies:
        answer = outcomes[first]
        outcomes[index] = (
            answer
            if answer.status == "rejected"
            else Outcome(
                keyed[index][1].event_id,
                "duplicate",
                answer.points,
                answer.pending,
                reason="sent twice in this batch",
                tier=answer.tier,
            )
        )
    tiers = {u: m.row.tier for u, m in members.items()}
    named = {e.user_id for _, e, _ in keyed} | {e.counterparty_id for _, e, _ in keyed}
    others = {u for u in named if u is not None} - tiers.keys()
    if others:  # members whose events were all replays: their balance is still the answer
        tiers.update(
            (u, m.tier) for u, m in repository.member_states(session, tenant_id, others).items()
        )
    balances = member_balances(session, tenant_id, tiers)
    return Result([outcomes[i] for i in range(len(keyed))], balances)


def _earn(
    program: Compiled, tally: Tally, facts: Facts, user_id: str, tier: Decimal
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """What an event earns under the rules it matches whose caps are not reached: points per
    base rule, extra points per multiplier rule, and what a counterparty earns per rule."""
    value_fen = program.settings.point_value_fen
    base: dict[str, int] = {}
    other: dict[str, int] = {}
    multipliers: dict[str, Decimal] = {}
    matched: dict[str, Rule] = {}
    for rule in program.rules.match(facts):
        key = rule.key
        if key in program.limited and not all(
            tally.fits(a) for a in _asks(rule, user_id, facts.at, 0, value_fen)
        ):
            continue  # a cap reached (budgets are checked with the points, in price)
        matched[key] = rule
        f = program.factors.get(key)
        if f is not None:
            multipliers[key] = f
        own, theirs = domain.base_points(rule.document, facts.amount_fen)
        if own or theirs:
            base[key] = own
            other[key] = theirs

    def fits(rule_key: str, points: int) -> bool:
        if rule_key not in program.limited:
            return True
        asks = _asks(matched[rule_key], user_id, facts.at, points, value_fen)
        return all(tally.fits(a) for a in asks)

    granted, extras = domain.price(base, multipliers, tier, fits)
    return granted, extras, {k: other[k] for k in granted if other[k]}


def _too_old_or_new(e: Incoming, settings: Settings, now: datetime) -> str | None:
    if e.occurred_at > now + FUTURE_SLACK:
        return "occurred_at is in the future"
    if e.occurred_at < now - timedelta(days=settings.max_event_age_days):
        return f"occurred_at is more than {settings.max_event_age_days} days ago"
    return None


def _replayed(e: Incoming, stored: Any) -> Outcome:
    if e.type == domain.RECEIPT_TRIGGER and stored.user_id != e.user_id:
        return Outcome(e.event_id, "rejected", reason="the receipt code was already used")
    return Outcome(
        e.event_id,
        "duplicate",
        points=int(stored.points),
        reason=stored.reason,
    )


def _members(
    session: Session, tenant_id: str, settings: Settings, users: set[str], now: datetime
) -> dict[str, _Member]:
    first = settings.first_tier
    postgres = is_postgres(session)
    # SQLite has one writer at a time: read the members, open only the new ones. PostgreSQL:
    # open all if missing, then lock all in one ordered pass (see quotas.repository.lock_many).
    rows = {} if postgres else repository.member_states(session, tenant_id, users)
    missing = sorted(users - rows.keys())
    if missing:
        repository.ensure_members(
            session,
            [
                {
                    "tenant_id": tenant_id,
                    "user_id": u,
                    "tier": first,
                    "base_tier": first,
                    "birthday": None,
                    "owed_points": 0,
                    "tier_changed_at": now,
                    "created_at": now,
                }
                for u in missing
            ],
        )
    if postgres or missing:
        rows.update(repository.member_states(session, tenant_id, users if postgres else missing))
    since = now - timedelta(days=settings.tier_window_days)
    qualifying = (
        repository.qualifying_points(session, tenant_id, users, since)
        if settings.tier_basis == "points"
        else repository.qualifying_spend(session, tenant_id, users, since)
    )
    return {u: _Member(m, qualifying.get(u, 0)) for u, m in rows.items()}


def _tasks(
    writes: _Writes,
    members: dict[str, _Member],
    settings: Settings,
    program: Compiled,
    progress: dict[tuple[str, str], repository.Track],
    key: str,
    e: Incoming,
    held: datetime | None,
    now: datetime,
) -> int:
    """Count the event toward every task it serves; a completion it brings is rewarded at once,
    as of the event. Returns the points rewarded.

    A mark of an event whose points are pending (``held`` until its refund window closes)
    carries that time, and a reward is pending until every action or day it needs has an event
    past its window (``domain.settled_at``): a refund inside a window then never leaves a
    task's reward behind either."""
    rewarded = 0
    for task in program.tasks:
        mark = domain.task_mark(task.document, e.type, e.occurred_at, settings.zone())
        if mark is None:
            continue
        track = progress[(task.id, e.user_id)]
        if domain.enough_marks(task.document, track.marks.values(), mark):
            # Enough events already stand for this day or action: another changes nothing,
            # and a reversal of one of them still leaves the rest.
            continue
        if held is not None:
            mark = domain.held_mark(mark, held)
        track.marks = _bounded({**track.marks, key: mark})
        track.changed = True
        due = domain.completions(task.document, track.marks.values())
        while track.rewarded < due:
            track.rewarded += 1
            available_at = max(
                e.occurred_at, domain.settled_at(task.document, track.marks.values())
            )
            _lot(
                writes,
                members,
                settings,
                e.user_id,
                f"task:{task.id}:{track.rewarded}",
                task.document.points,
                available_at > now,
                e.occurred_at,
                available_at,
                {"task": task.id},
            )
            rewarded += task.document.points
    return rewarded


def _qualify(
    writes: _Writes, member: _Member, settings: Settings, amount: int, at: datetime
) -> None:
    member.qualifying += amount
    row = member.row
    tier = domain.tier_after_earning(settings, row.tier, member.qualifying)
    if tier != row.tier:
        writes.tier_changes.append(
            {
                "tenant_id": writes.tenant_id,
                "user_id": row.user_id,
                "from_tier": row.tier,
                "to_tier": tier,
                "reason": "earned",
                "qualifying": member.qualifying,
                "at": at,
            }
        )
        row.tier, row.tier_changed_at, row.changed = tier, at, True


def _lot(
    writes: _Writes,
    members: dict[str, _Member],
    settings: Settings,
    user_id: str,
    ref: str,
    points: int,
    pending: bool,
    earned_at: datetime,
    available_at: datetime,
    detail: dict[str, Any],
) -> None:
    member = members[user_id]
    # Owed points are paid off from available points only (pending ones may yet be refunded).
    settle = 0 if pending else min(member.row.owed_points, points)
    if settle:
        # Points clawed back that were already spent are paid off from what comes next.
        member.row.owed_points -= settle
        member.row.changed = True
        writes.settle[user_id] += settle
        detail = {**detail, "settled_owed": settle}
    expires = domain.expires_at(settings, available_at)
    # A late event's points may have expired already: they lapse at once, as the job would.
    lapsed = 0
    if not pending and expires is not None and expires <= writes.now:
        lapsed = points - settle
        writes.lapsed[user_id] += lapsed
    owner = pending_owner(user_id) if pending else available_owner(user_id)
    writes.credits.append((len(writes.lots), owner))
    writes.lots.append(
        {
            "id": new_id("lot"),
            "tenant_id": writes.tenant_id,
            "user_id": user_id,
            "ref": ref,
            "status": LotStatus.PENDING.value if pending else LotStatus.AVAILABLE.value,
            "points": points,
            "remaining": points - settle - lapsed,
            "expired": lapsed,
            "clawed": settle,
            "detail": detail,
            "earned_at": earned_at,
            "available_at": available_at,
            "expires_at": expires,
            "notified_at": None,
            "transfer_id": "",
        }
    )


def _bounded(marks: dict[str, str]) -> dict[str, str]:
    if len(marks) <= domain.MAX_TASK_MARKS:
        return marks
    keep = sorted(marks.items(), key=lambda kv: domain.mark_value(kv[1]))[-domain.MAX_TASK_MARKS :]
    return dict(keep)


def _write(
    session: Session,
    tenant_id: str,
    writes: _Writes,
    members: dict[str, _Member],
    progress: dict[tuple[str, str], repository.Track],
    tally: Tally,
    now: datetime,
) -> None:
    per_owner: dict[str, int] = defaultdict(int)
    for index, owner in writes.credits:
        per_owner[owner] += writes.lots[index]["points"]
    requests, transfer_of = postings.from_counter(
        "earn", ISSUER, per_owner, "points earned", overdraft=True
    )
    for index, owner in writes.credits:
        writes.lots[index]["transfer_id"] = transfer_of[owner]
    if writes.lapsed:
        requests += postings.from_counter(
            "expire",
            domain.EXPIRED,
            {available_owner(u): -p for u, p in writes.lapsed.items()},
            "points expired",
            overdraft=False,
        )[0]
    if writes.settle:
        requests += postings.from_counter(
            "settle",
            domain.CLAWED,
            {available_owner(u): -p for u, p in writes.settle.items()},
            "owed points paid off",
            overdraft=False,
        )[0]
    if requests:
        ledger.post_many(session, tenant_id, requests)
    for user_id, points in sorted(writes.lapsed.items()):
        events.publish(
            session,
            events.Event(
                "loyalty.points.expired", tenant_id, {"user_id": user_id, "points": points}
            ),
        )
    repository.insert_events(session, writes.events)
    lots_repository.insert_lots(session, writes.lots)
    repository.add_tier_changes(session, writes.tier_changes)
    repository.save_member_states(session, tenant_id, (m.row for m in members.values()))
    repository.save_tracks(session, tenant_id, progress.values(), now)
    tally.save()
    session.flush()


def member_balances(
    session: Session, tenant_id: str, tiers: dict[str, str]
) -> dict[str, MemberBalance]:
    """Balances as the ledger has them now (``tiers``: user -> tier): the response of the write
    that changed them, so a grant is visible in the answer that caused it."""
    owners = {available_owner(u) for u in tiers} | {pending_owner(u) for u in tiers}
    found = ledger.balances(session, tenant_id, owners, Asset.POINTS)
    out = {}
    for u, tier in tiers.items():
        avail = found[available_owner(u)]
        out[u] = MemberBalance(
            u, avail.available, found[pending_owner(u)].balance, avail.pending_out, tier
        )
    return out
