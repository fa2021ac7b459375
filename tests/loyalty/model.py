"""An independent calculator of the points programme, written from docs/loyalty.md alone.

It knows nothing of the product's code: it is fed the same events, reversals, job runs,
evaluations and redemptions as the API, in the same order, and says what every member's
balances, lots, tier, tier history and task progress should then be. The acceptance tests
compare the two.

This module applies what comes in: events (the rules they match, with their caps), the task
rewards they complete, reversals, tier changes. The points themselves, as lots, holds and
debts, are model_lots.py's; the programme (settings, rules, tasks) is model_programme.py's.

Where docs/loyalty.md leaves a choice open, the choice made here is marked READING.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.loyalty.model_lots import AVAILABLE, PENDING, REVERSED, Lots, Member
from tests.loyalty.model_programme import (
    Achievement,
    Conf,
    Rule,
    Task,
    price,
    task_completions,
    task_progress,
)


@dataclass
class Event:
    event_id: str
    type: str
    user: str
    at: datetime
    amount_fen: int
    store_id: str | None
    order_id: str | None
    value: int
    counterparty: str | None
    code: str | None
    # What applying it did.
    status: str = "applied"
    points: int = 0
    pending: bool = False
    tier: str | None = None
    reason: str | None = None
    rules: tuple[str, ...] = ()  # base and multiplier rules that applied
    caps: tuple[tuple[str, date], ...] = ()  # (rule, local day) cap slots it took
    reversed: bool = False
    counts: bool = True  # whether it counts for tasks (a refund event does not)


class Model(Lots):
    """The whole model: the points (``Lots``), and the events that earn them under the
    programme's rules and tasks, their reversals, and the tiers they lead to."""

    def __init__(self, conf: Conf, rules: Sequence[Rule], tasks: Sequence[Task]) -> None:
        super().__init__(conf)
        self.rules = list(rules)
        self.tasks = list(tasks)
        self.events: dict[str, Event] = {}
        self.events_of: dict[str, list[Event]] = defaultdict(list)
        self.by_order: dict[str, list[str]] = defaultdict(list)
        self.receipts: dict[str, tuple[str, int]] = {}  # code -> store, amount
        self.receipt_users: dict[str, str] = {}
        self.day_caps: dict[tuple[str, str, date], int] = defaultdict(int)
        self.total_caps: dict[tuple[str, str], int] = defaultdict(int)
        self.budgets: dict[str, int] = defaultdict(int)

    def fork(self, users: Iterable[str]) -> Model:
        """A copy of these members' state (lots, events, tier), to try a reversal on."""
        twin = Model(self.conf, self.rules, self.tasks)
        twin.stats = copy.deepcopy(self.stats)
        for user in users:
            member = self.members.get(user)
            if member is None:
                continue
            twin.members[user] = copy.deepcopy(member)
            for lot in self.user_lots(user):
                lot_copy = copy.copy(lot)
                twin.lots.append(lot_copy)
                twin.lots_of[user].append(lot_copy)
            for ev in self.events_of.get(user, []):
                ev_copy = copy.copy(ev)
                twin.events[ev.event_id] = ev_copy
                twin.events_of[user].append(ev_copy)
        return twin

    # Configuration ---------------------------------------------------------------------------

    def receipt(self, code: str, store_id: str, amount_fen: int) -> None:
        self.receipts[code] = (store_id, amount_fen)

    # Events ----------------------------------------------------------------------------------

    def ingest(self, raw: Iterable[dict[str, Any]], now: datetime) -> list[Event]:
        """A batch (or one event): applied in (occurred_at, event_id) order. Returns the
        events in the order they were given."""
        given = list(raw)
        ordered = sorted(given, key=lambda e: (_at(e["occurred_at"]), e["event_id"]))
        outcomes: dict[str, Event] = {}
        for e in ordered:
            outcomes[e["event_id"]] = self._one(e, now)
        return [outcomes[e["event_id"]] for e in given]

    def _one(self, raw: dict[str, Any], now: datetime) -> Event:
        eid = raw["event_id"]
        if eid in self.events:
            self.stats.duplicates += 1
            first = self.events[eid]
            return Event(**{**first.__dict__, "status": "duplicate"})
        ev = Event(
            event_id=eid,
            type=raw["type"],
            user=raw["user_id"],
            at=_at(raw["occurred_at"]),
            amount_fen=raw.get("amount_fen", 0),
            store_id=raw.get("store_id"),
            order_id=raw.get("order_id"),
            value=raw.get("value", 0),
            counterparty=raw.get("counterparty_id"),
            code=raw.get("code"),
        )
        if ev.at > now + timedelta(minutes=5):
            return self._reject(ev, "future")
        if ev.at < now - timedelta(days=self.conf.max_event_age_days):
            return self._reject(ev, "too old")
        if ev.type == "receipt.scanned":
            assert ev.code is not None
            store, amount = self.receipts[ev.code]
            holder = self.receipt_users.get(ev.code)
            if holder is not None and holder != ev.user:
                return self._reject(ev, "code used by another member")
            if holder == ev.user:
                self.stats.duplicates += 1
                first = next(
                    x
                    for x in self.events.values()
                    if x.code == ev.code and x.status == "applied" and x.user == ev.user
                )
                return Event(**{**first.__dict__, "event_id": eid, "status": "duplicate"})
            self.receipt_users[ev.code] = ev.user
            ev.store_id, ev.amount_fen = store, amount
        self.events[eid] = ev
        self.events_of[ev.user].append(ev)
        member = self.member(ev.user)
        if ev.type == "payment.refunded":
            ev.counts = False
            assert ev.order_id is not None
            total = 0
            # READING: the refund event's outcome is minus the points it clawed back (the
            # docs give no points for it).
            for target in list(self.by_order[ev.order_id]):
                t = self.events[target]
                if t.user == ev.user and not t.reversed:
                    total += self.reverse(target, now)[0]
            ev.points = -total
            ev.tier = member.tier
            return ev
        if ev.order_id is not None:
            self.by_order[ev.order_id].append(eid)
        ev.tier = self._earn(ev, member, now)
        return ev

    def _reject(self, ev: Event, reason: str) -> Event:
        self.stats.rejected += 1
        ev.status = "rejected"
        ev.reason = reason
        self.events[ev.event_id] = ev
        return ev

    def _applies(self, rule: Rule, ev: Event, member: Member) -> bool:
        if not rule.matches(ev, member.birthday):
            return False
        if rule.per_user_per_day is not None:
            used = self.day_caps[(rule.id, ev.user, rule.local_day(ev.at))]
            if used >= rule.per_user_per_day:
                self.stats.capped += 1
                return False
        total = rule.per_user_total
        if total is not None and self.total_caps[(rule.id, ev.user)] >= total:
            self.stats.capped += 1
            return False
        if rule.max_rewards is not None and self.budgets[rule.id] >= rule.max_rewards:
            self.stats.budget_refused += 1
            return False
        return True

    def _earn(self, ev: Event, member: Member, now: datetime) -> str:
        matching = [r for r in self.rules if self._applies(r, ev, member)]
        base = [r for r in matching if r.is_base]
        factors = [r for r in matching if not r.is_base] if base else []
        points, both = price(base, factors, self.conf.multiplier(member.tier), ev.amount_fen)
        taken: list[tuple[str, date]] = []
        for r in base + factors:
            self.stats.applied[r.id] += 1
            self.total_caps[(r.id, ev.user)] += 1
            self.day_caps[(r.id, ev.user, r.local_day(ev.at))] += 1
            taken.append((r.id, r.local_day(ev.at)))
            self.budgets[r.id] += 1
        ev.rules = tuple(r.id for r in base + factors)
        ev.caps = tuple(taken)
        ev.points = points
        available_at = ev.at
        if ev.order_id is not None:
            available_at = ev.at + timedelta(days=self.conf.refund_window_days)
        # Points whose refund window is already over when they arrive are available at once.
        ev.pending = available_at > now
        if points:
            self._lot(
                ev.user,
                "event:receipt:*" if ev.code else f"event:{ev.event_id}",
                points,
                ev.at,
                available_at,
                ev.pending,
                now,
                event_id=ev.event_id,
            )
        if both and ev.counterparty is not None:
            self.member(ev.counterparty)
            self._lot(
                ev.counterparty,
                f"event:{ev.event_id}:counterparty",
                both,
                ev.at,
                ev.at,
                False,
                now,
                event_id=ev.event_id,
            )
        self._settle_tasks(member, ev, now)
        self._upgrade(member, ev)
        if both and ev.counterparty is not None:
            self._upgrade(self.member(ev.counterparty), ev)
        return member.tier

    def _upgrade(self, member: Member, ev: Event) -> None:
        q = self.qualifying(member.user, ev.at)
        target = self.conf.qualified(q)
        if self.conf.index(target) > self.conf.index(member.tier):
            member.history.append((member.tier, target, "earned", q))
            member.tier = target
            member.upgraded_by[target] = ev.event_id
            self.stats.upgrades_earned += 1

    # Tasks -----------------------------------------------------------------------------------

    def _counting(self, user: str) -> list[Event]:
        return [
            e
            for e in self.events_of.get(user, [])
            if e.status == "applied" and e.counts and not e.reversed
        ]

    def _settle_tasks(self, member: Member, ev: Event, now: datetime) -> int:
        """Reward new completions, claw back rewards of completions that no longer stand,
        for the tasks ``ev`` counts for. Returns the points clawed."""
        at = ev.at
        clawed = 0
        window = timedelta(days=self.conf.refund_window_days)
        for task in self.tasks:
            kinds = task.actions if isinstance(task, Achievement) else (task.trigger,)
            if ev.type not in kinds:
                continue
            completions = task_completions(task, self._counting(member.user), self.conf.zone)[0]
            rewarded = member.rewarded.get(task.id, 0)
            while rewarded < len(completions):
                groups, need = completions[rewarded]
                rewarded += 1
                # A reward is pending as long as the latest refund window among the events
                # its progress rests on. READING: an action (a day of a streak, an event of a
                # count) is secure once one of its events can no longer be refunded; the
                # reward waits until as many are secure as the task needs.
                secure = sorted(
                    min(e.at + window if e.order_id else e.at for e in group) for group in groups
                )
                available_at = max(at, secure[need - 1])
                pending = available_at > now
                self.stats.pending_rewards += pending
                self._lot(
                    member.user,
                    f"task:{task.id}:{rewarded}",
                    task.points,
                    at,
                    available_at,
                    pending,
                    now,
                    task=(task.id, rewarded),
                )
                self.stats.rewards_issued[task.id] += 1
            while rewarded > len(completions):
                lot = next(
                    x
                    for x in reversed(self.user_lots(member.user))
                    if x.task == (task.id, rewarded) and x.status != REVERSED
                )
                clawed += self._claw(lot, member)
                self.stats.rewards_clawed[task.id] += 1
                rewarded -= 1
            member.rewarded[task.id] = rewarded
        return clawed

    # Reversal --------------------------------------------------------------------------------

    def reverse(self, event_id: str, now: datetime) -> tuple[int, int]:
        """Claw back what an event earned. Returns (clawed, owed added)."""
        ev = self.events[event_id]
        if ev.reversed or ev.status != "applied":
            return 0, 0
        ev.reversed = True
        member = self.member(ev.user)
        owed_before = member.owed
        clawed = 0
        # READING: what an event earned includes its counterparty's points; they go too,
        # and the counterparty's tier falls back as the member's does.
        users = [ev.user] + ([ev.counterparty] if ev.counterparty else [])
        for user in users:
            for lot in self.user_lots(user):
                if lot.event_id != event_id or lot.status == REVERSED:
                    continue
                owner = self.member(lot.user)
                taken = self._claw(lot, owner)
                if owner is member:
                    clawed += taken
                else:
                    self._fall_back(owner, now)
        for rule_id, day in ev.caps:
            self.day_caps[(rule_id, ev.user, day)] -= 1
            self.total_caps[(rule_id, ev.user)] -= 1
            self.budgets[rule_id] -= 1
        # READING: what a reversal claws back includes the task rewards it undoes.
        clawed += self._settle_tasks(member, ev, now)
        self._fall_back(member, now)
        return clawed, member.owed - owed_before

    def _fall_back(self, member: Member, now: datetime) -> None:
        q = self.qualifying(member.user, now)
        qualified = self.conf.qualified(q)
        floor = max(self.conf.index(member.base), self.conf.index(qualified))
        if floor < self.conf.index(member.tier):
            target = self.conf.tiers[floor].name
            member.history.append((member.tier, target, "refund", q))
            member.tier = target
            self.stats.downgrades_refund += 1
        elif self.conf.index(qualified) < self.conf.index(member.tier):
            self.stats.refunds_held_by_evaluation += 1

    # Tier evaluation -------------------------------------------------------------------------

    def evaluate(self, at: datetime) -> None:
        for member in self.members.values():
            q = self.qualifying(member.user, at)
            current = self.conf.index(member.tier)
            target = self.conf.index(self.conf.qualified(q))
            if target < current:
                if self.conf.downgrade == "never":
                    target = current
                elif self.conf.downgrade == "one_step":
                    target = current - 1
            if target != current:
                new = self.conf.tiers[target].name
                member.history.append((member.tier, new, "evaluation", q))
                member.tier = new
                self.stats.evaluation_changes += 1
            member.base = member.tier

    # Views -----------------------------------------------------------------------------------

    def account(self, user: str, now: datetime) -> dict[str, Any]:
        member = self.member(user)
        lots = self.user_lots(user)
        live = [x for x in lots if x.status == AVAILABLE and x.remaining]
        pending = [x for x in lots if x.status == PENDING and x.remaining]
        next_expiry = min((x.expires_at for x in live if x.expires_at), default=None)
        q = self.qualifying(user, now)
        i = self.conf.index(member.tier)
        nxt = self.conf.tiers[i + 1] if i + 1 < len(self.conf.tiers) else None
        return {
            **self.balance(user),
            "owed": member.owed,
            "multiplier": self.conf.multiplier(member.tier),
            "pending_until": min((x.available_at for x in pending), default=None),
            "next_expiry": next_expiry,
            "next_expiry_points": sum(x.remaining for x in live if x.expires_at == next_expiry),
            "qualifying": q,
            "next_tier": nxt.name if nxt else None,
            "next_tier_at": nxt.threshold if nxt else None,
        }

    def task_views(self, user: str, today: date) -> dict[str, dict[str, int]]:
        member = self.member(user)
        out = {}
        for task in self.tasks:
            completions, progress, goal = task_progress(
                task, self._counting(user), self.conf.zone, today
            )
            out[task.id] = {
                "completed": completions,
                "rewarded": member.rewarded.get(task.id, 0),
                "progress": progress,
                "goal": goal,
            }
        return out


def _at(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(value).astimezone(UTC)
