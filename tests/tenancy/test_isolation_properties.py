"""Hypothesis: two tenants create random objects, often under the same client-chosen ids;
neither ever reads, lists or changes the other's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TenantHandle
from tests.ledger.helpers import BANK, balance_of, open_bank, post_transfer

SHARED_IDS = ("a", "b", "c")  # transfer and hold ids both tenants may pick


@dataclass
class Made:
    """What one tenant created, by the ids the API gave or the tenant chose."""

    orders: set[str] = field(default_factory=set)
    endpoints: set[str] = field(default_factory=set)
    transfers: dict[str, str] = field(default_factory=dict)  # transfer_id -> id
    holds: dict[str, int] = field(default_factory=dict)  # hold_id -> amount
    received: int = 0


plans = st.fixed_dictionaries(
    {
        "orders": st.integers(min_value=0, max_value=2),
        "endpoints": st.integers(min_value=0, max_value=2),
        "transfers": st.sets(st.sampled_from(SHARED_IDS)),
        "holds": st.sets(st.sampled_from(SHARED_IDS)),
        "amount": st.integers(min_value=1, max_value=50),
    }
)


def _create(client: TestClient, t: TenantHandle, plan: dict[str, Any]) -> Made:
    made = Made()
    open_bank(client, t)
    for _ in range(plan["orders"]):
        body = {"amount_fen": 100 * plan["amount"], "description": "Tea", "payer_openid": "o_1"}
        response = client.post("/v1/payments/orders", json=body, headers=t.write_headers())
        made.orders.add(response.json()["id"])
    for i in range(plan["endpoints"]):
        response = client.post(
            "/v1/webhooks/endpoints", json={"url": f"https://example.com/{i}"}, headers=t.headers
        )
        made.endpoints.add(response.json()["id"])
    for transfer_id in plan["transfers"]:
        response = post_transfer(client, t, transfer_id, BANK, "customer", plan["amount"])
        made.transfers[transfer_id] = response.json()["id"]
        made.received += plan["amount"]
    for hold_id in plan["holds"]:
        body = {
            "hold_id": hold_id,
            "asset": "CNY",
            "from_owner": BANK,
            "to_owner": "customer",
            "amount": plan["amount"],
        }
        assert (
            client.post("/v1/ledger/holds", json=body, headers=t.write_headers()).status_code == 201
        )
        made.holds[hold_id] = plan["amount"]
    return made


def _listed(client: TestClient, t: TenantHandle) -> tuple[set[str], set[str], set[str]]:
    orders = client.get("/v1/payments/orders", headers=t.headers).json()["data"]
    endpoints = client.get("/v1/webhooks/endpoints", headers=t.headers).json()
    accounts = client.get("/v1/ledger/accounts", headers=t.headers).json()["data"]
    return {o["id"] for o in orders}, {e["id"] for e in endpoints}, {a["id"] for a in accounts}


def _check_reads(client: TestClient, t: TenantHandle, own: Made, other: Made) -> None:
    for order_id in other.orders:
        assert client.get(f"/v1/payments/orders/{order_id}", headers=t.headers).status_code == 404
    for endpoint_id in other.endpoints:
        url = f"/v1/webhooks/endpoints/{endpoint_id}"
        assert client.get(url, headers=t.headers).status_code == 404
    for shared in SHARED_IDS:
        transfer = client.get(f"/v1/ledger/transfers/{shared}", headers=t.headers)
        if shared in own.transfers:
            assert transfer.json()["id"] == own.transfers[shared]
        else:
            assert transfer.status_code == 404
        hold = client.get(f"/v1/ledger/holds/{shared}", headers=t.headers)
        if shared in own.holds:
            assert hold.json()["amount"] == own.holds[shared]
        else:
            assert hold.status_code == 404
    customer = balance_of(client, t, "customer")
    assert (customer["balance"], customer["pending_in"]) == (own.received, sum(own.holds.values()))


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first_plan=plans, second_plan=plans)
def test_two_tenants_never_see_each_others_objects(
    client: TestClient,
    make_tenant: Callable[..., TenantHandle],
    first_plan: dict[str, Any],
    second_plan: dict[str, Any],
) -> None:
    first, second = make_tenant("First"), make_tenant("Second")
    made = {first: _create(client, first, first_plan), second: _create(client, second, second_plan)}

    for t, other in ((first, second), (second, first)):
        _check_reads(client, t, made[t], made[other])
    (first_orders, first_endpoints, first_accounts) = _listed(client, first)
    (second_orders, second_endpoints, second_accounts) = _listed(client, second)

    assert first_orders == made[first].orders
    assert second_orders == made[second].orders
    assert first_endpoints == made[first].endpoints
    assert second_endpoints == made[second].endpoints
    assert not first_accounts & second_accounts
