"""WeChat Pay v3 notifications at POST /v1/payments/notify/{tenant_id}, built independently of
zanloop (see WeChatPay in conftest.py): what settles, what is refused, and that a payment
settles once however often, and however concurrently, WeChat repeats itself."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.payments.conftest import (
    Notification,
    Totals,
    WeChatPay,
    assert_refused,
    at_once,
    post,
    private_pem,
    public_pem,
    rsa_key,
    send,
    totals,
)
from zanloop.db import Database

Order = dict[str, Any]
Balance = Callable[..., int]
Status = Callable[[TenantHandle, str], str]


# Transactions --------------------------------------------------------------------------------


def test_a_valid_notification_settles_the_order(
    client: TestClient,
    wechat: WeChatPay,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
    balance: Balance,
) -> None:
    order = create_order(tenant, 990)
    resource = wechat.transaction(order["out_trade_no"], 990)

    response = send(client, wechat, wechat.notification(resource))

    assert response.status_code == 204, response.text
    settled = client.get(f"/v1/payments/orders/{order['id']}", headers=tenant.headers).json()
    assert settled["status"] == "SUCCESS"
    assert settled["transaction_id"] == resource["transaction_id"]
    assert balance(tenant, "merchant") == 990


Build = Callable[[WeChatPay, Order], Notification]


def variant(
    resource: dict[str, Any] | None = None,
    headers: dict[str, str | None] | None = None,
    age_seconds: int = 0,
    **signing: Any,
) -> Build:
    """A notification for the order with resource fields changed, signed with ``signing``
    options (see WeChatPay.notification) ``age_seconds`` ago, then headers replaced (None
    drops one)."""

    def build(w: WeChatPay, order: Order) -> Notification:
        fields = {"out_trade_no": order["out_trade_no"], "total_fen": order["amount_fen"]}
        fields |= resource or {}
        transaction = w.transaction(fields.pop("out_trade_no"), fields.pop("total_fen"), **fields)
        signed_at = int(time.time()) - age_seconds
        signed = w.notification(transaction, signed_at=signed_at, **signing)
        merged = {**signed.headers, **(headers or {})}
        return Notification(signed.body, {k: v for k, v in merged.items() if v is not None})

    return build


def tampered(w: WeChatPay, order: Order) -> Notification:
    signed = variant()(w, order)
    return Notification(
        signed.body.replace("支付成功".encode(), "支付失败".encode()), signed.headers
    )


def signed_body(raw: bytes) -> Build:
    return lambda w, order: w.sign(raw)


REFUSED: list[Any] = [
    pytest.param(tampered, 401, id="tampered-body"),
    pytest.param(variant(signing_key=rsa_key()), 401, id="signed-with-another-key"),
    pytest.param(variant(serial="PUB_KEY_ID_UNKNOWN"), 401, id="unknown-serial"),
    pytest.param(variant(age_seconds=360), 401, id="timestamp-6-min-old"),
    pytest.param(variant(age_seconds=-360), 401, id="timestamp-6-min-ahead"),
    pytest.param(variant(headers={"Wechatpay-Signature-Type": "HMAC"}), 401, id="sig-type"),
    pytest.param(variant(headers={"Wechatpay-Signature": None}), 401, id="no-signature-header"),
    pytest.param(variant(headers={"Wechatpay-Timestamp": None}), 401, id="no-timestamp-header"),
    pytest.param(variant(headers={"Wechatpay-Nonce": None}), 401, id="no-nonce-header"),
    pytest.param(variant(headers={"Wechatpay-Serial": None}), 401, id="no-serial-header"),
    pytest.param(variant({"total_fen": 1}), 400, id="wrong-amount"),
    pytest.param(variant({"mchid": "1900000109"}), 400, id="wrong-mchid"),
    pytest.param(variant({"payer": {"openid": "o_someone_else"}}), 400, id="wrong-payer"),
    pytest.param(variant({"out_trade_no": "NOSUCHORDER1"}), 404, id="unknown-out-trade-no"),
    pytest.param(variant(apiv3_key="k" * 32), 400, id="undecryptable-resource"),
    pytest.param(signed_body(b"{not json"), 400, id="signed-but-not-json"),
    pytest.param(signed_body(b'{"id": "x", "resource": "text"}'), 400, id="resource-not-object"),
]


@pytest.mark.parametrize(("build", "status_code"), REFUSED)
def test_an_untrustworthy_notification_is_refused_and_changes_nothing(
    client: TestClient,
    db: Database,
    wechat: WeChatPay,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
    order_status: Status,
    build: Build,
    status_code: int,
) -> None:
    order = create_order(tenant, 990)
    before = totals(db)

    response = send(client, wechat, build(wechat, order))

    assert_refused(response, status_code)
    assert order_status(tenant, order["id"]) == "NOTPAY"
    assert totals(db) == before == Totals(ledger_transfers=0, ledger_entries=0, notifications=0)


def test_a_body_that_is_not_utf8_is_refused(
    client: TestClient, db: Database, wechat: WeChatPay, tenant: TenantHandle
) -> None:
    signed = wechat.notification(wechat.transaction("ANYORDER01", 990))

    response = client.post(
        wechat.notify_path, content=b"\xff\xfe" + signed.body, headers=signed.headers
    )

    assert_refused(response, 400)
    assert totals(db).notifications == 0


def test_a_notification_for_an_unknown_tenant_is_refused(
    client: TestClient, wechat: WeChatPay
) -> None:
    signed = wechat.notification(wechat.transaction("ANYORDER01", 990))

    response = client.post(
        "/v1/payments/notify/tnt_nobody", content=signed.body, headers=signed.headers
    )

    assert_refused(response, 404)


def test_a_notification_sent_to_another_tenants_url_settles_nothing(
    client: TestClient,
    db: Database,
    wechat: WeChatPay,
    make_tenant: Callable[..., TenantHandle],
    create_order: Callable[..., Order],
    order_status: Status,
) -> None:
    """Same out_trade_no at two tenants; a notification sent to the wrong tenant's URL carries
    the other merchant's mchid and APIv3 key, so it cannot be decrypted there."""
    other = make_tenant("Other merchant")
    theirs = create_order(other, 990, out_trade_no="SHARED0001")
    signed = wechat.notification(wechat.transaction("SHARED0001", 990))

    response = client.post(
        f"/v1/payments/notify/{other.id}", content=signed.body, headers=signed.headers
    )

    assert_refused(response, 400)
    assert order_status(other, theirs["id"]) == "NOTPAY"
    assert totals(db).ledger_transfers == 0


