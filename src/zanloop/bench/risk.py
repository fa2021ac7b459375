"""``zanloop bench risk``: decisions per second and latency of ``risk.decide`` (R1).

One synthetic stream of ``pin.purchase`` signals (many users, devices and IPs, random amounts,
time advancing; about 5 % abusive episodes) runs against a policy of exactly 20 active rules:

(1) the decision itself, in-process: ``plan`` + ``MemoryCounterStore.apply`` + ``finish``;
(2) the same with ``RedisCounterStore`` (skipped when Redis cannot be reached);
(3) the full ``risk.service.decide`` on a migrated SQLite file: policy and list versions read,
    decision row written, committed every 100 decisions.

Every call is timed alone with ``time.perf_counter_ns`` after an untimed warm-up; gc stays on.
The self-check proves the figures are of correct decisions: the N+1-th purchase against a
``max_count`` N rule is blocked (in both stores), honest traffic is mostly allowed and every
kind of abuse is caught, and both stores and the service reach the same verdicts and fire the
same rules for the same stream.
"""

from __future__ import annotations

import bisect
import gc
import math
import os
import platform
import random
import sqlite3
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import event, func, select

from zanloop import migrate
from zanloop.bench.ledger import sqlite_pragmas
from zanloop.bench.report import Report, load_average, load_note, percentile, rate
from zanloop.db import Database
from zanloop.risk import domain, policy
from zanloop.risk import service as risk_service
from zanloop.risk.counters import (
    CounterStore,
    CountersUnavailable,
    MemoryCounterStore,
    RedisCounterStore,
)
from zanloop.risk.domain import CompiledPolicy, Facts, Outcome, Signal, Verdict
from zanloop.risk.tables import RiskDecision
from zanloop.tenancy import service as tenancy

ACTION = "pin.purchase"
ACTIVE_RULES = 20
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
TARGET_MEMORY_P99_NS = 500_000
TARGET_REDIS_P99_NS = 3_000_000
REDIS_URL_ENV = "ZANLOOP_BENCH_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
COMMIT_EVERY = 100
# The N of the N+1 check: the policy's per-user burst rule.
BURST_RULE = "user-burst-1m"
BURST_MAX = 5
BURST_WINDOW_SECONDS = 60
# Honest signals allowed at least this often (the rest: young accounts paying more, etc.).
HONEST_ALLOW_MIN = 0.90
SEED = 20261126


@dataclass(frozen=True)
class RiskSizes:
    users: int
    warmup: int
    memory: int
    redis: int
    service: int
    # How often an honest user buys, on average: sets how fast simulated time runs.
    user_interval_seconds: float = 600.0
    abuse_share: float = 0.05

    @property
    def stream(self) -> int:
        return self.warmup + max(self.memory, self.redis, self.service)

    @property
    def gap_seconds(self) -> float:
        return self.user_interval_seconds / self.users


DEFAULT = RiskSizes(users=30_000, warmup=5_000, memory=100_000, redis=30_000, service=20_000)
QUICK = RiskSizes(users=500, warmup=300, memory=2_000, redis=1_000, service=600)


def redis_url() -> str | None:
    """``ZANLOOP_BENCH_REDIS_URL`` (``off`` or empty skips Redis), else the local default."""
    value = os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL).strip()
    return None if value.lower() in ("", "off", "none", "skip") else value


# The policy ----------------------------------------------------------------------------------


