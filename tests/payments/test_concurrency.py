"""Every money-moving call, run concurrently with itself against a real server (uvicorn runs
each request in its own thread and transaction): the invariants hold on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx2 as httpx

from tests.conftest import TenantHandle, at_once
from tests.payments.conftest import order_of

Order = dict[str, Any]


def test_concurrent_refunds_never_exceed_what_was_paid(
    live_server: str,
    http: httpx.Client,
    client: Any,
    tenant: TenantHandle,
    paid_order: Callable[..., Order],
) -> None:
    order = paid_order(tenant, 1000)
    url = f"{live_server}/v1/payments/orders/{order['id']}/refunds"

    responses = at_once(
        8, lambda _: http.post(url, json={"amount_fen": 300}, headers=tenant.write_headers())
    )

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 3 + [422] * 5, [r.text for r in responses]
    assert all(
        r.json()["errors"][0]["field"] == "amount_fen" for r in responses if r.status_code == 422
    )
    assert order_of(client, tenant, order["id"])["refund_reserved_fen"] == 900
    refunds = client.get(f"/v1/payments/orders/{order['id']}/refunds", headers=tenant.headers)
    assert [r["amount_fen"] for r in refunds.json()] == [300, 300, 300]


def test_concurrent_creates_with_one_out_trade_no_make_one_order(
    live_server: str, http: httpx.Client, client: Any, tenant: TenantHandle
) -> None:
    body = {
        "amount_fen": 990,
        "description": "Latte",
        "payer_openid": "o_buyer",
        "out_trade_no": "SHOP-CONCURRENT-1",
    }
    url = f"{live_server}/v1/payments/orders"

    responses = at_once(8, lambda _: http.post(url, json=body, headers=tenant.write_headers()))

    assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len({r.json()["prepay_id"] for r in responses}) == 1
    listed = client.get("/v1/payments/orders", headers=tenant.headers).json()["data"]
    assert len(listed) == 1
