"""Sliding-window counters, in memory and in Redis, driven by an explicit clock: limits on
counts, sums and distinct accounts; windows that forget; attempts that are not recorded; and
recording that is all-or-nothing, also under concurrency."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zanloop.risk.counters import (
    CounterStore,
    MemoryCounterStore,
    RedisCounterStore,
    bucket_width,
)
from zanloop.risk.domain import CounterCheck, CounterKind, CounterReading

# A quarter-second grid keeps every instant exact in binary floating point.
T0 = 1_700_000_000.25
SUM = CounterKind.SUM
DISTINCT = CounterKind.DISTINCT


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[CounterStore]:
    if request.param == "memory":
        yield MemoryCounterStore()
        return
    redis_store = RedisCounterStore(request.getfixturevalue("redis_url"))
    yield redis_store
    redis_store.client.close()


def _key(unique: str, name: str = "c") -> str:
    # Keys unique to the test: the Redis is shared by parallel test processes.
    return f"zl:test:{{{unique}}}:{name}"


def _count(
    key: str, limit: int, window: int = 60, blocking: bool = True, increment: int = 1
) -> CounterCheck:
    return CounterCheck(key, SUM, window, limit, increment=increment, blocking=blocking)


def _distinct(
    key: str, member: str, limit: int, window: int = 60, blocking: bool = True
) -> CounterCheck:
    return CounterCheck(key, DISTINCT, window, limit, member=member, blocking=blocking)


def _read(store: CounterStore, check: CounterCheck, now: float) -> CounterReading:
    (reading,) = store.apply([check], now, record=False)
    return reading


# Limits --------------------------------------------------------------------------------------


def test_a_count_limit_records_actions_until_the_limit(store: CounterStore, unique: str) -> None:
    check = _count(_key(unique), limit=3)

    values = [store.apply([check], T0, record=True)[0].value for _ in range(5)]

    # each reading is the count before the action; the 4th and 5th would exceed and are not kept
    assert values == [0, 1, 2, 3, 3]
    assert _read(store, check, T0).value == 3


def test_a_sum_limit_adds_amounts_and_refuses_the_one_that_would_exceed(
    store: CounterStore, unique: str
) -> None:
    key = _key(unique)

    def pay(amount: int) -> int:
        check = _count(key, limit=1000, increment=amount)
        return store.apply([check], T0, record=True)[0].value

    assert pay(400) == 0
    assert pay(500) == 400
    assert pay(200) == 900  # 1100 > 1000: refused, not added
    assert pay(100) == 900  # exactly 1000 is within the limit
    assert pay(1) == 1000
    assert _read(store, _count(key, limit=1000), T0).value == 1000


def test_distinct_counts_each_member_once(store: CounterStore, unique: str) -> None:
    key = _key(unique)

    def seen(member: str) -> CounterReading:
        return store.apply([_distinct(key, member, limit=2)], T0, record=True)[0]

    assert seen("alice") == CounterReading(0, already_member=False)
    assert seen("bob") == CounterReading(1, already_member=False)
    assert seen("alice") == CounterReading(2, already_member=True)  # a known account is fine
    assert seen("carol") == CounterReading(2, already_member=False)  # a third is refused
    assert seen("carol") == CounterReading(2, already_member=False)  # and was not recorded
    assert seen("bob") == CounterReading(2, already_member=True)


def test_counters_with_different_keys_are_independent(store: CounterStore, unique: str) -> None:
    first, second = _count(_key(unique, "a"), limit=1), _count(_key(unique, "b"), limit=1)

    store.apply([first], T0, record=True)

    assert _read(store, first, T0).value == 1
    assert _read(store, second, T0).value == 0


def test_no_checks_read_nothing(store: CounterStore) -> None:
    assert store.apply([], T0, record=True) == []


# Windows -------------------------------------------------------------------------------------


@pytest.mark.parametrize("window", [60, 90, 600, 3600, 86400])
@pytest.mark.parametrize("kind", [SUM, DISTINCT])
def test_an_event_counts_for_its_whole_window_and_is_forgotten_within_a_bucket_after(
    store: CounterStore, unique: str, window: int, kind: CounterKind
) -> None:
    # given one recorded event
    check = CounterCheck(_key(unique), kind, window, limit=10, member="alice")
    store.apply([check], T0, record=True)
    width = bucket_width(window)

    # then it counts up to W after it happened, and is gone once W plus a bucket have passed
    assert _read(store, check, T0 + window / 2).value == 1
    assert _read(store, check, T0 + window).value == 1
    assert _read(store, check, T0 + window + width + 0.25).value == 0


def test_an_allowance_comes_back_as_old_events_leave_the_window(
    store: CounterStore, unique: str
) -> None:
    # given a limit of 2 in a minute, used at 0s and 30s
    check = _count(_key(unique), limit=2, window=60)
    store.apply([check], T0, record=True)
    store.apply([check], T0 + 30, record=True)

    # when the first event has left the window, one more action fits, but not two
    later = T0 + 62
    assert store.apply([check], later, record=True)[0].value == 1
    assert store.apply([check], later, record=True)[0].value == 2
    assert _read(store, check, later).value == 2


def test_a_member_seen_again_stays_counted_from_its_last_visit(
    store: CounterStore, unique: str
) -> None:
    key = _key(unique)
    store.apply([_distinct(key, "alice", limit=5)], T0, record=True)
    store.apply([_distinct(key, "alice", limit=5)], T0 + 50, record=True)

    reading = _read(store, _distinct(key, "alice", limit=5), T0 + 100)

    assert reading == CounterReading(1, already_member=True)


# What is not recorded ------------------------------------------------------------------------


def test_blocked_attempts_do_not_use_up_any_allowance(store: CounterStore, unique: str) -> None:
    # given a full allowance, and many blocked attempts afterwards
    check = _count(_key(unique), limit=2, window=60)
    store.apply([check], T0, record=True)
    store.apply([check], T0, record=True)
    for second in range(1, 40):
        assert store.apply([check], T0 + second, record=True)[0].value == 2

    # when the recorded actions leave the window, the whole allowance is back
    assert _read(store, check, T0 + 62).value == 0


def test_a_read_without_record_never_counts(store: CounterStore, unique: str) -> None:
    count = _count(_key(unique, "count"), limit=100)
    members = _distinct(_key(unique, "members"), "alice", limit=100)

    for _ in range(5):
        readings = store.apply([count, members], T0, record=False)
        assert readings == [CounterReading(0), CounterReading(0, already_member=False)]


def test_a_non_blocking_check_keeps_counting_past_its_limit(
    store: CounterStore, unique: str
) -> None:
    check = _count(_key(unique), limit=1, blocking=False)

    values = [store.apply([check], T0, record=True)[0].value for _ in range(4)]

    assert values == [0, 1, 2, 3]


def test_one_blocking_check_over_its_limit_keeps_the_action_out_of_every_counter(
    store: CounterStore, unique: str
) -> None:
    # given a roomy counter, a members counter, and a tight counter already full
    roomy = _count(_key(unique, "roomy"), limit=100)
    members = _distinct(_key(unique, "members"), "alice", limit=100)
    tight = _count(_key(unique, "tight"), limit=1)
    store.apply([tight], T0, record=True)

    # when one action is checked against all three
    readings = store.apply([roomy, members, tight], T0, record=True)

    # then every counter is read, and none of them recorded the action
    assert readings == [CounterReading(0), CounterReading(0), CounterReading(1)]
    assert _read(store, roomy, T0).value == 0
    assert _read(store, members, T0) == CounterReading(0, already_member=False)
    assert _read(store, tight, T0).value == 1


def test_a_non_blocking_check_over_its_limit_does_not_stop_the_others_recording(
    store: CounterStore, unique: str
) -> None:
    roomy = _count(_key(unique, "roomy"), limit=100)
    over = _count(_key(unique, "over"), limit=0, blocking=False)

    store.apply([roomy, over], T0, record=True)

    assert _read(store, roomy, T0).value == 1
    assert _read(store, over, T0).value == 1


def test_a_distinct_blocking_check_over_its_limit_keeps_the_action_out_of_a_count(
    store: CounterStore, unique: str
) -> None:
    count = _count(_key(unique, "count"), limit=100)
    device = _key(unique, "device")
    store.apply([_distinct(device, "alice", limit=1)], T0, record=True)

    store.apply([count, _distinct(device, "bob", limit=1)], T0, record=True)
    store.apply([count, _distinct(device, "alice", limit=1)], T0, record=True)

    # bob's action was refused; alice, already counted on the device, went ahead
    assert _read(store, count, T0).value == 1


# The stores against an exact reference model -------------------------------------------------


@dataclass(frozen=True)
class Event:
    gap_quarters: int  # quarter seconds since the previous event
    amount: int
    member: str
    record: bool


@dataclass(frozen=True)
class Stream:
    window: int
    start: float
    sum_limit: int
    sum_blocking: bool
    distinct_limit: int
    distinct_blocking: bool
    events: tuple[Event, ...]


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    window = draw(st.sampled_from([60, 61, 90, 600, 3600, 86400]))
    width = bucket_width(window)
    # Mostly gaps inside a bucket or a fraction of the window, sometimes about a whole window,
    # so events land on both sides of every boundary.
    gap = st.one_of(
        st.integers(0, 4 * width),
        st.integers(0, window // 2),
        st.integers(4 * (window - 2 * width), 4 * (window + 3 * width)),
    )
    event = st.builds(
        Event,
        gap_quarters=gap,
        amount=st.integers(1, 1000),
        member=st.sampled_from(["a", "b", "c", "d", "e"]),
        record=st.sampled_from([True, True, True, False]),
    )
    return Stream(
        window=window,
        start=T0 + draw(st.integers(0, 4 * 86400)) / 4,
        sum_limit=draw(st.integers(1, 5000)),
        sum_blocking=draw(st.booleans()),
        distinct_limit=draw(st.integers(1, 4)),
        distinct_blocking=draw(st.booleans()),
        events=tuple(draw(st.lists(event, min_size=1, max_size=40))),
    )


def _checks(stream: Stream, event: Event, prefix: str) -> list[CounterCheck]:
    return [
        CounterCheck(
            f"{prefix}:sum",
            SUM,
            stream.window,
            stream.sum_limit,
            increment=event.amount,
            blocking=stream.sum_blocking,
        ),
        CounterCheck(
            f"{prefix}:distinct",
            DISTINCT,
            stream.window,
            stream.distinct_limit,
            member=event.member,
            blocking=stream.distinct_blocking,
        ),
    ]


def _run(stream: Stream, store: CounterStore) -> list[list[CounterReading]]:
    """Play the stream against the store, checking every reading against an exact model of
    what was recorded: younger than W must be counted, W + 2 buckets or older must not."""
    prefix = f"zl:test:{{{uuid.uuid4().hex}}}"
    window, width = stream.window, bucket_width(stream.window)
    recorded_amounts: list[tuple[float, int]] = []
    last_seen: dict[str, float] = {}
    now = stream.start
    history = []
    for event in stream.events:
        now += event.gap_quarters / 4
        total, members = store.apply(_checks(stream, event, prefix), now, event.record)
        history.append([total, members])

        # the model's bounds: what is at most W old must count; what is W + 2 buckets old
        # or older must not
        horizon = window + 2 * width
        must_sum = sum(a for t, a in recorded_amounts if now - t <= window)
        may_sum = sum(a for t, a in recorded_amounts if now - t < horizon)
        assert must_sum <= total.value <= may_sum
        must_members = {m for m, t in last_seen.items() if now - t <= window}
        may_members = {m for m, t in last_seen.items() if now - t < horizon}
        assert len(must_members) <= members.value <= len(may_members)
        if event.member in must_members:
            assert members.already_member
        if event.member not in may_members:
            assert not members.already_member

        blocked = (stream.sum_blocking and total.value + event.amount > stream.sum_limit) or (
            stream.distinct_blocking
            and not members.already_member
            and members.value + 1 > stream.distinct_limit
        )
        if event.record and not blocked:
            recorded_amounts.append((now, event.amount))
            last_seen[event.member] = now
    return history


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=streams())
def test_a_store_never_forgets_a_young_event_nor_counts_an_old_one(
    store: CounterStore, stream: Stream
) -> None:
    _run(stream, store)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=streams())
def test_the_memory_and_redis_stores_read_the_same_values(redis_url: str, stream: Stream) -> None:
    redis_store = RedisCounterStore(redis_url)
    try:
        assert _run(stream, MemoryCounterStore()) == _run(stream, redis_store)
    finally:
        redis_store.client.close()


# Concurrency ---------------------------------------------------------------------------------

THREADS = 8
CALLS = 50
LIMIT = 100


def _race(apply: Callable[[int], bool]) -> int:
    """Run ``apply`` CALLS times in each of THREADS threads started together; how many were
    admitted."""
    barrier = threading.Barrier(THREADS, timeout=30)

    def worker(index: int) -> int:
        barrier.wait()
        return sum(apply(index) for _ in range(CALLS))

    with ThreadPoolExecutor(THREADS) as pool:
        return sum(pool.map(worker, range(THREADS)))


def test_threads_sharing_a_memory_store_record_exactly_the_limit(unique: str) -> None:
    store = MemoryCounterStore()
    check = _count(_key(unique), limit=LIMIT)

    admitted = _race(lambda _: store.apply([check], T0, record=True)[0].value < LIMIT)

    assert admitted == LIMIT
    assert _read(store, check, T0).value == LIMIT


def test_processes_sharing_redis_record_exactly_the_limit(redis_url: str, unique: str) -> None:
    # given one store (one connection) per thread, as separate API processes would have
    stores = [RedisCounterStore(redis_url) for _ in range(THREADS)]
    check = _count(_key(unique), limit=LIMIT)
    try:
        # when 400 attempts race for 100 units of allowance
        admitted = _race(lambda i: stores[i].apply([check], T0, record=True)[0].value < LIMIT)

        # then exactly 100 were admitted and recorded
        assert admitted == LIMIT
        assert _read(stores[0], check, T0).value == LIMIT
    finally:
        for redis_store in stores:
            redis_store.client.close()
