"""The sandbox's rules: WeChat Pay's retry schedule, acknowledgements and id formats."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from zanloop.sandbox import domain

# WeChat Pay: 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h, 24h4m in all.
SCHEDULE = [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600]


@pytest.mark.parametrize(
    ("attempts_made", "delay"),
    [pytest.param(n, s, id=f"after-attempt-{n}") for n, s in enumerate(SCHEDULE, start=1)],
)
def test_retry_delay_follows_wechats_schedule(attempts_made: int, delay: int) -> None:
    assert domain.retry_delay(attempts_made, 1.0) == delay


def test_the_schedule_gives_up_after_sixteen_attempts_and_a_day() -> None:
    assert domain.retry_delay(16, 1.0) is None
    assert domain.retry_delay(17, 1.0) is None
    assert sum(SCHEDULE) == 24 * 3600 + 4 * 60


def test_the_schedule_scales() -> None:
    assert domain.retry_delay(15, 0.001) == pytest.approx(21.6)


@pytest.mark.parametrize(
    ("status_code", "acknowledged"),
    [
        (200, True),
        (204, True),
        (201, False),
        (202, False),
        (302, False),
        (400, False),
        (500, False),
    ],
    ids=str,
)
def test_only_200_and_204_acknowledge(status_code: int, acknowledged: bool) -> None:
    assert domain.acknowledged(status_code) is acknowledged


MOMENT = datetime(2026, 3, 1, 17, 30, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        pytest.param(domain.new_mchid, r"19\d{8}", id="mchid"),
        pytest.param(domain.new_apiv3_key, r"[A-Za-z2-9]{32}", id="apiv3-key"),
        pytest.param(lambda: domain.new_transaction_id(MOMENT), r"4200020260301\d{15}", id="txn"),
        pytest.param(lambda: domain.new_refund_id(MOMENT), r"5030020260301\d{15}", id="refund"),
        pytest.param(lambda: domain.new_prepay_id(MOMENT), r"wx01173005[0-9a-f]{28}", id="prepay"),
    ],
)
def test_ids_look_like_wechats(make: object, pattern: str) -> None:
    assert callable(make)
    values = {make() for _ in range(20)}

    assert all(re.fullmatch(pattern, v) for v in values), values
    assert len(values) == 20


def test_times_are_written_in_beijing_time() -> None:
    assert domain.rfc3339(MOMENT) == "2026-03-02T01:30:05+08:00"
    assert datetime.fromisoformat(domain.rfc3339(MOMENT)) == MOMENT
