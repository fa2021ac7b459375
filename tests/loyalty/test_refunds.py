"""Claw-back (L5): a refund, through /v1/payments or at the till, takes back what its payment
earned; points already spent become owed and are paid off from later earnings; campaign
points are lots like any other."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.loyalty.conftest import Programme, event, points_of
from zanloop.jobs.worker import Worker

SHANGHAI = ZoneInfo("Asia/Shanghai")
Pay = Callable[..., dict[str, Any]]
PER_YUAN = {
    "trigger": "payment.succeeded",
    "effects": [{"type": "earn_per_yuan", "points_per_yuan": "1"}],
}
SHARE_50 = {"trigger": "share.created", "effects": [{"type": "grant_points", "points": 50}]}
SHARE_100 = {"trigger": "share.created", "effects": [{"type": "grant_points", "points": 100}]}


def today() -> date:
    return datetime.now(SHANGHAI).date()


def local(days_ago: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(today() - timedelta(days=days_ago), time(hour, minute), SHANGHAI)


@pytest.fixture
def pay(paid_order: Pay, tenant: TenantHandle) -> Callable[..., dict[str, Any]]:
    def pay(user: str, amount_fen: int, **metadata: Any) -> dict[str, Any]:
        return paid_order(
            tenant, amount_fen, payer_openid=f"o-{user}", metadata={"user_id": user, **metadata}
        )

    return pay


@pytest.fixture
def refund(client: TestClient, worker: Worker, tenant: TenantHandle) -> Callable[..., None]:
    def refund(order_id: str, amount_fen: int | None = None) -> None:
        body = {"amount_fen": amount_fen} if amount_fen else None
        response = client.post(
            f"/v1/payments/orders/{order_id}/refunds", json=body, headers=tenant.write_headers()
        )
        assert response.status_code in (200, 201, 202), response.text
        worker.drain()

    return refund


def redeem(p: Programme, user: str, points: int) -> dict[str, Any]:
    item = p.item(price_points=points)
    response = p.redeem(user, item["id"], confirm=True)
    assert response.status_code == 201, response.text
    return dict(response.json())


def assert_lots_match_the_ledger(p: Programme, user: str) -> None:
    """docs/loyalty.md, "The ledger": the member's accounts equal what their lots hold."""
    lots = p.lots(user)
    ledger = p.ledger()
    balance = p.balance(user)
    available = sum(x["remaining"] for x in lots if x["status"] == "AVAILABLE")
    pending = sum(x["remaining"] for x in lots if x["status"] == "PENDING")
    assert ledger.get(f"user:{user}", 0) == available + balance["held"]
    assert ledger.get(f"user:{user}:pending", 0) == pending


# Payments through zanloop --------------------------------------------------------------------


def test_a_refund_through_payments_claws_back_the_pending_points(
    programme: Programme, pay: Pay, refund: Callable[..., None]
) -> None:
    programme.rule(PER_YUAN)
    order = pay("ann", 12800)
    assert programme.balance("ann")["pending"] == 128

    refund(order["id"])

    assert programme.balance("ann") == {
        "user_id": "ann",
        "available": 0,
        "pending": 0,
        "held": 0,
        "tier": "normal",
    }
    [lot] = programme.lots("ann")
    assert (lot["status"], lot["clawed"], lot["remaining"]) == ("REVERSED", 128, 0)
    assert programme.ledger()["loyalty:clawed"] == 128
    assert_lots_match_the_ledger(programme, "ann")


def test_a_partial_refund_reverses_everything_the_order_earned(
    programme: Programme, pay: Pay, refund: Callable[..., None]
) -> None:
    programme.rule(PER_YUAN)
    order = pay("ann", 12800)
    kept = pay("ann", 3000)

    refund(order["id"], 100)

    assert programme.balance("ann")["pending"] == 30
    refs = {lot["ref"]: lot["status"] for lot in programme.lots("ann")}
    assert refs == {
        f"event:order:{order['id']}": "REVERSED",
        f"event:order:{kept['id']}": "PENDING",
    }


