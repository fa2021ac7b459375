"""Payment-account binding (P2) as an integrator's app sees it: bind, bind again, unbind, and
the errors that say what to fix."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from zanloop.tenancy.domain import Scope

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


def bind(client: TestClient, t: TenantHandle, user: str, openid: str = OPENID, **extra: Any) -> Any:
    body = {"openid": openid, "real_name_verified": True, **extra}
    return client.put(f"/v1/bindings/{user}", json=body, headers=t.headers)


def binding(client: TestClient, t: TenantHandle, user: str) -> Any:
    return client.get(f"/v1/bindings/{user}", headers=t.headers)


def unbind(client: TestClient, t: TenantHandle, user: str) -> Any:
    return client.delete(f"/v1/bindings/{user}", headers=t.headers)


def test_binding_returns_the_account_and_reading_it_back_agrees(
    client: TestClient, tenant: TenantHandle
) -> None:
    # when
    bound = bind(client, tenant, "viewer-1")

    # then
    assert bound.status_code == 200, bound.text
    body = bound.json()
    assert (body["user_id"], body["openid"], body["real_name_verified"]) == (
        "viewer-1",
        OPENID,
        True,
    )
    assert datetime.fromisoformat(body["bound_at"]).utcoffset() is not None
    assert binding(client, tenant, "viewer-1").json() == body


def test_binding_the_same_openid_again_changes_nothing(
    client: TestClient, tenant: TenantHandle
) -> None:
    first = bind(client, tenant, "viewer-1").json()

    again = bind(client, tenant, "viewer-1")

    assert again.status_code == 200
    assert again.json() == first
    assert binding(client, tenant, "viewer-1").json()["bound_at"] == first["bound_at"]


def test_binding_the_same_openid_again_may_correct_the_real_name_flag(
    client: TestClient, tenant: TenantHandle
) -> None:
    first = bind(client, tenant, "viewer-1").json()

    corrected = bind(client, tenant, "viewer-1", real_name_verified=False)

    assert corrected.status_code == 200
    assert corrected.json()["real_name_verified"] is False
    assert corrected.json()["bound_at"] == first["bound_at"]
    assert binding(client, tenant, "viewer-1").json()["real_name_verified"] is False


def test_a_different_openid_while_bound_is_refused_and_the_old_one_stays(
    client: TestClient, tenant: TenantHandle
) -> None:
    bind(client, tenant, "viewer-1").raise_for_status()

    other = bind(client, tenant, "viewer-1", openid="o_someone_else")

    assert other.status_code == 409
    problem = other.json()
    assert problem["type"] == "urn:zanloop:problem:duplicate"
    assert "unbind it first" in problem["detail"]
    assert binding(client, tenant, "viewer-1").json()["openid"] == OPENID


def test_unbinding_removes_the_account_and_unbinding_twice_is_fine(
    client: TestClient, tenant: TenantHandle
) -> None:
    bind(client, tenant, "viewer-1").raise_for_status()

    first = unbind(client, tenant, "viewer-1")
    second = unbind(client, tenant, "viewer-1")
    never_bound = unbind(client, tenant, "nobody")

    assert (first.status_code, second.status_code, never_bound.status_code) == (204, 204, 204)
    assert first.content == b""
    gone = binding(client, tenant, "viewer-1")
    assert gone.status_code == 404
    assert gone.json()["type"] == "urn:zanloop:problem:not-found"
    assert "viewer-1" in gone.json()["detail"]


def test_after_unbinding_another_openid_can_be_bound(
    client: TestClient, tenant: TenantHandle
) -> None:
    bind(client, tenant, "viewer-1").raise_for_status()
    unbind(client, tenant, "viewer-1").raise_for_status()

    rebound = bind(client, tenant, "viewer-1", openid="o_new_phone")

    assert rebound.status_code == 200, rebound.text
    assert binding(client, tenant, "viewer-1").json()["openid"] == "o_new_phone"


def test_a_user_never_bound_is_404(client: TestClient, tenant: TenantHandle) -> None:
    response = binding(client, tenant, "nobody")

    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"openid": ""}, id="empty"),
        pytest.param({"openid": "o with spaces"}, id="spaces"),
        pytest.param({"openid": "o/slash"}, id="slash"),
        pytest.param({"openid": "o-ü"}, id="non-ascii"),
        pytest.param({"openid": "o" * 129}, id="too-long"),
        pytest.param({"openid": 12345}, id="a-number"),
        pytest.param({"openid": None}, id="null"),
        pytest.param({}, id="missing"),
    ],
)
def test_a_bad_openid_is_422_naming_openid_and_binds_nothing(
    client: TestClient, tenant: TenantHandle, body: dict[str, Any]
) -> None:
    response = client.put(
        "/v1/bindings/viewer-1",
        json={**body, "real_name_verified": True},
        headers=tenant.headers,
    )

    assert response.status_code == 422, response.text
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == ["openid"]
    assert "openid" in problem["detail"]
    assert binding(client, tenant, "viewer-1").status_code == 404


def test_the_payer_verification_must_be_stated(client: TestClient, tenant: TenantHandle) -> None:
    response = client.put("/v1/bindings/viewer-1", json={"openid": OPENID}, headers=tenant.headers)

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["real_name_verified"]


def test_the_longest_openid_binds(client: TestClient, tenant: TenantHandle) -> None:
    longest = "o" + "A1_-" * 31 + "xyz"

    response = bind(client, tenant, "viewer-1", openid=longest)

    assert len(longest) == 128
    assert response.status_code == 200, response.text


def test_unknown_fields_are_refused(client: TestClient, tenant: TenantHandle) -> None:
    response = bind(client, tenant, "viewer-1", nickname="Bear")

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["nickname"]


def test_concurrent_binds_of_different_openids_leave_exactly_one(
    client: TestClient, tenant: TenantHandle
) -> None:
    # when: four devices bind four different accounts to one user at the same moment
    openids = [f"o_device_{i}" for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda o: bind(client, tenant, "viewer-1", openid=o), openids))

    # then: one wins, the others are told to unbind first, and the winner is what is stored
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409, 409, 409]
    [winner] = [r.json()["openid"] for r in responses if r.status_code == 200]
    assert binding(client, tenant, "viewer-1").json()["openid"] == winner


def test_another_tenant_neither_sees_nor_unbinds_the_binding(
    client: TestClient, make_tenant: Callable[..., TenantHandle]
) -> None:
    first, second = make_tenant("First"), make_tenant("Second")
    bind(client, first, "viewer-1").raise_for_status()

    seen = binding(client, second, "viewer-1")
    unbound = unbind(client, second, "viewer-1")
    own = bind(client, second, "viewer-1", openid="o_second_tenant")

    assert seen.status_code == 404
    assert unbound.status_code == 204
    assert own.status_code == 200
    assert binding(client, first, "viewer-1").json()["openid"] == OPENID
    assert binding(client, second, "viewer-1").json()["openid"] == "o_second_tenant"


@pytest.mark.parametrize(
    ("scopes", "can_read", "can_write"),
    [
        pytest.param((Scope.APP,), True, True, id="app"),
        pytest.param((Scope.MERCHANT,), True, True, id="merchant"),
        pytest.param((Scope.ANALYST,), True, False, id="analyst"),
        pytest.param((Scope.CREATOR,), False, False, id="creator"),
    ],
)
def test_who_may_read_and_change_bindings(
    client: TestClient,
    make_tenant: Callable[..., TenantHandle],
    scopes: tuple[Scope, ...],
    can_read: bool,
    can_write: bool,
) -> None:
    admin = make_tenant()
    bind(client, admin, "viewer-1").raise_for_status()
    body: dict[str, Any] = {"name": "k", "scopes": list(scopes)}
    if scopes == (Scope.CREATOR,):
        body["creator_id"] = "creator-1"  # a creator key acts for one creator
    created = client.post("/v1/api-keys", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    key = TenantHandle(admin.id, created.json()["key"])

    read = binding(client, key, "viewer-1")
    write = bind(client, key, "viewer-2")
    remove = unbind(client, key, "viewer-1")

    assert read.status_code == (200 if can_read else 403)
    assert write.status_code == (200 if can_write else 403)
    assert remove.status_code == (204 if can_write else 403)
    assert binding(client, admin, "viewer-1").status_code == (404 if can_write else 200)
