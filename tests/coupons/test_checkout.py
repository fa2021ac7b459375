"""K3: a coupon used at checkout reduces the payment; the payment's outcome, heard from the
sandbox's verified notifications, settles the coupon: paid → REDEEMED, closed or failed →
AVAILABLE, fully refunded → AVAILABLE again, partly refunded → still REDEEMED."""

from __future__ import annotations

from typing import Any

import pytest

from tests.coupons.conftest import Shop
from zanloop import events
from zanloop.db import Database


def test_a_checkout_without_a_coupon_creates_the_order_for_the_list_price(shop: Shop) -> None:
    done = shop.checked_out(
        "u1", 3800, store_id="store-1", categories=["coffee"], metadata={"table": 7}
    )

    assert (done["list_fen"], done["discount_fen"], done["coupon"]) == (3800, 0, None)
    assert done["order"]["amount_fen"] == 3800
    assert done["pay_params"]["package"].startswith("prepay_id=")
    order = shop.order(done["order"]["id"])
    assert order["metadata"] == {
        "table": 7,
        "user_id": "u1",
        "store_id": "store-1",
        "categories": ["coffee"],
        "coupon_id": None,
        "list_fen": 3800,
        "discount_fen": 0,
    }


@pytest.mark.parametrize(
    ("template", "list_fen", "discount_fen"),
    [
        pytest.param({"amount_fen": 500, "threshold_fen": 3000}, 3800, 500, id="fixed"),
        pytest.param({"amount_fen": 500}, 300, 299, id="fixed-leaves-1-fen"),
        pytest.param(
            {"kind": "PERCENT", "amount_fen": None, "percent_off": 15}, 3333, 499, id="percent"
        ),
        pytest.param(
            {"kind": "PERCENT", "amount_fen": None, "percent_off": 20, "max_discount_fen": 500},
            10000,
            500,
            id="percent-capped",
        ),
    ],
)
def test_the_coupon_is_taken_off_the_payment(
    shop: Shop, template: dict[str, Any], list_fen: int, discount_fen: int
) -> None:
    coupon = shop.issued(shop.template(**template)["id"], "u1")

    done = shop.checked_out("u1", list_fen, coupon["id"])

    assert (done["list_fen"], done["discount_fen"]) == (list_fen, discount_fen)
    assert done["order"]["amount_fen"] == list_fen - discount_fen
    assert done["coupon"]["status"] == "LOCKED"
    assert done["coupon"]["order_id"] == done["order"]["id"]
    order = shop.order(done["order"]["id"])
    assert order["amount_fen"] == list_fen - discount_fen
    assert order["metadata"]["coupon_id"] == coupon["id"]
    assert (order["metadata"]["list_fen"], order["metadata"]["discount_fen"]) == (
        list_fen,
        discount_fen,
    )


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        pytest.param({"amount_fen": 2999}, "threshold", id="below-threshold"),
        pytest.param({"store_id": "store-2"}, "store", id="other-store"),
        pytest.param({"store_id": None}, "store", id="no-store"),
        pytest.param({"categories": ["coffee", "wine"]}, "category", id="other-category"),
        pytest.param({"categories": []}, "category", id="no-category"),
        pytest.param({"user_id": "u2", "payer_openid": "o-u2"}, "not_owner", id="not-owner"),
    ],
)
def test_a_coupon_that_does_not_apply_is_refused_and_nothing_is_written(
    shop: Shop, fields: dict[str, Any], reason: str
) -> None:
    template = shop.template(
        amount_fen=500, threshold_fen=3000, stores=["store-1"], categories=["coffee", "bakery"]
    )
    coupon = shop.issued(template["id"], "u1")
    body = {"amount_fen": 3000, "store_id": "store-1", "categories": ["coffee"], **fields}
    user = body.pop("user_id", "u1")
    amount = body.pop("amount_fen")

    response = shop.checkout(user, amount, coupon["id"], **body)

    assert response.status_code == 409, response.text
    assert response.json()["type"] == "urn:zanloop:problem:coupon-unavailable"
    assert response.json()["reason"] == reason
    assert shop.coupon(coupon["id"])["status"] == "AVAILABLE"
    assert shop.orders() == []
    assert shop.checked_out("u1", 3000, coupon["id"], store_id="store-1", categories=["bakery"])


