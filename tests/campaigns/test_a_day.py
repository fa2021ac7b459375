"""A day of mixed payments, likes, shares and refunds gives exactly the rewards the rules say:
the test keeps its own model of the rules and compares it with what the API reports."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

import pytest

from tests.campaigns.conftest import PAY_50_PROMPT, Shop, like_coupon

USERS = ["ann", "bob", "cy", "di", "ed"]
SHARE_POINTS = 10
BEANS_POINTS = 20


@dataclass
class Model:
    prompts_per_user: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # order id -> what it earned so far
    coupons: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    points: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    beans_today: set[str] = field(default_factory=set)
    owner: dict[str, str] = field(default_factory=dict)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_day_of_mixed_traffic_earns_exactly_what_the_rules_say(shop: Shop, seed: int) -> None:
    rnd = random.Random(seed)
    coupon = shop.coupon_template()
    shop.campaign(PAY_50_PROMPT)
    shop.campaign(like_coupon(coupon["id"]))
    shop.campaign(
        {"trigger": "share.created", "effects": [{"type": "grant_points", "points": SHARE_POINTS}]}
    )
    shop.campaign(
        {
            "trigger": "payment.succeeded",
            "conditions": [
                {"type": "amount_gte", "fen": 3000},
                {"type": "category_in", "values": ["beans"]},
            ],
            "effects": [{"type": "grant_points", "points": BEANS_POINTS}],
            "caps": {"per_user_per_day": 1},
        }
    )
    model = Model()
    orders: list[str] = []
    for _ in range(22):
        user = rnd.choice(USERS)
        amount = rnd.choice([1800, 3200, 4999, 5000, 6800, 8800])
        category = rnd.choice(["coffee", "beans"])
        order = shop.pay(user, amount, categories=(category,))
        orders.append(order["id"])
        model.owner[order["id"]] = user
        prompted = amount >= 5000 and model.prompts_per_user[user] < 3  # risk: 3 a day
        if amount >= 5000:
            model.prompts_per_user[user] += prompted
        if amount >= 3000 and category == "beans" and user not in model.beans_today:
            model.beans_today.add(user)
            model.points[order["id"]] += BEANS_POINTS
        if prompted and rnd.random() < 0.7:
            [prompt] = [p for p in shop.prompts(user, "OPEN") if p["order_id"] == order["id"]]
            assert shop.like(prompt["id"]).status_code == 200
            model.coupons[order["id"]] += 1
            if rnd.random() < 0.5:
                assert shop.share(prompt["id"]).status_code == 200
                model.points[order["id"]] += SHARE_POINTS

    def expected_points(refunded: set[str]) -> dict[str, int]:
        totals = {u: 0 for u in USERS}
        for order_id, points in model.points.items():
            if order_id not in refunded:
                totals[model.owner[order_id]] += points
        return totals

    def available_coupons(refunded: set[str]) -> int:
        return sum(n for order_id, n in model.coupons.items() if order_id not in refunded)

    assert {u: shop.points(u) for u in USERS} == expected_points(set())
    assert sum(len(shop.wallet(u, "AVAILABLE")) for u in USERS) == available_coupons(set())
    assert sum(len(shop.prompts(u)) for u in USERS) == sum(model.prompts_per_user.values())

    refunded = set(rnd.sample(orders, 5))
    for order_id in refunded:
        shop.refund(order_id)
    assert {u: shop.points(u) for u in USERS} == expected_points(refunded)
    assert sum(len(shop.wallet(u, "AVAILABLE")) for u in USERS) == available_coupons(refunded)
    revoked = sum(len(shop.wallet(u, "REVOKED")) for u in USERS)
    assert revoked == sum(n for o, n in model.coupons.items() if o in refunded)

    # The ledger balances: every point a user holds was given out by a campaign account.
    accounts = shop.client.get(
        "/v1/ledger/accounts", params={"limit": 200}, headers=shop.tenant.headers
    ).json()["data"]
    assert sum(a["balance"] for a in accounts if a["asset"] == "POINTS") == 0
