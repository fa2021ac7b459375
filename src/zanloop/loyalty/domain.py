"""The points programme's rules, pure: settings, tiers, expiry, tasks, pricing an event, and
spending lots. No I/O; ``loyalty.ingest`` and ``loyalty.service`` apply them.

Points are integers throughout. Rates and multipliers are decimals with two places, applied
with exact decimal arithmetic and rounded down once, at the end, so an event earns the same
whatever order its rules are listed in.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from zanloop.rules.domain import (
    EarnPerYuan,
    GrantPoints,
    MultiplyPoints,
    RuleDocument,
    TimeZone,
)

MAX_TASK_MARKS = 400
# Events kept per day (streaks) or action (achievements): one more than a reversal needs.
SPARE_MARKS = 3
PAYMENT_TRIGGER = "payment.succeeded"
RECEIPT_TRIGGER = "receipt.scanned"
# A refund reported as an event (at the till): it reverses what its order earned.
REFUND_TRIGGER = "payment.refunded"
ISSUER = "loyalty:issued"
# Lots of points a cancelled redemption gave back (not issuance: economics leaves them out).
RETURNED_PREFIX = "returned:"
EXPIRED = "loyalty:expired"
CLAWED = "loyalty:clawed"
REDEEMED = "loyalty:redeemed"


class LotStatus(StrEnum):
    PENDING = "PENDING"
    AVAILABLE = "AVAILABLE"
    REVERSED = "REVERSED"


class EventStatus(StrEnum):
    APPLIED = "APPLIED"
    REJECTED = "REJECTED"
    REVERSED = "REVERSED"


class RuleStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"


class RedemptionStatus(StrEnum):
    HELD = "HELD"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


def available_owner(user_id: str) -> str:
    # The same account campaigns credit: a member has one points balance.
    return f"user:{user_id}"


def pending_owner(user_id: str) -> str:
    return f"user:{user_id}:pending"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Settings ------------------------------------------------------------------------------------

Multiplier = Annotated[Decimal, Field(ge=1, le=10, max_digits=4, decimal_places=2)]


class Tier(_Strict):
    name: str = Field(min_length=1, max_length=20, pattern=r"^[a-z][a-z0-9_]*$")
    # Points earned (or fen spent) in the window that qualify for the tier.
    threshold: int = Field(ge=0, le=10**12)
    multiplier: Multiplier = Decimal(1)


def _default_tiers() -> list[Tier]:
    return [
        Tier(name="normal", threshold=0, multiplier=Decimal("1.0")),
        Tier(name="silver", threshold=2000, multiplier=Decimal("1.2")),
        Tier(name="gold", threshold=10000, multiplier=Decimal("1.5")),
    ]


class Expiry(_Strict):
    """``rolling``: a lot expires ``months`` after it becomes available, at the end of that
    local day. ``year_end``: everything earned in a year expires at the end of the next year.
    ``never``: points do not expire."""

    policy: Literal["rolling", "year_end", "never"] = "rolling"
    months: int = Field(default=12, ge=1, le=120)
    notice_days: int = Field(default=30, ge=0, le=365)


class Settings(_Strict):
    """A programme's settings, as ``PUT /v1/loyalty/programme`` takes them."""

    # L6: what one point is worth to the tenant, in fen (100 points = 1 CNY by default).
    point_value_fen: Annotated[Decimal, Field(ge=0, le=10_000, max_digits=9, decimal_places=4)] = (
        Decimal(1)
    )
    timezone: TimeZone = "Asia/Shanghai"
    # Points a payment earns stay pending this long: a refund inside it leaves nothing behind.
    refund_window_days: int = Field(default=7, ge=0, le=90)
    expiry: Expiry = Field(default_factory=Expiry)
    tiers: list[Tier] = Field(default_factory=_default_tiers, min_length=1, max_length=10)
    tier_basis: Literal["points", "spend"] = "points"
    tier_window_days: int = Field(default=365, ge=1, le=3650)
    # What a scheduled evaluation does to a member who no longer qualifies.
    downgrade: Literal["one_step", "to_qualified", "never"] = "one_step"
    # Events older than this are refused (late data must not rewrite settled months).
    max_event_age_days: int = Field(default=90, ge=1, le=3650)
    # A redemption hold not confirmed within this is cancelled and the points return.
    hold_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)

    @field_validator("tiers")
    @classmethod
    def _ladder(cls, tiers: list[Tier]) -> list[Tier]:
        if tiers[0].threshold != 0:
            raise ValueError("the first tier is where everyone starts: its threshold must be 0")
        names = [t.name for t in tiers]
        if len(set(names)) != len(names):
            raise ValueError("tier names must differ")
        for lower, upper in itertools.pairwise(tiers):
            if upper.threshold <= lower.threshold:
                raise ValueError("tier thresholds must rise from one tier to the next")
        return tiers

    def tier_index(self, name: str) -> int:
        for i, tier in enumerate(self.tiers):
            if tier.name == name:
                return i
        return 0  # a tier since removed from the ladder counts as the first

    def multiplier(self, tier: str) -> Decimal:
        return self.tiers[self.tier_index(tier)].multiplier

    @property
    def first_tier(self) -> str:
        return self.tiers[0].name

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


