"""K4: issued, redeemed, redemption rate, discount given against spend driven (leverage)."""

from __future__ import annotations

from tests.coupons.conftest import Shop


def test_metrics_of_a_template_and_of_the_tenant(shop: Shop) -> None:
    # given: 4 coupons of 5 CNY off from 30; 2 redeemed on 30 and 50 CNY, 1 revoked
    template = shop.template(amount_fen=500, threshold_fen=3000)
    other = shop.template(amount_fen=100)
    coupons = [shop.issued(template["id"], f"u{i}") for i in range(4)]
    shop.issued(other["id"], "u9")
    shop.pay(shop.checked_out("u0", 3000, coupons[0]["id"]))
    shop.pay(shop.checked_out("u1", 5000, coupons[1]["id"]))
    shop.checked_out("u2", 3000, coupons[2]["id"])  # locked, not paid
    shop.client.post(
        f"/v1/coupons/{coupons[3]['id']}/revoke", headers=shop.tenant.headers
    ).raise_for_status()

    # when
    of_template = shop.client.get(
        f"/v1/coupons/metrics?template_id={template['id']}", headers=shop.tenant.headers
    )
    of_tenant = shop.client.get("/v1/coupons/metrics", headers=shop.tenant.headers)

    # then
    assert of_template.status_code == 200, of_template.text
    assert of_template.json() == {
        "template_id": template["id"],
        "issued": 4,
        "redeemed": 2,
        "expired": 0,
        "revoked": 1,
        "redemption_rate": 0.5,
        "discount_fen": 1000,
        "spend_fen": 2500 + 4500,
        "list_fen": 8000,
        "leverage": 7.0,
    }
    assert of_tenant.json()["issued"] == 5
    assert of_tenant.json()["redemption_rate"] == 0.4


def test_metrics_with_nothing_to_divide_are_null(shop: Shop) -> None:
    empty = shop.client.get("/v1/coupons/metrics", headers=shop.tenant.headers).json()
    shop.issued(shop.template()["id"], "u1")
    unused = shop.client.get("/v1/coupons/metrics", headers=shop.tenant.headers).json()

    assert (empty["issued"], empty["redemption_rate"], empty["leverage"]) == (0, None, None)
    assert (unused["issued"], unused["redemption_rate"], unused["leverage"]) == (1, 0.0, None)


def test_a_refunded_redemption_no_longer_counts(shop: Shop) -> None:
    coupon = shop.issued(shop.template()["id"], "u1")
    checkout = shop.checked_out("u1", 1000, coupon["id"])
    shop.pay(checkout)

    shop.refund(checkout)

    figures = shop.client.get("/v1/coupons/metrics", headers=shop.tenant.headers).json()
    assert (figures["redeemed"], figures["discount_fen"], figures["spend_fen"]) == (0, 0, 0)


def test_metrics_are_for_merchants_and_analysts(shop: Shop) -> None:
    by_analyst = shop.client.get("/v1/coupons/metrics", headers=shop.key("analyst"))
    by_app = shop.client.get("/v1/coupons/metrics", headers=shop.key("app"))
    unknown = shop.client.get(
        "/v1/coupons/metrics?template_id=ctpl_nope", headers=shop.tenant.headers
    )

    assert by_analyst.status_code == 200
    assert by_app.status_code == 403
    assert unknown.status_code == 404
