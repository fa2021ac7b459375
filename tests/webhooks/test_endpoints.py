"""The webhooks API: endpoints, the message and delivery logs, and who may see them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from tests.conftest import TenantHandle
from tests.webhooks.conftest import Receiver
from zanloop.db import Database
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import Scope

Pay = Callable[..., dict[str, Any]]
AddEndpoint = Callable[..., dict[str, Any]]


def test_endpoint_lifecycle(client: TestClient, tenant: TenantHandle) -> None:
    created = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "https://example.com/hooks", "event_types": ["payment.*"]},
        headers=tenant.headers,
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    url = f"/v1/webhooks/endpoints/{endpoint['id']}"
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["enabled"] is True
    assert client.get(url, headers=tenant.headers).json()["secret"] == endpoint["secret"]
    listed = client.get("/v1/webhooks/endpoints", headers=tenant.headers).json()
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert "secret" not in listed[0]

    patched = client.patch(
        url,
        json={"event_types": ["payment.refunded"], "description": "refunds"},
        headers=tenant.headers,
    )
    deleted = client.delete(url, headers=tenant.headers)

    assert patched.status_code == 200, patched.text
    assert patched.json()["event_types"] == ["payment.refunded"]
    assert patched.json()["url"] == "https://example.com/hooks"
    assert deleted.status_code == 204
    after = client.get(url, headers=tenant.headers).json()
    assert after["enabled"] is False
    assert after["description"] == "refunds"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-url"),
        pytest.param({"url": "not a url"}, id="not-a-url"),
        pytest.param({"url": "ftp://example.com/x"}, id="not-http"),
        pytest.param(
            {"url": "https://example.com", "event_types": "payment.*"}, id="types-not-a-list"
        ),
        pytest.param({"url": "https://example.com", "secret": "whsec_x"}, id="unknown-field"),
        pytest.param(
            {"url": "https://example.com", "description": "x" * 501}, id="long-description"
        ),
        pytest.param({"url": "https://example.com/" + "x" * 1000}, id="url-too-long"),
    ],
)
def test_invalid_endpoint_is_422(
    client: TestClient, tenant: TenantHandle, body: dict[str, Any]
) -> None:
    response = client.post("/v1/webhooks/endpoints", json=body, headers=tenant.headers)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("scope", "status"),
    [
        pytest.param(Scope.MERCHANT, 200, id="merchant"),
        # A creator key acts for one creator; the webhooks carry the whole tenant's events.
        pytest.param(Scope.CREATOR, 403, id="creator"),
        pytest.param(Scope.APP, 403, id="app"),
        pytest.param(Scope.ANALYST, 403, id="analyst"),
    ],
)
def test_who_may_manage_webhooks(
    client: TestClient,
    make_tenant: Callable[..., TenantHandle],
    db: Database,
    scope: Scope,
    status: int,
) -> None:
    owner = make_tenant()
    with db.session() as session:
        issued = tenancy.create_key(
            session, owner.id, "k", [scope], "c-1" if scope is Scope.CREATOR else None
        )
    caller = TenantHandle(owner.id, issued.plaintext)

    response = client.get("/v1/webhooks/endpoints", headers=caller.headers)

    assert response.status_code == status, response.text


def test_unauthenticated_is_401(client: TestClient) -> None:
    assert client.get("/v1/webhooks/deliveries").status_code == 401


def test_another_tenants_webhooks_are_not_found(
    client: TestClient,
    tenant: TenantHandle,
    make_tenant: Callable[..., TenantHandle],
    receiver: Receiver,
    add_endpoint: AddEndpoint,
    paid_order: Pay,
) -> None:
    endpoint = add_endpoint(tenant, receiver.url)
    paid_order(tenant)
    message_id = receiver.requests[0].headers["webhook-id"]
    delivery_id = client.get("/v1/webhooks/deliveries", headers=tenant.headers).json()["data"][0][
        "id"
    ]
    other = make_tenant("Other merchant")

    calls = {
        "get endpoint": client.get(
            f"/v1/webhooks/endpoints/{endpoint['id']}", headers=other.headers
        ),
        "patch endpoint": client.patch(
            f"/v1/webhooks/endpoints/{endpoint['id']}",
            json={"enabled": False},
            headers=other.headers,
        ),
        "delete endpoint": client.delete(
            f"/v1/webhooks/endpoints/{endpoint['id']}", headers=other.headers
        ),
        "get message": client.get(f"/v1/webhooks/messages/{message_id}", headers=other.headers),
        "replay message": client.post(
            f"/v1/webhooks/messages/{message_id}/replay", headers=other.headers
        ),
        "get delivery": client.get(f"/v1/webhooks/deliveries/{delivery_id}", headers=other.headers),
    }

    assert {name: r.status_code for name, r in calls.items()} == dict.fromkeys(calls, 404)
    assert client.get("/v1/webhooks/endpoints", headers=other.headers).json() == []
    for path in ("/v1/webhooks/messages", "/v1/webhooks/deliveries"):
        assert client.get(path, headers=other.headers).json()["data"] == []
    mine = client.get(f"/v1/webhooks/endpoints/{endpoint['id']}", headers=tenant.headers).json()
    assert mine["enabled"] is True
    assert len(receiver.requests) == 1


def test_replay_naming_another_tenants_endpoint_is_not_found(
    client: TestClient,
    tenant: TenantHandle,
    make_tenant: Callable[..., TenantHandle],
    receiver: Receiver,
    second_receiver: Receiver,
    add_endpoint: AddEndpoint,
    paid_order: Pay,
) -> None:
    theirs = add_endpoint(tenant, receiver.url)
    other = make_tenant("Other merchant")
    add_endpoint(other, second_receiver.url)
    paid_order(other)
    message_id = second_receiver.requests[0].headers["webhook-id"]

    response = client.post(
        f"/v1/webhooks/messages/{message_id}/replay",
        json={"endpoint_id": theirs["id"]},
        headers=other.headers,
    )

    assert response.status_code == 404, response.text
    assert receiver.requests == []


def test_messages_and_deliveries_page_newest_first(
    client: TestClient,
    tenant: TenantHandle,
    receiver: Receiver,
    add_endpoint: AddEndpoint,
    paid_order: Pay,
) -> None:
    endpoint = add_endpoint(tenant, receiver.url)
    orders = [paid_order(tenant, amount) for amount in (100, 200, 300)]

    first = client.get("/v1/webhooks/messages", params={"limit": 2}, headers=tenant.headers).json()
    rest = client.get(
        "/v1/webhooks/messages",
        params={"limit": 2, "cursor": first["next_cursor"]},
        headers=tenant.headers,
    ).json()

    amounts = [m["payload"]["data"]["amount_fen"] for m in first["data"] + rest["data"]]
    assert amounts == [300, 200, 100]
    assert rest["next_cursor"] is None
    assert [o["id"] for o in reversed(orders)] == [
        m["payload"]["data"]["order_id"] for m in first["data"] + rest["data"]
    ]
    by_type = client.get(
        "/v1/webhooks/messages", params={"event_type": "payment.refunded"}, headers=tenant.headers
    )
    assert by_type.json()["data"] == []
    by_endpoint = client.get(
        "/v1/webhooks/deliveries", params={"endpoint_id": endpoint["id"]}, headers=tenant.headers
    ).json()
    assert len(by_endpoint["data"]) == 3
    secret = endpoint["secret"]
    for received in receiver.requests:
        Webhook(secret).verify(received.body, received.headers)


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("%%%not-base64", id="garbage"),
        pytest.param(_cursor(12), id="a-number"),
        pytest.param(_cursor({"id": "x"}), id="an-object"),
        pytest.param(_cursor(["x"]), id="a-list"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/webhooks/messages", "/v1/webhooks/deliveries"])
def test_a_cursor_this_api_did_not_return_is_422(
    client: TestClient, tenant: TenantHandle, path: str, cursor: str
) -> None:
    response = client.get(path, params={"cursor": cursor}, headers=tenant.headers)

    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        pytest.param("GET", "/v1/webhooks/endpoints/whe_1%00", {}, id="nul-in-endpoint-id"),
        pytest.param("PATCH", "/v1/webhooks/endpoints/whe%201", {}, id="space-in-endpoint-id"),
        pytest.param("DELETE", "/v1/webhooks/endpoints/" + "x" * 41, {}, id="endpoint-id-too-long"),
        pytest.param("GET", "/v1/webhooks/messages/msg_1%00", {}, id="nul-in-message-id"),
        pytest.param("POST", "/v1/webhooks/messages/msg_1%00/replay", {}, id="nul-in-replay"),
        pytest.param("GET", "/v1/webhooks/deliveries/whd_1%00", {}, id="nul-in-delivery-id"),
        pytest.param("GET", "/v1/webhooks/messages", {"event_type": "a\x00"}, id="nul-event-type"),
        pytest.param(
            "GET", "/v1/webhooks/deliveries", {"message_id": "a\x00"}, id="nul-message-id"
        ),
        pytest.param(
            "GET", "/v1/webhooks/deliveries", {"endpoint_id": "a\x00"}, id="nul-endpoint-id"
        ),
        pytest.param("GET", "/v1/webhooks/deliveries", {"status": "DONE"}, id="unknown-status"),
        pytest.param("GET", "/v1/webhooks/messages", {"cursor": _cursor("a\x00")}, id="nul-cursor"),
    ],
)
def test_malformed_ids_and_filters_are_422(
    client: TestClient, tenant: TenantHandle, method: str, path: str, params: dict[str, str]
) -> None:
    json_body = {} if method == "PATCH" else None
    response = client.request(method, path, params=params, json=json_body, headers=tenant.headers)

    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"description": "a\x00b"}, id="nul-in-description"),
        pytest.param({"event_types": ["payment\x00"]}, id="nul-in-event-type"),
        pytest.param({"event_types": ["payment succeeded"]}, id="space-in-event-type"),
        pytest.param({"event_types": [""]}, id="empty-event-type"),
    ],
)
def test_text_a_database_cannot_store_is_422(
    client: TestClient, tenant: TenantHandle, body: dict[str, Any]
) -> None:
    created = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "https://example.com", **body},
        headers=tenant.headers,
    )
    endpoint = client.post(
        "/v1/webhooks/endpoints", json={"url": "https://example.com"}, headers=tenant.headers
    ).json()
    patched = client.patch(
        f"/v1/webhooks/endpoints/{endpoint['id']}", json=body, headers=tenant.headers
    )

    assert (created.status_code, patched.status_code) == (422, 422)
