"""The sandbox's rules: WeChat Pay's notification retry schedule and id formats."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

CHINA_TZ = timezone(timedelta(hours=8))

# WeChat Pay retries an unacknowledged notification after these delays (seconds): 15 retries,
# about 24 hours in all.
RETRY_SCHEDULE_SECONDS = (
    15,
    15,
    30,
    180,
    600,
    1200,
    1800,
    1800,
    1800,
    3600,
    10800,
    10800,
    10800,
    21600,
    21600,
)


def retry_delay(attempts_made: int, scale: float) -> float | None:
    """Delay before the next attempt, or None once the schedule is exhausted."""
    if attempts_made > len(RETRY_SCHEDULE_SECONDS):
        return None
    return RETRY_SCHEDULE_SECONDS[attempts_made - 1] * scale


def acknowledged(status_code: int) -> bool:
    return status_code in (200, 204)


def new_mchid() -> str:
    return "19" + "".join(secrets.choice("0123456789") for _ in range(8))


def new_apiv3_key() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(32))


def new_transaction_id(now: datetime) -> str:
    return (
        "42000" + now.strftime("%Y%m%d") + "".join(secrets.choice("0123456789") for _ in range(15))
    )


def new_refund_id(now: datetime) -> str:
    return (
        "50300" + now.strftime("%Y%m%d") + "".join(secrets.choice("0123456789") for _ in range(15))
    )


def new_prepay_id(now: datetime) -> str:
    return "wx" + now.strftime("%d%H%M%S") + secrets.token_hex(14)


def rfc3339(value: datetime) -> str:
    """WeChat Pay writes times in Beijing time with an explicit offset."""
    return value.astimezone(CHINA_TZ).isoformat(timespec="seconds")
