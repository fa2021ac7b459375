"""Sliding-window counters for the online rules: in-process, or in Redis for many processes.

Both stores keep a window in about 60 buckets (one second wide for a 1-minute window, 24
minutes for a day), so a counter costs O(1) memory whatever the traffic, and an event is
forgotten between W and W + W/60 after it happened (never earlier: a limit is never loose).
Distinct counts (accounts per device) keep each member with the time it was last seen.

``apply`` reads every counter of a decision and records the action in all of them only when
no blocking counter would go over its limit: in one lock in-process, in one Lua script in
Redis, so two API processes can never both take the last unit of an allowance.

Why not the ``limits`` library: its moving window stores one entry per unit of cost (a sum of
fen would store one entry per fen), it has no distinct counts, and it checks one limit per
call, so a decision with several rules could not be checked and recorded atomically.
"""

from __future__ import annotations

import heapq
import math
import threading
from collections.abc import Sequence
from typing import Protocol

import redis

from zanloop.risk.domain import CounterCheck, CounterKind, CounterReading

BUCKETS = 60
# Expired keys are dropped a few at a time on each call, so no call waits for a full scan.
_SWEEP_BATCH = 32


def bucket_width(window_seconds: int) -> int:
    return max(1, math.ceil(window_seconds / BUCKETS))


class CountersUnavailable(Exception):
    """The counter store could not be reached; the decision falls back to a review."""


class CounterStore(Protocol):
    def apply(
        self, checks: Sequence[CounterCheck], now: float, record: bool
    ) -> list[CounterReading]: ...

    def release(
        self, checks: Sequence[CounterCheck], readings: Sequence[CounterReading], now: float
    ) -> None:
        """Give back what ``apply(checks, now, record=True)`` recorded (its transaction rolled
        back): sums lose the increment, a member added then is removed again."""


def commits(
    checks: Sequence[CounterCheck], readings: Sequence[CounterReading], record: bool
) -> bool:
    return record and not any(
        c.blocking and c.exceeded_by(r.value, r.already_member)
        for c, r in zip(checks, readings, strict=True)
    )