def policy_document() -> dict[str, Any]:
    """20 enforced rules, all on ``pin.purchase``; limits loose enough for honest traffic."""

    def rule(rule_id: str, kind: str, verdict: str, score: int, **kw: Any) -> dict[str, Any]:
        return {
            "id": rule_id,
            "type": kind,
            "actions": [ACTION],
            "verdict": verdict,
            "score": score,
            **kw,
        }

    def count(rule_id: str, subject: str, window: str, limit: int, verdict: str, score: int) -> Any:
        kw: dict[str, Any] = {"subject": subject, "window": window, "max_count": limit}
        return rule(rule_id, "velocity", verdict, score, **kw)

    def total(rule_id: str, subject: str, window: str, limit: int, verdict: str, score: int) -> Any:
        kw: dict[str, Any] = {"subject": subject, "window": window, "max_sum_fen": limit}
        return rule(rule_id, "velocity", verdict, score, **kw)

    def users(rule_id: str, subject: str, window: str, limit: int, verdict: str, score: int) -> Any:
        kw: dict[str, Any] = {"subject": subject, "window": window, "max_users": limit}
        return rule(rule_id, "distinct_users", verdict, score, **kw)

    def split(rule_id: str, subject: str, limit: int) -> Any:
        kw: dict[str, Any] = {
            "subject": subject,
            "window": "1d",
            "threshold_fen": 10_000,
            "margin_percent": 10,
        }
        return rule(rule_id, "split_order", "REVIEW", 40, max_near_threshold=limit, **kw)

    return {
        "review_score": 60,
        "rules": [
            # velocity: counts
            count(BURST_RULE, "user", "1m", BURST_MAX, "BLOCK", 40),
            count("user-count-1h", "user", "1h", 30, "BLOCK", 40),
            count("user-count-1d", "user", "1d", 100, "REVIEW", 30),
            count("device-burst-1m", "device", "1m", 10, "BLOCK", 40),
            count("ip-burst-1m", "ip", "1m", 60, "REVIEW", 30),
            count("subnet-count-1h", "ip_subnet", "1h", 2_000, "REVIEW", 20),
            count("payer-count-1h", "payment_account", "1h", 30, "BLOCK", 40),
            # velocity: sums of fen
            total("user-amount-1d", "user", "1d", 500_000, "REVIEW", 30),
            total("device-amount-1h", "device", "1h", 300_000, "REVIEW", 30),
            total("ip-amount-1h", "ip", "1h", 1_000_000, "REVIEW", 20),
            total("payer-amount-1d", "payment_account", "1d", 500_000, "REVIEW", 30),
            # accounts per device, IP, IP subnet, payment account
            users("accounts-per-device", "device", "1d", 3, "BLOCK", 60),
            users("accounts-per-ip", "ip", "1h", 50, "REVIEW", 30),
            users("accounts-per-subnet", "ip_subnet", "1h", 300, "REVIEW", 20),
            users("accounts-per-payer", "payment_account", "7d", 2, "BLOCK", 60),
            # local rules
            rule(
                "new-account",
                "new_account",
                "REVIEW",
                30,
                min_age="24h",
                max_amount_fen=5_000,
                unknown_is_new=False,
            ),
            rule("amount-limit", "amount_limit", "BLOCK", 100, max_amount_fen=100_000),
            rule("real-name", "real_name", "BLOCK", 60),
            # split orders just above a 100.00 reward threshold
            split("split-orders-user", "user", 2),
            split("split-orders-payer", "payment_account", 3),
        ],
    }


# The traffic ---------------------------------------------------------------------------------

HONEST = "honest"
# Each kind of abuse, and the least severe verdict that catches it.
ABUSE: dict[str, Verdict] = {
    "burst": Verdict.BLOCK,  # one user, 12 purchases seconds apart
    "device_farm": Verdict.BLOCK,  # 6 fresh accounts on one device
    "large_amount": Verdict.BLOCK,  # one purchase above the amount limit
    "unverified": Verdict.BLOCK,  # a payer without real-name verification
    "split": Verdict.REVIEW,  # 5 payments just above the reward threshold
    "shared_payer": Verdict.BLOCK,  # 4 accounts paying from one payment account
}


@dataclass(frozen=True)
class User:
    user_id: str
    created_at: datetime
    device_id: str
    home_ip: str
    payment_account: str


@dataclass
class Stream:
    signals: list[Signal] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    # The index of the episode each abusive signal belongs to (-1: honest).
    episodes: list[int] = field(default_factory=list)


