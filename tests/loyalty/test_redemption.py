"""Redemption (L5): a catalogue priced in points, held then confirmed or cancelled, released
when stale, refused when points, stock or the member's limit run out, idempotent by number."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.loyalty.conftest import Programme, event

SHANGHAI = ZoneInfo("Asia/Shanghai")
SHARE_100 = {"trigger": "share.created", "effects": [{"type": "grant_points", "points": 100}]}


def today() -> date:
    return datetime.now(SHANGHAI).date()


def local(days_ago: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(today() - timedelta(days=days_ago), time(hour, minute), SHANGHAI)


def earn(p: Programme, user: str, hundreds: int) -> None:
    """``hundreds`` lots of 100 points, the first the soonest to expire."""
    p.send(
        *[
            event("share.created", user, local(10 - n, 12), event_id=f"{user}-share-{n}")
            for n in range(hundreds)
        ]
    )


@pytest.fixture
def shop(programme: Programme) -> Programme:
    programme.rule(SHARE_100)
    return programme


def act(p: Programme, redemption_id: str, action: str) -> Any:
    return p.client.post(
        f"/v1/loyalty/redemptions/{redemption_id}/{action}", headers=p.tenant.headers
    )


def problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = dict(response.json())
    assert body["type"] == f"urn:zanloop:problem:{slug}"
    return body


def test_a_hold_then_confirm_spends_the_points(shop: Programme) -> None:
    earn(shop, "ann", 3)
    item = shop.item(name="Mug", price_points=100, stock=5)

    held = shop.redeem("ann", item["id"])

    assert held.status_code == 201, held.text
    body = held.json()
    assert (body["status"], body["points"], body["coupon_ids"]) == ("HELD", 100, [])
    assert body["balance"] == {
        "user_id": "ann",
        "available": 200,
        "pending": 0,
        "held": 100,
        "tier": "normal",
    }
    assert shop.balance("ann") == body["balance"]

    confirmed = act(shop, body["id"], "confirm")

    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "CONFIRMED"
    assert confirmed.json()["resolved_at"] is not None
    assert (confirmed.json()["balance"]["available"], confirmed.json()["balance"]["held"]) == (
        200,
        0,
    )
    assert shop.ledger()["loyalty:redeemed"] == 100
    assert shop.ledger()["user:ann"] == 200
    assert act(shop, body["id"], "confirm").json()["status"] == "CONFIRMED"  # again: no change
    problem(act(shop, body["id"], "cancel"), 409, "invalid-state")
    [listed] = shop.client.get(
        "/v1/loyalty/members/ann/redemptions", headers=shop.tenant.headers
    ).json()
    assert (listed["id"], listed["status"]) == (body["id"], "CONFIRMED")


def test_a_coupon_item_issues_its_coupons_to_the_wallet_on_confirm(
    shop: Programme, client: TestClient, tenant: TenantHandle
) -> None:
    earn(shop, "ann", 5)
    template = client.post(
        "/v1/coupon-templates",
        json={"name": "5 off", "kind": "FIXED", "amount_fen": 500, "valid_days": 30},
        headers=tenant.headers,
    )
    assert template.status_code == 201, template.text
    item = shop.item(
        name="5 CNY coupon",
        kind="COUPON",
        price_points=150,
        coupon_template_id=template.json()["id"],
    )

    redeemed = shop.redeem("ann", item["id"], quantity=2, confirm=True)

    assert redeemed.status_code == 201, redeemed.text
    body = redeemed.json()
    assert (body["status"], body["points"], len(body["coupon_ids"])) == ("CONFIRMED", 300, 2)
    assert body["balance"]["available"] == 200
    wallet = client.get("/v1/users/ann/coupons", headers=tenant.headers).json()
    coupons = wallet["data"] if isinstance(wallet, dict) else wallet
    assert sorted(c["id"] for c in coupons) == sorted(body["coupon_ids"])
    assert {(c["template_id"], c["status"]) for c in coupons} == {
        (template.json()["id"], "AVAILABLE")
    }


def test_cancel_returns_the_points_to_the_lots_they_came_from(shop: Programme) -> None:
    earn(shop, "ann", 2)
    soonest, later = sorted(shop.lots("ann"), key=lambda lot: lot["expires_at"])
    item = shop.item(price_points=150, stock=1, per_user_limit=1)
    held = shop.redeem("ann", item["id"]).json()
    assert held["allocations"] == {soonest["id"]: 100, later["id"]: 50}

    cancelled = act(shop, held["id"], "cancel")

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    assert {lot["id"]: lot["remaining"] for lot in shop.lots("ann")} == {
        soonest["id"]: 100,
        later["id"]: 100,
    }
    assert cancelled.json()["balance"]["available"] == 200
    assert cancelled.json()["balance"]["held"] == 0
    assert act(shop, held["id"], "cancel").json()["status"] == "CANCELLED"
    problem(act(shop, held["id"], "confirm"), 409, "invalid-state")
    # Stock and the member's limit came back too.
    assert shop.redeem("ann", item["id"]).status_code == 201


def test_a_stale_hold_is_released_by_the_job(shop: Programme) -> None:
    shop.settings(hold_minutes=5)
    earn(shop, "ann", 1)
    item = shop.item(price_points=100)
    held = shop.redeem("ann", item["id"]).json()
    created = datetime.fromisoformat(held["created_at"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(held["expires_at"].replace("Z", "+00:00")) == created + timedelta(
        minutes=5
    )

    shop.run_jobs(created + timedelta(minutes=4))
    assert shop.balance("ann")["held"] == 100

    shop.run_jobs(created + timedelta(minutes=5))

    released = shop.client.get(
        f"/v1/loyalty/redemptions/{held['id']}", headers=shop.tenant.headers
    ).json()
    assert released["status"] == "EXPIRED"
    assert shop.balance("ann") == {
        "user_id": "ann",
        "available": 100,
        "pending": 0,
        "held": 0,
        "tier": "normal",
    }
    problem(act(shop, held["id"], "confirm"), 409, "invalid-state")


def test_not_enough_points_is_a_409_that_holds_nothing(shop: Programme) -> None:
    earn(shop, "ann", 1)
    earn(shop, "bob", 2)
    item = shop.item(price_points=101, stock=1)

    refused = shop.redeem("ann", item["id"])

    body = problem(refused, 409, "insufficient-funds")
    assert body["detail"] == "the member has 100 points available, 101 needed"
    assert shop.balance("ann")["available"] == 100
    assert shop.balance("ann")["held"] == 0
    assert (
        shop.client.get("/v1/loyalty/members/ann/redemptions", headers=shop.tenant.headers).json()
        == []
    )
    assert shop.redeem("bob", item["id"]).status_code == 201  # the stock was not taken


def test_an_item_out_of_stock_is_refused(shop: Programme) -> None:
    earn(shop, "ann", 3)
    earn(shop, "bob", 3)
    item = shop.item(price_points=100, stock=2)

    assert shop.redeem("ann", item["id"], quantity=2).status_code == 201
    refused = shop.redeem("bob", item["id"])

    body = problem(refused, 409, "redemption-refused")
    assert "out of stock" in body["detail"]
    assert shop.balance("bob")["held"] == 0


def test_a_members_limit_is_refused_but_not_another_members(shop: Programme) -> None:
    earn(shop, "ann", 3)
    earn(shop, "bob", 3)
    item = shop.item(price_points=100, per_user_limit=1)
    assert shop.redeem("ann", item["id"], confirm=True).status_code == 201

    refused = shop.redeem("ann", item["id"])

    assert "limit" in problem(refused, 409, "redemption-refused")["detail"]
    assert shop.balance("ann")["available"] == 200
    assert shop.redeem("bob", item["id"]).status_code == 201


def test_a_paused_item_is_refused(shop: Programme) -> None:
    earn(shop, "ann", 1)
    item = shop.item(price_points=100)
    paused = shop.client.patch(
        f"/v1/loyalty/catalogue/{item['id']}",
        json={"status": "PAUSED"},
        headers=shop.tenant.headers,
    )
    assert paused.status_code == 200, paused.text

    refused = shop.redeem("ann", item["id"])

    assert "paused" in problem(refused, 409, "redemption-refused")["detail"]
    listed = shop.client.get("/v1/loyalty/catalogue", headers=shop.tenant.headers).json()
    assert listed == []


def test_a_request_number_replayed_answers_the_first_redemption(shop: Programme) -> None:
    earn(shop, "ann", 3)
    item = shop.item(price_points=100)
    other = shop.item(name="Pen", price_points=50)

    first = shop.redeem("ann", item["id"], request_no="r-42")
    again = shop.redeem("ann", item["id"], request_no="r-42")
    conflicting = shop.redeem("ann", other["id"], request_no="r-42")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert shop.balance("ann")["held"] == 100
    problem(conflicting, 409, "duplicate")


def test_an_idempotency_key_replays_the_answer_and_refuses_another_body(
    shop: Programme,
) -> None:
    earn(shop, "ann", 3)
    item = shop.item(price_points=100)
    headers = shop.tenant.write_headers("redeem-once")
    body = {"user_id": "ann", "item_id": item["id"], "request_no": "r-1"}

    first = shop.client.post("/v1/loyalty/redemptions", json=body, headers=headers)
    again = shop.client.post("/v1/loyalty/redemptions", json=body, headers=headers)
    other = shop.client.post(
        "/v1/loyalty/redemptions", json={**body, "request_no": "r-2"}, headers=headers
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    problem(other, 422, "idempotency-key-reused")
    assert shop.balance("ann")["held"] == 100


def test_every_step_of_a_redemption_is_a_webhook_event(
    shop: Programme, client: TestClient, tenant: TenantHandle
) -> None:
    added = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "https://example.com/hooks", "event_types": ["loyalty.redemption.*"]},
        headers=tenant.headers,
    )
    assert added.status_code == 201, added.text
    earn(shop, "ann", 3)
    item = shop.item(price_points=100)
    confirmed = shop.redeem("ann", item["id"]).json()
    act(shop, confirmed["id"], "confirm")
    cancelled = shop.redeem("ann", item["id"]).json()
    act(shop, cancelled["id"], "cancel")
    stale = shop.redeem("ann", item["id"]).json()
    shop.run_jobs(datetime.now(UTC) + timedelta(hours=1))

    sent = client.get("/v1/webhooks/messages", headers=tenant.headers).json()["data"]

    steps = [(m["payload"]["data"]["redemption_id"], m["event_type"]) for m in reversed(sent)]
    assert steps == [
        (confirmed["id"], "loyalty.redemption.held"),
        (confirmed["id"], "loyalty.redemption.confirmed"),
        (cancelled["id"], "loyalty.redemption.held"),
        (cancelled["id"], "loyalty.redemption.cancelled"),
        (stale["id"], "loyalty.redemption.held"),
        (stale["id"], "loyalty.redemption.expired"),
    ]
