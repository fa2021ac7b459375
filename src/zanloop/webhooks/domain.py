"""Webhook rules: which endpoint gets what, when to retry, how a secret looks. No I/O."""

from __future__ import annotations

import base64
import random
import secrets
from enum import StrEnum

# Standard Webhooks' suggested schedule after the first attempt (seconds): 5 s, 5 min, 30 min,
# 2 h, 5 h, 10 h, 10 h.
RETRY_SCHEDULE_SECONDS = (5, 300, 1800, 7200, 18000, 36000, 36000)


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def wants(event_types: list[str], event_type: str) -> bool:
    """Empty means everything; ``payment.*`` matches a whole family."""
    if not event_types:
        return True
    return any(
        pattern == event_type or (pattern.endswith(".*") and event_type.startswith(pattern[:-1]))
        for pattern in event_types
    )


def succeeded(status_code: int) -> bool:
    return 200 <= status_code < 300


def retry_delay(attempts_made: int, scale: float) -> float | None:
    """Seconds before the next attempt (±10 % jitter so retries do not stampede), or None."""
    if attempts_made > len(RETRY_SCHEDULE_SECONDS):
        return None
    base = RETRY_SCHEDULE_SECONDS[attempts_made - 1] * scale
    return base * random.uniform(0.9, 1.1)


def envelope(event_type: str, timestamp_iso: str, data: dict[str, object]) -> dict[str, object]:
    """The payload shape Standard Webhooks recommends: type, timestamp, data."""
    return {"type": event_type, "timestamp": timestamp_iso, "data": data}
