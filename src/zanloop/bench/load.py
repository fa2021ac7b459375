"""Closed-loop HTTP load: a fixed number of client threads, each sending its next request as
soon as the previous one is answered, over its own keep-alive connection."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx


@dataclass(frozen=True)
class Call:
    path: str
    headers: dict[str, str]
    content: bytes


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    bodies: list[tuple[int, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.latencies)

    def sorted_latencies(self) -> list[float]:
        return sorted(self.latencies)


def run_load(
    base_url: str, calls: Sequence[Call], concurrency: int, *, keep_json: bool = False
) -> LoadResult:
    """Send every call once from ``concurrency`` threads; ``bodies`` holds (index, JSON) when
    ``keep_json``."""
    next_index = itertools.count()
    lock = threading.Lock()
    start_gate = threading.Barrier(concurrency + 1)
    result = LoadResult(seconds=0.0)

    def client_thread() -> None:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        bodies: list[tuple[int, Any]] = []
        errors: list[str] = []
        with httpx.Client(base_url=base_url, timeout=60) as client:
            start_gate.wait()
            while (i := next(next_index)) < len(calls):
                call = calls[i]
                started = time.perf_counter()
                try:
                    response = client.post(call.path, headers=call.headers, content=call.content)
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if keep_json and response.content:
                    bodies.append((i, response.json()))
        with lock:
            result.latencies.extend(latencies)
            result.errors.extend(errors)
            result.bodies.extend(bodies)
            for status, n in statuses.items():
                result.statuses[status] = result.statuses.get(status, 0) + n

    threads = [threading.Thread(target=client_thread, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    # Connections are opened lazily, so the clock starts when all threads are ready to send.
    start_gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    return result
