"""The buyer's side of the sandbox: pay, fail, look, and what it refuses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.conftest import TenantHandle
from tests.payments.conftest import private_pem, public_pem, rsa_key
from zanloop.db import Database
from zanloop.kit.clock import utcnow
from zanloop.sandbox.tables import SandboxOrder

Order = dict[str, Any]


def act(client: TestClient, t: TenantHandle, out_trade_no: str, action: str, **body: Any) -> Any:
    return client.post(
        f"/v1/sandbox/orders/{out_trade_no}/{action}", json=body or None, headers=t.headers
    )


def test_paying_answers_with_the_providers_view_of_the_order(
    client: TestClient, tenant: TenantHandle, create_order: Callable[..., Order]
) -> None:
    order = create_order(tenant, 660)

    paid = act(client, tenant, order["out_trade_no"], "pay", payer_openid="o_buyer")
    seen = client.get(f"/v1/sandbox/orders/{order['out_trade_no']}", headers=tenant.headers)

    assert paid.status_code == 200, paid.text
    resource = paid.json()["resource"]
    assert (resource["trade_state"], resource["amount"]["total"]) == ("SUCCESS", 660)
    assert resource["transaction_id"].startswith("4200")
    assert seen.json()["resource"] == resource


@pytest.mark.parametrize(
    ("first", "then"),
    [
        pytest.param("pay", "pay", id="pay-twice"),
        pytest.param("pay", "fail", id="fail-after-pay"),
        pytest.param("fail", "pay", id="pay-after-fail"),
    ],
)
def test_an_order_is_paid_or_failed_once(
    client: TestClient,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
    first: str,
    then: str,
) -> None:
    order = create_order(tenant)
    assert act(client, tenant, order["out_trade_no"], first).status_code == 200

    response = act(client, tenant, order["out_trade_no"], then)

    assert response.status_code == 409
    assert order["out_trade_no"] in response.json()["detail"]


def test_another_payer_cannot_pay(
    client: TestClient, tenant: TenantHandle, create_order: Callable[..., Order]
) -> None:
    order = create_order(tenant)

    response = act(client, tenant, order["out_trade_no"], "pay", payer_openid="o_someone_else")

    assert response.status_code == 409
    assert (
        client.get(f"/v1/sandbox/orders/{order['out_trade_no']}", headers=tenant.headers).json()[
            "resource"
        ]["trade_state"]
        == "NOTPAY"
    )


def test_an_expired_order_cannot_be_paid(
    client: TestClient, db: Database, tenant: TenantHandle, create_order: Callable[..., Order]
) -> None:
    order = create_order(tenant)
    with db.session() as session:
        session.execute(
            update(SandboxOrder)
            .where(SandboxOrder.out_trade_no == order["out_trade_no"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    assert act(client, tenant, order["out_trade_no"], "pay").status_code == 409


def test_another_tenants_order_is_not_found(
    client: TestClient,
    tenant: TenantHandle,
    make_tenant: Callable[..., TenantHandle],
    create_order: Callable[..., Order],
) -> None:
    order = create_order(tenant)
    other = make_tenant("Other")

    assert act(client, other, order["out_trade_no"], "pay").status_code == 404
    assert (
        client.get(f"/v1/sandbox/orders/{order['out_trade_no']}", headers=other.headers).status_code
        == 404
    )
    assert act(client, tenant, "NOSUCHORDER", "pay").status_code == 404


def test_the_published_platform_key_is_the_one_the_tenant_verifies_with(
    client: TestClient, tenant: TenantHandle
) -> None:
    published = client.get("/v1/sandbox/platform-key", headers=tenant.headers).json()
    provider = client.get("/v1/payments/provider", headers=tenant.headers).json()

    assert published["public_key_id"] == provider["platform_public_key_id"]
    assert published["public_key_pem"] == provider["platform_public_key_pem"]
    assert provider["provider"] == "sandbox"


def test_the_sandbox_is_off_for_a_tenant_on_real_wechat_pay(
    client: TestClient, tenant: TenantHandle
) -> None:
    platform = rsa_key()
    configured = client.put(
        "/v1/payments/provider",
        json={
            "mchid": "1900000109",
            "appid": "wxd678efh567hg6787",
            "merchant_serial_no": "444F4864EA9B34415",
            "merchant_private_key_pem": private_pem(rsa_key()),
            "apiv3_key": "a12d3924fd499edac8a5efc1234567AB",
            "platform_public_key_id": "PUB_KEY_ID_0114232",
            "platform_public_key_pem": public_pem(platform),
        },
        headers=tenant.headers,
    )

    response = act(client, tenant, "ANYORDER01", "pay")

    assert configured.status_code == 200, configured.text
    assert response.status_code == 409
    assert "sandbox is off" in response.json()["detail"]
