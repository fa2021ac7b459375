"""Pure job rules: backoff with jitter, periodic slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from zanloop.jobs import domain


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [
        pytest.param(0, 2.0, id="before-first"),
        pytest.param(1, 2.0, id="first"),
        pytest.param(2, 4.0, id="second"),
        pytest.param(3, 8.0, id="third"),
        pytest.param(10, 1024.0, id="tenth"),
        pytest.param(12, 3600.0, id="capped"),
        pytest.param(5000, 3600.0, id="huge-attempt-still-capped"),
    ],
)
def test_retry_delay_is_full_jitter_below_an_exponential_ceiling(
    attempt: int, ceiling: float
) -> None:
    delays = [domain.retry_delay(attempt) for _ in range(200)]

    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1


def test_retry_delay_honours_base_and_cap() -> None:
    assert all(5 <= domain.retry_delay(1, base_seconds=10) <= 10 for _ in range(50))
    assert all(15 <= domain.retry_delay(9, cap_seconds=30) <= 30 for _ in range(50))


def test_next_run_is_in_the_future() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)

    assert now + timedelta(seconds=4) <= domain.next_run(now, 3) <= now + timedelta(seconds=8)


@pytest.mark.parametrize(
    ("first", "second", "same_slot"),
    [
        pytest.param("12:00:00", "12:00:29", True, id="within-a-slot"),
        pytest.param("12:00:29", "12:00:30", False, id="across-a-boundary"),
        pytest.param("12:00:30", "12:00:59", True, id="next-slot"),
    ],
)
def test_periodic_slot(first: str, second: str, same_slot: bool) -> None:
    def at(clock: str) -> datetime:
        return datetime.fromisoformat(f"2026-01-01T{clock}+00:00")

    slots = domain.periodic_slot(at(first), 30), domain.periodic_slot(at(second), 30)

    assert (slots[0] == slots[1]) is same_slot


def test_statuses_are_upper_case_strings() -> None:
    assert [s.value for s in domain.JobStatus] == ["QUEUED", "RUNNING", "DONE", "DEAD"]
