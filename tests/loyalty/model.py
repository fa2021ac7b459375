"""An independent calculator of the points programme, written from docs/loyalty.md alone.

It knows nothing of the product's code: it is fed the same events, reversals, job runs,
evaluations and redemptions as the API, in the same order, and says what every member's
balances, lots, tier, tier history and task progress should then be. The acceptance tests
compare the two.

Where docs/loyalty.md leaves a choice open, the choice made here is marked READING.
"""

from __future__ import annotations

import calendar
import copy
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

PENDING = "PENDING"
AVAILABLE = "AVAILABLE"
REVERSED = "REVERSED"


# Programme -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    name: str
    threshold: int
    multiplier: Decimal


@dataclass(frozen=True)
class Conf:
    """The programme's settings (PUT /v1/loyalty/programme)."""

    timezone: str
    refund_window_days: int
    expiry_months: int
    tiers: tuple[Tier, ...]
    tier_window_days: int = 365
    downgrade: str = "one_step"
    max_event_age_days: int = 90

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def index(self, tier: str) -> int:
        return [t.name for t in self.tiers].index(tier)

    def multiplier(self, tier: str) -> Decimal:
        return self.tiers[self.index(tier)].multiplier

    def qualified(self, qualifying: int) -> str:
        best = self.tiers[0].name
        for t in self.tiers:
            if qualifying >= t.threshold:
                best = t.name
        return best


@dataclass(frozen=True)
class Rule:
    """An earning rule, with only the parts of the rule language the tests use."""

    id: str
    trigger: str
    timezone: str = "Asia/Shanghai"
    # Conditions.
    amount_gte: int | None = None
    store_in: tuple[str, ...] | None = None
    birthday: bool = False
    value_gte: int | None = None
    weekday_in: tuple[int, ...] | None = None
    date_range: tuple[datetime, datetime] | None = None
    # Effects: exactly one of these.
    points_per_yuan: Decimal | None = None
    grant: int | None = None
    to_both: bool = False
    factor: Decimal | None = None
    # Caps and budget.
    per_user_per_day: int | None = None
    per_user_total: int | None = None
    max_rewards: int | None = None

    @property
    def is_base(self) -> bool:
        return self.factor is None

    def base_points(self, amount_fen: int) -> int:
        if self.points_per_yuan is not None:
            # floor(amount_fen x rate / 100)
            return int((amount_fen * self.points_per_yuan / 100).to_integral_value(ROUND_FLOOR))
        assert self.grant is not None
        return self.grant

    def local_day(self, at: datetime) -> date:
        return at.astimezone(ZoneInfo(self.timezone)).date()


@dataclass(frozen=True)
class Streak:
    id: str
    trigger: str
    days: int
    points: int
    grace_days: int = 0
    repeat: bool = True


@dataclass(frozen=True)
class Achievement:
    id: str
    actions: tuple[str, ...]
    points: int


@dataclass(frozen=True)
class Count:
    id: str
    trigger: str
    goal: int
    points: int
    start: datetime | None = None
    end: datetime | None = None


Task = Streak | Achievement | Count
# What a completion rests on: groups of events (an action's, a day's, or one event of a count)
# and how many of the groups it needs.
Resting = tuple[list[list["Event"]], int]


# State ---------------------------------------------------------------------------------------


@dataclass
class Lot:
    seq: int
    user: str
    ref: str
    points: int
    remaining: int
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None
    status: str
    expired: int = 0
    clawed: int = 0
    event_id: str | None = None
    task: tuple[str, int] | None = None

    def view(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "status": self.status,
            "points": self.points,
            "remaining": self.remaining,
            "expired": self.expired,
            "clawed": self.clawed,
            "earned_at": self.earned_at,
            "available_at": self.available_at,
            "expires_at": self.expires_at,
        }


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


@dataclass
class Member:
    user: str
    tier: str
    base: str  # the tier the last scheduled evaluation confirmed
    birthday: str | None = None
    owed: int = 0
    held: int = 0
    history: list[tuple[str, str, str, int]] = field(default_factory=list)
    rewarded: dict[str, int] = field(default_factory=dict)
    # The event that earned each tier it climbed to.
    upgraded_by: dict[str, str] = field(default_factory=dict)


