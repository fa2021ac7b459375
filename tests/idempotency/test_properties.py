"""Hypothesis: any interleaving of retries, reused keys and failures keeps every key's promise.

A key first used with a request that succeeds answers that request's response forever after
(and nothing moves twice); another request under it is 422; a key whose request failed is
free again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TenantHandle
from tests.ledger.helpers import BANK, balance_of, open_bank, transfer_body

# Three transfers the bank can always pay, and one from an account that is always empty.
BODIES = [
    transfer_body("t0", BANK, "r0", 5),
    transfer_body("t1", BANK, "r1", 7),
    transfer_body("t2", BANK, "r0", 11),
    transfer_body("broke", "nobody", "r1", 3),
]
KEYS = ["k0", "k1", "k2"]

requests = st.lists(
    st.tuples(st.sampled_from(KEYS), st.integers(min_value=0, max_value=len(BODIES) - 1)),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=requests)
def test_retries_in_any_order_move_each_transfer_once(
    client: TestClient, make_tenant: Callable[..., TenantHandle], sequence: list[tuple[str, int]]
) -> None:
    tenant = make_tenant()  # fresh per example, so keys and transfer ids start unused
    open_bank(client, tenant)
    first_use: dict[str, tuple[int, Any]] = {}
    posted: set[str] = set()

    for key, choice in sequence:
        body = BODIES[choice]
        response = client.post("/v1/ledger/transfers", json=body, headers=tenant.write_headers(key))

        if key in first_use and first_use[key][0] == choice:
            assert response.status_code == 201
            assert response.headers["Idempotent-Replayed"] == "true"
            assert response.json() == first_use[key][1]
        elif key in first_use:
            assert response.status_code == 422
        elif body["transfer_id"] == "broke":
            assert response.status_code == 409  # refused, and the key stays free
        else:
            assert response.status_code == 201
            assert "Idempotent-Replayed" not in response.headers
            assert response.json()["replayed"] is (body["transfer_id"] in posted)
            first_use[key] = (choice, response.json())
            posted.add(body["transfer_id"])

    moved = {"r0": 0, "r1": 0}
    for body in BODIES[:3]:
        if body["transfer_id"] in posted:
            moved[body["legs"][1]["owner"]] += body["legs"][1]["amount"]
    assert {owner: balance_of(client, tenant, owner)["balance"] for owner in moved} == moved