def test_a_coupon_is_used_by_one_checkout_at_a_time(shop: Shop) -> None:
    coupon = shop.issued(shop.template()["id"], "u1")
    shop.checked_out("u1", 1000, coupon["id"])

    second = shop.checkout("u1", 1000, coupon["id"])

    assert second.status_code == 409
    assert second.json()["reason"] == "not_available"
    assert len(shop.orders()) == 1


def test_paying_redeems_the_coupon(shop: Shop) -> None:
    template = shop.template(amount_fen=500, threshold_fen=3000)
    coupon = shop.issued(template["id"], "u1")
    done = shop.checked_out("u1", 3800, coupon["id"])

    shop.pay(done)

    redeemed = shop.coupon(coupon["id"])
    assert redeemed["status"] == "REDEEMED"
    assert redeemed["redeemed_at"] is not None
    assert (redeemed["order_id"], redeemed["list_fen"], redeemed["discount_fen"]) == (
        done["order"]["id"],
        3800,
        500,
    )
    assert shop.order(done["order"]["id"])["status"] == "SUCCESS"
    assert shop.checkout("u1", 3800, coupon["id"]).json()["reason"] == "not_available"


def test_closing_the_unpaid_order_frees_the_coupon(shop: Shop) -> None:
    coupon = shop.issued(shop.template()["id"], "u1")
    done = shop.checked_out("u1", 1000, coupon["id"])

    shop.close(done)

    freed = shop.coupon(coupon["id"])
    assert freed["status"] == "AVAILABLE"
    assert (freed["list_fen"], freed["discount_fen"]) == (None, None)
    again = shop.checked_out("u1", 1000, coupon["id"])
    shop.pay(again)
    assert shop.coupon(coupon["id"])["status"] == "REDEEMED"
    assert shop.coupon(coupon["id"])["order_id"] == again["order"]["id"]


def test_a_failed_payment_frees_the_coupon(shop: Shop) -> None:
    coupon = shop.issued(shop.template()["id"], "u1")
    done = shop.checked_out("u1", 1000, coupon["id"])

    shop.fail(done)

    assert shop.coupon(coupon["id"])["status"] == "AVAILABLE"


def test_a_full_refund_restores_the_coupon(shop: Shop) -> None:
    template = shop.template(amount_fen=500, threshold_fen=3000)
    coupon = shop.issued(template["id"], "u1")
    done = shop.checked_out("u1", 3800, coupon["id"])
    shop.pay(done)

    shop.refund(done, 1000)
    after_partial = shop.coupon(coupon["id"])
    shop.refund(done)  # the rest

    restored = shop.coupon(coupon["id"])
    assert after_partial["status"] == "REDEEMED"
    assert shop.order(done["order"]["id"])["refunded_fen"] == 3300
    assert restored["status"] == "AVAILABLE"
    assert (restored["order_id"], restored["redeemed_at"], restored["discount_fen"]) == (
        None,
        None,
        None,
    )
    assert shop.get_template(template["id"])["redeemed"] == 0
    assert shop.checked_out("u1", 3800, coupon["id"])["discount_fen"] == 500


def test_a_partial_refund_keeps_the_coupon_redeemed(shop: Shop) -> None:
    coupon = shop.issued(shop.template()["id"], "u1")
    done = shop.checked_out("u1", 2000, coupon["id"])
    shop.pay(done)

    shop.refund(done, 1499)  # everything but 1 fen

    assert shop.coupon(coupon["id"])["status"] == "REDEEMED"


def _replay(db: Database, tenant_id: str, name: str, order: dict[str, Any]) -> None:
    with db.session() as session:
        events.publish(
            session,
            events.Event(
                name,
                tenant_id,
                {
                    "order_id": order["id"],
                    "status": order["status"],
                    "amount_fen": order["amount_fen"],
                    "refunded_fen": order["refunded_fen"],
                    "metadata": order["metadata"],
                },
            ),
        )