class MemoryCounterStore:
    """Counters of one process: the embedded default."""

    def __init__(self) -> None:
        self._sums: dict[str, dict[int, int]] = {}
        self._members: dict[str, dict[str, float]] = {}
        self._expires: dict[str, float] = {}
        # (scheduled expiry, key), one entry per key: the sweep pops the oldest and checks.
        self._schedule: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def apply(
        self, checks: Sequence[CounterCheck], now: float, record: bool
    ) -> list[CounterReading]:
        with self._lock:
            readings = [self._read(c, now) for c in checks]
            if commits(checks, readings, record):
                for check in checks:
                    self._bump(check, now)
            self._sweep(now)
            return readings

    def release(
        self, checks: Sequence[CounterCheck], readings: Sequence[CounterReading], now: float
    ) -> None:
        with self._lock:
            for check, reading in zip(checks, readings, strict=True):
                if check.kind is CounterKind.SUM:
                    buckets = self._sums.get(check.key)
                    bucket = int(now // bucket_width(check.window_seconds))
                    if buckets is not None and bucket in buckets:
                        buckets[bucket] -= check.increment
                elif not reading.already_member:
                    members = self._members.get(check.key)
                    if members is not None and members.get(check.member) == now:
                        del members[check.member]

    def _read(self, check: CounterCheck, now: float) -> CounterReading:
        width = bucket_width(check.window_seconds)
        if check.kind is CounterKind.SUM:
            buckets = self._sums.get(check.key)
            if not buckets:
                return CounterReading(0)
            oldest = int(now // width) - math.ceil(check.window_seconds / width)
            for stale in [b for b in buckets if b < oldest]:
                del buckets[stale]
            return CounterReading(sum(buckets.values()))
        members = self._members.get(check.key)
        if not members:
            return CounterReading(0)
        cutoff = now - check.window_seconds - width
        for gone in [m for m, seen in members.items() if seen < cutoff]:
            del members[gone]
        return CounterReading(len(members), check.member in members)

    def _bump(self, check: CounterCheck, now: float) -> None:
        width = bucket_width(check.window_seconds)
        if check.kind is CounterKind.SUM:
            buckets = self._sums.setdefault(check.key, {})
            bucket = int(now // width)
            buckets[bucket] = buckets.get(bucket, 0) + check.increment
        else:
            self._members.setdefault(check.key, {})[check.member] = now
        until = now + check.window_seconds + 2 * width
        if check.key not in self._expires:
            heapq.heappush(self._schedule, (until, check.key))
        self._expires[check.key] = until

    def _sweep(self, now: float) -> None:
        for _ in range(_SWEEP_BATCH):
            if not self._schedule or self._schedule[0][0] >= now:
                return
            _, key = heapq.heappop(self._schedule)
            until = self._expires[key]
            if until >= now:  # used again since: look at it when it really runs out
                heapq.heappush(self._schedule, (until, key))
                continue
            del self._expires[key]
            self._sums.pop(key, None)
            self._members.pop(key, None)

    def __len__(self) -> int:
        return len(self._expires)


# KEYS: one per check. ARGV: now, record, then six per check:
# kind, window, limit, increment, member, blocking. Returns the values, then the membership flags.
_APPLY = """
local now = tonumber(ARGV[1])
local ok = ARGV[2] == '1'
local n = #KEYS
local values, present = {}, {}
local function width_of(window) return math.max(1, math.ceil(window / 60)) end
for i = 1, n do
  local a = 2 + (i - 1) * 6
  local kind, window = ARGV[a + 1], tonumber(ARGV[a + 2])
  local limit, inc = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local member, blocking = ARGV[a + 5], ARGV[a + 6] == '1'
  local width = width_of(window)
  if kind == 'sum' then
    local oldest = math.floor(now / width) - math.ceil(window / width)
    local flat = redis.call('HGETALL', KEYS[i])
    local total = 0
    for j = 1, #flat, 2 do
      if tonumber(flat[j]) >= oldest then
        total = total + tonumber(flat[j + 1])
      else
        redis.call('HDEL', KEYS[i], flat[j])
      end
    end
    values[i], present[i] = total, 0
    if blocking and total + inc > limit then ok = false end
  else
    local cutoff = string.format('%.17g', now - window - width)
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. cutoff)
    local card = redis.call('ZCARD', KEYS[i])
    local seen = redis.call('ZSCORE', KEYS[i], member)
    values[i], present[i] = card, seen and 1 or 0
    if blocking and not seen and card + 1 > limit then ok = false end
  end
end
if ok then
  for i = 1, n do
    local a = 2 + (i - 1) * 6
    local window = tonumber(ARGV[a + 2])
    local width = width_of(window)
    if ARGV[a + 1] == 'sum' then
      redis.call('HINCRBY', KEYS[i], tostring(math.floor(now / width)), ARGV[a + 4])
    else
      redis.call('ZADD', KEYS[i], now, ARGV[a + 5])
    end
    redis.call('PEXPIRE', KEYS[i], (window + 2 * width) * 1000)
  end
end
for i = 1, n do values[n + i] = present[i] end
return values
"""


# Gives back one recorded decision. ARGV: now, then four per check: kind, window, increment,
# member-to-remove ('' when the member was already there before the decision).
_RELEASE = """
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local a = 1 + (i - 1) * 4
  local window = tonumber(ARGV[a + 2])
  local width = math.max(1, math.ceil(window / 60))
  if ARGV[a + 1] == 'sum' then
    local bucket = tostring(math.floor(now / width))
    if redis.call('HEXISTS', KEYS[i], bucket) == 1 then
      redis.call('HINCRBY', KEYS[i], bucket, -tonumber(ARGV[a + 3]))
    end
  elseif ARGV[a + 4] ~= '' then
    local seen = redis.call('ZSCORE', KEYS[i], ARGV[a + 4])
    if seen and tonumber(seen) == now then redis.call('ZREM', KEYS[i], ARGV[a + 4]) end
  end
end
return 0
"""


class RedisCounterStore:
    """Counters shared by every API and worker process that points at one Redis."""

    def __init__(self, url: str, timeout_seconds: float = 0.5) -> None:
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )
        self._script = self.client.register_script(_APPLY)
        self._release = self.client.register_script(_RELEASE)

    def apply(
        self, checks: Sequence[CounterCheck], now: float, record: bool
    ) -> list[CounterReading]:
        if not checks:
            return []
        args: list[str | int | float] = [repr(now), "1" if record else "0"]
        for c in checks:
            args += [
                c.kind.value,
                c.window_seconds,
                c.limit,
                c.increment,
                c.member,
                int(c.blocking),
            ]
        try:
            raw = self._script(keys=[c.key for c in checks], args=args)
        except redis.RedisError as exc:
            raise CountersUnavailable(str(exc)) from exc
        n = len(checks)
        return [CounterReading(int(raw[i]), bool(int(raw[n + i]))) for i in range(n)]

    def release(
        self, checks: Sequence[CounterCheck], readings: Sequence[CounterReading], now: float
    ) -> None:
        if not checks:
            return
        args: list[str | int] = [repr(now)]
        for c, r in zip(checks, readings, strict=True):
            member = c.member if c.kind is CounterKind.DISTINCT and not r.already_member else ""
            args += [c.kind.value, c.window_seconds, c.increment, member]
        try:
            self._release(keys=[c.key for c in checks], args=args)
        except redis.RedisError as exc:
            raise CountersUnavailable(str(exc)) from exc


_stores: dict[str | None, CounterStore] = {}
_stores_lock = threading.Lock()


def store_for(redis_url: str | None) -> CounterStore:
    """One store per process and URL: Redis when configured, else this process's memory."""
    with _stores_lock:
        store = _stores.get(redis_url)
        if store is None:
            store = RedisCounterStore(redis_url) if redis_url else MemoryCounterStore()
            _stores[redis_url] = store
        return store