# Time ----------------------------------------------------------------------------------------


def local_date(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


def _end_of_day(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tz).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def expires_at(settings: Settings, available_at: datetime) -> datetime | None:
    """When points that become available at ``available_at`` expire."""
    expiry = settings.expiry
    if expiry.policy == "never":
        return None
    tz = settings.zone()
    day = local_date(available_at, tz)
    if expiry.policy == "year_end":
        return datetime.combine(date(day.year + 2, 1, 1), time(), tz).astimezone(UTC)
    return _end_of_day(_add_months(day, expiry.months), tz)


def expiry_rule(settings: Settings) -> str:
    """The expiry rule in words, returned with every balance (L4: disclosed to the user)."""
    expiry = settings.expiry
    if expiry.policy == "never":
        return "Points do not expire."
    if expiry.policy == "year_end":
        text = "Points earned in a year expire at the end of the following year"
    else:
        months = "1 month" if expiry.months == 1 else f"{expiry.months} months"
        text = f"Points expire {months} after they become available, at the end of that day"
    text += f" ({settings.timezone}). The soonest-expiring points are spent first."
    if expiry.notice_days:
        text += f" You are told {expiry.notice_days} days before points expire."
    if settings.refund_window_days:
        text += (
            f" Points from a payment stay pending for {settings.refund_window_days} days, "
            "until its refund window closes."
        )
    return text


def is_birthday(birthday: str | None, day: date) -> bool | None:
    """``birthday`` is "MM-DD"; 29 February is celebrated on 28 February in other years."""
    if birthday is None:
        return None
    month, dom = int(birthday[:2]), int(birthday[3:])
    if (month, dom) == (2, 29) and not calendar.isleap(day.year):
        dom = 28
    return (day.month, day.day) == (month, dom)


# Tiers ---------------------------------------------------------------------------------------


def qualified_tier(settings: Settings, qualifying: int) -> str:
    """The highest tier whose threshold ``qualifying`` (points or fen in the window) reaches."""
    name = settings.first_tier
    for tier in settings.tiers:
        if qualifying >= tier.threshold:
            name = tier.name
    return name


def tier_after_earning(settings: Settings, current: str, qualifying: int) -> str:
    """Earning only ever raises a tier, at once."""
    qualified = qualified_tier(settings, qualifying)
    return max(current, qualified, key=settings.tier_index)


def tier_after_refund(settings: Settings, current: str, base: str, qualifying: int) -> str:
    """A refund undoes an upgrade it caused: the member falls back to what still qualifies,
    but never below the tier the last scheduled evaluation confirmed."""
    floor = max(base, qualified_tier(settings, qualifying), key=settings.tier_index)
    return min(current, floor, key=settings.tier_index)


def tier_after_evaluation(settings: Settings, current: str, qualifying: int) -> str:
    """The scheduled re-evaluation: up to what qualifies, down as the policy says."""
    qualified = qualified_tier(settings, qualifying)
    now, then = settings.tier_index(qualified), settings.tier_index(current)
    if now >= then or settings.downgrade == "never":
        return qualified if now >= then else current
    if settings.downgrade == "one_step":
        return settings.tiers[then - 1].name
    return qualified


# Tasks ---------------------------------------------------------------------------------------


class StreakTask(_Strict):
    """Act on ``days`` distinct local days in a row (7-day check-in -> 200). ``grace_days``
    missed days in a streak do not break it; ``repeat`` starts a new streak after each."""

    type: Literal["streak"]
    trigger: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$", max_length=40)
    days: int = Field(ge=2, le=365)
    points: int = Field(gt=0, le=1_000_000)
    grace_days: int = Field(default=0, ge=0, le=7)
    repeat: bool = True


class AchievementTask(_Strict):
    """Do every one of ``actions`` (event types) at least once -> ``points``, once."""

    type: Literal["achievement"]
    actions: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")]] = Field(
        min_length=1, max_length=20
    )
    points: int = Field(gt=0, le=1_000_000)

    @field_validator("actions")
    @classmethod
    def _distinct(cls, actions: list[str]) -> list[str]:
        if len(set(actions)) != len(actions):
            raise ValueError("actions must differ")
        return actions