@dataclass
class Hold:
    user: str
    points: int
    allocations: dict[int, int]
    expires_at: datetime
    status: str = "HELD"


@dataclass
class Stats:
    """What happened, for the test to check that the month covered what it claims."""

    upgrades_earned: int = 0
    downgrades_refund: int = 0
    refunds_held_by_evaluation: int = 0
    evaluation_changes: int = 0
    rewards_clawed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rewards_issued: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    capped: int = 0
    budget_refused: int = 0
    applied: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pending_clawed: int = 0
    expired_points: int = 0
    expired_at_once: int = 0
    pending_rewards: int = 0
    duplicates: int = 0
    rejected: int = 0


def end_of_local_day(day: date, zone: ZoneInfo) -> datetime:
    """The end of a local day: the first instant of the next one, in UTC."""
    nxt = day + timedelta(days=1)
    return datetime.combine(nxt, time(0), tzinfo=zone).astimezone(UTC)


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


def is_birthday(birthday: str | None, day: date) -> bool:
    if birthday is None:
        return False
    month, dom = (int(x) for x in birthday.split("-"))
    if (month, dom) == (2, 29) and not calendar.isleap(day.year):
        return (day.month, day.day) == (2, 28)
    return (day.month, day.day) == (month, dom)


class Model:
    def __init__(self, conf: Conf, rules: Sequence[Rule], tasks: Sequence[Task]) -> None:
        self.conf = conf
        self.rules = list(rules)
        self.tasks = list(tasks)
        self.members: dict[str, Member] = {}
        self.lots: list[Lot] = []
        self.lots_of: dict[str, list[Lot]] = defaultdict(list)
        self.events: dict[str, Event] = {}
        self.events_of: dict[str, list[Event]] = defaultdict(list)
        self.by_order: dict[str, list[str]] = defaultdict(list)
        self.receipts: dict[str, tuple[str, int]] = {}  # code -> store, amount
        self.receipt_users: dict[str, str] = {}
        self.day_caps: dict[tuple[str, str, date], int] = defaultdict(int)
        self.total_caps: dict[tuple[str, str], int] = defaultdict(int)
        self.budgets: dict[str, int] = defaultdict(int)
        self.holds: dict[str, Hold] = {}
        self.redeemed = 0
        self.stats = Stats()
        self._seq = itertools.count()

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

    def set_conf(self, conf: Conf) -> None:
        self.conf = conf

    def receipt(self, code: str, store_id: str, amount_fen: int) -> None:
        self.receipts[code] = (store_id, amount_fen)

    def member(self, user: str) -> Member:
        if user not in self.members:
            first = self.conf.tiers[0].name
            self.members[user] = Member(user, first, first)
        return self.members[user]

    def set_birthday(self, user: str, birthday: str) -> None:
        self.member(user).birthday = birthday

    # Lots ------------------------------------------------------------------------------------

    def expires_at(self, available_at: datetime) -> datetime:
        zone = self.conf.zone
        day = available_at.astimezone(zone).date()
        return end_of_local_day(add_months(day, self.conf.expiry_months), zone)

    def _lot(
        self,
        user: str,
        ref: str,
        points: int,
        earned_at: datetime,
        available_at: datetime,
        pending: bool,
        now: datetime,
        event_id: str | None = None,
        task: tuple[str, int] | None = None,
    ) -> Lot:
        lot = Lot(
            seq=next(self._seq),
            user=user,
            ref=ref,
            points=points,
            remaining=points,
            earned_at=earned_at,
            available_at=available_at,
            expires_at=self.expires_at(available_at),
            status=PENDING if pending else AVAILABLE,
            event_id=event_id,
            task=task,
        )
        member = self.member(user)
        if member.owed and not pending:
            # READING: what is owed is paid off from the next points earned, recorded on
            # the new lot as clawed.
            pay = min(member.owed, lot.remaining)
            lot.remaining -= pay
            lot.clawed += pay
            member.owed -= pay
        if lot.status == AVAILABLE and lot.expires_at is not None and lot.expires_at <= now:
            # A late event whose points would already have expired: granted and expired at
            # once.
            lot.expired += lot.remaining
            self.stats.expired_points += lot.remaining
            self.stats.expired_at_once += lot.remaining
            lot.remaining = 0
        self.lots.append(lot)
        self.lots_of[user].append(lot)
        return lot

    def user_lots(self, user: str) -> list[Lot]:
        return self.lots_of.get(user, [])

    def qualifying(self, user: str, at: datetime) -> int:
        # READING: points earned in the window, net of claw-backs; a reversed lot no longer
        # counts at all.
        since = at - timedelta(days=self.conf.tier_window_days)
        return sum(
            lot.points - lot.clawed
            for lot in self.user_lots(user)
            if lot.status != REVERSED and since < lot.earned_at <= at
        )

    def _claw(self, lot: Lot, member: Member) -> int:
        """Claw back a lot: from itself, then the member's other lots (soonest-expiring
        first), and what is left is owed. Returns the points clawed.

        READING: points of the lot that have expired are gone already: they are neither
        clawed from other lots nor owed (only spent points are)."""
        need = lot.points - lot.clawed - lot.expired
        clawed = 0
        if lot.status == PENDING:
            self.stats.pending_clawed += lot.remaining
        take = min(need, lot.remaining)
        lot.remaining -= take
        lot.clawed += take
        need -= take
        clawed += take
        lot.status = REVERSED
        if need:
            others = sorted(
                (o for o in self.user_lots(member.user) if o.status == AVAILABLE and o.remaining),
                key=lambda o: (o.expires_at, o.earned_at, o.seq),
            )
            for other in others:
                take = min(need, other.remaining)
                other.remaining -= take
                other.clawed += take
                need -= take
                clawed += take
                if not need:
                    break
        member.owed += need
        return clawed

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
        if rule.trigger != ev.type:
            return False
        if rule.amount_gte is not None and ev.amount_fen < rule.amount_gte:
            return False
        if rule.store_in is not None and ev.store_id not in rule.store_in:
            return False
        if rule.birthday and not is_birthday(member.birthday, rule.local_day(ev.at)):
            return False
        if rule.value_gte is not None and ev.value < rule.value_gte:
            return False
        weekday = rule.local_day(ev.at).isoweekday()
        if rule.weekday_in is not None and weekday not in rule.weekday_in:
            return False
        if rule.date_range is not None:
            start, end = rule.date_range
            if not start <= ev.at < end:
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
        m = Decimal(1)
        for r in factors:
            assert r.factor is not None
            m *= r.factor
        t = self.conf.multiplier(member.tier)
        points = 0
        both = 0
        for r in base:
            b = r.base_points(ev.amount_fen)
            points += int((Decimal(b) * m * t).to_integral_value(ROUND_FLOOR))
            if r.to_both:
                both += b
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

    def _completions(self, task: Task, user: str) -> tuple[list[Resting], int, date | None, int]:
        """Each standing completion with what it rests on; the progress; for a streak the last
        day of the live run and the grace it has left."""
        events = sorted(self._counting(user), key=lambda e: (e.at, e.event_id))
        if isinstance(task, Achievement):
            by_action: dict[str, list[Event]] = defaultdict(list)
            for e in events:
                if e.type in task.actions:
                    by_action[e.type].append(e)
            done = len(by_action)
            complete = done == len(task.actions)
            return ([(list(by_action.values()), done)] if complete else []), done, None, 0
        if isinstance(task, Count):
            inside = [
                e
                for e in events
                if e.type == task.trigger
                and (task.start is None or e.at >= task.start)
                and (task.end is None or e.at < task.end)
            ]
            done_count = [([[e] for e in inside], task.goal)] if len(inside) >= task.goal else []
            return done_count, min(len(inside), task.goal), None, 0
        zone = self.conf.zone
        by_day: dict[date, list[Event]] = defaultdict(list)
        for e in events:
            if e.type == task.trigger:
                by_day[e.at.astimezone(zone).date()].append(e)
        completions: list[Resting] = []
        run: list[date] = []
        grace = task.grace_days
        prev: date | None = None
        for d in sorted(by_day):
            if not run or prev is None:
                run, grace = [d], task.grace_days
            else:
                gap = (d - prev).days - 1
                if gap <= grace:
                    run.append(d)
                    grace -= gap
                else:
                    run, grace = [d], task.grace_days
            prev = d
            if len(run) == task.days:
                completions.append(([by_day[x] for x in run], task.days))
                run = []
                if not task.repeat:
                    break
        return completions, len(run), prev, grace

    def _progress(self, task: Task, user: str, today: date | None) -> tuple[int, int, int]:
        """(completions, progress, goal)."""
        completions, progress, last, grace = self._completions(task, user)
        if isinstance(task, Streak):
            # READING: a streak is alive while the days missed since its last day fit in its
            # grace; progress shows the live streak.
            if today is not None and last is not None and (today - last).days - 1 > grace:
                progress = 0
            return len(completions), progress, task.days
        if isinstance(task, Achievement):
            return len(completions), progress, len(task.actions)
        return len(completions), progress, task.goal

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
            completions = self._completions(task, member.user)[0]
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

    # Jobs ------------------------------------------------------------------------------------

    def run_jobs(self, at: datetime) -> None:
        due = [x for x in self.lots if x.status == PENDING and x.available_at <= at]
        for lot in sorted(due, key=lambda x: (x.available_at, x.seq)):
            lot.status = AVAILABLE
            member = self.member(lot.user)
            if member.owed:
                # What is owed is paid off from points that become available, too.
                pay = min(member.owed, lot.remaining)
                lot.remaining -= pay
                lot.clawed += pay
                member.owed -= pay
        self._expire(at)
        for hold in self.holds.values():
            if hold.status == "HELD" and hold.expires_at <= at:
                self._release(hold, "EXPIRED")

    def _expire(self, at: datetime, user: str | None = None) -> None:
        for lot in self.lots if user is None else self.user_lots(user):
            if (
                lot.status == AVAILABLE
                and lot.remaining
                and lot.expires_at is not None
                and lot.expires_at <= at
            ):
                lot.expired += lot.remaining
                self.stats.expired_points += lot.remaining
                lot.remaining = 0

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

    # Redemption ------------------------------------------------------------------------------

    def redeem(
        self,
        rid: str,
        user: str,
        points: int,
        now: datetime,
        confirm: bool,
        expires_at: datetime | None = None,
        chosen: dict[int, int] | None = None,
    ) -> bool:
        """Hold (or spend) points, soonest-expiring lots first, among equal expiries the
        oldest. False: not enough. ``chosen`` (lot seq -> points) is how the product split
        it: taken if it keeps to that order, as lots earned at the same moment (an event and
        the task reward it completed) may go in either order."""
        self._expire(now, user)
        spendable = sorted(
            (x for x in self.user_lots(user) if x.status == AVAILABLE and x.remaining),
            key=lambda x: (x.expires_at, x.earned_at, x.seq),
        )
        if sum(x.remaining for x in spendable) < points:
            return False
        allocations: dict[int, int] = {}
        if chosen is not None:
            assert sum(chosen.values()) == points, chosen
            for lot in spendable:
                take = chosen.get(lot.seq, 0)
                assert 0 <= take <= lot.remaining, (lot, take)
                if lot.remaining - take:
                    later = [
                        x
                        for x in spendable
                        if chosen.get(x.seq)
                        and (x.expires_at, x.earned_at) > (lot.expires_at, lot.earned_at)
                    ]
                    assert not later, f"spent {later} before {lot}"
            assert set(chosen) <= {x.seq for x in spendable}, chosen
        need = points
        for lot in spendable:
            take = min(need, lot.remaining) if chosen is None else chosen.get(lot.seq, 0)
            if not take:
                continue
            lot.remaining -= take
            allocations[lot.seq] = take
            need -= take
            if not need:
                break
        hold = Hold(user, points, allocations, expires_at or now + timedelta(minutes=30))
        self.holds[rid] = hold
        if confirm:
            hold.status = "CONFIRMED"
            self.redeemed += points
        else:
            self.member(user).held += points
        return True

    def confirm(self, rid: str) -> None:
        hold = self.holds[rid]
        assert hold.status == "HELD"
        hold.status = "CONFIRMED"
        self.member(hold.user).held -= hold.points
        self.redeemed += hold.points

    def cancel(self, rid: str) -> None:
        self._release(self.holds[rid], "CANCELLED")

    def _release(self, hold: Hold, status: str) -> None:
        by_seq = {lot.seq: lot for lot in self.lots}
        for seq, points in hold.allocations.items():
            by_seq[seq].remaining += points
        self.member(hold.user).held -= hold.points
        hold.status = status

    # Views -----------------------------------------------------------------------------------

    def balance(self, user: str) -> dict[str, Any]:
        lots = self.user_lots(user)
        member = self.member(user)
        return {
            "user_id": user,
            "available": sum(x.remaining for x in lots if x.status == AVAILABLE),
            "pending": sum(x.remaining for x in lots if x.status == PENDING),
            "held": member.held,
            "tier": member.tier,
        }

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
            completions, progress, goal = self._progress(task, user, today)
            out[task.id] = {
                "completed": completions,
                "rewarded": member.rewarded.get(task.id, 0),
                "progress": progress,
                "goal": goal,
            }
        return out

    def ledger(self) -> dict[str, int]:
        """What every POINTS account should hold, zero balances left out."""
        out: dict[str, int] = defaultdict(int)
        for lot in self.lots:
            out["loyalty:issued"] -= lot.points
            out["loyalty:clawed"] += lot.clawed
            out["loyalty:expired"] += lot.expired
            if lot.status == AVAILABLE:
                out[f"user:{lot.user}"] += lot.remaining
            elif lot.status == PENDING:
                out[f"user:{lot.user}:pending"] += lot.remaining
        for member in self.members.values():
            out[f"user:{member.user}"] += member.held
        out["loyalty:redeemed"] += self.redeemed
        return {k: v for k, v in out.items() if v}