def test_spent_points_become_owed_and_are_paid_off_from_later_earnings(
    programme: Programme, pay: Pay, refund: Callable[..., None]
) -> None:
    programme.settings(refund_window_days=0)  # points of a payment are available at once
    programme.rule(PER_YUAN)
    programme.rule(SHARE_50)
    order = pay("ann", 10000)
    redeem(programme, "ann", 80)

    refund(order["id"])

    account = programme.account("ann")
    assert (account["available"], account["owed"]) == (0, 80)
    assert programme.ledger()["loyalty:clawed"] == 20

    first = programme.send(event("share.created", "ann", local(1, 9)))
    assert first["balances"][0]["available"] == 0
    assert programme.account("ann")["owed"] == 30
    second = programme.send(event("share.created", "ann", local(1, 10)))
    assert second["balances"][0]["available"] == 20
    assert programme.account("ann")["owed"] == 0
    assert programme.ledger()["loyalty:clawed"] == 100
    settled = sorted(
        lot["detail"].get("settled_owed", 0)
        for lot in programme.lots("ann")
        if "settled_owed" in lot["detail"]
    )
    assert settled == [30, 50]
    assert_lots_match_the_ledger(programme, "ann")


def test_a_claw_back_takes_from_the_members_other_lots_soonest_expiring_first(
    programme: Programme,
) -> None:
    programme.rule(SHARE_100)
    programme.send(
        event("share.created", "ann", local(9, 12), event_id="first"),
        event("share.created", "ann", local(8, 12), event_id="second"),
        event("share.created", "ann", local(7, 12), event_id="third"),
    )
    redeem(programme, "ann", 150)  # all of the first lot, half of the second

    reversal = programme.reverse("first")

    assert (reversal["clawed"], reversal["owed"]) == (100, 0)
    assert reversal["balance"]["available"] == 50
    remaining = {lot["ref"]: (lot["remaining"], lot["clawed"]) for lot in programme.lots("ann")}
    assert remaining == {
        "event:first": (0, 0),
        "event:second": (0, 50),
        "event:third": (50, 50),
    }
    assert_lots_match_the_ledger(programme, "ann")


def test_reversing_twice_takes_back_once(programme: Programme) -> None:
    programme.rule(SHARE_100)
    programme.send(event("share.created", "ann", local(2, 12), event_id="share-1"))

    first = programme.reverse("share-1")
    second = programme.reverse("share-1")
    missing = programme.client.post(
        "/v1/loyalty/events/nope/reverse", json={"reason": "typo"}, headers=programme.tenant.headers
    )

    assert (first["clawed"], second["clawed"]) == (100, 0)
    assert programme.ledger()["loyalty:clawed"] == 100
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:zanloop:problem:not-found"


def test_reversing_an_invitation_claws_back_both_sides(programme: Programme) -> None:
    programme.rule(
        {
            "trigger": "invite.accepted",
            "effects": [{"type": "grant_points", "points": 20, "to": "both"}],
        }
    )
    programme.send(
        event("invite.accepted", "ann", local(2, 12), event_id="invite-1", counterparty_id="bob")
    )

    programme.reverse("invite-1")

    assert programme.balance("ann")["available"] == 0
    assert programme.balance("bob")["available"] == 0
    assert programme.ledger()["loyalty:clawed"] == 40


def test_a_reversal_is_a_webhook_event(
    programme: Programme, client: TestClient, tenant: TenantHandle
) -> None:
    added = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "https://example.com/hooks", "event_types": ["loyalty.points.reversed"]},
        headers=tenant.headers,
    )
    assert added.status_code == 201, added.text
    programme.rule(PER_YUAN)
    programme.send(
        event("payment.succeeded", "ann", local(2, 12), amount_fen=5000, order_id="pos-1")
    )

    refunded = programme.send(event("payment.refunded", "ann", local(1, 12), order_id="pos-1"))

    assert points_of(refunded) == [-50]
    [message] = client.get("/v1/webhooks/messages", headers=tenant.headers).json()["data"]
    data = message["payload"]["data"]
    assert (data["user_id"], data["order_id"], data["reason"]) == (
        "ann",
        "pos-1",
        "payment refunded",
    )
    assert (data["points_clawed"], data["points_owed"]) == (50, 0)


# Campaign points -----------------------------------------------------------------------------


