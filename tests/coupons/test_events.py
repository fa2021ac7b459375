"""Every change of a coupon's state is offered to the merchant's webhooks."""

from __future__ import annotations

from tests.coupons.conftest import Shop


def test_a_coupons_life_reaches_the_webhooks_in_order(shop: Shop) -> None:
    endpoint = shop.client.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/hooks", "event_types": ["coupon.*"]},
        headers=shop.tenant.headers,
    )
    assert endpoint.status_code == 201, endpoint.text
    template = shop.template(amount_fen=500, threshold_fen=3000)
    coupon = shop.issued(template["id"], "u1")
    shop.close(shop.checked_out("u1", 3800, coupon["id"]))
    paid = shop.checked_out("u1", 3800, coupon["id"])
    shop.pay(paid)
    shop.refund(paid)
    shop.client.post(
        f"/v1/coupons/{coupon['id']}/revoke", json={"reason": "test"}, headers=shop.tenant.headers
    )

    messages = shop.client.get("/v1/webhooks/messages", headers=shop.tenant.headers).json()
    mine = [m for m in reversed(messages["data"]) if m["event_type"].startswith("coupon.")]
    assert [m["event_type"] for m in mine] == [
        "coupon.issued",
        "coupon.released",
        "coupon.redeemed",
        "coupon.restored",
        "coupon.revoked",
    ]
    redeemed = mine[2]["payload"]["data"]
    assert (redeemed["coupon_id"], redeemed["order_id"], redeemed["discount_fen"]) == (
        coupon["id"],
        paid["order"]["id"],
        500,
    )
    assert {m["payload"]["data"]["status"] for m in mine} == {
        "AVAILABLE",
        "REDEEMED",
        "REVOKED",
    }
