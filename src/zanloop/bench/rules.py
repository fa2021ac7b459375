"""``zanloop bench rules``: events evaluated per second by the rules engine, beside PyPI rule
libraries on the same campaigns and events.

500 active campaigns of a merchant chain (50 stores in 5 cities, 20 product categories; the
three known triggers; amount thresholds, store and category lists, meal-time windows, weekdays,
first purchase, member tiers, date ranges) are generated from a seed, validated as
``RuleDocument``s and compiled once into a ``RuleSet``. A seeded stream of events over two
weeks (payments, likes and shares at the hours people buy coffee and lunch) is then evaluated:

(1) zanloop: ``RuleSet.match(Facts(...))`` per event, a fresh ``Facts`` built for every event in
    the timed loop (its epoch worked out from the event's time), on one thread;
(2) ``rule-engine`` and (3) ``business-rules`` from PyPI: each campaign translated into the
    library's own rule form, and every campaign of the event's trigger evaluated per event
    (the libraries get the same trigger index; zanloop's store index is its own). The
    translations and adapters are in ``rules_libraries``.

Self-checks: every library returns exactly zanloop's matches (as sets), on every event
it evaluated; zanloop's compiled path agrees with its explaining path (``holds``) on a sample;
and every kind of condition both holds and fails somewhere in that sample.
"""

from __future__ import annotations

import gc
import os
import platform
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple
from zoneinfo import ZoneInfo

from zanloop.bench.report import Report, load_average, load_note, percentile
from zanloop.rules.compiler import RuleSet
from zanloop.rules.domain import Facts, Rule, RuleDocument, explain

# The campaign triggers of issue 5's mix (the points programme's triggers are not in it).
TRIGGERS = ("payment.succeeded", "like.created", "share.created")

if TYPE_CHECKING:
    from zanloop.bench.rules_libraries import Library

SEED = 20261126
ZONE = "Asia/Shanghai"
# Monday 2026-11-02 00:00 in Shanghai: the stream's first day.
T0 = datetime(2026, 11, 2, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)
TARGET_EVENTS_PER_S = 200_000
TARGET_RATIO = 20
STORES = tuple(f"store-{i:02d}" for i in range(1, 51))
CITIES = tuple(STORES[i : i + 10] for i in range(0, len(STORES), 10))
# (category, how often it is in a basket)
CATEGORIES = (
    ("coffee", 30), ("tea", 14), ("bakery", 12), ("breakfast", 9), ("sandwich", 8),
    ("salad", 4), ("noodles", 7), ("rice_bowl", 7), ("dumplings", 5), ("dessert", 8),
    ("juice", 5), ("snacks", 6), ("ice_cream", 3), ("hotpot", 2), ("bbq", 2), ("seafood", 1),
    ("beer", 2), ("wine", 1), ("merch", 1), ("gift_card", 1),
)  # fmt: skip
TIERS = (("bronze", 30), ("silver", 20), ("gold", 11), ("platinum", 4))
# Local hour of the day -> share of the events (breakfast, lunch and dinner peaks).
HOURS = (
    0.3, 0.2, 0.1, 0.05, 0.05, 0.2, 1, 4, 6, 4, 3, 6, 8, 5, 3, 3, 3, 4, 6, 5, 3, 2, 1, 0.6,
)  # fmt: skip
WINDOWS = (
    (("07:00", "10:00"), 3), (("11:00", "14:00"), 3), (("14:00", "17:00"), 2),
    (("17:00", "21:00"), 2), (("21:30", "02:00"), 1), (("06:30", "09:30"), 1),
)  # fmt: skip
WEEKDAYS = (((1, 2, 3, 4, 5), 3), ((6, 7), 3), ((3,), 1), ((5, 6, 7), 1), ((1,), 1))
TIER_SETS = ((("gold", "platinum"), 3), (("silver", "gold", "platinum"), 2), (("platinum",), 1))
THRESHOLDS = (1_500, 2_000, 2_500, 3_000, 3_800, 5_000, 6_800, 8_800, 10_000, 15_000, 20_000)


