"""REFUND.* notifications, built independently of zanloop (see WeChatPay in conftest.py): a
verified one settles the refund and reverses the ledger once; anything else changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.payments.conftest import (
    WeChatPay,
    assert_refused,
    at_once,
    order_of,
    post,
    send,
    totals,
)
from zanloop.db import Database

Order = dict[str, Any]
Balance = Callable[..., int]


@pytest.fixture
def refunding(
    client: TestClient, tenant: TenantHandle, paid_order: Callable[..., Order]
) -> tuple[Order, dict[str, Any]]:
    """A paid order of 1000 fen with a 400 fen refund still PROCESSING at the provider."""
    order = paid_order(tenant, 1000)
    response = client.post(
        f"/v1/payments/orders/{order['id']}/refunds",
        json={"amount_fen": 400, "out_refund_no": "RF-0001"},
        headers=tenant.write_headers(),
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "PROCESSING"
    return order, response.json()


def refund_of(client: TestClient, tenant: TenantHandle, refund: dict[str, Any]) -> dict[str, Any]:
    return dict(client.get(f"/v1/payments/refunds/{refund['id']}", headers=tenant.headers).json())


def test_a_refund_notification_settles_the_refund(
    client: TestClient,
    wechat: WeChatPay,
    tenant: TenantHandle,
    refunding: tuple[Order, dict[str, Any]],
    balance: Balance,
) -> None:
    order, refund = refunding
    resource = wechat.refund(order["out_trade_no"], "RF-0001", 400, 1000)

    response = send(client, wechat, wechat.notification(resource, event_type="REFUND.SUCCESS"))

    assert response.status_code == 204, response.text
    assert refund_of(client, tenant, refund)["status"] == "SUCCESS"
    after = client.get(f"/v1/payments/orders/{order['id']}", headers=tenant.headers).json()
    assert (after["status"], after["refunded_fen"]) == ("REFUND", 400)
    assert balance(tenant, "merchant") == 600


@pytest.mark.parametrize(
    ("changes", "status_code"),
    [
        pytest.param({"refund_fen": 401}, 400, id="wrong-amount"),
        pytest.param({"mchid": "1900000109"}, 400, id="wrong-mchid"),
        pytest.param({"out_refund_no": "RF-NOPE"}, 404, id="unknown-out-refund-no"),
        pytest.param({"out_trade_no": "OTHERORDER1"}, 400, id="other-order"),
    ],
)
def test_an_untrustworthy_refund_notification_changes_nothing(
    client: TestClient,
    db: Database,
    wechat: WeChatPay,
    tenant: TenantHandle,
    refunding: tuple[Order, dict[str, Any]],
    balance: Balance,
    changes: dict[str, Any],
    status_code: int,
) -> None:
    order, refund = refunding
    before = totals(db)
    fields = {"out_trade_no": order["out_trade_no"], "out_refund_no": "RF-0001"} | changes
    resource = (
        wechat.refund(
            fields.pop("out_trade_no"),
            fields.pop("out_refund_no"),
            fields.pop("refund_fen", 400),
            1000,
        )
        | fields
    )

    response = send(client, wechat, wechat.notification(resource, event_type="REFUND.SUCCESS"))

    assert_refused(response, status_code)
    assert refund_of(client, tenant, refund)["status"] == "PROCESSING"
    assert balance(tenant, "merchant") == 1000
    assert totals(db) == before


def test_an_abnormal_refund_releases_its_reservation_and_moves_no_money(
    client: TestClient,
    wechat: WeChatPay,
    tenant: TenantHandle,
    refunding: tuple[Order, dict[str, Any]],
    balance: Balance,
) -> None:
    order, refund = refunding
    resource = wechat.refund(order["out_trade_no"], "RF-0001", 400, 1000, refund_status="ABNORMAL")

    response = send(client, wechat, wechat.notification(resource, event_type="REFUND.ABNORMAL"))

    assert response.status_code == 204, response.text
    assert refund_of(client, tenant, refund)["status"] == "ABNORMAL"
    after = order_of(client, tenant, order["id"])
    assert (after["status"], after["refund_reserved_fen"], after["refunded_fen"]) == (
        "SUCCESS",
        0,
        0,
    )
    assert balance(tenant, "merchant") == 1000


def test_a_replayed_refund_notification_reverses_once(
    client: TestClient,
    db: Database,
    wechat: WeChatPay,
    tenant: TenantHandle,
    refunding: tuple[Order, dict[str, Any]],
    balance: Balance,
) -> None:
    order, _ = refunding
    before = totals(db)
    notification = wechat.notification(
        wechat.refund(order["out_trade_no"], "RF-0001", 400, 1000), event_type="REFUND.SUCCESS"
    )

    codes = [send(client, wechat, notification).status_code for _ in range(5)]

    assert codes == [204] * 5
    assert balance(tenant, "merchant") == 600
    assert totals(db).ledger_transfers == before.ledger_transfers + 1


def test_concurrent_refund_notifications_to_a_live_server_reverse_once(
    live_server: str,
    http: httpx.Client,
    db: Database,
    wechat: WeChatPay,
    tenant: TenantHandle,
    refunding: tuple[Order, dict[str, Any]],
    balance: Balance,
) -> None:
    order, _ = refunding
    before = totals(db)
    notification = wechat.notification(
        wechat.refund(order["out_trade_no"], "RF-0001", 400, 1000), event_type="REFUND.SUCCESS"
    )

    codes = at_once(16, lambda _: post(http, live_server + wechat.notify_path, notification))

    assert codes == [204] * 16
    assert balance(tenant, "merchant") == 600
    assert totals(db).ledger_transfers == before.ledger_transfers + 1
    assert totals(db).notifications == before.notifications + 1