def test_a_payment_notified_after_the_order_was_closed_still_settles(
    client: TestClient,
    wechat: WeChatPay,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
    order_status: Status,
    balance: Balance,
) -> None:
    """The provider is the truth: the buyer's money moved, so the order settles."""
    order = create_order(tenant, 300)
    client.post(f"/v1/payments/orders/{order['id']}/close", headers=tenant.headers)

    response = send(
        client, wechat, wechat.notification(wechat.transaction(order["out_trade_no"], 300))
    )

    assert response.status_code == 204, response.text
    assert order_status(tenant, order["id"]) == "SUCCESS"
    assert balance(tenant, "merchant") == 300


def test_a_replayed_notification_settles_once(
    client: TestClient,
    db: Database,
    wechat: WeChatPay,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
    balance: Balance,
) -> None:
    order = create_order(tenant, 1234)
    notification = wechat.notification(wechat.transaction(order["out_trade_no"], 1234))

    codes = [send(client, wechat, notification).status_code for _ in range(5)]

    assert codes == [204] * 5
    assert balance(tenant, "merchant") == 1234
    assert totals(db) == Totals(ledger_transfers=1, ledger_entries=2, notifications=1)


def test_the_same_payment_under_new_notification_ids_settles_once(
    client: TestClient,
    db: Database,
    wechat: WeChatPay,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
    balance: Balance,
) -> None:
    order = create_order(tenant, 500)
    resource = wechat.transaction(order["out_trade_no"], 500)

    codes = [send(client, wechat, wechat.notification(resource)).status_code for _ in range(3)]

    assert codes == [204] * 3
    assert balance(tenant, "merchant") == 500
    assert totals(db).ledger_transfers == 1


def test_concurrent_notifications_through_the_test_client_settle_once(
    client: TestClient,
    db: Database,
    wechat: WeChatPay,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
    balance: Balance,
) -> None:
    order = create_order(tenant, 800)
    notification = wechat.notification(wechat.transaction(order["out_trade_no"], 800))

    codes = at_once(8, lambda _: send(client, wechat, notification).status_code)

    assert codes == [204] * 8
    assert balance(tenant, "merchant") == 800
    assert totals(db).ledger_transfers == 1


@pytest.mark.parametrize(
    ("same_id", "notifications"),
    [
        pytest.param(True, 1, id="one-notification-sixteen-times"),
        pytest.param(False, 16, id="sixteen-notifications-of-one-payment"),
    ],
)
def test_concurrent_notifications_to_a_live_server_settle_once(
    live_server: str,
    http: httpx.Client,
    db: Database,
    wechat: WeChatPay,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
    balance: Balance,
    order_status: Status,
    same_id: bool,
    notifications: int,
) -> None:
    """Real concurrency: uvicorn runs each request in its own thread and transaction."""
    order = create_order(tenant, 1990)
    resource = wechat.transaction(order["out_trade_no"], 1990)
    sent = [wechat.notification(resource, notification_id="n-1" if same_id else None)]
    sent = sent * 16 if same_id else sent + [wechat.notification(resource) for _ in range(15)]

    codes = at_once(16, lambda i: post(http, live_server + wechat.notify_path, sent[i]))

    assert codes == [204] * 16
    assert order_status(tenant, order["id"]) == "SUCCESS"
    assert balance(tenant, "merchant") == 1990
    assert totals(db) == Totals(ledger_transfers=1, ledger_entries=2, notifications=notifications)


def test_new_platform_keys_take_effect_for_the_next_notification(
    client: TestClient,
    wechat: WeChatPay,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
    order_status: Status,
) -> None:
    """Verification keys are cached per tenant until its provider configuration changes."""
    before, after = create_order(tenant, 100), create_order(tenant, 200)
    assert send(client, wechat, variant()(wechat, before)).status_code == 204
    rotated = dataclasses.replace(wechat, key_id="PUB_KEY_ID_ROTATED", private_key=rsa_key())
    configured = client.put(
        "/v1/payments/provider",
        json={
            "mchid": wechat.mchid,
            "appid": wechat.appid,
            "merchant_serial_no": "444F4864EA9B34415",
            "merchant_private_key_pem": private_pem(rsa_key()),
            "apiv3_key": wechat.apiv3_key,
            "platform_public_key_id": rotated.key_id,
            "platform_public_key_pem": public_pem(rotated.private_key),
        },
        headers=tenant.headers,
    )
    assert configured.status_code == 200, configured.text

    old_key = send(client, wechat, variant()(wechat, after))
    new_key = send(client, rotated, variant()(rotated, after))

    assert_refused(old_key, 401)
    assert new_key.status_code == 204, new_key.text
    assert order_status(tenant, after["id"]) == "SUCCESS"