class CountTask(_Strict):
    """``goal`` events of ``trigger`` between ``start`` and ``end`` -> ``points``, once (a
    limited-time task: "pay three times during the festival")."""

    type: Literal["count"]
    trigger: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$", max_length=40)
    goal: int = Field(ge=1, le=10_000)
    points: int = Field(gt=0, le=1_000_000)
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> CountTask:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


TaskDocument = Annotated[StreakTask | AchievementTask | CountTask, Field(discriminator="type")]


def task_mark(
    task: StreakTask | AchievementTask | CountTask, trigger: str, at: datetime, tz: ZoneInfo
) -> str | None:
    """What an event adds to a task's marks (a local day, or the action), or None."""
    if isinstance(task, AchievementTask):
        return trigger if trigger in task.actions else None
    if trigger != task.trigger:
        return None
    if isinstance(task, CountTask):
        if (task.start is not None and at < task.start) or (
            task.end is not None and at >= task.end
        ):
            return None
        return "1"
    return local_date(at, tz).isoformat()


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def mark_value(mark: str) -> str:
    """A mark is its value (a day, an action), with "@<microseconds since the epoch>" when its
    event's points are pending until then."""
    return mark.split("@", 1)[0]


def held_mark(value: str, until: datetime) -> str:
    return f"{value}@{(until - EPOCH) // timedelta(microseconds=1)}"


def settled_at(task: StreakTask | AchievementTask | CountTask, marks: Iterable[str]) -> datetime:
    """When a completion resting on ``marks`` can no longer be undone by a refund inside a
    window: once every action (or day) it needs has an event whose refund window has closed,
    or for a count task, ``goal`` events have."""
    when: dict[str, list[int]] = {}
    for mark in marks:
        value, _, micros = mark.partition("@")
        when.setdefault(value, []).append(int(micros) if micros else 0)
    if isinstance(task, CountTask):
        times = sorted(t for ts in when.values() for t in ts)
        latest = times[task.goal - 1] if len(times) >= task.goal else (times[-1] if times else 0)
    else:
        wanted = task.actions if isinstance(task, AchievementTask) else list(when)
        latest = max((min(when[v]) for v in wanted if v in when), default=0)
    return EPOCH + timedelta(microseconds=latest)


def enough_marks(
    task: StreakTask | AchievementTask | CountTask, marks: Iterable[str], mark: str
) -> bool:
    """Whether enough events already stand for ``mark`` (a day, an action, or for a count task
    the goal) that one more changes nothing, and a reversal of one of them leaves the rest."""
    if isinstance(task, CountTask):
        return sum(1 for _ in marks) >= task.goal + SPARE_MARKS - 1
    return sum(1 for v in marks if mark_value(v) == mark) >= SPARE_MARKS


def streak_run(days: Sequence[date], goal: int, grace: int) -> tuple[int, int, date | None]:
    """(completed streaks, days in the current one, its last day) over the distinct ``days``.

    A streak grows by one for each day acted; a gap of missed days spends that much grace, and
    a gap bigger than the grace left starts a new streak. Reaching ``goal`` completes it."""
    completed = length = 0
    grace_left = grace
    last: date | None = None
    for day in sorted(set(days)):
        gap = (day - last).days - 1 if last is not None and length else None
        if gap is None or gap > grace_left:
            length, grace_left = 1, grace
        else:
            length, grace_left = length + 1, grace_left - gap
        last = day
        if length == goal:
            completed += 1
            length = 0
    return completed, length, last


def completions(task: StreakTask | AchievementTask | CountTask, marks: Iterable[str]) -> int:
    """How many rewards the marks earn: derived afresh, so removing a mark takes them back."""
    values = [mark_value(m) for m in marks]
    if isinstance(task, AchievementTask):
        return 1 if set(task.actions) <= set(values) else 0
    if isinstance(task, CountTask):
        return 1 if len(values) >= task.goal else 0
    done = streak_run([date.fromisoformat(v) for v in values], task.days, task.grace_days)[0]
    return done if task.repeat else min(done, 1)


@dataclass(frozen=True)
class TaskProgress:
    completed: int
    progress: int
    goal: int
    detail: str


