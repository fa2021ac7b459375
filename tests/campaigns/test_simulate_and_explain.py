"""Simulate (a dry run) and explain agree with what really happens."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2 as httpx
import pytest

from tests.campaigns.conftest import PAY_50_PROMPT, Shop
from tests.conftest import is_postgres

MORNING = {
    "trigger": "payment.succeeded",
    "conditions": [
        {"type": "amount_gte", "fen": 3000},
        {"type": "category_in", "values": ["beans"]},
        {"type": "store_in", "values": ["store-1", "store-2"]},
    ],
    "effects": [{"type": "grant_points", "points": 20}],
}


def _outcomes(verdicts: list[dict[str, Any]]) -> dict[str, str]:
    return {v["campaign_id"]: v["outcome"] for v in verdicts}


@pytest.mark.parametrize(
    ("amount", "store", "categories"),
    [
        (5000, "store-1", ("beans",)),
        (2999, "store-1", ("beans",)),
        (5000, "store-3", ("beans",)),
        (5000, "store-2", ("coffee",)),
        (4000, None, ("beans", "coffee")),
    ],
)
def test_simulate_predicts_the_real_outcome(
    shop: Shop, amount: int, store: str | None, categories: tuple[str, ...]
) -> None:
    shop.campaign(PAY_50_PROMPT, name="prompt")
    beans = shop.campaign(MORNING, name="beans")
    predicted = shop.simulate(
        trigger="payment.succeeded",
        user_id="ivy",
        amount_fen=amount,
        store_id=store,
        categories=list(categories),
    )
    before = shop.simulate(trigger="payment.succeeded", amount_fen=amount)  # nothing written
    assert before["verdicts"]
    order = shop.pay("ivy", amount, store=store, categories=categories)
    [event] = shop.explain(order["id"])["events"]
    assert _outcomes(event["verdicts"]) == _outcomes(predicted["verdicts"])
    for real, simulated in zip(event["verdicts"], predicted["verdicts"], strict=True):
        assert [c["passed"] for c in real["checks"]] == [c["passed"] for c in simulated["checks"]]
    rewarded = _outcomes(event["verdicts"])[beans["id"]] == "rewarded"
    assert shop.points("ivy") == (20 if rewarded else 0)


def test_simulate_sees_a_spent_budget_and_a_reached_cap(shop: Shop) -> None:
    capped = shop.campaign(
        {
            "trigger": "payment.succeeded",
            "effects": [{"type": "grant_points", "points": 1}],
            "caps": {"per_user_total": 1},
            "budget": {"max_rewards": 2},
        }
    )
    shop.pay("jo", 100)
    [verdict] = shop.simulate(user_id="jo", amount_fen=100)["verdicts"]
    assert verdict["outcome"] == "user_cap_reached"
    shop.pay("kim", 100)
    [verdict] = shop.simulate(user_id="lee", amount_fen=100)["verdicts"]
    assert verdict["outcome"] == "budget_exhausted"
    assert shop.metrics(capped["id"])["rewards_granted"] == 2


def test_explain_tells_a_refunded_reward_apart(shop: Shop) -> None:
    shop.campaign(MORNING)
    order = shop.pay("max", 3000, categories=("beans",))
    shop.refund(order["id"])
    explained = shop.explain(order["id"])
    assert "refunded" in explained["summary"]
    [verdict] = explained["events"][0]["verdicts"]
    assert verdict["reward_status"] == "REVERSED"
    assert "reversed: payment refunded" in verdict["message"]


@pytest.mark.skipif(not is_postgres(), reason="row locks under real concurrency: PostgreSQL")
def test_a_budget_of_three_holds_under_fifty_concurrent_likes(shop: Shop, live_server: str) -> None:
    template = shop.coupon_template(stock=100)
    shop.campaign({**PAY_50_PROMPT})
    campaign = shop.campaign(
        {
            "trigger": "like.created",
            "effects": [{"type": "issue_coupon", "template_id": template["id"]}],
            "budget": {"max_rewards": 3},
        }
    )
    prompts = []
    for i in range(50):
        shop.pay(f"fan{i}", 5000)
        prompts.extend(shop.prompts(f"fan{i}"))
    assert len(prompts) == 50

    def like(prompt: dict[str, Any]) -> int:
        with httpx.Client(base_url=live_server, timeout=60) as http:
            return http.post(
                f"/v1/prompts/{prompt['id']}/like", json={}, headers=shop.tenant.write_headers()
            ).status_code

    with ThreadPoolExecutor(max_workers=25) as pool:
        codes = list(pool.map(like, prompts))
    assert codes.count(200) == 50
    figures = shop.metrics(campaign["id"])
    assert (figures["rewards_granted"], figures["coupons_issued"]) == (3, 3)
    assert figures["likes"] == 0  # likes are counted on the prompt's own campaign
