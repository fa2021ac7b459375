"""Pending points and the refund window; lots, their expiry, FIFO spending and the notice
before expiry (L4)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.loyalty.conftest import Programme, event, points_of
from zanloop.errors import InsufficientFunds
from zanloop.loyalty import redemption

SHANGHAI = ZoneInfo("Asia/Shanghai")
SHARE_100 = {"trigger": "share.created", "effects": [{"type": "grant_points", "points": 100}]}
PER_YUAN = {
    "trigger": "payment.succeeded",
    "effects": [{"type": "earn_per_yuan", "points_per_yuan": "1"}],
}


def today() -> date:
    return datetime.now(SHANGHAI).date()


def local(days_ago: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(today() - timedelta(days=days_ago), time(hour, minute), SHANGHAI)


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def end_of_local_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), SHANGHAI).astimezone(UTC)


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def redeem_points(p: Programme, user: str, points: int, **fields: Any) -> Any:
    item = p.item(price_points=points)
    return p.redeem(user, item["id"], **fields)


# Pending -------------------------------------------------------------------------------------


def test_points_of_an_order_stay_pending_until_the_refund_window_closes(
    programme: Programme,
) -> None:
    programme.rule(PER_YUAN)
    paid = local(1, 12)
    window_closes = paid.astimezone(UTC) + timedelta(days=7)

    result = programme.send(
        event("payment.succeeded", "ann", paid, amount_fen=12800, order_id="pos-1")
    )

    [outcome] = result["events"]
    assert (outcome["points"], outcome["pending"]) == (128, True)
    account = programme.account("ann")
    assert (account["available"], account["pending"]) == (0, 128)
    assert parse(account["pending_until"]) == window_closes
    [lot] = programme.lots("ann")
    assert (lot["status"], parse(lot["available_at"])) == ("PENDING", window_closes)
    # Expiry counts from when the points become available.
    assert parse(lot["expires_at"]) == end_of_local_day(
        add_months(window_closes.astimezone(SHANGHAI).date(), 12)
    )

    programme.run_jobs(window_closes - timedelta(seconds=1))
    assert programme.balance("ann")["pending"] == 128

    programme.run_jobs(window_closes)
    assert programme.balance("ann") == {
        "user_id": "ann",
        "available": 128,
        "pending": 0,
        "held": 0,
        "tier": "normal",
    }
    assert programme.lots("ann")[0]["status"] == "AVAILABLE"
    assert programme.ledger() == {"loyalty:issued": -128, "user:ann": 128, "user:ann:pending": 0}


def test_points_are_pending_only_while_the_refund_window_is_open(programme: Programme) -> None:
    programme.rule(PER_YUAN)

    def paid(days_ago: int, order_id: str) -> dict[str, Any]:
        return event(
            "payment.succeeded", "ann", local(days_ago, 12), amount_fen=5000, order_id=order_id
        )

    result = programme.send(paid(8, "window-closed"), paid(6, "inside-the-window"))
    programme.settings(refund_window_days=0)
    no_window = programme.send(paid(1, "no-refund-window"))

    assert [e["pending"] for e in result["events"]] == [False, True]
    assert no_window["events"][0]["pending"] is False
    assert no_window["balances"][0] == {
        "user_id": "ann",
        "available": 100,
        "pending": 50,
        "held": 0,
        "tier": "normal",
    }


def test_events_without_an_order_are_available_at_once(programme: Programme) -> None:
    programme.rule(PER_YUAN)
    programme.rule(SHARE_100)

    result = programme.send(
        event("payment.succeeded", "ann", local(1, 12), amount_fen=5000),
        event("share.created", "ann", local(1, 13)),
    )

    assert [e["pending"] for e in result["events"]] == [False, False]
    assert programme.balance("ann")["available"] == 150


def test_a_refund_inside_the_window_leaves_nothing_behind(programme: Programme) -> None:
    programme.rule(PER_YUAN)
    paid = local(2, 12)
    programme.send(event("payment.succeeded", "ann", paid, amount_fen=12800, order_id="pos-1"))

    refunded = programme.send(
        event("payment.refunded", "ann", local(1, 12), order_id="pos-1", amount_fen=12800)
    )

    assert points_of(refunded) == [-128]
    assert refunded["balances"][0]["pending"] == 0
    [lot] = programme.lots("ann")
    assert (lot["status"], lot["remaining"], lot["clawed"]) == ("REVERSED", 0, 128)
    programme.run_jobs(paid.astimezone(UTC) + timedelta(days=8))
    assert programme.balance("ann")["available"] == 0
    assert programme.ledger()["loyalty:clawed"] == 128


def test_pending_points_cannot_be_spent(programme: Programme) -> None:
    programme.rule(PER_YUAN)
    programme.rule(SHARE_100)
    paid = local(1, 12)
    programme.send(
        event("payment.succeeded", "ann", paid, amount_fen=50000, order_id="pos-1"),
        event("share.created", "ann", local(1, 13)),
    )
    item = programme.item(price_points=300)

    refused = programme.redeem("ann", item["id"])

    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:zanloop:problem:insufficient-funds"
    assert "100 points available, 300 needed" in refused.json()["detail"]
    assert programme.balance("ann") == {
        "user_id": "ann",
        "available": 100,
        "pending": 500,
        "held": 0,
        "tier": "normal",
    }

    programme.run_jobs(paid.astimezone(UTC) + timedelta(days=7))
    assert programme.redeem("ann", item["id"]).status_code == 201


# Expiry --------------------------------------------------------------------------------------


def test_a_rolling_lot_expires_at_the_end_of_the_local_day_months_later(
    programme: Programme,
) -> None:
    programme.settings(expiry={"policy": "rolling", "months": 1, "notice_days": 0})
    programme.rule(SHARE_100)
    earned = local(2, 23, 30)  # 15:30 UTC: the same date in both zones
    expires = end_of_local_day(add_months(earned.date(), 1))
    programme.send(event("share.created", "ann", earned))
    [lot] = programme.lots("ann")
    assert parse(lot["expires_at"]) == expires

    programme.run_jobs(expires - timedelta(seconds=1))
    assert programme.balance("ann")["available"] == 100

    programme.run_jobs(expires)
    [lot] = programme.lots("ann")
    assert (lot["remaining"], lot["expired"], lot["status"]) == (0, 100, "AVAILABLE")
    assert programme.balance("ann")["available"] == 0
    assert programme.ledger()["loyalty:expired"] == 100
    programme.run_jobs(expires + timedelta(days=1))  # nothing left to expire twice
    assert programme.ledger()["loyalty:expired"] == 100


def test_year_end_lots_expire_at_the_end_of_the_following_year(programme: Programme) -> None:
    programme.settings(expiry={"policy": "year_end", "notice_days": 0})
    programme.rule(SHARE_100)
    earned = local(2, 12)
    programme.send(event("share.created", "ann", earned))
    expires = datetime.combine(date(earned.year + 2, 1, 1), time(), SHANGHAI)

    [lot] = programme.lots("ann")

    assert parse(lot["expires_at"]) == expires
    programme.run_jobs(expires - timedelta(seconds=1))
    assert programme.balance("ann")["available"] == 100
    programme.run_jobs(expires)
    assert programme.balance("ann")["available"] == 0


def test_points_that_never_expire_stay(programme: Programme) -> None:
    programme.settings(expiry={"policy": "never"})
    programme.rule(SHARE_100)
    programme.send(event("share.created", "ann", local(2, 12)))

    programme.run_jobs(datetime.now(UTC) + timedelta(days=3650))

    [lot] = programme.lots("ann")
    assert (lot["expires_at"], lot["remaining"]) == (None, 100)
    account = programme.account("ann")
    assert (account["available"], account["next_expiry"], account["next_expiry_points"]) == (
        100,
        None,
        0,
    )
    assert account["expiry_rule"] == "Points do not expire."


def test_spending_takes_the_soonest_expiring_lots_first(programme: Programme) -> None:
    programme.rule(SHARE_100)
    # Sent newest first, so the order of the lots' ids is the opposite of their expiry.
    programme.send(event("share.created", "ann", local(5, 10), event_id="newest"))
    programme.send(event("share.created", "ann", local(5, 9), event_id="same-day-older"))
    programme.send(event("share.created", "ann", local(10, 12), event_id="oldest"))
    lots = {lot["ref"]: lot for lot in programme.lots("ann")}

    response = redeem_points(programme, "ann", 250, confirm=True)

    assert response.status_code == 201, response.text
    assert response.json()["allocations"] == {
        lots["event:oldest"]["id"]: 100,
        lots["event:same-day-older"]["id"]: 100,
        lots["event:newest"]["id"]: 50,
    }
    remaining = {lot["ref"]: lot["remaining"] for lot in programme.lots("ann")}
    assert remaining == {"event:oldest": 0, "event:same-day-older": 0, "event:newest": 50}
    assert programme.account("ann")["next_expiry_points"] == 50


def test_a_redemption_never_spends_points_past_their_expiry(programme: Programme) -> None:
    programme.settings(expiry={"policy": "rolling", "months": 1})
    programme.rule(SHARE_100)
    programme.send(event("share.created", "ann", local(9, 12), event_id="older"))
    programme.send(event("share.created", "ann", local(1, 12), event_id="newer"))
    lots = {lot["ref"]: lot for lot in programme.lots("ann")}
    item = programme.item(price_points=100)
    expensive = programme.item(price_points=150)
    # The moment the older lot expires, before the expiry job has run.
    lapsed = parse(lots["event:older"]["expires_at"]) + timedelta(seconds=1)

    def redeem(item_id: str, request_no: str) -> dict[str, int]:
        with programme.db.session() as session:
            held, _ = redemption.redeem(
                session,
                programme.tenant.id,
                user_id="ann",
                item_id=item_id,
                quantity=1,
                request_no=request_no,
                confirm=True,
                now=lapsed,
            )
            return {k: int(v) for k, v in held.allocations.items()}

    with pytest.raises(InsufficientFunds, match="100 points available, 150 needed"):
        redeem(expensive["id"], "r-too-much")
    allocations = redeem(item["id"], "r-enough")

    assert allocations == {lots["event:newer"]["id"]: 100}
    older = next(lot for lot in programme.lots("ann") if lot["ref"] == "event:older")
    assert (older["remaining"], older["expired"]) == (0, 100)
    assert programme.balance("ann")["available"] == 0
    assert programme.ledger()["loyalty:expired"] == 100


def test_held_points_returned_to_a_lot_past_its_expiry_lapse_on_the_next_run(
    programme: Programme,
) -> None:
    programme.settings(expiry={"policy": "rolling", "months": 1, "notice_days": 0})
    programme.rule(SHARE_100)
    programme.send(event("share.created", "ann", local(9, 12)))
    [lot] = programme.lots("ann")
    expires = parse(lot["expires_at"])
    held = redeem_points(programme, "ann", 100)
    assert held.status_code == 201, held.text

    # The hold outlives the lot: the job releases it after the expiry run found nothing left.
    programme.run_jobs(expires + timedelta(seconds=1))
    released = programme.client.get(
        f"/v1/loyalty/redemptions/{held.json()['id']}", headers=programme.tenant.headers
    )
    assert released.json()["status"] == "EXPIRED"
    assert programme.lots("ann")[0]["remaining"] == 100

    programme.run_jobs(expires + timedelta(minutes=1))

    [lot] = programme.lots("ann")
    assert (lot["remaining"], lot["expired"]) == (0, 100)
    assert programme.balance("ann") == {
        "user_id": "ann",
        "available": 0,
        "pending": 0,
        "held": 0,
        "tier": "normal",
    }


def test_a_late_event_whose_points_would_have_expired_lapses_at_once(
    programme: Programme, client: TestClient, tenant: TenantHandle
) -> None:
    add_endpoint(client, tenant, "loyalty.points.expired")
    programme.settings(max_event_age_days=400, expiry={"policy": "rolling", "months": 1})
    programme.rule(SHARE_100)

    result = programme.send(event("share.created", "ann", local(60, 12)))

    [outcome] = result["events"]
    assert (outcome["status"], outcome["points"]) == ("applied", 100)
    assert result["balances"][0]["available"] == 0
    [lot] = programme.lots("ann")
    assert (lot["points"], lot["remaining"], lot["expired"]) == (100, 0, 100)
    assert programme.ledger()["loyalty:expired"] == 100
    assert messages(client, tenant, "loyalty.points.expired") == [{"user_id": "ann", "points": 100}]


# Notice and disclosure -----------------------------------------------------------------------


def add_endpoint(client: TestClient, tenant: TenantHandle, *event_types: str) -> None:
    response = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "https://example.com/hooks", "event_types": list(event_types)},
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text


def messages(client: TestClient, tenant: TenantHandle, event_type: str) -> list[dict[str, Any]]:
    response = client.get(
        "/v1/webhooks/messages", params={"event_type": event_type}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return [m["payload"]["data"] for m in reversed(response.json()["data"])]


def test_members_are_told_once_per_lot_before_points_expire(
    programme: Programme, client: TestClient, tenant: TenantHandle
) -> None:
    add_endpoint(client, tenant, "loyalty.points.*")
    programme.settings(expiry={"policy": "rolling", "months": 1, "notice_days": 10})
    programme.rule({"trigger": "share.created", "effects": [{"type": "grant_points", "points": 5}]})
    programme.rule({"trigger": "like.created", "effects": [{"type": "grant_points", "points": 7}]})
    # Days far enough apart that a month later they are still two days (not one month end).
    programme.send(event("share.created", "ann", local(9, 12)))
    programme.send(event("like.created", "ann", local(1, 12)))
    first, second = sorted(parse(lot["expires_at"]) for lot in programme.lots("ann"))
    expiring = "loyalty.points.expiring"

    programme.run_jobs(first - timedelta(days=10, minutes=1))
    assert messages(client, tenant, expiring) == []

    programme.run_jobs(first - timedelta(days=10))
    programme.run_jobs(first - timedelta(days=10) + timedelta(hours=1))
    assert messages(client, tenant, expiring) == [
        {"user_id": "ann", "points": 5, "expires_at": first.isoformat()}
    ]

    programme.run_jobs(second - timedelta(days=10))
    programme.run_jobs(second - timedelta(days=5))
    assert messages(client, tenant, expiring) == [
        {"user_id": "ann", "points": 5, "expires_at": first.isoformat()},
        {"user_id": "ann", "points": 7, "expires_at": second.isoformat()},
    ]

    programme.run_jobs(first)
    assert messages(client, tenant, "loyalty.points.expired") == [{"user_id": "ann", "points": 5}]
    assert len(messages(client, tenant, expiring)) == 2


def test_the_member_sees_the_expiry_rule_and_the_next_expiry(programme: Programme) -> None:
    programme.settings(
        refund_window_days=3, expiry={"policy": "rolling", "months": 6, "notice_days": 14}
    )
    programme.rule(SHARE_100)
    programme.rule(PER_YUAN)
    earned = local(9, 12)
    programme.send(
        event("share.created", "ann", earned),
        event("share.created", "ann", earned + timedelta(hours=2)),
        event("share.created", "ann", local(1, 12)),
        event("payment.succeeded", "ann", local(1, 12), amount_fen=9900, order_id="pos-1"),
    )

    account = programme.account("ann")

    assert account["expiry_rule"] == (
        "Points expire 6 months after they become available, at the end of that day "
        "(Asia/Shanghai). The soonest-expiring points are spent first. You are told 14 days "
        "before points expire. Points from a payment stay pending for 3 days, until its refund "
        "window closes."
    )
    assert parse(account["next_expiry"]) == end_of_local_day(add_months(earned.date(), 6))
    assert account["next_expiry_points"] == 200
    assert (account["available"], account["pending"]) == (300, 99)
    programme_view = programme.client.get(
        "/v1/loyalty/programme", headers=programme.tenant.headers
    ).json()
    assert programme_view["expiry_rule"] == account["expiry_rule"]


def test_a_fraud_hold_keeps_pending_points_pending_until_it_ends(programme: Programme) -> None:
    from zanloop.loyalty import service

    programme.rule(PER_YUAN)
    paid = local(1, 12)
    window_closes = paid.astimezone(UTC) + timedelta(days=7)
    hold_ends = window_closes + timedelta(days=20)
    programme.send(event("payment.succeeded", "ann", paid, amount_fen=12800, order_id="pos-1"))
    programme.send(event("payment.succeeded", "bob", paid, amount_fen=5000, order_id="pos-2"))

    with programme.db.session() as session:
        held = service.hold_pending(session, programme.tenant.id, ["ann"], hold_ends)

    assert held == 1
    programme.run_jobs(window_closes)
    assert (programme.balance("ann")["pending"], programme.balance("bob")["available"]) == (128, 50)
    programme.run_jobs(hold_ends)
    assert programme.balance("ann")["available"] == 128
    assert programme.ledger()["user:ann:pending"] == 0
