"""The rules engine: rules are data, validated on save, compiled once into Python, indexed by
trigger and store. Pure: no I/O.

A rule says *when* (a trigger, i.e. an event type, and conditions over the event, the user and
the time) and *what* (effects). Its conditions are written to Python source with every value
held in a constant of the compiled namespace, never pasted into the text, so a rule can only
ever compare; ``compile`` runs once per rule set. A rule set is indexed by trigger, then by
store: an event only meets the rules of its trigger that admit its store, and each candidate is
one ``if`` over local variables.

Each condition also knows how to explain itself (``Condition.check``): that is what the
simulate and explain endpoints use. The compiled matcher and the explanation are held to the
same answer by a property test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from zanloop.kit.money import format_fen

# Events the engine knows how to build facts for; integrators may send their own ("custom.*").
KNOWN_TRIGGERS = ("payment.succeeded", "like.created", "share.created")
MAX_CONDITIONS = 20
MAX_EFFECTS = 10
MAX_VALUES = 500


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Facts ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Facts:
    """What a rule may look at: the event, the user, the time. ``None`` is "not known", and a
    condition on something unknown does not hold."""

    trigger: str
    at: datetime
    amount_fen: int = 0
    store_id: str | None = None
    categories: frozenset[str] = frozenset()
    first_purchase: bool | None = None
    tier: str | None = None
    _local: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    epoch: int = 0

    def __post_init__(self) -> None:
        self.epoch = int(self.at.timestamp())

    def local(self, tz: str) -> tuple[int, int]:
        """(minute of the day, ISO weekday 1-7) in ``tz``, computed once per zone."""
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


# Conditions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One condition's verdict on one event, in words."""

    path: str
    passed: bool
    message: str


class _Emit:
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
        """Local time, once per zone the bucket's rules use, before any rule is tested."""
        return [f"    m{i}, d{i} = f.local({self.const(tz)})" for tz, i in self.zones.items()]


class AmountAtLeast(_Strict):
    type: Literal["amount_gte"]
    fen: int = Field(ge=0, le=10**12)
    # Cheap tests first in the generated ``if``.
    cost: ClassVar[int] = 0

    def source(self, emit: _Emit, tz: str) -> str:
        return f"a >= {emit.const(self.fen)}"

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        ok = facts.amount_fen >= self.fen
        rel = "reaches" if ok else "is below"
        return ok, f"amount {format_fen(facts.amount_fen)} {rel} {format_fen(self.fen)}"


class AmountBelow(_Strict):
    type: Literal["amount_lt"]
    fen: int = Field(gt=0, le=10**12)
    cost: ClassVar[int] = 0

    def source(self, emit: _Emit, tz: str) -> str:
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

    def source(self, emit: _Emit, tz: str) -> str:
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

    def source(self, emit: _Emit, tz: str) -> str:
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

    def source(self, emit: _Emit, tz: str) -> str:
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

    def source(self, emit: _Emit, tz: str) -> str:
        return f"{emit.weekday(tz)} in {emit.const(frozenset(self.days))}"

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        day = facts.local(tz)[1]
        ok = day in self.days
        return ok, f"weekday {day} is {'' if ok else 'not '}one of {sorted(self.days)}"


class FirstPurchase(_Strict):
    type: Literal["first_purchase"]
    value: bool = True
    cost: ClassVar[int] = 1

    def source(self, emit: _Emit, tz: str) -> str:
        return f"f.first_purchase is {self.value}"

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

    def source(self, emit: _Emit, tz: str) -> str:
        return f"f.tier in {emit.const(frozenset(self.values))}"

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        ok = facts.tier in self.values
        tier = facts.tier or "no tier"
        return ok, f"member tier {tier} is {'' if ok else 'not '}one of {', '.join(self.values)}"


class DateRange(_Strict):
    type: Literal["date_range"]
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    cost: ClassVar[int] = 0

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.start is None and self.end is None:
            raise ValueError("give a start, an end, or both")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")
        return self

    def source(self, emit: _Emit, tz: str) -> str:
        parts = []
        if self.start is not None:
            parts.append(f"t >= {emit.const(self.start.timestamp())}")
        if self.end is not None:
            parts.append(f"t < {emit.const(self.end.timestamp())}")
        return " and ".join(parts)

    def check(self, facts: Facts, tz: str) -> tuple[bool, str]:
        t = facts.epoch
        if self.start is not None and t < self.start.timestamp():
            return False, f"{facts.at.isoformat()} is before {self.start.isoformat()}"
        if self.end is not None and t >= self.end.timestamp():
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
    PromptLike | IssueCoupon | GrantPoints | ProgressTier, Field(discriminator="type")
]

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
    timezone: str = Field(default="Asia/Shanghai", max_length=60)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            _zone(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

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


Matcher = Callable[[Facts], list[Rule]]


def _no_match(facts: Facts) -> list[Rule]:
    return []


def _bucket(rules: Sequence[Rule]) -> Matcher:
    """One generated function testing each rule of a bucket in turn, cheapest tests first."""
    if not rules:
        return _no_match
    namespace: dict[str, Any] = {}
    emit = _Emit(namespace)
    lines = []
    for rule in rules:
        doc = rule.document
        tests = [
            c.source(emit, doc.timezone)
            for c in sorted(doc.conditions, key=lambda c: c.cost)
            if not isinstance(c, StoreIn)
        ]
        target = emit.const(rule)
        if tests:
            lines.append(f"    if {' and '.join(f'({t})' for t in tests)}:")
            lines.append(f"        out.append({target})")
        else:
            lines.append(f"    out.append({target})")
    head = ["def match(f):", "    a = f.amount_fen", "    t = f.epoch", "    cats = f.categories"]
    lines = [*head, *emit.prelude(), "    out = []", *lines, "    return out"]
    code = compile("\n".join(lines), "<zanloop.rules>", "exec")
    # The source is ours; every rule value lives in a constant of the namespace.
    exec(code, namespace)
    matcher: Matcher = namespace["match"]
    return matcher


@dataclass(frozen=True)
class _TriggerIndex:
    by_store: dict[str, Matcher]
    any_store: Matcher


class RuleSet:
    """Compiled rules, indexed by trigger and store. Build once per set of active rules."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        grouped: dict[str, list[Rule]] = {}
        for rule in self.rules:
            grouped.setdefault(rule.document.trigger, []).append(rule)
        self._index: dict[str, _TriggerIndex] = {}
        for trigger, members in grouped.items():
            anywhere = [r for r in members if r.document.stores is None]
            stores = {s for r in members for s in (r.document.stores or ())}
            by_store = {
                store: _bucket(
                    # The order of the rule set is kept, so every path reports rules alike.
                    [r for r in members if r.document.stores is None or store in r.document.stores]
                )
                for store in stores
            }
            self._index[trigger] = _TriggerIndex(by_store, _bucket(anywhere))

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, facts: Facts) -> list[Rule]:
        """The rules whose conditions all hold for ``facts``."""
        index = self._index.get(facts.trigger)
        if index is None:
            return []
        store = facts.store_id
        if store is not None:
            return index.by_store.get(store, index.any_store)(facts)
        return index.any_store(facts)

    def of_trigger(self, trigger: str) -> list[Rule]:
        return [r for r in self.rules if r.document.trigger == trigger]


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


def utc(at: datetime) -> datetime:
    return at.astimezone(UTC)
