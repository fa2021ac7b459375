"""Discrepancies the month (test_a_month.py) found between the API and the independent
calculation, each at its smallest (all but the last since fixed).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tests.loyalty.api_vs_model import at
from tests.loyalty.conftest import Programme, event
from tests.loyalty.month import ZONE


def test_daily_cap_counts_days_in_the_rules_timezone(programme: Programme) -> None:
    # Given a New York programme with a share rule that counts Asia/Shanghai days
    p = programme
    p.settings(timezone=ZONE)
    p.rule(
        {
            "trigger": "share.created",
            "effects": [{"type": "grant_points", "points": 5}],
            "caps": {"per_user_per_day": 1},
            "timezone": "Asia/Shanghai",
        }
    )
    # When a member shares twice on one Shanghai day (08:00 and 20:00 there), which are two
    # New York days
    day = datetime.now(UTC).date() - timedelta(days=3)
    first = datetime.combine(day, time(0), tzinfo=UTC)
    second = first + timedelta(hours=12)
    answer = p.send(event("share.created", "u", first), event("share.created", "u", second))
    # Then the daily cap (1 a day, "a local day in the rule's timezone") rewards only the first
    assert [e["points"] for e in answer["events"]] == [5, 0]


def test_a_replayed_invitation_answers_with_both_balances(programme: Programme) -> None:
    # Given an invitation applied once
    p = programme
    p.client.post("/v1/loyalty/defaults", json={"activate": True}, headers=p.tenant.headers)
    invite = event(
        "invite.accepted", "u", datetime.now(UTC) - timedelta(hours=1), counterparty_id="f"
    )
    first = p.send(invite)
    assert {b["user_id"] for b in first["balances"]} == {"u", "f"}
    # When it is sent again
    replay = p.send(invite)
    # Then the answer carries "the balance of every member it names, replays included"
    assert replay["events"][0]["status"] == "duplicate"
    assert {b["user_id"] for b in replay["balances"]} == {"u", "f"}


def test_a_reward_waits_only_for_actions_nothing_else_secures(programme: Programme) -> None:
    # (The product once waited for a refundable payment after two earlier payments, but not
    # after three.)
    # Given members who pay none, two or three times without an order, then once with one
    # (still refundable twenty days ago), then complete the achievement
    p = programme
    p.settings(refund_window_days=3)
    p.client.post("/v1/loyalty/defaults", json={"activate": True}, headers=p.tenant.headers)
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
    for user, earlier in (("none", 0), ("two", 2), ("three", 3)):
        evs = [
            event("payment.succeeded", user, t + timedelta(minutes=i), amount_fen=1000)
            for i in range(earlier)
        ]
        evs += [
            event(
                "payment.succeeded", user, t + timedelta(hours=1), amount_fen=1000, order_id=user
            ),
            event("share.created", user, t + timedelta(hours=2)),
            event("comment.created", user, t + timedelta(hours=3)),
            event("article.read", user, t + timedelta(hours=4), value=100),
            event("video.completed", user, t + timedelta(hours=5)),
        ]
        for e in evs:
            p.send(e)
    # Then the reward waits for the payment's refund window only where that payment is the
    # only one: a payment that can no longer be refunded secures the action already
    available = {
        user: [at(x["available_at"]) for x in p.lots(user) if x["ref"].startswith("task:")]
        for user in ("none", "two", "three")
    }
    assert available == {
        "none": [t + timedelta(days=3, hours=1)],
        "two": [t + timedelta(hours=5)],
        "three": [t + timedelta(hours=5)],
    }


def test_a_task_reward_becomes_available_when_its_payment_does(programme: Programme) -> None:
    # Given a member who completes the achievement with a payment still refundable, paid at a
    # fraction of a second
    p = programme
    p.settings(refund_window_days=3)
    p.client.post("/v1/loyalty/defaults", json={"activate": True}, headers=p.tenant.headers)
    t = datetime.now(UTC).replace(microsecond=250000) - timedelta(days=2)
    p.send(
        event("payment.succeeded", "u", t, event_id="pay", amount_fen=1000, order_id="o"),
        event("share.created", "u", t + timedelta(seconds=1)),
        event("comment.created", "u", t + timedelta(seconds=2)),
        event("article.read", "u", t + timedelta(seconds=3), value=100),
        event("video.completed", "u", t + timedelta(seconds=4)),
    )
    # Then the reward becomes available when the payment's points do, not before
    lots = {lot["ref"]: lot for lot in p.lots("u")}
    reward = next(lot for ref, lot in lots.items() if ref.startswith("task:"))
    assert reward["status"] == "PENDING"
    assert at(reward["available_at"]) == at(lots["event:pay"]["available_at"])


def test_a_refund_events_outcome_has_the_tier_after_it(programme: Programme) -> None:
    # Given a member lifted to silver by a payment
    p = programme
    p.settings(tiers=[{"name": "normal", "threshold": 0}, {"name": "silver", "threshold": 100}])
    p.client.post("/v1/loyalty/defaults", json={"activate": True}, headers=p.tenant.headers)
    t = datetime.now(UTC) - timedelta(days=1)
    paid = p.send(event("payment.succeeded", "u", t, amount_fen=20000, order_id="o"))
    assert paid["events"][0]["tier"] == "silver"
    # When the payment is refunded by an event
    refunded = p.send(event("payment.refunded", "u", t + timedelta(hours=1), order_id="o"))
    # Then the member is back to normal, and the outcome says so as the balance does
    assert refunded["balances"][0]["tier"] == "normal"
    assert refunded["events"][0]["tier"] == "normal"


def test_reversing_twice_answers_with_the_members_tier(programme: Programme) -> None:
    # Given a payment reversed once
    p = programme
    p.client.post("/v1/loyalty/defaults", json={"activate": True}, headers=p.tenant.headers)
    p.send(event("payment.succeeded", "u", datetime.now(UTC), event_id="pay", amount_fen=900))
    first = p.reverse("pay")
    assert (first["clawed"], first["tier"]) == (9, "normal")
    # When it is reversed again
    again = p.reverse("pay")
    # Then nothing more is clawed, and the answer still names the member's tier
    assert (again["clawed"], again["owed"]) == (0, 0)
    assert again["tier"] == "normal"


def test_the_birthday_is_a_day_in_the_programmes_timezone(programme: Programme) -> None:
    # Given a New York programme, a birthday rule that counts Asia/Shanghai days, and a member
    # whose birthday is the New York day of a payment (the day after, in Shanghai)
    p = programme
    p.settings(timezone=ZONE)
    p.rule(
        {
            "trigger": "payment.succeeded",
            "effects": [{"type": "earn_per_yuan", "points_per_yuan": "1"}],
            "timezone": "Asia/Shanghai",
        }
    )
    p.rule(
        {
            "trigger": "payment.succeeded",
            "conditions": [{"type": "birthday"}],
            "effects": [{"type": "multiply_points", "factor": "2"}],
            "timezone": "Asia/Shanghai",
        }
    )
    paid = datetime.combine(
        datetime.now(UTC).date() - timedelta(days=3), time(2), tzinfo=UTC
    )  # 10:00 in Shanghai, 21:00 or 22:00 the day before in New York
    response = p.client.put(
        "/v1/loyalty/members/u",
        json={"birthday": paid.astimezone(ZoneInfo(ZONE)).strftime("%m-%d")},
        headers=p.tenant.headers,
    )
    assert response.status_code == 200, response.text
    # When they pay 50 CNY
    answer = p.send(event("payment.succeeded", "u", paid, amount_fen=5000))
    # Then the birthday rule doubles it: a member has one birthday, a day in the programme's zone
    assert answer["events"][0]["points"] == 100