@dataclass(frozen=True)
class RulesSizes:
    campaigns: int
    events: int
    days: int
    # The untimed warm-up: zanloop matches every n-th event before it is timed.
    warmup_stride: int
    # Throughput passes over the whole stream (the median is the figure).
    passes: int
    # Events each library evaluates: every n-th of the stream, so all hours and days.
    library_events: int
    # Events whose matches are also worked out by ``holds``, the explaining path.
    explained: int


DEFAULT = RulesSizes(500, 200_000, 14, 10, 5, 2_000, 1_000)
QUICK = RulesSizes(500, 10_000, 14, 5, 1, 60, 150)


class Event(NamedTuple):
    """One event, in the field order of ``Facts``."""

    trigger: str
    at: datetime
    amount_fen: int
    store_id: str | None
    categories: frozenset[str]
    first_purchase: bool | None
    tier: str | None


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


# The campaigns -------------------------------------------------------------------------------


def _stores(rng: random.Random) -> list[str] | None:
    """15 % chain-wide, 25 % a city or part of it, 60 % one or two stores."""
    roll = rng.random()
    if roll < 0.15:
        return None
    city = CITIES[rng.randrange(len(CITIES))]
    if roll < 0.40:
        return sorted(rng.sample(city, rng.randint(3, len(city))))
    # A store manager's own promotion, now and then shared with another store of the city.
    return sorted(rng.sample(city, 1 if rng.random() < 0.75 else 2))


def _date_range(rng: random.Random) -> dict[str, Any] | None:
    """Most campaigns run between dates on whole hours; none has ended before the stream."""
    roll = rng.random()
    if roll >= 0.90:
        return None
    start = T0 + timedelta(hours=rng.randrange(-45 * 24, 10 * 24))
    end = max(
        start + timedelta(days=rng.randint(7, 60)), T0 + timedelta(hours=rng.randint(24, 336))
    )
    if roll < 0.75:
        return {"type": "date_range", "start": start.isoformat(), "end": end.isoformat()}
    if roll < 0.85:
        return {"type": "date_range", "end": end.isoformat()}
    return {"type": "date_range", "start": start.isoformat()}


def campaign_document(rng: random.Random, trigger: str) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = []
    paid = trigger == "payment.succeeded"
    stores = _stores(rng)
    if stores is not None:
        conditions.append({"type": "store_in", "values": stores})
    gte = None
    if paid and rng.random() < 0.55:
        gte = rng.choice(THRESHOLDS)
        conditions.append({"type": "amount_gte", "fen": gte})
    if paid and rng.random() < 0.08:
        below = [v for v in (1_500, 2_000, 3_000, 5_000) if gte is None or v > gte]
        if below:
            conditions.append({"type": "amount_lt", "fen": rng.choice(below)})
    if rng.random() < (0.45 if paid else 0.20):
        names = [c for c, _ in CATEGORIES]
        weights = [w for _, w in CATEGORIES]
        picked = {rng.choices(names, weights)[0] for _ in range(rng.randint(1, 4))}
        conditions.append({"type": "category_in", "values": sorted(picked)})
    if rng.random() < (0.35 if paid else 0.20):
        start, end = _pick(rng, WINDOWS)
        conditions.append({"type": "time_of_day", "start": start, "end": end})
    if rng.random() < (0.25 if paid else 0.20):
        conditions.append({"type": "weekday_in", "days": list(_pick(rng, WEEKDAYS))})
    if paid and rng.random() < 0.12:
        conditions.append({"type": "first_purchase", "value": rng.random() < 0.8})
    if rng.random() < (0.18 if paid else 0.25):
        conditions.append({"type": "tier_in", "values": list(_pick(rng, TIER_SETS))})
    if (dates := _date_range(rng)) is not None:
        conditions.append(dates)
    rng.shuffle(conditions)  # merchants write them in any order
    effects: list[dict[str, Any]]
    if paid:
        effects = [{"type": "grant_points", "points": rng.choice((10, 20, 50, 100))}]
        if rng.random() < 0.4:
            effects.append({"type": "prompt_like", "slogan": "Like this order for a treat"})
        if rng.random() < 0.3:
            effects.append({"type": "issue_coupon", "template_id": f"tpl-{rng.randrange(40)}"})
    else:
        reward = {"type": "issue_coupon", "template_id": f"tpl-{rng.randrange(40)}"}
        effects = [{"type": "progress_tier", "goal": rng.randint(3, 10), "reward": [reward]}]
    return {
        "trigger": trigger,
        "conditions": conditions,
        "effects": effects,
        "caps": {"per_user_per_day": rng.choice((1, 2, 3))},
        "timezone": ZONE,
    }


