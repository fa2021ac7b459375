"""Job states and retry timing: pure rules."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    DEAD = "DEAD"


def retry_delay(attempt: int, *, base_seconds: float = 2.0, cap_seconds: float = 3600.0) -> float:
    """Exponential backoff with full jitter (AWS architecture blog's variant)."""
    # The exponent is bounded so a large attempt number cannot overflow the float maths.
    ceiling = min(cap_seconds, base_seconds * 2 ** min(max(attempt - 1, 0), 64))
    return random.uniform(ceiling / 2, ceiling)


def next_run(now: datetime, attempt: int) -> datetime:
    return now + timedelta(seconds=retry_delay(attempt))


def periodic_slot(now: datetime, every_seconds: int) -> int:
    return int(now.timestamp()) // every_seconds
