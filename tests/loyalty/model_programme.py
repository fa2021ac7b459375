"""The programme the model (tests/loyalty/model.py) runs, written from docs/loyalty.md alone:
its settings and tiers, its earning rules (what an event must be to match one, and what the
rules it matched earn it), its tasks (what completes them), and the rules seed 003 installs.

Definitions and pure functions: the members, lots and events they act on are the model's.
Where docs/loyalty.md leaves a choice open, the choice made here is marked READING.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from tests.loyalty.model import Event


# Settings and tiers --------------------------------------------------------------------------


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


# Earning rules -------------------------------------------------------------------------------


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

    def matches(self, ev: Event, birthday: str | None) -> bool:
        """Whether ``ev`` meets the rule's trigger and conditions, for a member with this
        birthday. Its caps and budget are counted by the model, which keeps the events."""
        if self.trigger != ev.type:
            return False
        if self.amount_gte is not None and ev.amount_fen < self.amount_gte:
            return False
        if self.store_in is not None and ev.store_id not in self.store_in:
            return False
        if self.birthday and not is_birthday(birthday, self.local_day(ev.at)):
            return False
        if self.value_gte is not None and ev.value < self.value_gte:
            return False
        weekday = self.local_day(ev.at).isoweekday()
        if self.weekday_in is not None and weekday not in self.weekday_in:
            return False
        if self.date_range is not None:
            start, end = self.date_range
            if not start <= ev.at < end:
                return False
        return True


def is_birthday(birthday: str | None, day: date) -> bool:
    if birthday is None:
        return False
    month, dom = (int(x) for x in birthday.split("-"))
    if (month, dom) == (2, 29) and not calendar.isleap(day.year):
        return (day.month, day.day) == (2, 28)
    return (day.month, day.day) == (month, dom)


def price(
    base: Sequence[Rule], factors: Sequence[Rule], tier_multiplier: Decimal, amount_fen: int
) -> tuple[int, int]:
    """What an event earns from the base and multiplier rules it matched, at its member's tier
    multiplier: per base rule ``floor(base points x every factor x the tier multiplier)``; and,
    unmultiplied, the base points of the rules that reward both sides (the counterparty's)."""
    m = Decimal(1)
    for r in factors:
        assert r.factor is not None
        m *= r.factor
    points = 0
    both = 0
    for r in base:
        b = r.base_points(amount_fen)
        points += int((Decimal(b) * m * tier_multiplier).to_integral_value(ROUND_FLOOR))
        if r.to_both:
            both += b
    return points, both


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


# Tasks ---------------------------------------------------------------------------------------


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


def task_completions(
    task: Task, counting: Sequence[Event], zone: ZoneInfo
) -> tuple[list[Resting], int, date | None, int]:
    """Each standing completion with what it rests on; the progress; for a streak the last
    day of the live run and the grace it has left. ``counting``: the member's events that
    count for tasks; ``zone``: the programme's, whose days a streak counts."""
    events = sorted(counting, key=lambda e: (e.at, e.event_id))
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


def task_progress(
    task: Task, counting: Sequence[Event], zone: ZoneInfo, today: date | None
) -> tuple[int, int, int]:
    """(completions, progress, goal)."""
    completions, progress, last, grace = task_completions(task, counting, zone)
    if isinstance(task, Streak):
        # READING: a streak is alive while the days missed since its last day fit in its
        # grace; progress shows the live streak.
        if today is not None and last is not None and (today - last).days - 1 > grace:
            progress = 0
        return len(completions), progress, task.days
    if isinstance(task, Achievement):
        return len(completions), progress, len(task.actions)
    return len(completions), progress, task.goal