def test_campaign_point_rewards_are_lots_clawed_back_on_refund(
    programme: Programme,
    client: TestClient,
    tenant: TenantHandle,
    pay: Pay,
    refund: Callable[..., None],
) -> None:
    programme.rule(PER_YUAN)
    campaign = client.post(
        "/v1/campaigns",
        json={
            "name": "30 points a purchase",
            "rule": {
                "trigger": "payment.succeeded",
                "effects": [{"type": "grant_points", "points": 30}],
            },
        },
        headers=tenant.headers,
    )
    assert campaign.status_code == 201, campaign.text
    order = pay("ann", 5000)
    lots = {lot["ref"].split(":")[0]: lot for lot in programme.lots("ann")}
    assert (lots["campaign"]["points"], lots["campaign"]["status"]) == (30, "AVAILABLE")
    assert lots["campaign"]["expires_at"] is not None
    assert programme.balance("ann")["available"] == 30
    assert programme.ledger()[f"campaign:{campaign.json()['id']}"] == -30
    redeem(programme, "ann", 20)

    refund(order["id"])

    account = programme.account("ann")
    assert (account["available"], account["pending"], account["owed"]) == (0, 0, 20)
    assert {lot["status"] for lot in programme.lots("ann")} == {"REVERSED"}
    assert_lots_match_the_ledger(programme, "ann")


# Owed points paid off as points become available ----------------------------------------------


def test_owed_points_are_paid_off_when_pending_points_mature(programme: Programme) -> None:
    programme.rule(SHARE_100)
    programme.rule(PER_YUAN)
    programme.send(event("share.created", "ann", local(3, 12), event_id="share-1"))
    redeem(programme, "ann", 100)
    programme.reverse("share-1")
    paid = local(2, 12)
    programme.send(event("payment.succeeded", "ann", paid, amount_fen=5000, order_id="pos-1"))
    assert programme.account("ann")["owed"] == 100  # pending points may yet be refunded

    programme.run_jobs(paid.astimezone(UTC) + timedelta(days=7))

    account = programme.account("ann")
    assert (account["available"], account["pending"], account["owed"]) == (0, 0, 50)
    assert_lots_match_the_ledger(programme, "ann")


def test_cancelling_a_hold_on_points_reversed_meanwhile_pays_off_what_is_owed(
    programme: Programme,
) -> None:
    programme.rule(SHARE_100)
    programme.send(event("share.created", "ann", local(2, 12), event_id="share-1"))
    item = programme.item(price_points=100)
    held = programme.redeem("ann", item["id"]).json()
    assert programme.reverse("share-1")["owed"] == 100

    cancelled = programme.client.post(
        f"/v1/loyalty/redemptions/{held['id']}/cancel", headers=programme.tenant.headers
    )

    assert cancelled.status_code == 200, cancelled.text
    account = programme.account("ann")
    assert (account["available"], account["held"], account["owed"]) == (0, 0, 0)
    assert_lots_match_the_ledger(programme, "ann")


def test_cancelled_points_beyond_what_is_owed_become_a_lot_of_their_own(
    programme: Programme,
) -> None:
    programme.rule(SHARE_100)
    programme.send(
        event("share.created", "ann", local(3, 12), event_id="share-1"),
        event("share.created", "ann", local(2, 12), event_id="share-2"),
    )
    first = next(lot for lot in programme.lots("ann") if lot["ref"] == "event:share-1")
    item = programme.item(price_points=150)
    held = programme.redeem("ann", item["id"]).json()  # 100 of the first lot, 50 of the second
    reversal = programme.reverse("share-1")
    assert (reversal["clawed"], reversal["owed"]) == (50, 50)

    programme.client.post(
        f"/v1/loyalty/redemptions/{held['id']}/cancel", headers=programme.tenant.headers
    )

    account = programme.account("ann")
    assert (account["available"], account["owed"]) == (100, 0)
    [returned] = [lot for lot in programme.lots("ann") if lot["ref"].startswith("returned:")]
    assert (returned["points"], returned["remaining"]) == (50, 50)
    assert returned["expires_at"] == first["expires_at"]
    assert_lots_match_the_ledger(programme, "ann")