def population(rng: random.Random, count: int) -> list[User]:
    subnets = max(4, count // 40)
    people: list[User] = []
    for i in range(count):
        if rng.random() < 0.08:
            created = T0 - timedelta(hours=rng.uniform(0.5, 20))
        else:
            created = T0 - timedelta(days=rng.uniform(2, 900))
        # Every seventh user shares the device of the one before (a household).
        device = people[-1].device_id if i % 7 == 6 else f"dev-{i:06d}"
        if rng.random() < 0.25:
            net, host = rng.randrange(subnets), rng.randrange(1, 65535)
            ip = f"2408:8400:{net // 65536:x}:{net % 65536:x}::{host:x}"
        else:
            net = rng.randrange(subnets)
            ip = f"58.{32 + net // 256 % 200}.{net % 256}.{rng.randrange(1, 255)}"
        people.append(User(f"u{i:06d}", created, device, ip, f"wxid-{i:06d}"))
    return people


def _amount(rng: random.Random) -> int:
    """Pin prices: mostly a few yuan to a few dozen, a long tail up to 800 yuan."""
    return min(80_000, max(100, int(round(rng.lognormvariate(math.log(1_800), 0.9), -1))))


def _carrier_ip(rng: random.Random) -> str:
    return f"117.136.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _signal(user: User, at: float, amount: int, ip: str, **changes: Any) -> Signal:
    signal = Signal(
        action=ACTION,
        user_id=user.user_id,
        at=T0 + timedelta(microseconds=round(at * 1_000_000)),
        amount_fen=amount,
        device_id=user.device_id,
        ip=ip,
        payment_account=user.payment_account,
        account_created_at=user.created_at,
        payer_verified=True,
    )
    return replace(signal, **changes) if changes else signal


def _episode(rng: random.Random, kind: str, k: int, start: float) -> list[tuple[float, Signal]]:
    """The signals of one abusive episode, at seconds from the stream's start."""
    old = T0 - timedelta(days=rng.uniform(30, 400))
    ip = f"36.{100 + k // 256 % 100}.{k % 256}.{rng.randrange(1, 255)}"

    def actor(n: int, created: datetime = old, device: str = "", payer: str = "") -> User:
        return User(
            f"abuser-{k}-{n}", created, device or f"adev-{k}-{n}", ip, payer or f"awx-{k}-{n}"
        )

    if kind == "burst":
        user, t, out = actor(0), start, []
        for _ in range(12):
            out.append((t, _signal(user, t, _amount(rng), ip)))
            t += rng.uniform(2, 4)
        return out
    if kind == "device_farm":
        fresh = T0 + timedelta(seconds=start) - timedelta(minutes=10)
        return [
            (start + 20 * n, _signal(actor(n, fresh, device=f"farm-{k}"), start + 20 * n, 990, ip))
            for n in range(6)
        ]
    if kind == "large_amount":
        return [(start, _signal(actor(0), start, rng.randrange(150_000, 500_000), ip))]
    if kind == "unverified":
        return [(start, _signal(actor(0), start, _amount(rng), ip, payer_verified=False))]
    if kind == "split":
        user, t, out = actor(0), start, []
        for _ in range(5):
            out.append((t, _signal(user, t, rng.randrange(10_000, 11_000), ip)))
            t += rng.uniform(30, 120)
        return out
    assert kind == "shared_payer"
    return [
        (start + 60 * n, _signal(actor(n, payer=f"shared-{k}"), start + 60 * n, 1_990, ip))
        for n in range(4)
    ]


def traffic(sizes: RiskSizes, seed: int = SEED) -> Stream:
    """Honest purchases at random times, with abusive episodes mixed in, ordered by time."""
    rng = random.Random(seed)
    people = population(rng, sizes.users)
    span = sizes.stream * sizes.gap_seconds
    kinds = list(ABUSE)
    average_episode = 28 / len(kinds)
    episodes = max(len(kinds), round(sizes.stream * sizes.abuse_share / average_episode))
    events: list[tuple[float, int, str, Signal]] = []
    for k in range(episodes):
        kind = kinds[k % len(kinds)]
        for at, signal in _episode(rng, kind, k, rng.uniform(0, span * 0.95)):
            events.append((at, k, kind, signal))
    for _ in range(sizes.stream - len(events)):
        user = people[rng.randrange(len(people))]
        at = rng.uniform(0, span)
        ip = user.home_ip if rng.random() < 0.8 else _carrier_ip(rng)
        events.append((at, -1, HONEST, _signal(user, at, _amount(rng), ip)))
    events.sort(key=lambda e: e[0])
    stream = Stream()
    for _, episode, kind, signal in events[: sizes.stream]:
        stream.signals.append(signal)
        stream.kinds.append(kind)
        stream.episodes.append(episode)
    return stream


# Timing --------------------------------------------------------------------------------------

# What two runs must agree on: the verdict, the score and the rules that fired, in order.
Result = tuple[str, int, tuple[str, ...]]


def result_of(outcome: Outcome) -> Result:
    return (outcome.verdict.value, outcome.score, tuple(r.rule_id for r in outcome.reasons))


def _row_result(row: RiskDecision) -> Result:
    return (row.verdict, row.score, tuple(r["rule_id"] for r in row.reasons))


@dataclass
class Timed:
    latencies_ns: list[int]
    wall_ns: int
    results: list[Result]
    # Only the service run: time of each commit (every COMMIT_EVERY decisions).
    commits_ns: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.latencies_ns.sort()
        self.commits_ns.sort()

    @property
    def count(self) -> int:
        return len(self.latencies_ns)

    def p(self, q: float) -> int:
        return int(percentile(self.latencies_ns, q))


def run_engine(
    compiled: CompiledPolicy,
    tenant_id: str,
    signals: Sequence[Signal],
    store: CounterStore,
    warmup: int,
) -> Timed:
    """plan + store.apply + finish for each signal; the first ``warmup`` are not timed."""
    rules = compiled.rules_for(ACTION)
    review_score = compiled.review_score
    facts = Facts()
    plan, finish = domain.plan, domain.finish
    outcomes: list[Outcome] = []
    for signal in signals[:warmup]:
        p = plan(rules, tenant_id, signal, facts)
        readings = store.apply(p.checks, signal.at.timestamp(), p.record)
        outcomes.append(finish(p, signal, readings, review_score))
    results = [result_of(o) for o in outcomes]
    timed = signals[warmup:]
    latencies = [0] * len(timed)
    clock = time.perf_counter_ns
    with _quiet_heap():
        started = clock()
        for i, signal in enumerate(timed):
            t0 = clock()
            p = plan(rules, tenant_id, signal, facts)
            readings = store.apply(p.checks, signal.at.timestamp(), p.record)
            outcome = finish(p, signal, readings, review_score)
            latencies[i] = clock() - t0
            results.append(result_of(outcome))
        wall = clock() - started
    return Timed(latencies, wall, results)


@contextmanager
def _quiet_heap() -> Iterator[None]:
    """Collect, then move what exists (the stream, the warm-up's results) out of the
    collector's sight while timing: gc stays on for everything a decision allocates, but its
    full collections do not scan the bench's own 100,000 signals."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass(frozen=True)
class ServiceRun:
    timed: Timed
    rows: int
    statements_per_decision: float
    durability: str


def run_service(
    workdir: Path, document: dict[str, Any], signals: Sequence[Signal], warmup: int
) -> ServiceRun:
    """``risk.service.decide`` with its log row on a fresh migrated SQLite file."""
    url = f"sqlite:///{workdir / 'risk.db'}"
    migrate.upgrade(url)
    db = Database(url)
    try:
        with db.session() as session:
            tenant, _ = tenancy.create_tenant(session, "bench risk")
            risk_service.set_policy(session, tenant.id, policy.parse(document), actor="bench")
        tenant_id = tenant.id
        store = MemoryCounterStore()
        results: list[Result] = []
        decide = risk_service.decide

        def chunks(part: Sequence[Signal], offset: int) -> list[list[tuple[int, Signal]]]:
            numbered = list(enumerate(part, start=offset))
            return [numbered[i : i + COMMIT_EVERY] for i in range(0, len(numbered), COMMIT_EVERY)]

        # Warm-up, untimed; count the SQL statements one decision sends.
        statements = 0

        def count_statement(*_: Any) -> None:
            nonlocal statements
            statements += 1

        event.listen(db.engine, "before_cursor_execute", count_statement)
        for chunk in chunks(signals[:warmup], 0):
            with db.session() as session:
                for i, signal in chunk:
                    row = decide(session, tenant_id, signal, reference=f"p{i}", counters=store)
                    results.append(_row_result(row))
        event.remove(db.engine, "before_cursor_execute", count_statement)
        per_decision = statements / warmup if warmup else math.nan

        timed = signals[warmup:]
        latencies: list[int] = []
        commits: list[int] = []
        clock = time.perf_counter_ns
        with _quiet_heap():
            started = clock()
            for chunk in chunks(timed, warmup):
                with db.session() as session:
                    for i, signal in chunk:
                        t0 = clock()
                        row = decide(session, tenant_id, signal, reference=f"p{i}", counters=store)
                        latencies.append(clock() - t0)
                        results.append(_row_result(row))
                    committing = clock()
                commits.append(clock() - committing)
            wall = clock() - started

        with db.read_session() as session:
            rows = session.execute(
                select(func.count()).where(RiskDecision.tenant_id == tenant_id)
            ).scalar_one()
        durability = sqlite_pragmas(db)
    finally:
        db.dispose()
    return ServiceRun(Timed(latencies, wall, results, commits), rows, per_decision, durability)


# Self-checks ---------------------------------------------------------------------------------


def burst_verdicts(
    compiled: CompiledPolicy, tenant_id: str, store: CounterStore
) -> list[tuple[str, tuple[str, ...]]]:
    """One honest user buys BURST_MAX + 2 times a second apart, then again once the window
    has passed: ALLOW x N, BLOCK by the burst rule twice, ALLOW."""
    user = User("burst-check", T0 - timedelta(days=365), "burst-dev", "203.0.113.7", "burst-wx")
    times = [float(n) for n in range(BURST_MAX + 2)]
    # A sliding window forgets between W and W + W/60 (one bucket) after the event.
    times.append(times[-1] + BURST_WINDOW_SECONDS + 2)
    signals = [_signal(user, t, 1_000, user.home_ip) for t in times]
    timed = run_engine(compiled, tenant_id, signals, store, warmup=len(signals))
    return [(verdict, rules) for verdict, _, rules in timed.results]


def expected_burst() -> list[tuple[str, tuple[str, ...]]]:
    allow = (Verdict.ALLOW.value, ())
    block = (Verdict.BLOCK.value, (BURST_RULE,))
    return [allow] * BURST_MAX + [block, block, allow]


def check_traffic(report: Report, stream: Stream, results: Sequence[Result]) -> None:
    kinds = stream.kinds[: len(results)]
    honest = [r[0] for r, kind in zip(results, kinds, strict=True) if kind == HONEST]
    allowed = honest.count(Verdict.ALLOW.value) / len(honest) if honest else 0.0
    report.check(
        f"(1) honest traffic mostly allowed (>= {HONEST_ALLOW_MIN:.0%})",
        allowed >= HONEST_ALLOW_MIN,
        f"{allowed:.1%} of {len(honest):,} honest signals ALLOW",
    )
    # Every episode of abuse reaches at least its expected verdict on some signal.
    worst: dict[int, int] = {}
    kind_of: dict[int, str] = {}
    for (verdict, _, _), kind, episode in zip(results, kinds, stream.episodes, strict=False):
        if kind != HONEST:
            worst[episode] = max(worst.get(episode, 0), Verdict(verdict).severity)
            kind_of[episode] = kind
    missed = sorted(f"{kind_of[e]}#{e}" for e, s in worst.items() if s < ABUSE[kind_of[e]].severity)
    caught = Counter(kind_of.values())
    report.check(
        "(1) every abusive episode caught (BLOCK; split orders REVIEW)",
        not missed and set(caught) == set(ABUSE),
        f"{len(worst) - len(missed)}/{len(worst)} episodes "
        f"({', '.join(f'{k} {n}' for k, n in sorted(caught.items()))})"
        + (f"; missed {', '.join(missed[:5])}" if missed else ""),
    )


def agree(a: Sequence[Result], b: Sequence[Result]) -> tuple[bool, str]:
    n = min(len(a), len(b))
    differ = [i for i in range(n) if a[i] != b[i]]
    if not differ:
        return n > 0, f"{n:,} signals, same verdict, score and rules fired"
    i = differ[0]
    return False, f"{len(differ):,} of {n:,} differ; first #{i}: {a[i]} vs {b[i]}"


# The run -------------------------------------------------------------------------------------


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.3f} ms"


def _mix(results: Sequence[Result]) -> str:
    counts = Counter(r[0] for r in results)
    return ", ".join(f"{v.value} {counts[v.value] / len(results):.1%}" for v in Verdict)


def add_latency(
    report: Report, section: str, label: str, timed: Timed, target_ns: int | None
) -> None:
    report.add(section, label, rate(timed.count, timed.wall_ns / 1e9))
    report.add(section, "  latency p50", _ms(timed.p(50)))
    p99 = timed.p(99)
    if target_ns is None:
        report.add(section, "  latency p99", _ms(p99))
    else:
        report.add(section, "  latency p99", _ms(p99), f"<= {_ms(target_ns)}", p99 <= target_ns)
    report.add(section, "  latency max", _ms(timed.latencies_ns[-1] if timed.count else math.nan))
    slow = timed.count - bisect.bisect_right(timed.latencies_ns, 1_000_000)
    report.add(section, "  calls slower than 1 ms", f"{slow:,} ({slow / max(1, timed.count):.2%})")


def run_risk(*, quick: bool) -> Report:
    sizes = QUICK if quick else DEFAULT
    report = Report(
        f"zanloop bench risk ({'quick' if quick else 'default'} sizes) | "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs"
    )
    load_before = load_average()
    document = policy_document()
    compiled = policy.compile_policy(policy.parse(document))
    rules = compiled.rules_for(ACTION)
    report.check(
        f"policy: {ACTIVE_RULES} enforced rules apply to {ACTION}",
        len(rules) == ACTIVE_RULES
        and all(
            getattr(r, "mode", None) is domain.Mode.ENFORCE for r in (*rules.local, *rules.counters)
        ),
        f"{len(rules.local)} local + {len(rules.counters)} counter rules",
    )
    stream = traffic(sizes)
    signals = stream.signals
    abusive = sum(kind != HONEST for kind in stream.kinds)
    tenant_id = f"bench-risk-{uuid.uuid4().hex[:12]}"
    took: list[str] = []

    def step(name: str, run: Callable[[], None]) -> None:
        started = time.perf_counter()
        run()
        took.append(f"{name} {time.perf_counter() - started:.1f} s")

    memory_results: list[Result] = []

    def memory() -> None:
        section = "(1)"
        store = MemoryCounterStore()
        timed = run_engine(
            compiled, tenant_id, signals[: sizes.warmup + sizes.memory], store, sizes.warmup
        )
        memory_results.extend(timed.results)
        add_latency(
            report,
            section,
            "engine in-process (plan + MemoryCounterStore + finish): decisions/s",
            timed,
            TARGET_MEMORY_P99_NS,
        )
        checks = sum(len(domain.plan(rules, tenant_id, s, Facts()).checks) for s in signals[:2000])
        report.add(
            section,
            "  decisions timed (+ warm-up); counters per decision",
            f"{timed.count:,} (+{sizes.warmup:,}); {checks / min(2000, len(signals)):.1f}",
        )
        report.add(section, "  verdicts", _mix(timed.results))
        report.add(section, "  counter keys held in memory", f"{len(store):,}")
        report.check(
            f"(1) purchase {BURST_MAX + 1} in a minute blocked by {BURST_RULE} (memory)",
            (got := burst_verdicts(compiled, tenant_id, MemoryCounterStore())) == expected_burst(),
            "; ".join(v for v, _ in got),
        )
        check_traffic(report, stream, timed.results)

    def redis_part() -> None:
        section = "(2)"
        label = "engine with RedisCounterStore: decisions/s"
        url = redis_url()
        if url is None:
            report.skip(section, label, f"{REDIS_URL_ENV} is off")
            return
        store = RedisCounterStore(url)
        try:
            store.client.ping()
            version = str(store.client.info("server").get("redis_version", "?"))
        except redis.RedisError as exc:
            report.skip(section, label, f"Redis unreachable at {url} ({exc}); checks skipped")
            store.client.close()
            return
        try:
            timed = run_engine(
                compiled, tenant_id, signals[: sizes.warmup + sizes.redis], store, sizes.warmup
            )
            burst = burst_verdicts(compiled, f"{tenant_id}-burst", store)
        except CountersUnavailable as exc:
            report.check("(2) Redis answered every call", False, str(exc))
            return
        finally:
            _delete_keys(store.client, (tenant_id, f"{tenant_id}-burst"))
            store.client.close()
        add_latency(report, section, label, timed, TARGET_REDIS_P99_NS)
        report.add(section, "  decisions timed (+ warm-up)", f"{timed.count:,} (+{sizes.warmup:,})")
        report.add(section, "  Redis (one EVALSHA per decision)", f"{version} at {url}")
        report.check(
            f"(2) purchase {BURST_MAX + 1} in a minute blocked by {BURST_RULE} (Redis)",
            burst == expected_burst(),
            "; ".join(v for v, _ in burst),
        )
        report.check("(2) Redis agrees with memory", *agree(memory_results, timed.results))

    def service_part(workdir: Path) -> None:
        section = "(3)"
        run = run_service(workdir, document, signals[: sizes.warmup + sizes.service], sizes.warmup)
        timed = run.timed
        add_latency(
            report,
            section,
            f"service.decide on SQLite + log row, commit per {COMMIT_EVERY}: decisions/s",
            timed,
            None,
        )
        commits = timed.commits_ns
        report.add(
            section,
            f"  commit per {COMMIT_EVERY} decisions p50 / max (not in latency; in decisions/s)",
            f"{_ms(percentile(commits, 50))} / {_ms(commits[-1] if commits else math.nan)}",
        )
        report.add(
            section,
            "  decisions timed (+ warm-up); SQL statements per decision",
            f"{timed.count:,} (+{sizes.warmup:,}); {run.statements_per_decision:.1f}",
        )
        report.add(section, "  durability", run.durability)
        expected = sizes.warmup + sizes.service
        report.check(
            "(3) one decision row per call", run.rows == expected, f"{run.rows:,} of {expected:,}"
        )
        ok, detail = agree(memory_results, timed.results)
        report.check("(3) service.decide agrees with the engine", ok, detail)

    with tempfile.TemporaryDirectory(prefix="zanloop-bench-risk-") as tmp:
        step("(1)", memory)
        step("(2)", redis_part)
        step("(3)", lambda: service_part(Path(tmp)))
    report.notes.append(
        f"stream: {len(signals):,} {ACTION} signals of {sizes.users:,} users, one every "
        f"{sizes.gap_seconds * 1000:.0f} ms of simulated time, {abusive / len(signals):.1%} "
        f"in abusive episodes; policy of {ACTIVE_RULES} rules on {ACTION}, "
        "no list entries; (1) and (2) without the database."
    )
    report.notes.append("wall time with setup and checks: " + ", ".join(took))
    report.notes.append(load_note(load_before))
    return report


def _delete_keys(client: redis.Redis, tenants: Sequence[str]) -> None:
    """The bench's own keys only: the Redis is shared with tests and other processes."""
    try:
        for tenant in tenants:
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"zl:risk:{{{tenant}}}:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    client.delete(*batch)
                    batch.clear()
            if batch:
                client.delete(*batch)
    except redis.RedisError:
        pass  # they expire on their own