def describe(
    task: StreakTask | AchievementTask | CountTask, marks: Iterable[str], today: date
) -> TaskProgress:
    """Progress as a member sees it."""
    values = [mark_value(m) for m in marks]
    done = completions(task, values)
    if isinstance(task, AchievementTask):
        have = set(values) & set(task.actions)
        missing = [a for a in task.actions if a not in have]
        detail = "complete" if not missing else f"still to do: {', '.join(missing)}"
        return TaskProgress(done, len(have), len(task.actions), detail)
    if isinstance(task, CountTask):
        count = min(len(values), task.goal)
        return TaskProgress(done, count, task.goal, f"{count} of {task.goal}")
    days = [date.fromisoformat(v) for v in values]
    _, length, last = streak_run(days, task.days, task.grace_days)
    if last is not None and (today - last).days - 1 > task.grace_days:
        length = 0  # broken: the next day acted starts a new streak
    return TaskProgress(done, length, task.days, f"{length} of {task.days} days in a row")


# Pricing an event ----------------------------------------------------------------------------


def base_points(document: RuleDocument, amount_fen: int) -> tuple[int, int]:
    """(points for the member, points for the counterparty) a base rule grants, unmultiplied."""
    own = other = 0
    for effect in document.effects:
        if isinstance(effect, EarnPerYuan):
            own += effect.points(amount_fen)
        elif isinstance(effect, GrantPoints):
            own += effect.points
            if effect.to == "both":
                other += effect.points
    return own, other


def factor(document: RuleDocument) -> Decimal | None:
    """The rule's multiplier, if it multiplies."""
    found = [e.factor for e in document.effects if isinstance(e, MultiplyPoints)]
    if not found:
        return None
    product = Decimal(1)
    for f in found:
        product *= f
    return product


def price(
    base: dict[str, int],
    multipliers: dict[str, Decimal],
    tier_multiplier: Decimal,
    fits: Callable[[str, int], bool],
) -> tuple[dict[str, int], dict[str, int]]:
    """(points per base rule after multipliers, extra points each multiplier added), keeping
    only what fits each rule's budget.

    ``fits(rule, points)`` says whether a rule may spend that many more points. A base rule is
    charged its multiplied points; a multiplier rule the extra points it adds. A multiplier that
    does not fit is left out and the rest priced again, so the answer never exceeds a budget."""
    if not multipliers and tier_multiplier == 1:  # the common case, without decimals
        return {k: p for k, p in base.items() if p > 0 and fits(k, p)}, {}
    applied = dict(multipliers)
    while True:
        total = tier_multiplier
        for f in applied.values():
            total *= f
        granted = {k: int(p * total) for k, p in base.items() if p > 0}
        granted = {k: p for k, p in granted.items() if p > 0 and fits(k, p)}
        whole = sum(base[k] for k in granted)
        extras = {k: int(whole * total) - int(whole * total / f) for k, f in applied.items()}
        refused = next((k for k, extra in extras.items() if not fits(k, extra)), None)
        if refused is None:
            return granted, extras
        del applied[refused]


# Spending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spendable:
    lot_id: str
    remaining: int
    expires_at: datetime | None
    earned_at: datetime


def allocate(lots: Sequence[Spendable], points: int) -> dict[str, int] | None:
    """Take ``points`` from the soonest-expiring lots first (never-expiring ones last; older
    first among equals); None if the lots do not hold enough."""
    far = datetime.max.replace(tzinfo=UTC)
    taken: dict[str, int] = {}
    left = points
    for lot in sorted(lots, key=lambda x: (x.expires_at or far, x.earned_at, x.lot_id)):
        if left == 0:
            break
        take = min(lot.remaining, left)
        if take > 0:
            taken[lot.lot_id] = take
            left -= take
    return taken if left == 0 else None


# Receipt codes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    nonce: str
    store_id: str
    amount_fen: int


def sign_receipt(secret: str, receipt: Receipt) -> str:
    """A one-time code for a paper receipt's QR: its payload and an HMAC, URL-safe."""
    payload = f"{receipt.nonce}|{receipt.store_id}|{receipt.amount_fen}"
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:12]
    raw = payload.encode() + b"|" + base64.urlsafe_b64encode(mac)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_receipt(secret: str, code: str) -> Receipt | None:
    """The receipt a code stands for, or None if it was not signed by this programme."""
    try:
        raw = base64.urlsafe_b64decode(code + "=" * (-len(code) % 4)).decode()
        nonce, store_id, amount, _ = raw.split("|")
        receipt = Receipt(nonce, store_id, int(amount))
    except (ValueError, UnicodeDecodeError):
        return None
    expected = sign_receipt(secret, receipt)
    return receipt if hmac.compare_digest(expected, code.rstrip("=")) else None
