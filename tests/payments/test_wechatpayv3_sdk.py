"""Interoperability with the ``wechatpayv3`` SDK, both ways round.

1. The SDK's own ``callback()`` accepts what the sandbox really sends: so a merchant who swaps
   the sandbox for WeChat Pay keeps code that works.
2. ``WeChatPayProvider`` (the SDK inside zanloop) against a local gateway that speaks the v3
   API: it checks the merchant's request signatures and signs its answers with a platform key,
   as api.mch.weixin.qq.com does. That gateway is the only stand-in in these tests: it is what
   would otherwise leave the machine.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi.testclient import TestClient
from sqlalchemy import update
from wechatpayv3 import WeChatPay as SDK
from wechatpayv3 import WeChatPayType

from tests.conftest import TenantHandle
from tests.payments.conftest import (
    WeChatPay,
    free_port,
    order_of,
    private_pem,
    public_pem,
    rsa_key,
)
from tests.payments.wechat_gateway import Gateway, handler
from zanloop.config import Settings
from zanloop.db import Database
from zanloop.jobs.worker import Worker
from zanloop.kit.clock import utcnow
from zanloop.payments import service as payments
from zanloop.payments.tables import PaymentOrder
from zanloop.sandbox import service as sandbox

Order = dict[str, Any]


def sdk_for(db: Database, tenant_id: str) -> SDK:
    """The SDK set up as the merchant would: public-key mode with the sandbox platform key."""
    with db.read_session() as session:
        config = payments.get_config(session, tenant_id)
        key_id, pem = sandbox.platform_public_key(session)
        return SDK(
            wechatpay_type=WeChatPayType.JSAPI,
            mchid=config.mchid,
            private_key=config.merchant_private_key_pem,
            cert_serial_no=config.merchant_serial_no,
            appid=config.appid,
            apiv3_key=config.apiv3_key,
            public_key=pem,
            public_key_id=key_id,
        )


def captured(client: TestClient, db: Database, t: TenantHandle) -> tuple[str, dict[str, str]]:
    """The newest notification the sandbox queued for ``t``, signed as it would be sent."""
    log = client.get("/v1/sandbox/notifications", headers=t.headers).json()
    with db.read_session() as session:
        _, body, headers = sandbox.signed_delivery(session, log[0]["id"])
    return body, headers


def test_the_sdk_accepts_a_payment_notification_the_sandbox_sent(
    client: TestClient, db: Database, tenant: TenantHandle, create_order: Callable[..., Order]
) -> None:
    order = create_order(tenant, 990, attach="cup-7")
    client.post(f"/v1/sandbox/orders/{order['out_trade_no']}/pay", headers=tenant.headers)
    body, headers = captured(client, db, tenant)

    result = sdk_for(db, tenant.id).callback(headers, body)

    assert result is not None
    assert result["event_type"] == "TRANSACTION.SUCCESS"
    resource = result["resource"]
    assert (resource["out_trade_no"], resource["trade_state"]) == (order["out_trade_no"], "SUCCESS")
    assert resource["amount"]["total"] == 990
    assert (resource["attach"], resource["payer"]["openid"]) == ("cup-7", "o_buyer")


def test_the_sdk_accepts_a_refund_notification_the_sandbox_sent(
    client: TestClient,
    db: Database,
    worker: Worker,
    tenant: TenantHandle,
    paid_order: Callable[..., Order],
) -> None:
    order = paid_order(tenant, 1000)
    client.post(
        f"/v1/payments/orders/{order['id']}/refunds",
        json={"amount_fen": 300},
        headers=tenant.write_headers(),
    )
    worker.drain()
    body, headers = captured(client, db, tenant)

    result = sdk_for(db, tenant.id).callback(headers, body)

    assert result is not None
    assert result["event_type"] == "REFUND.SUCCESS"
    assert result["resource"]["refund_status"] == "SUCCESS"
    assert result["resource"]["amount"]["refund"] == 300


def test_the_sdk_refuses_a_tampered_sandbox_notification(
    client: TestClient, db: Database, tenant: TenantHandle, create_order: Callable[..., Order]
) -> None:
    order = create_order(tenant, 990)
    client.post(f"/v1/sandbox/orders/{order['out_trade_no']}/pay", headers=tenant.headers)
    body, headers = captured(client, db, tenant)

    assert sdk_for(db, tenant.id).callback(headers, body.replace("支付成功", "支付失败")) is None


def test_the_sdk_accepts_the_tests_own_notifications(
    db: Database, tenant: TenantHandle, wechat: WeChatPay
) -> None:
    """Keeps the independent builder in conftest.py honest."""
    signed = wechat.notification(wechat.transaction("ORDER00001", 990))

    result = sdk_for(db, tenant.id).callback(signed.headers, signed.body)

    assert result is not None
    assert result["resource"]["out_trade_no"] == "ORDER00001"


# WeChatPayProvider against a local gateway --------------------------------------------------


@pytest.fixture
def gateway(settings: Settings) -> Iterator[Gateway]:
    gateway = Gateway()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(gateway))
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    gateway.url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.wechatpay_gateway = gateway.url
    yield gateway
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def merchant_key() -> rsa.RSAPrivateKey:
    return rsa_key()


def switch_to_wechat_pay(
    client: TestClient, t: TenantHandle, gateway: Gateway, merchant_key: rsa.RSAPrivateKey
) -> None:
    """Configure real WeChat Pay credentials for ``t``, pointed at the local gateway."""
    gateway.merchant_key = merchant_key.public_key()
    response = client.put(
        "/v1/payments/provider",
        json={
            "provider": "wechatpay",
            "mchid": "1900000109",
            "appid": "wxd678efh567hg6787",
            "merchant_serial_no": "444F4864EA9B34415",
            "merchant_private_key_pem": private_pem(merchant_key),
            "apiv3_key": "a12d3924fd499edac8a5efc1234567AB",
            "platform_public_key_id": gateway.key_id,
            "platform_public_key_pem": public_pem(gateway.platform_key),
        },
        headers=t.headers,
    )
    assert response.status_code == 200, response.text


@pytest.fixture
def real(
    client: TestClient, tenant: TenantHandle, gateway: Gateway, merchant_key: rsa.RSAPrivateKey
) -> TenantHandle:
    """``tenant`` switched to the real provider."""
    switch_to_wechat_pay(client, tenant, gateway, merchant_key)
    return tenant


def test_an_order_is_placed_paid_and_refunded_through_the_gateway(
    client: TestClient,
    db: Database,
    settings: Settings,
    real: TenantHandle,
    gateway: Gateway,
    merchant_key: rsa.RSAPrivateKey,
    create_order: Callable[..., Order],
) -> None:
    order = create_order(real, 1000, attach="table 4")
    placed = gateway.orders[order["out_trade_no"]]["request"]
    unpaid = client.post(f"/v1/payments/orders/{order['id']}/sync", headers=real.headers).json()
    gateway.pay(order["out_trade_no"])
    paid = client.post(f"/v1/payments/orders/{order['id']}/sync", headers=real.headers).json()
    refund = client.post(
        f"/v1/payments/orders/{order['id']}/refunds",
        json={"amount_fen": 300},
        headers=real.write_headers(),
    ).json()
    gateway.settle(refund["out_refund_no"])
    with db.session() as session:
        changed = payments.reconcile(session, settings)

    assert order["provider"] == "wechatpay"
    assert order["prepay_id"].startswith("wx")
    assert placed["amount"] == {"total": 1000, "currency": "CNY"}
    assert placed["notify_url"] == f"http://testserver/v1/payments/notify/{real.id}"
    assert (placed["payer"], placed["attach"]) == ({"openid": "o_buyer"}, "table 4")
    params = order["pay_params"]
    merchant_key.public_key().verify(
        base64.b64decode(params["paySign"]),
        f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert (unpaid["status"], paid["status"]) == ("NOTPAY", "SUCCESS")
    assert paid["transaction_id"] == gateway.orders[order["out_trade_no"]]["transaction_id"]
    assert (refund["status"], refund["refund_id"]) == (
        "PROCESSING",
        gateway.refunds[refund["out_refund_no"]]["refund_id"],
    )
    assert changed["refunds"] == 1
    balance = client.get("/v1/ledger/balances/merchant", headers=real.headers).json()
    assert balance["balance"] == 700


def test_closing_an_order_closes_it_at_the_gateway(
    client: TestClient, real: TenantHandle, gateway: Gateway, create_order: Callable[..., Order]
) -> None:
    order = create_order(real)

    closed = client.post(f"/v1/payments/orders/{order['id']}/close", headers=real.headers)

    assert (closed.status_code, closed.json()["status"]) == (200, "CLOSED")
    assert f"POST /v3/pay/transactions/out-trade-no/{order['out_trade_no']}/close" in gateway.calls


def test_an_order_the_gateway_does_not_know_stays_as_it_is(
    client: TestClient, real: TenantHandle, gateway: Gateway, create_order: Callable[..., Order]
) -> None:
    order = create_order(real)
    gateway.orders.clear()

    synced = client.post(f"/v1/payments/orders/{order['id']}/sync", headers=real.headers)

    assert (synced.status_code, synced.json()["status"]) == (200, "NOTPAY")


def test_a_notification_signed_with_the_gateways_platform_key_settles(
    client: TestClient,
    db: Database,
    real: TenantHandle,
    gateway: Gateway,
    create_order: Callable[..., Order],
) -> None:
    order = create_order(real, 450)
    wechat = WeChatPay(
        real.id,
        "1900000109",
        "wxd678efh567hg6787",
        "a12d3924fd499edac8a5efc1234567AB",
        gateway.key_id,
        gateway.platform_key,
    )
    signed = wechat.notification(wechat.transaction(order["out_trade_no"], 450))

    response = client.post(wechat.notify_path, content=signed.body, headers=signed.headers)

    assert response.status_code == 204, response.text
    assert client.get("/v1/ledger/balances/merchant", headers=real.headers).json()["balance"] == 450


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param("unsigned", id="answer-not-signed-by-the-platform-key"),
        pytest.param("error", id="gateway-answers-500"),
        pytest.param("down", id="gateway-unreachable"),
    ],
)
def test_a_gateway_failure_is_a_502_and_leaves_no_order(
    client: TestClient, settings: Settings, real: TenantHandle, gateway: Gateway, breakage: str
) -> None:
    if breakage == "unsigned":
        gateway.sign_answers = False
    elif breakage == "error":
        gateway.broken = 500
    else:
        settings.wechatpay_gateway = f"http://127.0.0.1:{free_port()}"
    body = {"amount_fen": 990, "description": "Latte", "payer_openid": "o_buyer"}

    response = client.post("/v1/payments/orders", json=body, headers=real.write_headers())

    assert response.status_code == 502, response.text
    assert client.get("/v1/payments/orders", headers=real.headers).json()["data"] == []


def test_one_merchants_broken_gateway_does_not_stop_reconciliation_for_others(
    client: TestClient,
    db: Database,
    settings: Settings,
    real: TenantHandle,
    gateway: Gateway,
    make_tenant: Callable[..., TenantHandle],
    create_order: Callable[..., Order],
) -> None:
    stuck = create_order(real, 100)  # the older order: reconciled first
    other = make_tenant("Sandbox merchant")
    paid = create_order(other, 200)
    client.post(f"/v1/sandbox/orders/{paid['out_trade_no']}/pay", headers=other.headers)
    gateway.broken = 500

    with db.session() as session:
        changed = payments.reconcile(session, settings)

    assert changed["orders"] == 1
    assert (
        client.get(f"/v1/payments/orders/{paid['id']}", headers=other.headers).json()["status"]
        == "SUCCESS"
    )
    assert (
        client.get(f"/v1/payments/orders/{stuck['id']}", headers=real.headers).json()["status"]
        == "NOTPAY"
    )


def test_orders_stranded_by_a_switch_from_the_sandbox_do_not_stop_reconciliation(
    client: TestClient,
    db: Database,
    settings: Settings,
    tenant: TenantHandle,
    gateway: Gateway,
    merchant_key: rsa.RSAPrivateKey,
    make_tenant: Callable[..., TenantHandle],
    create_order: Callable[..., Order],
) -> None:
    """A merchant tries the sandbox, then configures real credentials: its old, expired sandbox
    order can be neither queried nor closed any more."""
    stranded = create_order(tenant, 100)
    with db.session() as session:
        session.execute(
            update(PaymentOrder)
            .where(PaymentOrder.id == stranded["id"])
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    switch_to_wechat_pay(client, tenant, gateway, merchant_key)
    other = make_tenant("Sandbox merchant")
    paid = create_order(other, 200)
    client.post(f"/v1/sandbox/orders/{paid['out_trade_no']}/pay", headers=other.headers)

    with db.session() as session:
        changed = payments.reconcile(session, settings)

    assert changed["orders"] == 1
    assert order_of(client, other, paid["id"])["status"] == "SUCCESS"
    assert order_of(client, tenant, stranded["id"])["status"] == "NOTPAY"