def seed_rules(
    partner_stores: Sequence[str],
    double_points: tuple[datetime, datetime] | None,
    timezone: str,
) -> list[Rule]:
    """Seed 003's earning rules, as the table in docs/loyalty.md ("The defaults") gives them."""
    one = Decimal(1)
    two = Decimal(2)
    pay = "payment.succeeded"
    rules = [
        Rule("1 point a yuan", pay, timezone, points_per_yuan=one),
        Rule("+50 for a payment of 100 CNY or more", pay, timezone, amount_gte=10000, grant=50),
        Rule("Birthday: double points", pay, timezone, birthday=True, factor=two),
        Rule("Invite a friend: 20 each", "invite.accepted", timezone, grant=20, to_both=True),
        Rule("Daily share: 5", "share.created", timezone, grant=5, per_user_per_day=1),
        Rule("Comment: 2", "comment.created", timezone, grant=2, per_user_per_day=5),
        Rule("Like: 2", "like.created", timezone, grant=2, per_user_per_day=5),
        Rule(
            "Read a whole article: 15",
            "article.read",
            timezone,
            value_gte=100,
            grant=15,
            per_user_per_day=3,
        ),
        Rule(
            "Watch 30 seconds: 10",
            "video.watched",
            timezone,
            value_gte=30,
            grant=10,
            per_user_per_day=3,
        ),
        Rule("Watch to the end: +20", "video.completed", timezone, grant=20, per_user_per_day=3),
        Rule("Store check-in: 5", "store.checkin", timezone, grant=5, per_user_per_day=1),
        Rule("Receipt QR: 1 point a yuan", "receipt.scanned", timezone, points_per_yuan=one),
    ]
    if partner_stores:
        rules.append(
            Rule(
                "Partner merchants: double points",
                pay,
                timezone,
                store_in=tuple(partner_stores),
                factor=two,
            )
        )
    if double_points is not None:
        rules.append(
            Rule(
                "Limited-time event: double points",
                pay,
                timezone,
                date_range=double_points,
                factor=two,
            )
        )
    return rules


def _at(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(value).astimezone(UTC)
