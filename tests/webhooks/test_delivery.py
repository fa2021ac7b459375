"""Payments reach a real receiver as signed Standard Webhooks messages, retried and replayable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from tests.conftest import TenantHandle
from tests.webhooks.conftest import Receiver, drain_until
from zanloop.jobs.worker import Worker

Pay = Callable[..., dict[str, Any]]
AddEndpoint = Callable[..., dict[str, Any]]


def deliveries(client: TestClient, t: TenantHandle, **params: str) -> list[dict[str, Any]]:
    response = client.get("/v1/webhooks/deliveries", params=params, headers=t.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def test_payment_reaches_the_receiver_signed_per_standard_webhooks(
    client: TestClient,
    tenant: TenantHandle,
    receiver: Receiver,
    add_endpoint: AddEndpoint,
    paid_order: Pay,
) -> None:
    endpoint = add_endpoint(tenant, receiver.url)

    order = paid_order(tenant, 1234)

    [received] = receiver.requests
    assert received.path == "/hooks"
    assert received.headers["content-type"] == "application/json"
    payload = Webhook(endpoint["secret"]).verify(received.body, received.headers)
    assert payload["type"] == "payment.succeeded"
    assert payload["timestamp"]
    assert payload["data"]["order_id"] == order["id"]
    assert payload["data"]["amount_fen"] == 1234
    assert payload["data"]["out_trade_no"] == order["out_trade_no"]
    assert payload["data"]["currency"] == "CNY"
    message = client.get(
        f"/v1/webhooks/messages/{received.headers['webhook-id']}", headers=tenant.headers
    ).json()
    assert message["payload"] == payload
    [delivery] = deliveries(client, tenant)
    assert delivery["status"] == "SUCCEEDED"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] == 200


def test_a_tampered_body_or_another_secret_does_not_verify(
    tenant: TenantHandle, receiver: Receiver, add_endpoint: AddEndpoint, paid_order: Pay
) -> None:
    endpoint = add_endpoint(tenant, receiver.url)
    other = add_endpoint(tenant, receiver.url + "/other", ["nothing.matches"])

    paid_order(tenant)

    [received] = receiver.requests
    tampered = received.body.replace(b"payment.succeeded", b"payment.refunded")
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(endpoint["secret"]).verify(tampered, received.headers)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(other["secret"]).verify(received.body, received.headers)


def test_refund_sends_payment_refunded(
    client: TestClient,
    worker: Worker,
    tenant: TenantHandle,
    receiver: Receiver,
    add_endpoint: AddEndpoint,
    paid_order: Pay,
) -> None:
    endpoint = add_endpoint(tenant, receiver.url)
    order = paid_order(tenant, 1000)

    refund = client.post(
        f"/v1/payments/orders/{order['id']}/refunds",
        json={"amount_fen": 400},
        headers=tenant.write_headers(),
    )
    worker.drain()

    assert refund.status_code == 201, refund.text
    [received] = receiver.of_type("payment.refunded")
    payload = Webhook(endpoint["secret"]).verify(received.body, received.headers)
    assert payload["data"]["order_id"] == order["id"]
    assert payload["data"]["refunded_fen"] == 400
    assert payload["data"]["refund"]["id"] == refund.json()["id"]
    assert payload["data"]["refund"]["amount_fen"] == 400
    assert [r.json()["type"] for r in receiver.requests] == [
        "payment.succeeded",
        "payment.refunded",
    ]


@pytest.mark.parametrize(
    ("event_types", "delivered"),
    [
        pytest.param([], True, id="empty-means-all"),
        pytest.param(["payment.*"], True, id="family"),
        pytest.param(["payment.succeeded"], True, id="exact-name"),
        pytest.param(["payment.refunded", "payment.succeeded"], True, id="one-of-several"),
        pytest.param(["payment.refunded"], False, id="other-name"),
        pytest.param(["refund.*"], False, id="other-family"),
        pytest.param(["payment"], False, id="bare-prefix"),
    ],
)
def test_event_type_filters(
    tenant: TenantHandle,
    receiver: Receiver,
    add_endpoint: AddEndpoint,
    paid_order: Pay,
    event_types: list[str],
    delivered: bool,
) -> None:
    add_endpoint(tenant, receiver.url, event_types)

    paid_order(tenant)

    assert len(receiver.of_type("payment.succeeded")) == (1 if delivered else 0)


def test_receiver_failing_twice_gets_a_third_attempt(
    client: TestClient,
    worker: Worker,
    tenant: TenantHandle,
    receiver: Receiver,
    add_endpoint: AddEndpoint,
    paid_order: Pay,
) -> None:
    endpoint = add_endpoint(tenant, receiver.url)
    receiver.fail_next(2)

    paid_order(tenant)
    drain_until(worker, lambda: len(receiver.requests) == 3)

    [delivery] = deliveries(client, tenant)
    detail = client.get(f"/v1/webhooks/deliveries/{delivery['id']}", headers=tenant.headers).json()
    assert detail["status"] == "SUCCEEDED"
    assert detail["attempts"] == 3
    assert detail["next_attempt_at"] is None
    assert [a["status_code"] for a in detail["attempt_log"]] == [500, 500, 200]
    assert [a["attempt"] for a in detail["attempt_log"]] == [1, 2, 3]
    assert detail["attempt_log"][0]["response_body"] == "try again"
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for received in receiver.requests:
        Webhook(endpoint["secret"]).verify(received.body, received.headers)


def test_receiver_always_failing_gives_up_after_eight_attempts(
    client: TestClient,
    worker: Worker,
    tenant: TenantHandle,
    receiver: Receiver,
    add_endpoint: AddEndpoint,
    paid_order: Pay,
) -> None:
    add_endpoint(tenant, receiver.url)
    receiver.fail_next(100, status=503)

    paid_order(tenant)
    drain_until(worker, lambda: deliveries(client, tenant)[0]["status"] == "FAILED")
    worker.drain()

    [delivery] = deliveries(client, tenant)
    detail = client.get(f"/v1/webhooks/deliveries/{delivery['id']}", headers=tenant.headers).json()
    assert detail["attempts"] == 8
    assert detail["next_attempt_at"] is None
    assert [a["status_code"] for a in detail["attempt_log"]] == [503] * 8
    assert len(receiver.requests) == 8
    assert deliveries(client, tenant, status="FAILED") == [delivery]


def test_unreachable_receiver_is_logged_and_retried(
    client: TestClient,
    worker: Worker,
    tenant: TenantHandle,
    receiver: Receiver,
    add_endpoint: AddEndpoint,
    paid_order: Pay,
) -> None:
    endpoint = add_endpoint(tenant, "http://127.0.0.1:9/nobody-listens")
    paid_order(tenant)
    [delivery] = deliveries(client, tenant)
    assert delivery["status"] == "RETRYING"
    assert delivery["last_status_code"] is None
    assert delivery["last_error"]

    patched = client.patch(
        f"/v1/webhooks/endpoints/{endpoint['id']}",
        json={"url": receiver.url},
        headers=tenant.headers,
    )
    drain_until(worker, lambda: len(receiver.requests) == 1)

    assert patched.status_code == 200, patched.text
    detail = client.get(f"/v1/webhooks/deliveries/{delivery['id']}", headers=tenant.headers).json()
    assert detail["status"] == "SUCCEEDED"
    *refused, delivered = detail["attempt_log"]
    assert delivered["status_code"] == 200
    assert refused
    assert all(a["status_code"] is None and a["error"] for a in refused)


def test_replay_redelivers_with_the_same_webhook_id(
    client: TestClient,
    worker: Worker,
    tenant: TenantHandle,
    receiver: Receiver,
    add_endpoint: AddEndpoint,
    paid_order: Pay,
) -> None:
    endpoint = add_endpoint(tenant, receiver.url)
    paid_order(tenant)
    [first] = receiver.requests
    message_id = first.headers["webhook-id"]

    replay = client.post(f"/v1/webhooks/messages/{message_id}/replay", headers=tenant.headers)
    worker.drain()

    assert replay.status_code == 202, replay.text
    [queued] = replay.json()
    assert queued["message_id"] == message_id
    assert queued["endpoint_id"] == endpoint["id"]
    _, second = receiver.requests
    assert second.headers["webhook-id"] == message_id
    assert second.body == first.body
    assert Webhook(endpoint["secret"]).verify(second.body, second.headers) == first.json()
    assert len(deliveries(client, tenant, message_id=message_id, status="SUCCEEDED")) == 2


def test_replay_to_one_endpoint_only(
    client: TestClient,
    worker: Worker,
    tenant: TenantHandle,
    receiver: Receiver,
    second_receiver: Receiver,
    add_endpoint: AddEndpoint,
    paid_order: Pay,
) -> None:
    add_endpoint(tenant, receiver.url)
    second = add_endpoint(tenant, second_receiver.url)
    paid_order(tenant)
    message_id = receiver.requests[0].headers["webhook-id"]

    replay = client.post(
        f"/v1/webhooks/messages/{message_id}/replay",
        json={"endpoint_id": second["id"]},
        headers=tenant.headers,
    )
    worker.drain()

    assert replay.status_code == 202, replay.text
    assert len(receiver.requests) == 1
    assert [r.headers["webhook-id"] for r in second_receiver.requests] == [message_id] * 2


def test_disabled_endpoint_gets_nothing(
    client: TestClient,
    tenant: TenantHandle,
    receiver: Receiver,
    second_receiver: Receiver,
    add_endpoint: AddEndpoint,
    paid_order: Pay,
) -> None:
    paused = add_endpoint(tenant, receiver.url)
    deleted = add_endpoint(tenant, receiver.url + "/deleted")
    add_endpoint(tenant, second_receiver.url)
    client.patch(
        f"/v1/webhooks/endpoints/{paused['id']}", json={"enabled": False}, headers=tenant.headers
    )
    client.delete(f"/v1/webhooks/endpoints/{deleted['id']}", headers=tenant.headers)

    paid_order(tenant)

    assert receiver.requests == []
    assert len(second_receiver.requests) == 1


@pytest.mark.parametrize("retry_scale", [pytest.param(0.1, id="first-retry-after-half-a-second")])
def test_disabling_an_endpoint_stops_its_retries(
    client: TestClient,
    worker: Worker,
    tenant: TenantHandle,
    receiver: Receiver,
    add_endpoint: AddEndpoint,
    paid_order: Pay,
) -> None:
    endpoint = add_endpoint(tenant, receiver.url)
    receiver.fail_next(100)
    paid_order(tenant)
    assert len(receiver.requests) == 1

    client.delete(f"/v1/webhooks/endpoints/{endpoint['id']}", headers=tenant.headers)
    drain_until(worker, lambda: deliveries(client, tenant)[0]["status"] == "FAILED")

    assert len(receiver.requests) == 1
    [delivery] = deliveries(client, tenant)
    assert delivery["attempts"] == 1
    assert delivery["next_attempt_at"] is None
    assert "disabled" in delivery["last_error"]


def test_replay_to_a_disabled_endpoint_is_refused(
    client: TestClient,
    worker: Worker,
    tenant: TenantHandle,
    receiver: Receiver,
    add_endpoint: AddEndpoint,
    paid_order: Pay,
) -> None:
    endpoint = add_endpoint(tenant, receiver.url)
    paid_order(tenant)
    message_id = receiver.requests[0].headers["webhook-id"]
    client.delete(f"/v1/webhooks/endpoints/{endpoint['id']}", headers=tenant.headers)

    everyone = client.post(f"/v1/webhooks/messages/{message_id}/replay", headers=tenant.headers)
    named = client.post(
        f"/v1/webhooks/messages/{message_id}/replay",
        json={"endpoint_id": endpoint["id"]},
        headers=tenant.headers,
    )
    worker.drain()

    assert everyone.status_code == 202
    assert everyone.json() == []
    assert named.status_code == 409, named.text
    assert len(receiver.requests) == 1