def campaigns(count: int, seed: int = SEED) -> list[Rule]:
    """65 % on payments, 20 % on likes, 15 % on shares, each validated as merchants' rules are."""
    rng = random.Random(seed)
    triggers = list(zip(TRIGGERS, (65, 20, 15), strict=True))
    return [
        Rule(f"campaign-{i:03d}", RuleDocument.model_validate(campaign_document(rng, trigger)))
        for i, trigger in enumerate(_pick(rng, triggers) for _ in range(count))
    ]


# The events ----------------------------------------------------------------------------------


def events(count: int, days: int, seed: int = SEED) -> list[Event]:
    """Payments 70 %, likes 20 %, shares 10 %, ordered by time; busier stores get more."""
    rng = random.Random(seed + 1)
    store_weights = [1 / (rank + 5) for rank in range(len(STORES))]
    names = [c for c, _ in CATEGORIES]
    weights = [w for _, w in CATEGORIES]
    triggers = list(zip(TRIGGERS, (70, 20, 10), strict=True))
    out: list[Event] = []
    for _ in range(count):
        trigger = _pick(rng, triggers)
        hour = rng.choices(range(24), HOURS)[0]
        seconds = rng.randrange(days) * 86_400 + hour * 3_600 + rng.random() * 3_600
        at = T0 + timedelta(seconds=seconds)
        store: str | None = rng.choices(STORES, store_weights)[0]
        basket = frozenset(rng.choices(names, weights, k=_pick(rng, ((1, 50), (2, 35), (3, 15)))))
        tier = _pick(rng, ((None, 35), *TIERS))
        if trigger == "payment.succeeded":
            amount = min(100_000, max(300, int(round(rng.lognormvariate(8.16, 0.7), -1))))
            first = _pick(rng, ((True, 6), (False, 88), (None, 6)))
            out.append(Event(trigger, at, amount, store, basket, first, tier))
        else:
            # A like or share of a purchase: its store and basket, now and then neither.
            if rng.random() < 0.1:
                store = None
            if rng.random() < 0.2:
                basket = frozenset()
            out.append(Event(trigger, at, 0, store, basket, None, tier))
    out.sort(key=lambda e: e.at)
    return out


