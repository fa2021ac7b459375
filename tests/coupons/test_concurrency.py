"""Many checkouts race for few coupons through a real server on PostgreSQL (concurrent
writers): each coupon discounts exactly one order, and every other checkout is refused."""

from __future__ import annotations

from collections import Counter

import httpx2 as httpx
import pytest

from tests.conftest import at_once, is_postgres
from tests.coupons.conftest import Shop


@pytest.mark.skipif(not is_postgres(), reason="concurrent writers need PostgreSQL")
def test_50_concurrent_checkouts_on_3_coupons_discount_exactly_3_orders(
    shop: Shop, live_server: str, http: httpx.Client
) -> None:
    # given: a template of stock 3, issued to 3 users
    template = shop.template(stock=3, amount_fen=500)
    coupons = [shop.issued(template["id"], f"u{i}") for i in range(3)]
    assert shop.issue(template["id"], "u3").status_code == 409

    # when: 50 checkouts at once, each with one of the three coupons for its owner
    def checkout(i: int) -> httpx.Response:
        user = f"u{i % 3}"
        return http.post(
            f"{live_server}/v1/checkouts",
            json={
                "user_id": user,
                "payer_openid": f"o-{user}",
                "amount_fen": 1000,
                "description": "Latte",
                "coupon_id": coupons[i % 3]["id"],
            },
            headers=shop.tenant.write_headers(),
        )

    responses = at_once(50, checkout)

    # then: exactly one order per coupon carries the discount; the rest are refused
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 3, 409: 47}, [r.text for r in responses if r.status_code >= 500]
    won = [r.json() for r in responses if r.status_code == 201]
    assert sorted(w["coupon"]["id"] for w in won) == sorted(c["id"] for c in coupons)
    assert {w["discount_fen"] for w in won} == {500}
    assert {r.json()["reason"] for r in responses if r.status_code == 409} == {"not_available"}
    orders = shop.orders()
    assert len(orders) == 3
    assert sorted(o["amount_fen"] for o in orders) == [500] * 3
    for w in won:
        assert shop.coupon(w["coupon"]["id"])["order_id"] == w["order"]["id"]
