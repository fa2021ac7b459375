"""The whole journey a merchant takes: order, pay in the sandbox, settle, refund."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from zanloop.jobs.worker import Worker


def test_paid_order_settles_into_the_ledger(
    client: TestClient, tenant: TenantHandle, paid_order: Callable[..., dict[str, Any]]
) -> None:
    order = paid_order(tenant, 990)

    balance = client.get("/v1/ledger/balances/merchant", headers=tenant.headers).json()
    assert order["transaction_id"]
    assert balance["balance"] == 990


def test_partial_then_full_refund_reverses_the_ledger(
    client: TestClient,
    worker: Worker,
    tenant: TenantHandle,
    paid_order: Callable[..., dict[str, Any]],
) -> None:
    order = paid_order(tenant, 1000)

    first = client.post(
        f"/v1/payments/orders/{order['id']}/refunds",
        json={"amount_fen": 300},
        headers=tenant.write_headers(),
    )
    rest = client.post(f"/v1/payments/orders/{order['id']}/refunds", headers=tenant.write_headers())
    worker.drain()

    assert first.status_code == 201
    assert rest.status_code == 201
    assert rest.json()["amount_fen"] == 700
    refunded = client.get(f"/v1/payments/orders/{order['id']}", headers=tenant.headers).json()
    assert refunded["status"] == "REFUND"
    assert refunded["refunded_fen"] == 1000
    balance = client.get("/v1/ledger/balances/merchant", headers=tenant.headers).json()
    assert balance["balance"] == 0
