"""C1-C5 through the HTTP API: a payment triggers a prompt, the like earns a coupon, the
share earns points, and refunds take it all back."""

from __future__ import annotations

from tests.campaigns.conftest import PAY_50_PROMPT, Shop, like_coupon


def test_a_payment_over_the_threshold_prompts_a_like_and_the_like_earns_a_coupon(
    shop: Shop,
) -> None:
    template = shop.coupon_template()
    shop.campaign(PAY_50_PROMPT, name="prompt")
    shop.campaign(like_coupon(template["id"]), name="coupon for a like")

    small = shop.pay("ann", 4999)
    assert shop.prompts("ann") == []
    big = shop.pay("ann", 5000)
    [prompt] = shop.prompts("ann")
    assert prompt["order_id"] == big["id"]
    assert prompt["status"] == "OPEN"
    assert (prompt["store"], prompt["slogan"]) == ("Lujiazui", "Liked it? Tell us.")

    liked = shop.like(prompt["id"])
    assert liked.status_code == 200, liked.text
    body = liked.json()
    assert body["prompt"]["status"] == "LIKED"
    assert [v["outcome"] for v in body["rewards"]] == ["rewarded"]
    [coupon] = shop.wallet("ann")
    assert coupon["template_id"] == template["id"]
    assert coupon["status"] == "AVAILABLE"

    again = shop.like(prompt["id"])
    assert again.status_code == 200
    assert again.json()["replayed"] is True
    assert len(shop.wallet("ann")) == 1  # one like per payment

    explained = shop.explain(small["id"])
    [event] = explained["events"]
    [verdict] = event["verdicts"]
    assert verdict["outcome"] == "conditions_not_met"
    assert "49.99 CNY is below 50.00 CNY" in verdict["message"]


def test_a_refund_revokes_the_prompt_and_reverses_every_reward(shop: Shop) -> None:
    template = shop.coupon_template()
    shop.campaign(PAY_50_PROMPT)
    shop.campaign(like_coupon(template["id"]))
    shop.campaign({"trigger": "share.created", "effects": [{"type": "grant_points", "points": 30}]})
    liked_order = shop.pay("bob", 6000)
    open_order = shop.pay("bob", 5500)
    prompts = {p["order_id"]: p for p in shop.prompts("bob")}
    assert shop.like(prompts[liked_order["id"]]["id"]).status_code == 200
    assert shop.share(prompts[liked_order["id"]]["id"]).status_code == 200
    assert shop.points("bob") == 30
    assert len(shop.wallet("bob", "AVAILABLE")) == 1

    shop.refund(open_order["id"])
    assert shop.prompts("bob", "REVOKED")[0]["order_id"] == open_order["id"]

    shop.refund(liked_order["id"], 100)  # any refund, even a part, takes the rewards back
    assert shop.points("bob") == 0
    assert shop.wallet("bob", "AVAILABLE") == []
    assert len(shop.wallet("bob", "REVOKED")) == 1
    rewards = shop.client.get(
        "/v1/campaign-rewards", params={"user_id": "bob"}, headers=shop.tenant.headers
    ).json()["data"]
    assert {r["status"] for r in rewards} == {"REVERSED"}


def test_prompts_and_reversals_are_offered_to_the_merchants_webhooks(shop: Shop) -> None:
    endpoint = shop.client.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "event_types": ["campaign.*"]},
        headers=shop.tenant.headers,
    )
    assert endpoint.status_code == 201, endpoint.text
    shop.campaign(PAY_50_PROMPT)
    order = shop.pay("ida", 5200)
    shop.refund(order["id"])
    messages = shop.client.get("/v1/webhooks/messages", headers=shop.tenant.headers).json()
    kinds = [
        m["event_type"]
        for m in reversed(messages["data"])
        if m["event_type"].startswith("campaign.")
    ]
    assert kinds == [
        "campaign.prompt.created",
        "campaign.reward.granted",
        "campaign.prompt.revoked",
        "campaign.reward.reversed",
    ]
    created = next(m for m in messages["data"] if m["event_type"] == "campaign.prompt.created")
    data = created["payload"]["data"]
    assert (data["user_id"], data["order_id"], data["store"]) == ("ida", order["id"], "Lujiazui")