def spread(length: int, count: int) -> range:
    """``count`` indices spread evenly over a sequence of ``length``: all hours and days."""
    step = max(1, length // max(1, count))
    return range(0, length, step)[:count]


# Timing --------------------------------------------------------------------------------------


def keys(matched: Iterable[str]) -> str:
    """An event's matched campaign keys in one string: what runs compare. A string, because
    the collector never tracks one, so keeping 200,000 of them costs the timed loop nothing."""
    return " ".join(matched)


@dataclass
class Timed:
    latencies_ns: list[int]
    wall_ns: int
    results: list[str]

    def __post_init__(self) -> None:
        self.latencies_ns.sort()

    @property
    def rate(self) -> float:
        return len(self.latencies_ns) / (self.wall_ns / 1e9) if self.wall_ns else 0.0

    def p(self, q: float) -> int:
        return int(percentile(self.latencies_ns, q))


@contextmanager
def _quiet_heap() -> Iterator[None]:
    """Collect, then hide what exists (the stream, the campaigns) from the collector while
    timing: gc stays on for what an evaluation allocates, but does not rescan the bench's own
    200,000 events at every full collection."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class Pass(NamedTuple):
    events_per_s: float
    cpu_ns_per_event: float


def zanloop_throughput(ruleset: RuleSet, stream: Sequence[Event], passes: int) -> list[Pass]:
    """Each pass over the whole stream: wall and CPU clocks read once per pass, a fresh
    ``Facts`` per event, built inside the loop."""
    match = ruleset.match
    clock, cpu = time.perf_counter_ns, time.process_time_ns
    out = []
    with _quiet_heap():
        for _ in range(passes):
            started, cpu_started = clock(), cpu()
            for e in stream:
                match(Facts(*e))
            wall, cpu_used = clock() - started, cpu() - cpu_started
            out.append(Pass(len(stream) / (wall / 1e9), cpu_used / len(stream)))
    return out


def zanloop_prebuilt(ruleset: RuleSet, stream: Sequence[Event]) -> float:
    """Events/s of ``match`` alone: every ``Facts`` built beforehand. The compiled buckets
    work out local time themselves on every call (they do not use the ``Facts.local`` cache),
    so a prebuilt event costs a match exactly what a fresh one does."""
    match = ruleset.match
    prebuilt = [Facts(*e) for e in stream]
    clock = time.perf_counter_ns
    with _quiet_heap():
        started = clock()
        for f in prebuilt:
            match(f)
        wall = clock() - started
    return len(prebuilt) / (wall / 1e9)


def zanloop_latency(ruleset: RuleSet, stream: Sequence[Event]) -> Timed:
    """Each event timed alone (``Facts`` built and matched) with ``perf_counter_ns``."""
    match = ruleset.match
    clock = time.perf_counter_ns
    latencies = [0] * len(stream)
    results: list[str] = []
    with _quiet_heap():
        started = clock()
        for i, e in enumerate(stream):
            t0 = clock()
            got = match(Facts(*e))
            latencies[i] = clock() - t0
            results.append(keys([r.key for r in got]))
        wall = clock() - started
    return Timed(latencies, wall, results)


def timed_calls(evaluate: Callable[[Event], list[str]], stream: Sequence[Event]) -> Timed:
    """A library's evaluation of each event, timed alone; a few untimed calls first."""
    for e in stream[:5]:
        evaluate(e)
    clock = time.perf_counter_ns
    latencies = [0] * len(stream)
    results: list[str] = []
    with _quiet_heap():
        started = clock()
        for i, e in enumerate(stream):
            t0 = clock()
            got = evaluate(e)
            latencies[i] = clock() - t0
            results.append(keys(got))
        wall = clock() - started
    return Timed(latencies, wall, results)


def clock_overhead_ns() -> int:
    """What timing an event alone adds: the median of two back-to-back clock reads."""
    clock = time.perf_counter_ns
    reads = []
    for _ in range(10_000):
        t0 = clock()
        reads.append(clock() - t0)
    return int(statistics.median(reads))


# Self-checks ---------------------------------------------------------------------------------


def agree(expected: Sequence[str], got: Sequence[str]) -> tuple[bool, str]:
    # Which campaigns match is what counts; the compiled matcher lists them in tree order.
    differ = [
        i
        for i, (a, b) in enumerate(zip(expected, got, strict=True))
        if sorted(a.split()) != sorted(b.split())
    ]
    matched = sum(len(k.split()) for k in expected)
    if not differ:
        return bool(expected), f"{len(expected):,} events, {matched:,} matches, all identical"
    i = differ[0]
    return (
        False,
        f"{len(differ):,} of {len(expected):,} differ; first #{i}: {expected[i]} vs {got[i]}",
    )


def explained(
    rules: Sequence[Rule], sample: Sequence[Event]
) -> tuple[list[str], Counter[tuple[str, bool]]]:
    """Each event's matches by ``explain`` (the slow path of ``holds``), and how often each
    kind of condition held and failed."""
    of_trigger: dict[str, list[Rule]] = {}
    for rule in rules:
        of_trigger.setdefault(rule.document.trigger, []).append(rule)
    outcomes: Counter[tuple[str, bool]] = Counter()
    results = []
    for e in sample:
        facts = Facts(*e)
        matched = []
        for rule in of_trigger.get(e.trigger, ()):
            checks = explain(rule, facts)
            for condition, check in zip(rule.document.conditions, checks, strict=True):
                outcomes[condition.type, check.passed] += 1
            if all(check.passed for check in checks):
                matched.append(rule.key)
        results.append(keys(matched))
    return results, outcomes


# The run -------------------------------------------------------------------------------------


def _us(ns: float) -> str:
    return f"{ns / 1000:.1f} µs" if ns < 1_000_000 else f"{ns / 1e6:.2f} ms"


def _latency(report: Report, section: str, timed: Timed) -> None:
    report.add(
        section,
        "  latency p50 / p99 / max per event",
        f"{_us(timed.p(50))} / {_us(timed.p(99))} / {_us(timed.latencies_ns[-1])}",
    )


def candidates(rules: Sequence[Rule], e: Event) -> tuple[int, int]:
    """Campaigns of the event's trigger (what the libraries test), and those of them that
    admit its store (what zanloop's store index leaves to test)."""
    trigger = [r.document.stores for r in rules if r.document.trigger == e.trigger]
    admit = [s for s in trigger if s is None or (e.store_id is not None and e.store_id in s)]
    return len(trigger), len(admit)


def zanloop_part(
    report: Report, sizes: RulesSizes, rules: Sequence[Rule], stream: Sequence[Event]
) -> tuple[float, Timed]:
    section = "(1)"
    compiling = time.perf_counter()
    ruleset = RuleSet(rules)
    compiled_s = time.perf_counter() - compiling
    for e in stream[:: sizes.warmup_stride]:
        ruleset.match(Facts(*e))
    passes = zanloop_throughput(ruleset, stream, sizes.passes)
    rates = [p.events_per_s for p in passes]
    median = statistics.median(rates)
    span = f" ({min(rates):,.0f}–{max(rates):,.0f})" if len(rates) > 1 else ""
    report.add(
        section,
        "zanloop RuleSet.match, fresh Facts per event: events/s"
        + (f", median of {len(rates)} passes" if span else ""),
        f"{median:,.0f}/s{span}",
        f">= {TARGET_EVENTS_PER_S:,}/s",
        median >= TARGET_EVENTS_PER_S,
    )
    cpu = statistics.median(p.cpu_ns_per_event for p in passes)
    report.add(
        section, "  CPU per event; one-core ceiling at that cost", f"{_us(cpu)}; {1e9 / cpu:,.0f}/s"
    )
    report.add(
        section,
        "  match alone, Facts built beforehand",
        f"{zanloop_prebuilt(ruleset, stream):,.0f}/s",
    )
    timed = zanloop_latency(ruleset, stream)
    _latency(report, section, timed)
    report.add(section, "  clock read, included in each latency", _us(clock_overhead_ns()))
    tested = [candidates(rules, stream[i]) for i in spread(len(stream), 2_000)]
    report.add(
        section,
        "  campaigns per event: of its trigger; admitting its store",
        "; ".join(f"{statistics.fmean(n[k] for n in tested):.0f}" for k in (0, 1)),
    )
    matches = [len(k.split()) for k in timed.results]
    report.add(
        section,
        "  matches per event: mean, max; events matching none",
        f"{statistics.fmean(matches):.1f}, {max(matches)}; {matches.count(0) / len(matches):.1%}",
    )
    report.add(
        section,
        "  events per pass; RuleSet built (compiled) in",
        f"{len(stream):,}; {compiled_s * 1000:.0f} ms",
    )
    report.check(
        f"{sizes.campaigns} campaigns valid and compiled, on all three triggers",
        len(ruleset) == sizes.campaigns and {r.document.trigger for r in rules} == set(TRIGGERS),
        ", ".join(f"{t} {sum(r.document.trigger == t for r in rules)}" for t in TRIGGERS),
    )
    return median, timed


def explain_part(
    report: Report, sizes: RulesSizes, rules: Sequence[Rule], stream: Sequence[Event], got: Timed
) -> None:
    sample = spread(len(stream), sizes.explained)
    slow, outcomes = explained(rules, [stream[i] for i in sample])
    fast = [got.results[i] for i in sample]
    report.check("(1) compiled match == explaining path (holds) on a sample", *agree(slow, fast))
    kinds = sorted({kind for kind, _ in outcomes})
    one_way = [k for k in kinds if not (outcomes[k, True] and outcomes[k, False])]
    report.check(
        "(1) every kind of condition both holds and fails in that sample",
        len(kinds) == 9 and not one_way,
        f"{len(kinds)} kinds" + (f"; one way only: {', '.join(one_way)}" if one_way else ""),
    )


def library_part(
    report: Report,
    section: str,
    library: Library,
    subset: Sequence[Event],
    expected: Sequence[str],
    zanloop: tuple[float, Timed],
) -> float:
    timed = timed_calls(library.evaluate, subset)
    report.add(
        section,
        f"{library.name} {library.version}, every campaign of the trigger: events/s",
        f"{timed.rate:,.0f}/s",
    )
    _latency(report, section, timed)
    report.add(section, "  events evaluated (spread over the stream)", f"{len(subset):,}")
    ours_rate, ours = zanloop
    report.add(
        section,
        "  zanloop / library: events/s; p99",
        f"{ours_rate / timed.rate:,.0f}x; {timed.p(99) / max(1, ours.p(99)):,.0f}x",
    )
    report.check(
        f"{section} {library.name} returns exactly zanloop's matches",
        *agree(expected, timed.results),
    )
    report.notes.append(f"{library.name}, campaign-000 as written for it: {library.example}")
    return timed.rate


def run_rules(*, quick: bool) -> Report:
    from zanloop.bench.rules_libraries import LIBRARIES  # it imports Event and ZONE from here

    sizes = QUICK if quick else DEFAULT
    report = Report(
        f"zanloop bench rules ({'quick' if quick else 'default'} sizes) | "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    load_before = load_average()
    took: list[str] = []

    def step(name: str) -> None:
        took.append(f"{name} {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    rules = campaigns(sizes.campaigns)
    stream = events(sizes.events, sizes.days)
    step("setup")
    started = time.perf_counter()
    zanloop = zanloop_part(report, sizes, rules, stream)
    step("(1)")
    started = time.perf_counter()
    explain_part(report, sizes, rules, stream, zanloop[1])
    step("explain sample")

    picked = spread(len(stream), sizes.library_events)
    subset = [stream[i] for i in picked]
    expected = [zanloop[1].results[i] for i in picked]
    rates: dict[str, float] = {}
    for n, build in enumerate(LIBRARIES, start=2):
        started = time.perf_counter()
        library = build(rules)
        rates[library.name] = library_part(report, f"({n})", library, subset, expected, zanloop)
        step(f"({n})")
    fastest = max(rates, key=rates.__getitem__)
    ratio = zanloop[0] / rates[fastest]
    report.add(
        f"({len(LIBRARIES) + 2})",
        f"zanloop / fastest library ({fastest}), events/s",
        f"{ratio:,.0f}x",
        f">= {TARGET_RATIO}x",
        ratio >= TARGET_RATIO,
    )
    report.notes.append(
        f"{sizes.campaigns} campaigns on {len(STORES)} stores in {len(CITIES)} cities and "
        f"{len(CATEGORIES)} categories, all in {ZONE}; {len(stream):,} events over "
        f"{sizes.days} days from {T0.astimezone(ZoneInfo(ZONE)):%Y-%m-%d} (local). "
        "The libraries evaluate every n-th event of the same stream."
    )
    report.notes.append("wall time with setup and checks: " + ", ".join(took))
    report.notes.append(load_note(load_before))
    return report
