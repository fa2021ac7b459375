"""No read or write crosses a tenant: another tenant's objects are 404, and lists never show
them, even when both tenants chose the same ids."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.ledger.helpers import balance_of, fund, post_transfer
from zanloop.jobs.worker import Worker

Objects = dict[str, str]


@pytest.fixture
def theirs(
    client: TestClient,
    worker: Worker,
    make_tenant: Callable[..., TenantHandle],
    paid_order: Callable[..., dict[str, Any]],
) -> tuple[TenantHandle, Objects]:
    """Another tenant with one of everything: a paid and partly refunded order, a webhook
    endpoint with a message and a delivery, a transfer and a pending hold."""
    them = make_tenant("Theirs")
    endpoint = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://testserver/hooks/theirs"},
        headers=them.headers,
    ).json()
    order = paid_order(them, 1000)
    refund = client.post(
        f"/v1/payments/orders/{order['id']}/refunds",
        json={"amount_fen": 100},
        headers=them.write_headers(),
    ).json()
    worker.drain()
    fund(client, them, "their-customer", 500)
    post_transfer(client, them, "shared-transfer", "their-customer", "shop", 50)
    client.post(
        "/v1/ledger/holds",
        json={
            "hold_id": "shared-hold",
            "asset": "CNY",
            "from_owner": "their-customer",
            "to_owner": "shop",
            "amount": 70,
        },
        headers=them.write_headers(),
    )
    message = client.get("/v1/webhooks/messages", headers=them.headers).json()["data"][0]
    delivery = client.get("/v1/webhooks/deliveries", headers=them.headers).json()["data"][0]
    return them, {
        "order": order["id"],
        "out_trade_no": order["out_trade_no"],
        "refund": refund["id"],
        "endpoint": endpoint["id"],
        "message": message["id"],
        "delivery": delivery["id"],
    }


Call = tuple[str, str, dict[str, Any] | None]

CROSSING_CALLS: dict[str, list[Call]] = {
    "payments": [
        ("GET", "/v1/payments/orders/{order}", None),
        ("GET", "/v1/payments/orders?out_trade_no={out_trade_no}", None),
        ("POST", "/v1/payments/orders/{order}/close", None),
        ("POST", "/v1/payments/orders/{order}/sync", None),
        ("POST", "/v1/payments/orders/{order}/refunds", {"amount_fen": 1}),
        ("GET", "/v1/payments/orders/{order}/refunds", None),
        ("GET", "/v1/payments/refunds/{refund}", None),
    ],
    "ledger": [
        ("GET", "/v1/ledger/transfers/shared-transfer", None),
        ("POST", "/v1/ledger/transfers/shared-transfer/reversals", {"reversal_id": "r1"}),
        ("GET", "/v1/ledger/holds/shared-hold", None),
        ("POST", "/v1/ledger/holds/shared-hold/post", None),
        ("POST", "/v1/ledger/holds/shared-hold/void", None),
        ("GET", "/v1/ledger/balances/their-customer/entries", None),
    ],
    "webhooks": [
        ("GET", "/v1/webhooks/endpoints/{endpoint}", None),
        ("PATCH", "/v1/webhooks/endpoints/{endpoint}", {"enabled": False}),
        ("DELETE", "/v1/webhooks/endpoints/{endpoint}", None),
        ("GET", "/v1/webhooks/messages/{message}", None),
        ("POST", "/v1/webhooks/messages/{message}/replay", None),
        ("GET", "/v1/webhooks/deliveries/{delivery}", None),
    ],
    "sandbox": [
        ("GET", "/v1/sandbox/orders/{out_trade_no}", None),
        ("POST", "/v1/sandbox/orders/{out_trade_no}/pay", None),
    ],
}


# One case per area: building the other tenant's world (a paid order) costs about a second.
@pytest.mark.parametrize("area", list(CROSSING_CALLS))
def test_another_tenants_objects_are_404_and_stay_as_they_were(
    client: TestClient, tenant: TenantHandle, theirs: tuple[TenantHandle, Objects], area: str
) -> None:
    them, ids = theirs
    before = _snapshot(client, them, ids)

    for method, url, body in CROSSING_CALLS[area]:
        response = client.request(
            method, url.format(**ids), json=body, headers=tenant.write_headers()
        )

        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["type"] == "urn:zanloop:problem:not-found"
    assert _snapshot(client, them, ids) == before


def _snapshot(client: TestClient, them: TenantHandle, ids: Objects) -> list[Any]:
    reads = [
        f"/v1/payments/orders/{ids['order']}",
        f"/v1/payments/orders/{ids['order']}/refunds",
        "/v1/ledger/holds/shared-hold",
        "/v1/ledger/transfers/shared-transfer",
        f"/v1/webhooks/endpoints/{ids['endpoint']}",
        "/v1/webhooks/deliveries",
    ]
    return [client.get(url, headers=them.headers).json() for url in reads] + [
        balance_of(client, them, "their-customer")
    ]


LISTS = [
    "/v1/payments/orders",
    "/v1/ledger/accounts",
    "/v1/webhooks/endpoints",
    "/v1/webhooks/messages",
    "/v1/webhooks/deliveries",
    "/v1/api-keys",
]


def _listed_ids(client: TestClient, t: TenantHandle) -> set[str]:
    ids: set[str] = set()
    for url in LISTS:
        response = client.get(url, headers=t.headers)
        assert response.status_code == 200, (url, response.text)
        body = response.json()
        ids.update(item["id"] for item in (body["data"] if isinstance(body, dict) else body))
    return ids


def test_lists_show_only_the_callers_objects(
    client: TestClient, tenant: TenantHandle, theirs: tuple[TenantHandle, Objects]
) -> None:
    them, ids = theirs

    ours, their_listed = _listed_ids(client, tenant), _listed_ids(client, them)

    assert {ids["order"], ids["endpoint"], ids["message"], ids["delivery"]} <= their_listed
    assert not ours & their_listed
    assert balance_of(client, tenant, "their-customer")["balance"] == 0
