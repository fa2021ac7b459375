"""The sandbox delivers notifications the way WeChat Pay does: signed, the same body every
time, retried on WeChat's schedule until a 200/204, given up after 16 attempts."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.sandbox.conftest import Receiver
from tests.sandbox.test_domain import SCHEDULE
from zanloop.config import Settings
from zanloop.jobs.worker import Worker
from zanloop.kit.clock import utcnow

Order = dict[str, Any]


def notifications(client: TestClient, t: TenantHandle) -> list[dict[str, Any]]:
    response = client.get("/v1/sandbox/notifications", headers=t.headers)
    assert response.status_code == 200, response.text
    return list(response.json())


def pay_towards(
    url: str,
    settings: Settings,
    client: TestClient,
    t: TenantHandle,
    create_order: Callable[..., Order],
) -> Order:
    """An order whose notify URL is ``url`` (the merchant's public URL), paid by the buyer."""
    settings.public_url = url.removesuffix("/wechat/notify")
    order = create_order(t, 990)
    response = client.post(f"/v1/sandbox/orders/{order['out_trade_no']}/pay", headers=t.headers)
    assert response.status_code == 200, response.text
    return order


def test_an_unacknowledged_notification_is_retried_after_15_seconds(
    client: TestClient,
    settings: Settings,
    worker: Worker,
    tenant: TenantHandle,
    receiver: Receiver,
    create_order: Callable[..., Order],
) -> None:
    settings.sandbox_retry_scale = 1.0
    pay_towards(receiver.url, settings, client, tenant, create_order)

    before = utcnow()
    worker.drain()
    after = utcnow()
    worker.drain()  # the retry is not due yet

    [sent] = notifications(client, tenant)
    assert len(receiver.received) == 1
    assert (sent["status"], sent["attempts"], sent["last_status_code"]) == ("RETRYING", 1, 500)
    assert "busy" in sent["last_error"]
    retry_at = datetime.fromisoformat(sent["next_attempt_at"])
    assert before + timedelta(seconds=15) <= retry_at <= after + timedelta(seconds=15)


def test_a_notification_nobody_acknowledges_fails_after_16_attempts(
    client: TestClient,
    settings: Settings,
    worker: Worker,
    tenant: TenantHandle,
    receiver: Receiver,
    create_order: Callable[..., Order],
) -> None:
    settings.sandbox_retry_scale = 0.00001  # the 24-hour schedule in under a second
    order = pay_towards(receiver.url, settings, client, tenant, create_order)

    deadline = time.monotonic() + 20
    while notifications(client, tenant)[0]["status"] != "FAILED":
        assert time.monotonic() < deadline, notifications(client, tenant)
        worker.drain()
        time.sleep(0.005)

    [sent] = notifications(client, tenant)
    assert (sent["attempts"], sent["next_attempt_at"], sent["delivered_at"]) == (16, None, None)
    assert len(receiver.received) == 16
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    assert all(gap >= delay * 0.00001 for gap, delay in zip(gaps, SCHEDULE, strict=True))
    # WeChat resends the same notification (same body and id), freshly signed each time.
    assert len({r.body for r in receiver.received}) == 1
    assert len({r.headers["Wechatpay-Nonce"] for r in receiver.received}) == 16
    assert json.loads(receiver.received[0].body)["resource"]["algorithm"] == "AEAD_AES_256_GCM"
    status = client.get(f"/v1/payments/orders/{order['id']}", headers=tenant.headers).json()
    assert status["status"] == "NOTPAY"  # zanloop never heard; reconciliation is its fallback


def test_delivery_stops_at_the_first_acknowledgement(
    client: TestClient,
    settings: Settings,
    worker: Worker,
    tenant: TenantHandle,
    receiver: Receiver,
    create_order: Callable[..., Order],
) -> None:
    receiver.answers = [500, 503, 204]
    pay_towards(receiver.url, settings, client, tenant, create_order)

    deadline = time.monotonic() + 10
    while notifications(client, tenant)[0]["status"] != "DELIVERED":
        assert time.monotonic() < deadline, notifications(client, tenant)
        worker.drain()
        time.sleep(0.005)
    worker.drain()

    [sent] = notifications(client, tenant)
    assert (sent["attempts"], sent["last_status_code"], sent["last_error"]) == (3, 204, None)
    assert sent["delivered_at"] is not None
    assert sent["next_attempt_at"] is None
    assert len(receiver.received) == 3


def test_an_unreachable_notify_url_is_retried(
    client: TestClient,
    settings: Settings,
    worker: Worker,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
) -> None:
    from tests.payments.conftest import free_port

    settings.sandbox_retry_scale = 1.0
    pay_towards(f"http://127.0.0.1:{free_port()}", settings, client, tenant, create_order)

    worker.drain()

    [sent] = notifications(client, tenant)
    assert (sent["status"], sent["attempts"], sent["last_status_code"]) == ("RETRYING", 1, None)
    assert "Connect" in sent["last_error"]


def test_a_delivered_notification_verifies_with_the_published_platform_key(
    client: TestClient,
    settings: Settings,
    worker: Worker,
    tenant: TenantHandle,
    receiver: Receiver,
    create_order: Callable[..., Order],
) -> None:
    receiver.answers = [204]
    pay_towards(receiver.url, settings, client, tenant, create_order)
    worker.drain()
    published = client.get("/v1/sandbox/platform-key", headers=tenant.headers).json()

    [got] = receiver.received
    key = serialization.load_pem_public_key(published["public_key_pem"].encode())
    assert isinstance(key, rsa.RSAPublicKey)
    h = got.headers
    assert h["Wechatpay-Serial"] == published["public_key_id"]
    assert h["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    key.verify(
        base64.b64decode(h["Wechatpay-Signature"]),
        f"{h['Wechatpay-Timestamp']}\n{h['Wechatpay-Nonce']}\n{got.body.decode()}\n".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert abs(int(h["Wechatpay-Timestamp"]) - time.time()) < 60


def test_the_notification_log_lists_this_tenants_notifications_newest_first(
    client: TestClient,
    worker: Worker,
    tenant: TenantHandle,
    make_tenant: Callable[..., TenantHandle],
    paid_order: Callable[..., Order],
) -> None:
    order = paid_order(tenant, 1000)
    client.post(
        f"/v1/payments/orders/{order['id']}/refunds",
        json={"amount_fen": 100},
        headers=tenant.write_headers(),
    )
    worker.drain()
    other = make_tenant("Other")

    log = notifications(client, tenant)

    assert [(n["event_type"], n["status"]) for n in log] == [
        ("REFUND.SUCCESS", "DELIVERED"),
        ("TRANSACTION.SUCCESS", "DELIVERED"),
    ]
    assert all(n["attempts"] == 1 and n["last_status_code"] == 204 for n in log)
    assert log[0]["notify_url"] == f"http://testserver/v1/payments/notify/{tenant.id}"
    assert notifications(client, other) == []
