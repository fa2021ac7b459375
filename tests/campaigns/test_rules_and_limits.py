"""Campaign set-up errors, progress tracks, budgets and caps, risk's daily prompt limit, and
replays, through the HTTP API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.campaigns.conftest import PAY_50_PROMPT, Shop, like_coupon
from tests.conftest import TenantHandle
from zanloop import events
from zanloop.db import Database


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        (
            {
                "trigger": "payment.succeeded",
                "conditions": [{"type": "amount_gte", "fen": -1}],
                "effects": [{"type": "grant_points", "points": 1}],
            },
            "conditions.0.amount_gte.fen",
        ),
        (
            {
                "trigger": "payment.succeeded",
                "conditions": [{"type": "moon_phase"}],
                "effects": [{"type": "grant_points", "points": 1}],
            },
            "conditions.0",
        ),
        (
            {"trigger": "like.created", "effects": [{"type": "prompt_like"}]},
            "rule",
        ),
        (
            {"trigger": "payment.succeeded", "effects": []},
            "effects",
        ),
        (
            {
                "trigger": "payment.succeeded",
                "timezone": "Mars/Olympus",
                "effects": [{"type": "grant_points", "points": 1}],
            },
            "timezone",
        ),
        (
            {
                "trigger": "payment.succeeded",
                "conditions": [{"type": "time_of_day", "start": "25:00", "end": "11:00"}],
                "effects": [{"type": "grant_points", "points": 1}],
            },
            "conditions.0.time_of_day.start",
        ),
    ],
)
def test_a_bad_rule_is_refused_with_the_field_named_and_nothing_saved(
    shop: Shop, rule: dict[str, Any], field: str
) -> None:
    response = shop.client.post(
        "/v1/campaigns", json={"name": "bad", "rule": rule}, headers=shop.tenant.headers
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["type"].endswith("/validation") or body["status"] == 422
    assert any(field in e["field"] for e in body["errors"]), body["errors"]
    listed = shop.client.get("/v1/campaigns", headers=shop.tenant.headers).json()
    assert listed["data"] == []


def test_an_unknown_coupon_template_is_named_in_the_error(shop: Shop) -> None:
    response = shop.client.post(
        "/v1/campaigns",
        json={"name": "x", "rule": like_coupon("cpt_missing")},
        headers=shop.tenant.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "rule.effects.0.template_id"


def test_three_likes_earn_a_free_coffee_and_two_reach_silver(shop: Shop) -> None:
    free = shop.coupon_template(name="free coffee", amount_fen=3000, threshold_fen=0)
    shop.campaign(PAY_50_PROMPT)
    card = shop.campaign(
        {
            "trigger": "like.created",
            "effects": [
                {
                    "type": "progress_tier",
                    "goal": 3,
                    "reward": [{"type": "issue_coupon", "template_id": free["id"]}],
                }
            ],
        }
    )
    shop.campaign(
        {
            "trigger": "like.created",
            "effects": [{"type": "progress_tier", "goal": 2, "tier": "silver"}],
        }
    )
    silver_only = shop.campaign(
        {
            "trigger": "payment.succeeded",
            "conditions": [{"type": "tier_in", "values": ["silver"]}],
            "effects": [{"type": "grant_points", "points": 50}],
        }
    )
    orders = []
    # Three visits: risk allows three like prompts a user a day.
    for visit in range(3):
        orders.append(shop.pay("cat", 5000 + visit))
        [prompt] = shop.prompts("cat", "OPEN")
        assert shop.like(prompt["id"]).status_code == 200
        coupons = [c for c in shop.wallet("cat") if c["template_id"] == free["id"]]
        assert len(coupons) == (1 if visit == 2 else 0)
    # Silver came with the second like, so the third payment earned points.
    assert shop.points("cat") == 50
    metrics = shop.metrics(card["id"])
    assert metrics["rewards_granted"] == 3
    assert metrics["coupons_issued"] == 1

    # Refunding one of the three payments takes the free coffee back: the track stands at 2.
    shop.refund(orders[0]["id"])
    assert [c["status"] for c in shop.wallet("cat") if c["template_id"] == free["id"]] == [
        "REVOKED"
    ]
    assert shop.metrics(silver_only["id"])["rewards_granted"] == 1


def test_a_budget_of_two_rewards_holds_and_a_refund_gives_one_back(shop: Shop) -> None:
    shop.campaign(
        {
            "trigger": "payment.succeeded",
            "effects": [{"type": "grant_points", "points": 10}],
            "budget": {"max_rewards": 2},
        }
    )
    first = shop.pay("u1", 1000)
    shop.pay("u2", 1000)
    third = shop.pay("u3", 1000)
    assert [shop.points(u) for u in ("u1", "u2", "u3")] == [10, 10, 0]
    [verdict] = shop.explain(third["id"])["events"][0]["verdicts"]
    assert verdict["outcome"] == "budget_exhausted"

    shop.refund(first["id"])
    shop.pay("u4", 1000)
    assert [shop.points(u) for u in ("u1", "u4")] == [0, 10]


def test_a_daily_cap_per_user(shop: Shop) -> None:
    shop.campaign(
        {
            "trigger": "payment.succeeded",
            "effects": [{"type": "grant_points", "points": 5}],
            "caps": {"per_user_per_day": 2},
        }
    )
    orders = [shop.pay("dan", 800) for _ in range(3)]
    assert shop.points("dan") == 10
    [verdict] = shop.explain(orders[2]["id"])["events"][0]["verdicts"]
    assert verdict["outcome"] == "user_cap_reached"


def test_risk_allows_three_like_prompts_a_user_a_day(shop: Shop) -> None:
    shop.campaign(PAY_50_PROMPT)
    orders = [shop.pay("eve", 5000) for _ in range(4)]
    assert len(shop.prompts("eve")) == 3
    [verdict] = shop.explain(orders[3]["id"])["events"][0]["verdicts"]
    assert verdict["outcome"] == "risk_blocked"
    assert "risk decision" in verdict["message"]


def test_a_replayed_payment_event_changes_nothing(shop: Shop, db: Database) -> None:
    shop.campaign(
        {"trigger": "payment.succeeded", "effects": [{"type": "grant_points", "points": 7}]}
    )
    order = shop.pay("fay", 1200)
    for _ in range(3):
        with db.session() as session:
            events.publish(
                session,
                events.Event("payment.succeeded", shop.tenant.id, {"order_id": order["id"]}),
            )
    assert shop.points("fay") == 7
    assert len(shop.explain(order["id"])["events"]) == 1


def test_payments_without_a_user_or_a_campaign_are_explained(shop: Shop) -> None:
    order = shop.pay("gus", 9000)
    assert "no campaign was active" in shop.explain(order["id"])["summary"]


def test_one_tenant_never_sees_another_tenants_campaigns_or_prompts(
    shop: Shop, make_tenant: Any
) -> None:
    campaign = shop.campaign(PAY_50_PROMPT)
    order = shop.pay("hal", 5000)
    [prompt] = shop.prompts("hal")
    other: TenantHandle = make_tenant("Other")
    h = other.headers
    assert shop.client.get(f"/v1/campaigns/{campaign['id']}", headers=h).status_code == 404
    assert shop.client.get(f"/v1/prompts/{prompt['id']}", headers=h).status_code == 404
    assert shop.client.get("/v1/users/hal/prompts", headers=h).json() == []
    assert (
        shop.client.post(
            f"/v1/prompts/{prompt['id']}/like", json={}, headers=other.write_headers()
        ).status_code
        == 404
    )
    assert (
        shop.client.get(f"/v1/campaigns/explain/orders/{order['id']}", headers=h).status_code == 404
    )
