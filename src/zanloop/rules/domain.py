"""The rule language: what a rule may say, and what an event looks like to it. Pure: no I/O.

A rule says *when* (a trigger, i.e. an event type, and conditions over the event, the user and
the time) and *what* (effects), with a budget and caps. It is validated on save; errors name
the field. Each condition can say itself twice: as Python source for the compiler
(``rules.compiler``, with every value in a constant, never in the text) and in words
(``check``), which the simulate and explain endpoints show. A property test holds the two to
the same answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from zanloop.kit.money import format_fen

# Events the engine knows how to build facts for; integrators may send their own ("custom.*").
KNOWN_TRIGGERS = (
    "payment.succeeded",
    "like.created",
    "share.created",
    "comment.created",
    "invite.accepted",
    "article.read",
    "video.watched",
    "video.completed",
    "store.checkin",
    "receipt.scanned",
    "payment.refunded",
)
MAX_CONDITIONS = 20
MAX_EFFECTS = 10
MAX_VALUES = 500


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Facts ---------------------------------------------------------------------------------------


class Facts:
    """What a rule may look at: the event, the user, the time. ``None`` is "not known", and a
    condition on something unknown does not hold.

    A plain class with slots rather than a dataclass: one is built per event, and its
    construction is a fifth of an event's evaluation."""

    __slots__ = (
        "_local",
        "amount_fen",
        "at",
        "birthday",
        "categories",
        "epoch",
        "first_purchase",
        "store_id",
        "tier",
        "trigger",
        "value",
    )

    def __init__(
        self,
        trigger: str,
        at: datetime,
        amount_fen: int = 0,
        store_id: str | None = None,
        categories: frozenset[str] = frozenset(),
        first_purchase: bool | None = None,
        tier: str | None = None,
        birthday: bool | None = None,
        value: int = 0,
    ) -> None:
        if at.tzinfo is None:
            raise ValueError("facts need an aware time")
        self.trigger = trigger
        self.at = at
        self.amount_fen = amount_fen
        self.store_id = store_id
        self.categories = categories
        self.first_purchase = first_purchase
        self.tier = tier
        # Whether the event falls on the member's birthday (a local day); None: not known.
        self.birthday = birthday
        # The event's own measure: seconds watched, percent read, people invited...
        self.value = value
        # Whole seconds since the epoch (floored): date bounds are whole seconds too (see
        # DateRange). int() floors every time after 1970 and is the cheaper call.
        stamp = at.timestamp()
        self.epoch = int(stamp) if stamp >= 0 else math.floor(stamp)
        self._local: dict[str, tuple[int, int]] | None = None

    def __repr__(self) -> str:
        return (
            f"Facts({self.trigger!r}, {self.at.isoformat()}, amount_fen={self.amount_fen}, "
            f"store_id={self.store_id!r}, categories={sorted(self.categories)}, "
            f"first_purchase={self.first_purchase}, tier={self.tier!r}, "
            f"birthday={self.birthday}, value={self.value})"
        )

    def local(self, tz: str) -> tuple[int, int]:
        """(minute of the day, ISO weekday 1-7) in ``tz``, computed once per zone."""
        if self._local is None:
            self._local = {}
        hit = self._local.get(tz)
        if hit is None:
            seconds = self.epoch + _offset(tz, self.epoch // 900)
            days, rest = divmod(seconds, 86400)
            # 1970-01-01 was a Thursday (ISO weekday 4).
            hit = self._local[tz] = (rest // 60, (days + 3) % 7 + 1)
        return hit


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=8192)
def _offset(tz: str, quarter: int) -> int:
    """The zone's UTC offset in seconds during one quarter of a UTC hour. Zones change offset
    on quarter-hour boundaries of UTC only (a few times a year at most), so a quarter's answer
    holds for all of it and is cached."""
    at = datetime.fromtimestamp(quarter * 900, UTC)
    offset = at.astimezone(_zone(tz)).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _known_zone(value: str) -> str:
    try:
        _zone(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


# An IANA time zone name, checked on validation.
TimeZone = Annotated[str, Field(max_length=60), AfterValidator(_known_zone)]

# Conditions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One condition's verdict on one event, in words."""

    path: str
    passed: bool
    message: str


class Emit:
    """Collects the constants a condition's source refers to (``K0``, ``K1``...)."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace

        self.zones: dict[str, int] = {}

    def const(self, value: Any) -> str:
        name = f"K{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def minute(self, tz: str) -> str:
        return f"m{self.zones.setdefault(tz, len(self.zones))}"

    def weekday(self, tz: str) -> str:
        return f"d{self.zones.setdefault(tz, len(self.zones))}"

    def prelude(self) -> list[str]:
        """Local time, once per zone the bucket's rules use, before any rule is tested: what
        ``Facts.local`` computes, inline (each event meets one bucket, so nothing to cache)."""
        lines = []
        offset = self.const(_offset)
        for tz, i in self.zones.items():
            zone = self.const(tz)
            lines.append(f"    days, rest = divmod(t + {offset}({zone}, t // 900), 86400)")
            lines.append(f"    m{i}, d{i} = rest // 60, (days + 3) % 7 + 1")
        return lines


class AmountAtLeast(_Strict):
    type: Literal["amount_gte"]
    fen: int = Field(ge=0, le=10**12)
    # Cheap tests first in the generated ``if``.
    cost: ClassVar[int] = 0

    def source(self, emit: Emit, tz: str) -> str:
        return f"a >= {emit.const(self.fen)}"

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        ok = facts.amount_fen >= self.fen
        rel = "reaches" if ok else "is below"
        return ok, f"amount {format_fen(facts.amount_fen)} {rel} {format_fen(self.fen)}"


class AmountBelow(_Strict):
    type: Literal["amount_lt"]
    fen: int = Field(gt=0, le=10**12)
    cost: ClassVar[int] = 0

    def source(self, emit: Emit, tz: str) -> str:
        return f"a < {emit.const(self.fen)}"

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        ok = facts.amount_fen < self.fen
        rel = "is below" if ok else "is not below"
        return ok, f"amount {format_fen(facts.amount_fen)} {rel} {format_fen(self.fen)}"


Value = Annotated[str, Field(min_length=1, max_length=120)]


class StoreIn(_Strict):
    type: Literal["store_in"]
    values: list[Value] = Field(min_length=1, max_length=MAX_VALUES)
    cost: ClassVar[int] = 1

    def source(self, emit: Emit, tz: str) -> str:
        # Indexed: the rule is only filed under these stores, so there is nothing left to test.
        return "True"

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        ok = facts.store_id in self.values
        store = facts.store_id or "no store"
        return ok, f"store {store} is {'' if ok else 'not '}one of {', '.join(self.values)}"


class CategoryIn(_Strict):
    type: Literal["category_in"]
    values: list[Value] = Field(min_length=1, max_length=MAX_VALUES)
    cost: ClassVar[int] = 1

    def source(self, emit: Emit, tz: str) -> str:
        return f"not {emit.const(frozenset(self.values))}.isdisjoint(cats)"

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        hit = sorted(facts.categories & set(self.values))
        if hit:
            return True, f"category {', '.join(hit)} is one of {', '.join(self.values)}"
        given = ", ".join(sorted(facts.categories)) or "none"
        return False, f"categories ({given}) are not among {', '.join(self.values)}"


def _minutes(value: str) -> int:
    parsed = time.fromisoformat(value)
    return parsed.hour * 60 + parsed.minute


class TimeOfDay(_Strict):
    """Local time in [start, end); an end before the start wraps past midnight (22:00-02:00)."""

    type: Literal["time_of_day"]
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["07:00"])
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$", examples=["11:00"])
    cost: ClassVar[int] = 2

    @model_validator(mode="after")
    def _not_empty(self) -> TimeOfDay:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self

    def bounds(self) -> tuple[int, int]:
        return _minutes(self.start), 1440 if self.end == "24:00" else _minutes(self.end)

    def source(self, emit: Emit, tz: str) -> str:
        lo, hi = self.bounds()
        m = emit.minute(tz)
        if lo < hi:
            return f"{emit.const(lo)} <= {m} < {emit.const(hi)}"
        return f"not ({emit.const(hi)} <= {m} < {emit.const(lo)})"

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        lo, hi = self.bounds()
        minute = facts.local(tz)[0]
        ok = lo <= minute < hi if lo < hi else not hi <= minute < lo
        now = f"{minute // 60:02d}:{minute % 60:02d}"
        inside = "inside" if ok else "outside"
        return ok, f"local time {now} ({tz}) is {inside} {self.start}-{self.end}"


class WeekdayIn(_Strict):
    type: Literal["weekday_in"]
    days: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        min_length=1, max_length=7, description="ISO weekdays: 1 = Monday ... 7 = Sunday."
    )
    cost: ClassVar[int] = 2

    def source(self, emit: Emit, tz: str) -> str:
        return f"{emit.weekday(tz)} in {emit.const(frozenset(self.days))}"

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        day = facts.local(tz)[1]
        ok = day in self.days
        return ok, f"weekday {day} is {'' if ok else 'not '}one of {sorted(self.days)}"


class FirstPurchase(_Strict):
    type: Literal["first_purchase"]
    value: bool = True
    cost: ClassVar[int] = 1

    def source(self, emit: Emit, tz: str) -> str:
        return f"first is {self.value}"

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        if facts.first_purchase is None:
            return False, "whether this is the user's first purchase is not known"
        ok = facts.first_purchase is self.value
        what = "the user's first purchase" if facts.first_purchase else "a repeat purchase"
        return ok, f"this is {what}"


class TierIn(_Strict):
    type: Literal["tier_in"]
    values: list[Value] = Field(min_length=1, max_length=20)
    cost: ClassVar[int] = 1

    def source(self, emit: Emit, tz: str) -> str:
        return f"tier in {emit.const(frozenset(self.values))}"

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        ok = facts.tier in self.values
        tier = facts.tier or "no tier"
        return ok, f"member tier {tier} is {'' if ok else 'not '}one of {', '.join(self.values)}"


class Birthday(_Strict):
    """The event happens on the member's birthday (L1: birthday double points)."""

    type: Literal["birthday"]
    value: bool = True
    cost: ClassVar[int] = 1

    def source(self, emit: Emit, tz: str) -> str:
        return f"bd is {self.value}"

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        if facts.birthday is None:
            return False, "the member's birthday is not known"
        ok = facts.birthday is self.value
        return ok, f"the event is {'' if facts.birthday else 'not '}on the member's birthday"


class ValueAtLeast(_Strict):
    """The event's own measure reaches a minimum (watched at least 30 seconds)."""

    type: Literal["value_gte"]
    value: int = Field(ge=0, le=10**9)
    cost: ClassVar[int] = 0

    def source(self, emit: Emit, tz: str) -> str:
        return f"v >= {emit.const(self.value)}"

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        ok = facts.value >= self.value
        rel = "reaches" if ok else "is below"
        return ok, f"value {facts.value} {rel} {self.value}"


class DateRange(_Strict):
    type: Literal["date_range"]
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    # Last: a live campaign's dates nearly always hold, so they rarely decide anything.
    cost: ClassVar[int] = 3

    @field_validator("start", "end")
    @classmethod
    def _whole_seconds(cls, value: datetime | None) -> datetime | None:
        # Bounds in whole seconds compare exactly with an event's whole second, and as
        # integers, which CPython compares fastest.
        return value.replace(microsecond=0) if value is not None else None

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.start is None and self.end is None:
            raise ValueError("give a start, an end, or both")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")
        return self

    def source(self, emit: Emit, tz: str) -> str:
        parts = []
        if self.start is not None:
            parts.append(f"t >= {emit.const(int(self.start.timestamp()))}")
        if self.end is not None:
            parts.append(f"t < {emit.const(int(self.end.timestamp()))}")
        return " and ".join(parts)

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        t = facts.epoch
        if self.start is not None and t < int(self.start.timestamp()):
            return False, f"{facts.at.isoformat()} is before {self.start.isoformat()}"
        if self.end is not None and t >= int(self.end.timestamp()):
            return False, f"{facts.at.isoformat()} is at or after {self.end.isoformat()}"
        return True, f"{facts.at.isoformat()} is within the date range"


Condition = Annotated[
    AmountAtLeast
    | AmountBelow
    | StoreIn
    | CategoryIn
    | TimeOfDay
    | WeekdayIn
    | FirstPurchase
    | TierIn
    | Birthday
    | ValueAtLeast
    | DateRange,
    Field(discriminator="type"),
]

# Effects -------------------------------------------------------------------------------------


class PromptLike(_Strict):
    """Ask the buyer to like the purchase (C3): the merchant's template."""

    type: Literal["prompt_like"]
    store: str = Field(default="", max_length=120)
    image_url: str = Field(default="", max_length=500, pattern=r"^(https?://\S+)?$")
    slogan: str = Field(default="", max_length=200)
    expires_hours: int = Field(default=72, ge=1, le=720)


class IssueCoupon(_Strict):
    type: Literal["issue_coupon"]
    template_id: str = Field(min_length=1, max_length=40)


class GrantPoints(_Strict):
    type: Literal["grant_points"]
    points: int = Field(gt=0, le=1_000_000)
    # "both": the event's counterparty earns the same (an invitation rewards both sides).
    to: Literal["user", "both"] = "user"


Factor = Annotated[Decimal, Field(gt=0, le=100, max_digits=6, decimal_places=2)]


class EarnPerYuan(_Strict):
    """Points for each whole yuan paid (L1: 1-2 points a yuan), rounded down."""

    type: Literal["earn_per_yuan"]
    points_per_yuan: Factor

    def points(self, amount_fen: int) -> int:
        return int(amount_fen * self.points_per_yuan) // 100


class MultiplyPoints(_Strict):
    """Multiply what the event's other rules earn (partner merchants, birthdays, events: x2)."""

    type: Literal["multiply_points"]
    factor: Factor = Field(ge=1)


Reward = Annotated[IssueCoupon | GrantPoints, Field(discriminator="type")]


class ProgressTier(_Strict):
    """Count the event toward a goal ("5 likes -> free coffee", "3 likes -> silver"); reaching
    it grants ``reward`` and/or the ``tier``, then starts again if ``repeat``."""

    type: Literal["progress_tier"]
    goal: int = Field(ge=1, le=10_000)
    tier: str | None = Field(default=None, min_length=1, max_length=20)
    reward: list[Reward] = Field(default_factory=list, max_length=MAX_EFFECTS)
    repeat: bool = True

    @model_validator(mode="after")
    def _grants_something(self) -> ProgressTier:
        if self.tier is None and not self.reward:
            raise ValueError("give a tier, a reward, or both for reaching the goal")
        return self


Effect = Annotated[
    PromptLike | IssueCoupon | GrantPoints | ProgressTier | EarnPerYuan | MultiplyPoints,
    Field(discriminator="type"),
]
# Effects only a points programme gives meaning to (campaigns refuse them).
LOYALTY_EFFECTS = ("earn_per_yuan", "multiply_points")

# The rule ------------------------------------------------------------------------------------


class Budget(_Strict):
    max_rewards: int | None = Field(default=None, ge=1, le=10**9)
    max_cost_fen: int | None = Field(default=None, ge=1, le=10**12)
    # What one point costs the merchant, for max_cost_fen (L6: the value of a point).
    point_cost_fen: int = Field(default=1, ge=0, le=10_000)


class Caps(_Strict):
    per_user_per_day: int | None = Field(default=None, ge=1, le=10_000)
    per_user_total: int | None = Field(default=None, ge=1, le=10**6)


class RuleDocument(_Strict):
    """A campaign's rule, as merchants write it (JSON)."""

    trigger: str = Field(
        min_length=1,
        max_length=40,
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$",
        examples=list(KNOWN_TRIGGERS),
    )
    conditions: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)
    effects: list[Effect] = Field(min_length=1, max_length=MAX_EFFECTS)
    budget: Budget = Field(default_factory=Budget)
    caps: Caps = Field(default_factory=Caps)
    timezone: TimeZone = "Asia/Shanghai"

    @model_validator(mode="after")
    def _coherent(self) -> RuleDocument:
        kinds = [c.type for c in self.conditions]
        for kind in ("store_in", "amount_gte", "amount_lt", "date_range"):
            if kinds.count(kind) > 1:
                raise ValueError(f"at most one {kind} condition")
        prompts = [e for e in self.effects if isinstance(e, PromptLike)]
        if prompts and self.trigger != "payment.succeeded":
            raise ValueError("prompt_like needs the payment.succeeded trigger")
        if len(prompts) > 1:
            raise ValueError("at most one prompt_like effect")
        if sum(isinstance(e, ProgressTier) for e in self.effects) > 1:
            raise ValueError("at most one progress_tier effect")
        return self

    @property
    def stores(self) -> tuple[str, ...] | None:
        for c in self.conditions:
            if isinstance(c, StoreIn):
                return tuple(c.values)
        return None

    @property
    def amount_threshold_fen(self) -> int | None:
        for c in self.conditions:
            if isinstance(c, AmountAtLeast):
                return c.fen
        return None


# Compiling -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A rule ready to run: ``key`` is the caller's (a campaign id), ``document`` its rule."""

    key: str
    document: RuleDocument
    payload: Any = None


def explain(rule: Rule, facts: Facts) -> list[Check]:
    """Every condition of ``rule`` judged on ``facts``, in the rule's order, with words."""
    doc = rule.document
    checks = []
    for i, condition in enumerate(doc.conditions):
        passed, message = condition.check(facts, doc.timezone)
        checks.append(Check(f"conditions.{i}", passed, message))
    return checks


def holds(rule: Rule, facts: Facts) -> bool:
    """The slow path of ``RuleSet.match`` for one rule (the trigger is the caller's to check)."""
    return all(check.passed for check in explain(rule, facts))


def local_day(at: datetime, tz: str) -> str:
    """The local date of ``at`` in ``tz``, the period of a per-day cap."""
    return at.astimezone(_zone(tz)).date().isoformat()
