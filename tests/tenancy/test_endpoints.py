"""API keys over HTTP: hashed at rest, shown once, scoped, revocable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import TenantHandle
from zanloop.db import Database
from zanloop.tables import metadata
from zanloop.tenancy.domain import Scope, hash_key
from zanloop.tenancy.tables import ApiKey

PROBLEM = "urn:zanloop:problem:"
CreateKey = Callable[..., dict[str, Any]]


def _everything_stored(db: Database) -> str:
    """Every row of every table, as text."""
    with db.read_session() as session:
        return "\n".join(
            repr(tuple(row))
            for table in metadata.sorted_tables
            for row in session.execute(select(table))
        )


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# Hashed at rest, shown once -----------------------------------------------------------------


def test_a_new_key_is_shown_once_and_works(
    client: TestClient, tenant: TenantHandle, create_key: CreateKey
) -> None:
    created = create_key(tenant, "analyst")

    me = client.get("/v1/tenant", headers=_bearer(created["key"]))
    listed = client.get("/v1/api-keys", headers=tenant.headers).json()

    assert me.status_code == 200
    assert me.json()["id"] == tenant.id
    assert created["key"].startswith(created["prefix"])
    assert created["scopes"] == ["analyst"]
    assert [k["id"] for k in listed if k["id"] == created["id"]] == [created["id"]]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert created["key"] not in str(listed)


def test_keys_are_stored_only_as_hashes(
    db: Database, tenant: TenantHandle, create_key: CreateKey
) -> None:
    created = create_key(tenant, "merchant", **{"Idempotency-Key": "new-key-1"})

    with db.read_session() as session:
        stored_hash = session.scalar(select(ApiKey.key_hash).where(ApiKey.id == created["id"]))
    assert stored_hash == hash_key(created["key"])
    everything = _everything_stored(db)
    for plaintext in (created["key"], tenant.key):
        assert plaintext not in everything
        assert plaintext.split("_", 2)[2] not in everything  # nor its secret part


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"name": "k", "scopes": []}, id="no-scopes"),
        pytest.param({"name": "k", "scopes": ["root"]}, id="unknown-scope"),
        pytest.param({"name": "", "scopes": ["app"]}, id="no-name"),
        pytest.param({"name": "nul\x00", "scopes": ["app"]}, id="nul-in-name"),
    ],
)
def test_an_invalid_key_request_is_422(
    client: TestClient, tenant: TenantHandle, body: dict[str, Any]
) -> None:
    response = client.post("/v1/api-keys", json=body, headers=tenant.headers)

    assert response.status_code == 422
    assert response.json()["type"] == PROBLEM + "validation"


def test_revoking_a_key_id_with_a_nul_is_a_422(client: TestClient, tenant: TenantHandle) -> None:
    response = client.delete("/v1/api-keys/key%00", headers=tenant.headers)

    assert response.status_code == 422
    assert client.get("/v1/tenant", headers=tenant.headers).status_code == 200


# Scopes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        pytest.param("POST", "/v1/api-keys", id="create-key"),
        pytest.param("GET", "/v1/api-keys", id="list-keys"),
        pytest.param("DELETE", "/v1/api-keys/key_x", id="revoke-key"),
    ],
)
def test_an_app_key_cannot_manage_keys(
    client: TestClient, tenant: TenantHandle, create_key: CreateKey, method: str, url: str
) -> None:
    app_key = create_key(tenant, "app")["key"]

    response = client.request(
        method, url, json={"name": "escalate", "scopes": ["admin"]}, headers=_bearer(app_key)
    )

    assert response.status_code == 403
    assert response.json()["type"] == PROBLEM + "forbidden"
    assert len(client.get("/v1/api-keys", headers=tenant.headers).json()) == 2


def test_an_app_key_may_create_payment_orders_but_not_refunds(
    client: TestClient, make_tenant: Callable[..., TenantHandle]
) -> None:
    app = make_tenant(scopes=(Scope.APP,))
    order = {"amount_fen": 990, "description": "Latte", "payer_openid": "o_buyer"}

    created = client.post("/v1/payments/orders", json=order, headers=app.write_headers())
    refund = client.post(
        f"/v1/payments/orders/{created.json()['id']}/refunds", headers=app.write_headers()
    )

    assert created.status_code == 201
    assert refund.status_code == 403


# Authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-authorization"),
        pytest.param({"Authorization": "Bearer "}, id="empty-bearer"),
        pytest.param({"Authorization": "Bearer zl_00000000_unknown"}, id="unknown-key"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="not-bearer"),
    ],
)
def test_without_a_valid_key_every_call_is_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/v1/tenant", headers=headers)

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == PROBLEM + "unauthorized"


def test_a_revoked_key_is_401_at_once(
    client: TestClient, tenant: TenantHandle, create_key: CreateKey
) -> None:
    created = create_key(tenant, "merchant")
    assert client.get("/v1/tenant", headers=_bearer(created["key"])).status_code == 200

    revoked = client.delete(f"/v1/api-keys/{created['id']}", headers=tenant.headers)
    after = client.get("/v1/tenant", headers=_bearer(created["key"]))
    again = client.delete(f"/v1/api-keys/{created['id']}", headers=tenant.headers)

    assert revoked.status_code == 204
    assert after.status_code == 401
    assert again.status_code == 404
    listed = {k["id"]: k for k in client.get("/v1/api-keys", headers=tenant.headers).json()}
    assert listed[created["id"]]["revoked_at"] is not None


def test_a_key_revoking_itself_is_locked_out(client: TestClient, tenant: TenantHandle) -> None:
    own = client.get("/v1/api-keys", headers=tenant.headers).json()[0]

    revoked = client.delete(f"/v1/api-keys/{own['id']}", headers=tenant.headers)

    assert revoked.status_code == 204
    assert client.get("/v1/tenant", headers=tenant.headers).status_code == 401


def test_another_tenants_key_cannot_be_seen_or_revoked(
    client: TestClient, make_tenant: Callable[..., TenantHandle], create_key: CreateKey
) -> None:
    ours, theirs = make_tenant("Ours"), make_tenant("Theirs")
    their_key = create_key(theirs, "merchant")

    revoke = client.delete(f"/v1/api-keys/{their_key['id']}", headers=ours.headers)
    listed = client.get("/v1/api-keys", headers=ours.headers).json()

    assert revoke.status_code == 404
    assert their_key["id"] not in {k["id"] for k in listed}
    assert client.get("/v1/tenant", headers=_bearer(their_key["key"])).json()["id"] == theirs.id
