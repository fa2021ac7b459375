"""Pure webhook rules: who wants what, when to retry, what a secret looks like."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from zanloop.webhooks import domain


@pytest.mark.parametrize(
    ("event_types", "event_type", "wanted"),
    [
        pytest.param([], "payment.succeeded", True, id="empty-wants-everything"),
        pytest.param(["payment.succeeded"], "payment.succeeded", True, id="exact"),
        pytest.param(["payment.succeeded"], "payment.refunded", False, id="exact-other"),
        pytest.param(["payment.*"], "payment.refunded", True, id="family"),
        pytest.param(["payment.*"], "payment.refund.partial", True, id="family-deeper"),
        pytest.param(["payment.*"], "payment", False, id="family-is-not-its-prefix"),
        pytest.param(["payment.*"], "payments.succeeded", False, id="family-similar-name"),
        pytest.param(["payment.*"], "refund.failed", False, id="family-other"),
        pytest.param(["refund.failed", "payment.*"], "refund.failed", True, id="any-of-several"),
        pytest.param(["payment.succeeded"], "payment.succeeded.x", False, id="exact-not-prefix"),
        pytest.param(["payment"], "payment.succeeded", False, id="bare-word"),
    ],
)
def test_wants(event_types: list[str], event_type: str, wanted: bool) -> None:
    assert domain.wants(event_types, event_type) is wanted


@pytest.mark.parametrize(
    ("attempts_made", "scheduled"),
    [
        pytest.param(n, seconds, id=f"after-attempt-{n}")
        for n, seconds in enumerate(domain.RETRY_SCHEDULE_SECONDS, start=1)
    ],
)
@pytest.mark.parametrize(
    "scale", [pytest.param(1.0, id="real-time"), pytest.param(0.001, id="fast")]
)
def test_retry_delay_follows_the_schedule_with_ten_percent_jitter(
    attempts_made: int, scheduled: int, scale: float
) -> None:
    delays = [domain.retry_delay(attempts_made, scale) for _ in range(200)]

    assert all(
        d is not None and 0.9 * scheduled * scale <= d <= 1.1 * scheduled * scale for d in delays
    )
    assert len(set(delays)) > 1


def test_standard_webhooks_schedule() -> None:
    assert domain.RETRY_SCHEDULE_SECONDS == (5, 300, 1800, 7200, 18000, 36000, 36000)


@pytest.mark.parametrize("attempts_made", [8, 9, 100])
def test_no_retry_after_the_eighth_attempt(attempts_made: int) -> None:
    assert domain.retry_delay(attempts_made, 1.0) is None


@pytest.mark.parametrize(
    ("status_code", "ok"),
    [
        (200, True),
        (201, True),
        (204, True),
        (299, True),
        (199, False),
        (301, False),
        (410, False),
        (500, False),
    ],
)
def test_only_2xx_succeeds(status_code: int, ok: bool) -> None:
    assert domain.succeeded(status_code) is ok


def test_secret_is_standard_webhooks_format_and_unique() -> None:
    secrets = {domain.new_secret() for _ in range(50)}

    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        assert 24 <= len(raw) <= 64


def test_secret_signs_and_verifies_with_the_reference_library() -> None:
    secret = domain.new_secret()
    now = datetime.now(UTC)
    body = '{"type":"payment.succeeded","timestamp":"t","data":{}}'
    signature = Webhook(secret).sign(msg_id="msg_1", timestamp=now, data=body)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }

    assert signature.startswith("v1,")
    assert Webhook(secret).verify(body, headers)["type"] == "payment.succeeded"
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(domain.new_secret()).verify(body, headers)


def test_envelope_has_type_timestamp_and_data() -> None:
    envelope = domain.envelope(
        "payment.succeeded", "2026-01-01T00:00:00+00:00", {"order_id": "pay_1"}
    )

    assert envelope == {
        "type": "payment.succeeded",
        "timestamp": "2026-01-01T00:00:00+00:00",
        "data": {"order_id": "pay_1"},
    }
