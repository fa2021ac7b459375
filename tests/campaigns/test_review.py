"""Risk control's REVIEW holds a reward: nothing is granted until an analyst decides."""

from __future__ import annotations

from typing import Any

from tests.campaigns.conftest import Shop

POINTS = {"trigger": "payment.succeeded", "effects": [{"type": "grant_points", "points": 40}]}


def _held_after_a_refund(shop: Shop, user: str) -> dict[str, Any]:
    """A refunded rewarded payment makes risk review the user's next reward (seed 001: fake
    refunds after a reward)."""
    shop.campaign({**POINTS, "caps": {"per_user_total": 1}})
    first = shop.pay(user, 2000)
    shop.refund(first["id"])
    second = shop.pay(user, 2000)
    [verdict] = shop.explain(second["id"])["events"][0]["verdicts"]
    assert verdict["outcome"] == "held_for_review"
    assert verdict["reward_status"] == "HELD"
    assert shop.points(user) == 0
    return verdict


def test_an_approved_reward_is_granted(shop: Shop) -> None:
    verdict = _held_after_a_refund(shop, "ned")
    response = shop.client.post(
        f"/v1/campaign-rewards/{verdict['reward_id']}/review",
        json={"approve": True},
        headers=shop.tenant.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "GRANTED"
    assert shop.points("ned") == 40
    again = shop.client.post(
        f"/v1/campaign-rewards/{verdict['reward_id']}/review",
        json={"approve": False},
        headers=shop.tenant.headers,
    )
    assert again.status_code == 409


def test_a_rejected_reward_grants_nothing_and_gives_its_limits_back(shop: Shop) -> None:
    verdict = _held_after_a_refund(shop, "oz")
    response = shop.client.post(
        f"/v1/campaign-rewards/{verdict['reward_id']}/review",
        json={"approve": False},
        headers=shop.tenant.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "REJECTED"
    assert shop.points("oz") == 0
    # The cap of one reward a user is free again: neither the refunded nor the rejected counts.
    [would] = shop.simulate(user_id="oz", amount_fen=2000)["verdicts"]
    assert would["outcome"] == "rewarded"
