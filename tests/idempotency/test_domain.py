"""What a repeated Idempotency-Key means, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from zanloop.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, Unprocessable
from zanloop.idempotency import domain
from zanloop.idempotency.domain import MAX_KEY_LENGTH, KeyStatus, Replay, Stored

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
FINGERPRINT = domain.fingerprint("POST", "/v1/ledger/transfers", b'{"a":1}')


def _stored(
    status: KeyStatus = KeyStatus.COMPLETED,
    fingerprint: str = FINGERPRINT,
    response: tuple[int, object] | None = (201, {"id": "trf_1"}),
    locked_until: datetime | None = None,
) -> Stored:
    code, body = response if response is not None else (None, None)
    return Stored(status, fingerprint, code, body, locked_until)


# Fingerprints -------------------------------------------------------------------------------


def test_the_same_request_has_the_same_fingerprint() -> None:
    again = domain.fingerprint("post", "/v1/ledger/transfers", b'{"a":1}')

    assert again == FINGERPRINT


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("PUT", "/v1/ledger/transfers", b'{"a":1}', id="method"),
        pytest.param("POST", "/v1/ledger/holds", b'{"a":1}', id="path"),
        pytest.param("POST", "/v1/ledger/transfers", b'{"a":2}', id="body"),
        pytest.param("POST", "/v1/ledger/transfers", b"", id="no-body"),
    ],
)
def test_any_difference_changes_the_fingerprint(method: str, path: str, body: bytes) -> None:
    assert domain.fingerprint(method, path, body) != FINGERPRINT


def test_path_and_body_cannot_be_shuffled_into_the_same_fingerprint() -> None:
    assert domain.fingerprint("POST", "/a", b"b") != domain.fingerprint("POST", "/a\nb", b"")


# Keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k", id="one-char"),
        pytest.param("8e03978e-40d5-43e8-bc93-6894a57f9324", id="uuid"),
        pytest.param("k" * MAX_KEY_LENGTH, id="longest"),
    ],
)
def test_acceptable_keys(key: str) -> None:
    domain.check_key(key)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("k" * (MAX_KEY_LENGTH + 1), id="too-long"),
        pytest.param("line\nbreak", id="control-character"),
    ],
)
def test_unacceptable_keys_are_422_naming_the_header(key: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        domain.check_key(key)

    assert refused.value.errors[0].field == "Idempotency-Key"


# Repeats ------------------------------------------------------------------------------------


def test_a_completed_request_is_replayed() -> None:
    assert domain.on_repeat(_stored(), FINGERPRINT, NOW) == Replay(201, {"id": "trf_1"})


def test_a_completed_request_without_a_body_is_replayed() -> None:
    stored = _stored(response=(204, None))

    assert domain.on_repeat(stored, FINGERPRINT, NOW) == Replay(204, None)


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(_stored(), id="completed"),
        pytest.param(
            _stored(KeyStatus.IN_PROGRESS, response=None, locked_until=NOW + timedelta(seconds=5)),
            id="in-progress",
        ),
    ],
)
def test_a_different_request_under_the_same_key_is_422(stored: Stored) -> None:
    other = domain.fingerprint("POST", "/v1/ledger/transfers", b'{"a":2}')

    with pytest.raises(IdempotencyKeyReused):
        domain.on_repeat(stored, other, NOW)


def test_a_request_still_running_is_409() -> None:
    stored = _stored(KeyStatus.IN_PROGRESS, response=None, locked_until=NOW + timedelta(seconds=1))

    with pytest.raises(IdempotencyKeyInFlight):
        domain.on_repeat(stored, FINGERPRINT, NOW)


@pytest.mark.parametrize(
    "locked_until",
    [pytest.param(NOW - timedelta(seconds=1), id="lock-expired"), pytest.param(None, id="no-lock")],
)
def test_an_abandoned_request_may_be_taken_over(locked_until: datetime | None) -> None:
    stored = _stored(KeyStatus.IN_PROGRESS, response=None, locked_until=locked_until)

    assert domain.on_repeat(stored, FINGERPRINT, NOW) is None
