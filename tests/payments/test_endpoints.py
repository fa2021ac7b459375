"""The payments API as an integrator sees it: orders, refunds, errors, and sync (the order
query) for a notification that never arrives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.payments.conftest import order_of, refund, sandbox
from zanloop.jobs.worker import Worker

Order = dict[str, Any]


# Orders --------------------------------------------------------------------------------------


def test_creating_an_order_returns_pay_params_and_a_disclosure(
    client: TestClient, tenant: TenantHandle
) -> None:
    body = {"amount_fen": 990, "description": "Latte", "payer_openid": "o_buyer", "attach": "t1"}

    response = client.post("/v1/payments/orders", json=body, headers=tenant.write_headers())

    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["status"], order["amount_fen"], order["currency"]) == ("NOTPAY", 990, "CNY")
    assert order["pay_params"]["package"] == f"prepay_id={order['prepay_id']}"
    assert order["pay_params"]["signType"] == "RSA"
    assert order["disclosure"]["amount_fen"] == 990
    assert order_of(client, tenant, order["id"])["attach"] == "t1"


def test_creating_an_order_requires_an_idempotency_key(
    client: TestClient, tenant: TenantHandle
) -> None:
    body = {"amount_fen": 990, "description": "Latte", "payer_openid": "o_buyer"}

    response = client.post("/v1/payments/orders", json=body, headers=tenant.headers)

    assert response.status_code == 400
    assert client.get("/v1/payments/orders", headers=tenant.headers).json()["data"] == []


def test_retrying_with_the_same_idempotency_key_returns_the_same_order(
    client: TestClient, tenant: TenantHandle
) -> None:
    body = {"amount_fen": 990, "description": "Latte", "payer_openid": "o_buyer"}
    headers = tenant.write_headers("order-1")

    first = client.post("/v1/payments/orders", json=body, headers=headers)
    again = client.post("/v1/payments/orders", json=body, headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(client.get("/v1/payments/orders", headers=tenant.headers).json()["data"]) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"amount_fen": 0}, "amount_fen", id="zero-amount"),
        pytest.param({"amount_fen": "ten"}, "amount_fen", id="amount-not-a-number"),
        pytest.param({"currency": "USD"}, "currency", id="other-currency"),
        pytest.param({"description": ""}, "description", id="empty-description"),
        pytest.param({"out_trade_no": "bad no!"}, "out_trade_no", id="bad-out-trade-no"),
        pytest.param({"expire_minutes": 0}, "expire_minutes", id="no-time-to-pay"),
        pytest.param({"colour": "red"}, "colour", id="unknown-field"),
    ],
)
def test_invalid_orders_name_the_field(
    client: TestClient, tenant: TenantHandle, changes: dict[str, Any], field: str
) -> None:
    body = {"amount_fen": 990, "description": "Latte", "payer_openid": "o_buyer"} | changes

    response = client.post("/v1/payments/orders", json=body, headers=tenant.write_headers())

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


def test_reusing_an_out_trade_no_with_other_parameters_is_a_conflict(
    client: TestClient, tenant: TenantHandle, create_order: Callable[..., Order]
) -> None:
    first = create_order(tenant, 990, out_trade_no="SHOP-000001")
    same = create_order(tenant, 990, out_trade_no="SHOP-000001")
    body = {"amount_fen": 991, "description": "Latte", "payer_openid": "o_buyer"}

    other = client.post(
        "/v1/payments/orders",
        json=body | {"out_trade_no": "SHOP-000001"},
        headers=tenant.write_headers(),
    )

    assert same["id"] == first["id"]
    assert other.status_code == 409
    assert "SHOP-000001" in other.json()["detail"]


def test_orders_list_newest_first_with_filters_and_cursor(
    client: TestClient,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
    paid_order: Callable[..., Order],
) -> None:
    first = create_order(tenant, 100)
    second = create_order(tenant, 200)
    paid = paid_order(tenant, 300)

    page = client.get("/v1/payments/orders?limit=2", headers=tenant.headers).json()
    rest = client.get(f"/v1/payments/orders?cursor={page['next_cursor']}", headers=tenant.headers)
    by_status = client.get("/v1/payments/orders?status=SUCCESS", headers=tenant.headers).json()
    by_no = client.get(
        f"/v1/payments/orders?out_trade_no={first['out_trade_no']}", headers=tenant.headers
    ).json()

    assert [o["id"] for o in page["data"]] == [paid["id"], second["id"]]
    assert [o["id"] for o in rest.json()["data"]] == [first["id"]]
    assert [o["id"] for o in by_status["data"]] == [paid["id"]]
    assert [o["id"] for o in by_no["data"]] == [first["id"]]


def test_another_tenants_order_is_not_found(
    client: TestClient,
    tenant: TenantHandle,
    make_tenant: Callable[..., TenantHandle],
    create_order: Callable[..., Order],
) -> None:
    order = create_order(tenant)
    other = make_tenant("Other")

    assert (
        client.get(f"/v1/payments/orders/{order['id']}", headers=other.headers).status_code == 404
    )
    assert refund(client, other, order["id"]).status_code == 404
    closed = client.post(f"/v1/payments/orders/{order['id']}/close", headers=other.headers)
    assert closed.status_code == 404


def test_closing_an_unpaid_order_closes_it_at_the_provider_too(
    client: TestClient, tenant: TenantHandle, create_order: Callable[..., Order]
) -> None:
    order = create_order(tenant)

    closed = client.post(f"/v1/payments/orders/{order['id']}/close", headers=tenant.headers)
    again = client.post(f"/v1/payments/orders/{order['id']}/close", headers=tenant.headers)

    assert (closed.status_code, closed.json()["status"]) == (200, "CLOSED")
    assert (again.status_code, again.json()["status"]) == (200, "CLOSED")
    assert sandbox(client, tenant, order, "pay").status_code == 409


def test_a_paid_order_cannot_be_closed(
    client: TestClient, tenant: TenantHandle, paid_order: Callable[..., Order]
) -> None:
    order = paid_order(tenant)

    response = client.post(f"/v1/payments/orders/{order['id']}/close", headers=tenant.headers)

    assert response.status_code == 409
    assert order_of(client, tenant, order["id"])["status"] == "SUCCESS"


def test_sync_settles_an_order_the_provider_says_is_paid(
    client: TestClient, tenant: TenantHandle, create_order: Callable[..., Order]
) -> None:
    order = create_order(tenant, 700)
    assert sandbox(client, tenant, order, "pay").status_code == 200  # notification not delivered

    synced = client.post(f"/v1/payments/orders/{order['id']}/sync", headers=tenant.headers)

    assert (synced.status_code, synced.json()["status"]) == (200, "SUCCESS")
    assert synced.json()["transaction_id"]
    assert (
        client.get("/v1/ledger/balances/merchant", headers=tenant.headers).json()["balance"] == 700
    )


def test_a_failed_sandbox_payment_shows_as_payerror_after_sync(
    client: TestClient, tenant: TenantHandle, create_order: Callable[..., Order]
) -> None:
    order = create_order(tenant)
    assert sandbox(client, tenant, order, "fail").status_code == 200

    synced = client.post(f"/v1/payments/orders/{order['id']}/sync", headers=tenant.headers)

    assert synced.json()["status"] == "PAYERROR"
    assert client.get("/v1/ledger/balances/merchant", headers=tenant.headers).json()["balance"] == 0


def test_a_payment_to_another_payee_credits_that_payee(
    client: TestClient, tenant: TenantHandle, paid_order: Callable[..., Order]
) -> None:
    paid_order(tenant, 250, payee="creator:alice")

    alice = client.get("/v1/ledger/balances/creator:alice", headers=tenant.headers).json()
    merchant = client.get("/v1/ledger/balances/merchant", headers=tenant.headers).json()
    assert (alice["balance"], merchant["balance"]) == (250, 0)


# Refunds -------------------------------------------------------------------------------------


def test_partial_refunds_settle_and_add_up(
    client: TestClient, worker: Worker, tenant: TenantHandle, paid_order: Callable[..., Order]
) -> None:
    order = paid_order(tenant, 1000)

    first = refund(client, tenant, order["id"], amount_fen=300, reason="one cup missing")
    second = refund(client, tenant, order["id"], amount_fen=200)
    worker.drain()

    assert (first.status_code, first.json()["status"]) == (201, "PROCESSING")
    refunds = client.get(f"/v1/payments/orders/{order['id']}/refunds", headers=tenant.headers)
    assert [(r["amount_fen"], r["status"]) for r in refunds.json()] == [
        (300, "SUCCESS"),
        (200, "SUCCESS"),
    ]
    one = client.get(f"/v1/payments/refunds/{second.json()['id']}", headers=tenant.headers).json()
    assert one["refund_id"]
    assert one["success_time"]
    after = order_of(client, tenant, order["id"])
    assert (after["status"], after["refunded_fen"]) == ("REFUND", 500)
    assert (
        client.get("/v1/ledger/balances/merchant", headers=tenant.headers).json()["balance"] == 500
    )


def test_a_refund_without_amount_refunds_what_is_left(
    client: TestClient, worker: Worker, tenant: TenantHandle, paid_order: Callable[..., Order]
) -> None:
    order = paid_order(tenant, 1000)
    refund(client, tenant, order["id"], amount_fen=400)

    rest = refund(client, tenant, order["id"])
    worker.drain()

    assert (rest.status_code, rest.json()["amount_fen"]) == (201, 600)
    assert order_of(client, tenant, order["id"])["refunded_fen"] == 1000
    assert client.get("/v1/ledger/balances/merchant", headers=tenant.headers).json()["balance"] == 0


@pytest.mark.parametrize(
    ("already", "asked"),
    [
        pytest.param(0, 1001, id="more-than-paid"),
        pytest.param(600, 401, id="more-than-left"),
        pytest.param(1000, None, id="nothing-left"),
    ],
)
def test_over_refunds_are_refused_naming_amount_fen(
    client: TestClient,
    tenant: TenantHandle,
    paid_order: Callable[..., Order],
    already: int,
    asked: int | None,
) -> None:
    order = paid_order(tenant, 1000)
    if already:
        assert refund(client, tenant, order["id"], amount_fen=already).status_code == 201

    response = refund(client, tenant, order["id"], **({"amount_fen": asked} if asked else {}))

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "amount_fen"
    assert order_of(client, tenant, order["id"])["refund_reserved_fen"] == already


@pytest.mark.parametrize("state", ["NOTPAY", "CLOSED"])
def test_an_unpaid_order_cannot_be_refunded(
    client: TestClient, tenant: TenantHandle, create_order: Callable[..., Order], state: str
) -> None:
    order = create_order(tenant)
    if state == "CLOSED":
        client.post(f"/v1/payments/orders/{order['id']}/close", headers=tenant.headers)

    response = refund(client, tenant, order["id"], amount_fen=100)

    assert response.status_code == 409
    assert (
        client.get(f"/v1/payments/orders/{order['id']}/refunds", headers=tenant.headers).json()
        == []
    )


def test_a_refund_amount_of_zero_names_the_field(
    client: TestClient, tenant: TenantHandle, paid_order: Callable[..., Order]
) -> None:
    order = paid_order(tenant)

    response = refund(client, tenant, order["id"], amount_fen=0)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "amount_fen"


def test_out_refund_no_is_idempotent_and_cannot_be_reused_for_another_amount(
    client: TestClient, tenant: TenantHandle, paid_order: Callable[..., Order]
) -> None:
    order = paid_order(tenant, 1000)

    first = refund(client, tenant, order["id"], amount_fen=300, out_refund_no="RF-1")
    again = refund(client, tenant, order["id"], amount_fen=300, out_refund_no="RF-1")
    other = refund(client, tenant, order["id"], amount_fen=301, out_refund_no="RF-1")

    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert order_of(client, tenant, order["id"])["refund_reserved_fen"] == 300


def test_a_refund_requires_an_idempotency_key(
    client: TestClient, tenant: TenantHandle, paid_order: Callable[..., Order]
) -> None:
    order = paid_order(tenant)

    response = client.post(
        f"/v1/payments/orders/{order['id']}/refunds", json={"amount_fen": 1}, headers=tenant.headers
    )

    assert response.status_code == 400


def test_closing_an_order_the_buyer_has_just_paid_settles_it_instead(
    client: TestClient, tenant: TenantHandle, create_order: Callable[..., dict[str, Any]]
) -> None:
    order = create_order(tenant, 1200)
    client.post(f"/v1/sandbox/orders/{order['out_trade_no']}/pay", headers=tenant.headers)

    # The notification has not arrived yet when the merchant tries to close.
    closed = client.post(f"/v1/payments/orders/{order['id']}/close", headers=tenant.headers)

    assert closed.status_code == 200
    assert closed.json()["status"] == "SUCCESS"
    balance = client.get("/v1/ledger/balances/merchant", headers=tenant.headers).json()
    assert balance["balance"] == 1200
