"""What a repeated Idempotency-Key means. Pure rules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from zanloop.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, Unprocessable

MAX_KEY_LENGTH = 255
LOCK_SECONDS = 60
# How long a finished request's answer is kept for replays (Stripe keeps 24 hours).
RETENTION_HOURS = 24


class KeyStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), b"\n", path.encode(), b"\n", body):
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise Unprocessable(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
            field="Idempotency-Key",
        )


@dataclass(frozen=True)
class Stored:
    status: KeyStatus
    fingerprint: str
    response_status: int | None
    # A JSON object, a list (batch endpoints) or None (204 No Content).
    response_body: Any
    locked_until: datetime | None


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: Any


def on_repeat(stored: Stored, request_fingerprint: str, now: datetime) -> Replay | None:
    """A replay to return, or None when the caller may take over an abandoned key.

    Raises 422 when the key came with another request, 409 while the first one still runs."""
    if stored.fingerprint != request_fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request", field="Idempotency-Key"
        )
    if stored.status is KeyStatus.COMPLETED:
        assert stored.response_status is not None
        return Replay(stored.response_status, stored.response_body)
    if stored.locked_until is not None and stored.locked_until > now:
        raise IdempotencyKeyInFlight("the first request with this Idempotency-Key is still running")
    return None