def test_replayed_payment_events_change_nothing(shop: Shop, db: Database) -> None:
    template = shop.template()
    redeemed = shop.issued(template["id"], "u1")
    paid = shop.checked_out("u1", 1000, redeemed["id"])
    shop.pay(paid)
    restored = shop.issued(template["id"], "u2")
    refunded = shop.checked_out("u2", 1000, restored["id"])
    shop.pay(refunded)
    paid_order = shop.order(paid["order"]["id"])
    shop.refund(refunded)
    refunded_order = shop.order(refunded["order"]["id"])
    before = [shop.coupon(c["id"]) for c in (redeemed, restored)]

    _replay(db, shop.tenant.id, "payment.succeeded", paid_order)
    _replay(db, shop.tenant.id, "payment.closed", paid_order)
    _replay(db, shop.tenant.id, "payment.refunded", refunded_order)
    _replay(db, shop.tenant.id, "payment.succeeded", {**refunded_order, "refunded_fen": 0})

    assert [shop.coupon(c["id"]) for c in (redeemed, restored)] == before
    assert [c["status"] for c in before] == ["REDEEMED", "AVAILABLE"]


def test_a_checkout_needs_an_idempotency_key_and_replays_with_it(shop: Shop) -> None:
    coupon = shop.issued(shop.template()["id"], "u1")
    body = {
        "user_id": "u1",
        "payer_openid": "o-u1",
        "amount_fen": 1000,
        "description": "Latte",
        "coupon_id": coupon["id"],
    }

    keyless = shop.client.post("/v1/checkouts", json=body, headers=shop.tenant.headers)
    first = shop.client.post("/v1/checkouts", json=body, headers=shop.tenant.write_headers("k1"))
    again = shop.client.post("/v1/checkouts", json=body, headers=shop.tenant.write_headers("k1"))

    assert keyless.status_code == 400
    assert first.status_code == 201, first.text
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(shop.orders()) == 1


def test_an_out_trade_no_used_before_is_refused_and_the_coupon_stays(shop: Shop) -> None:
    coupon = shop.issued(shop.template()["id"], "u1")
    shop.checked_out("u1", 1000, out_trade_no="shop-order-0001")

    reused = shop.checkout("u1", 1000, coupon["id"], out_trade_no="shop-order-0001")

    assert reused.status_code == 409
    assert reused.json()["type"] == "urn:zanloop:problem:duplicate"
    assert shop.coupon(coupon["id"])["status"] == "AVAILABLE"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"metadata": {"coupon_id": "cpn_x"}}, "metadata", id="reserved-metadata"),
        pytest.param({"amount_fen": 0}, "amount_fen", id="zero-amount"),
        pytest.param({"categories": "coffee"}, "categories", id="categories-not-a-list"),
        pytest.param({"out_trade_no": "x"}, "out_trade_no", id="short-out-trade-no"),
    ],
)
def test_a_bad_checkout_names_the_field(shop: Shop, fields: dict[str, Any], field: str) -> None:
    body = {"amount_fen": 1000, **fields}
    amount = body.pop("amount_fen")

    response = shop.checkout("u1", amount, **body)

    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


def test_an_unknown_coupon_is_404(shop: Shop) -> None:
    assert shop.checkout("u1", 1000, "cpn_nope").status_code == 404
    assert shop.orders() == []


def test_a_payment_completing_after_its_order_closed_still_redeems_the_coupon(
    shop: Shop, db: Database
) -> None:
    # The sandbox never pays a closed order; the provider may (WeChat Pay reports SUCCESS from
    # CLOSED), and payments publishes payment.succeeded for it like any other.
    coupon = shop.issued(shop.template()["id"], "u1")
    done = shop.checked_out("u1", 1000, coupon["id"])
    shop.close(done)

    _replay(db, shop.tenant.id, "payment.succeeded", shop.order(done["order"]["id"]))

    redeemed = shop.coupon(coupon["id"])
    assert redeemed["status"] == "REDEEMED"
    assert (redeemed["order_id"], redeemed["list_fen"], redeemed["discount_fen"]) == (
        done["order"]["id"],
        1000,
        500,
    )


def test_a_late_payment_leaves_a_coupon_another_order_took_meanwhile(
    shop: Shop, db: Database
) -> None:
    coupon = shop.issued(shop.template()["id"], "u1")
    first = shop.checked_out("u1", 1000, coupon["id"])
    shop.close(first)
    second = shop.checked_out("u1", 2000, coupon["id"])

    _replay(db, shop.tenant.id, "payment.succeeded", shop.order(first["order"]["id"]))

    held = shop.coupon(coupon["id"])
    assert (held["status"], held["order_id"]) == ("LOCKED", second["order"]["id"])
