"""Earning (L1, L6): rules priced through the HTTP API as an integrator sends events, and
payments made through zanloop itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.loyalty.conftest import Programme, event, points_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
Pay = Callable[..., dict[str, Any]]


def today() -> date:
    return datetime.now(SHANGHAI).date()


def local(days_ago: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Shanghai ``days_ago`` local days before today."""
    return datetime.combine(today() - timedelta(days=days_ago), time(hour, minute), SHANGHAI)


def install_defaults(p: Programme, **body: Any) -> dict[str, Any]:
    response = p.client.post(
        "/v1/loyalty/defaults", json={"activate": True, **body}, headers=p.tenant.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def per_yuan(rate: str = "1", **extra: Any) -> dict[str, Any]:
    return {
        "trigger": "payment.succeeded",
        "effects": [{"type": "earn_per_yuan", "points_per_yuan": rate}],
        **extra,
    }


def grant(trigger: str, points: int, **extra: Any) -> dict[str, Any]:
    return {"trigger": trigger, "effects": [{"type": "grant_points", "points": points}], **extra}


def economics(p: Programme) -> dict[str, Any]:
    response = p.client.get("/v1/loyalty/economics", headers=p.tenant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def silver_at_ten(p: Programme) -> None:
    """A ladder a member climbs with 10 points (silver: x1.2)."""
    p.settings(
        tiers=[
            {"name": "normal", "threshold": 0, "multiplier": "1.0"},
            {"name": "silver", "threshold": 10, "multiplier": "1.2"},
            {"name": "gold", "threshold": 100000, "multiplier": "1.5"},
        ]
    )


# Rules ---------------------------------------------------------------------------------------


def test_points_per_yuan_are_rounded_down(programme: Programme) -> None:
    programme.rule(per_yuan("1.5"))
    # amount in fen -> amount x 1.5 / 100, rounded down.
    expected = {12345: 185, 99: 1, 66: 0, 20000: 300}

    result = programme.send(
        *[event("payment.succeeded", f"u{fen}", local(1, 12), amount_fen=fen) for fen in expected]
    )

    assert [(e["status"], e["pending"]) for e in result["events"]] == [("applied", False)] * 4
    assert points_of(result) == list(expected.values())
    assert {b["user_id"]: b["available"] for b in result["balances"]} == {
        f"u{fen}": points for fen, points in expected.items()
    }


def test_the_threshold_bonus_and_the_limited_time_double(programme: Programme) -> None:
    install_defaults(
        programme,
        double_points_from=local(1, 11).isoformat(),
        double_points_to=local(1, 12).isoformat(),
    )

    result = programme.send(
        event("payment.succeeded", "ann", local(1, 10), amount_fen=9999),
        event("payment.succeeded", "ann", local(1, 11), amount_fen=10000),  # doubled
        event("payment.succeeded", "ann", local(1, 12), amount_fen=12800),  # the window's end
    )

    # 99; (100 + 50) x 2; 128 + 50.
    assert points_of(result) == [99, 300, 178]
    assert result["balances"][0]["available"] == 577


def test_partner_and_birthday_double_and_stack_with_the_tier_rounded_down_once(
    programme: Programme, client: TestClient, tenant: TenantHandle
) -> None:
    install_defaults(programme, partner_stores=["mall-2"])
    silver_at_ten(programme)
    day = local(1, 12)
    member = client.put(
        "/v1/loyalty/members/ann", json={"birthday": day.strftime("%m-%d")}, headers=tenant.headers
    )
    assert member.status_code == 200, member.text
    programme.send(event("payment.succeeded", "ann", local(3, 12), amount_fen=1000))  # -> silver

    result = programme.send(
        event("payment.succeeded", "ann", local(2, 12), amount_fen=750),  # not her birthday
        event("payment.succeeded", "ann", local(2, 13), amount_fen=750, store_id="mall-2"),
        event("payment.succeeded", "ann", day, amount_fen=750),
        event(
            "payment.succeeded", "ann", day + timedelta(hours=1), amount_fen=750, store_id="mall-2"
        ),
        event(
            "payment.succeeded",
            "ann",
            day + timedelta(hours=2),
            amount_fen=10000,
            store_id="mall-2",
        ),
    )

    # Silver multiplies by 1.2: 7 x 1.2 = 8.4 -> 8; 7 x 2 x 1.2 = 16.8 -> 16 (partner or
    # birthday); 7 x 2 x 2 x 1.2 = 33.6 -> 33 (rounding after each factor would give 32);
    # 100 x 4.8 + 50 x 4.8 = 720 (the threshold bonus is multiplied too).
    assert points_of(result) == [8, 16, 16, 33, 720]
    assert {e["tier"] for e in result["events"]} == {"silver"}


def test_an_invitation_rewards_both_sides_and_the_friend_unmultiplied(
    programme: Programme,
) -> None:
    install_defaults(programme)
    silver_at_ten(programme)
    programme.send(event("payment.succeeded", "ann", local(2, 12), amount_fen=1000))

    result = programme.send(event("invite.accepted", "ann", local(1, 12), counterparty_id="bob"))

    assert points_of(result) == [24]  # 20 x 1.2 for the inviter
    balances = {b["user_id"]: b["available"] for b in result["balances"]}
    assert balances == {"ann": 34, "bob": 20}
    assert programme.balance("bob")["available"] == 20
    [lot] = programme.lots("bob")
    assert lot["ref"].endswith(":counterparty")
    assert (lot["points"], lot["status"]) == (20, "AVAILABLE")


def test_daily_caps_count_per_local_day(programme: Programme) -> None:
    install_defaults(programme)
    late, after_midnight = local(2, 23, 50), local(1, 0, 10)
    # The same UTC day, two local days.
    assert late.astimezone(UTC).date() == after_midnight.astimezone(UTC).date()

    result = programme.send(
        event("share.created", "ann", late),
        event("share.created", "ann", after_midnight),
        event("share.created", "ann", local(1, 0, 20)),
        *[event("comment.created", "ann", local(1, 9, m)) for m in range(7)],
    )

    assert points_of(result) == [5, 5, 0, 2, 2, 2, 2, 2, 0, 0]
    assert {e["status"] for e in result["events"]} == {"applied"}
    assert programme.balance("ann")["available"] == 20


def test_a_batch_is_applied_in_time_order_not_list_order(programme: Programme) -> None:
    install_defaults(programme)

    result = programme.send(
        event("share.created", "ann", local(1, 20)), event("share.created", "ann", local(1, 8))
    )

    assert points_of(result) == [0, 5]  # the morning share took the day's cap


def test_a_daily_cap_counts_the_day_in_the_rules_own_time_zone(programme: Programme) -> None:
    programme.rule(grant("share.created", 5, caps={"per_user_per_day": 1}, timezone="UTC"))
    # 23:50 and 00:10 in Shanghai, but 15:50 and 16:10 on one UTC day.
    late, after_midnight = local(2, 23, 50), local(1, 0, 10)

    result = programme.send(
        event("share.created", "ann", late), event("share.created", "ann", after_midnight)
    )

    assert points_of(result) == [5, 0]


def test_a_rule_stops_when_its_reward_budget_is_spent(programme: Programme) -> None:
    rule = programme.rule(grant("share.created", 10, budget={"max_rewards": 2}))

    result = programme.send(
        *[event("share.created", user, local(1, 9 + i)) for i, user in enumerate("abc")]
    )

    assert points_of(result) == [10, 10, 0]
    [spend] = economics(programme)["rules"]
    assert (spend["rule_id"], spend["rewards"], spend["max_rewards"]) == (rule["id"], 2, 2)


def test_a_rule_stops_when_its_cost_budget_would_be_exceeded(programme: Programme) -> None:
    programme.settings(point_value_fen="0.5")
    programme.rule(per_yuan("1", budget={"max_cost_fen": 100}))

    result = programme.send(
        event("payment.succeeded", "a", local(1, 9), amount_fen=12000),  # 120 points, 60 fen
        event("payment.succeeded", "b", local(1, 10), amount_fen=12000),  # would be 120 fen
        event("payment.succeeded", "c", local(1, 11), amount_fen=7900),  # 79 points: 40 fen
        event("payment.succeeded", "d", local(1, 12), amount_fen=100),  # 1 point: 101 fen
    )

    assert points_of(result) == [120, 0, 79, 0]
    [spend] = economics(programme)["rules"]
    assert (spend["cost_fen"], spend["max_cost_fen"]) == (100, 100)


def test_a_multiplier_is_charged_the_extra_points_it_adds(programme: Programme) -> None:
    programme.rule(per_yuan("1"))
    double = programme.rule(
        {
            "trigger": "payment.succeeded",
            "conditions": [{"type": "store_in", "values": ["mall-2"]}],
            "effects": [{"type": "multiply_points", "factor": "2"}],
            "budget": {"max_cost_fen": 100},
        }
    )

    result = programme.send(
        event("payment.succeeded", "ann", local(1, 9), amount_fen=8000, store_id="mall-2"),
        event("payment.succeeded", "ann", local(1, 10), amount_fen=8000, store_id="mall-2"),
    )

    assert points_of(result) == [160, 80]  # the second doubling would take the rule to 160 fen
    spend = {r["rule_id"]: r for r in economics(programme)["rules"]}
    assert spend[double["id"]]["cost_fen"] == 80


def test_a_multiplier_whose_cap_is_reached_stops_multiplying(programme: Programme) -> None:
    programme.rule(per_yuan("1"))
    programme.rule(
        {
            "trigger": "payment.succeeded",
            "effects": [{"type": "multiply_points", "factor": "2"}],
            "caps": {"per_user_per_day": 1},
        }
    )

    result = programme.send(
        event("payment.succeeded", "ann", local(2, 9), amount_fen=1000),
        event("payment.succeeded", "ann", local(2, 10), amount_fen=1000),
        event("payment.succeeded", "ann", local(1, 9), amount_fen=1000),
    )

    assert points_of(result) == [20, 10, 20]


def test_a_reversal_gives_back_what_the_event_took_of_caps_and_budgets(
    programme: Programme,
) -> None:
    programme.rule(grant("share.created", 5, caps={"per_user_per_day": 1}))
    programme.rule(grant("like.created", 10, budget={"max_rewards": 1}))
    first = programme.send(
        event("share.created", "ann", local(1, 9), event_id="share-1"),
        event("like.created", "ann", local(1, 9), event_id="like-1"),
        event("share.created", "ann", local(1, 10)),
        event("like.created", "bob", local(1, 10)),
    )
    assert points_of(first) == [5, 10, 0, 0]

    programme.reverse("share-1")
    programme.reverse("like-1")
    again = programme.send(
        event("share.created", "ann", local(1, 11)), event("like.created", "bob", local(1, 11))
    )

    assert points_of(again) == [5, 10]


# Receipt QR codes ----------------------------------------------------------------------------


def receipt_code(p: Programme, store_id: str, amount_fen: int) -> str:
    response = p.client.post(
        "/v1/loyalty/receipt-codes",
        json={"store_id": store_id, "amount_fen": amount_fen},
        headers=p.tenant.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


def test_a_receipt_code_earns_on_its_own_store_and_amount_once(programme: Programme) -> None:
    install_defaults(programme)  # receipt QR: 1 point a yuan
    programme.rule(
        grant("receipt.scanned", 10, conditions=[{"type": "store_in", "values": ["mall-2"]}])
    )
    code = receipt_code(programme, "mall-2", 8800)

    first = programme.send(
        event("receipt.scanned", "ann", local(1, 12), code=code, amount_fen=999900, store_id="x")
    )
    again = programme.send(event("receipt.scanned", "ann", local(1, 13), code=code))
    other = programme.send(event("receipt.scanned", "bob", local(1, 14), code=code))

    assert [(e["status"], e["points"]) for e in first["events"]] == [("applied", 98)]
    [replayed] = again["events"]
    assert (replayed["status"], replayed["points"]) == ("duplicate", 98)
    [refused] = other["events"]
    assert refused["status"] == "rejected"
    assert "already used" in refused["reason"]
    assert programme.balance("ann")["available"] == 98
    assert "user:bob" not in programme.ledger()


def test_a_forged_receipt_code_is_rejected(programme: Programme) -> None:
    install_defaults(programme)
    code = receipt_code(programme, "mall-2", 8800)
    forged = code[:-3] + ("AAA" if code[-3:] != "AAA" else "BBB")

    result = programme.send(
        event("receipt.scanned", "ann", local(1, 12), code=forged),
        event("receipt.scanned", "ann", local(1, 12), code="bm90IGEgcmVjZWlwdA"),
    )

    assert [e["status"] for e in result["events"]] == ["rejected", "rejected"]
    assert all("not valid" in e["reason"] for e in result["events"])
    assert programme.balance("ann")["available"] == 0
    # The genuine code is still good.
    genuine = programme.send(event("receipt.scanned", "ann", local(1, 13), code=code))
    assert points_of(genuine) == [88]


# Time ----------------------------------------------------------------------------------------


def test_events_too_old_or_in_the_future_are_rejected(programme: Programme) -> None:
    programme.rule(grant("share.created", 5))
    now = datetime.now(UTC)

    result = programme.send(
        event("share.created", "ann", now - timedelta(days=91), event_id="too-old"),
        event("share.created", "ann", now - timedelta(days=89), event_id="old-but-in-time"),
        event("share.created", "ann", now + timedelta(minutes=10), event_id="future"),
        event("share.created", "ann", now + timedelta(minutes=3), event_id="clock-skew"),
    )

    assert [(e["event_id"], e["status"], e["reason"]) for e in result["events"]] == [
        ("too-old", "rejected", "occurred_at is more than 90 days ago"),
        ("old-but-in-time", "applied", None),
        ("future", "rejected", "occurred_at is in the future"),
        ("clock-skew", "applied", None),
    ]
    assert programme.balance("ann")["available"] == 10
    # A rejected event sent again is still refused, with its reason.
    [again] = programme.send(
        event("share.created", "ann", now - timedelta(days=1), event_id="future")
    )["events"]
    assert (again["status"], again["points"], again["reason"]) == (
        "duplicate",
        0,
        "occurred_at is in the future",
    )
    assert programme.balance("ann")["available"] == 10


def test_the_maximum_event_age_is_a_setting(programme: Programme) -> None:
    programme.settings(max_event_age_days=30)
    programme.rule(grant("share.created", 5))

    result = programme.send(event("share.created", "ann", local(31, 12)))

    [outcome] = result["events"]
    assert (outcome["status"], outcome["reason"]) == (
        "rejected",
        "occurred_at is more than 30 days ago",
    )


# Replays and answers -------------------------------------------------------------------------


def test_a_replay_answers_duplicate_with_the_first_points(
    programme: Programme, client: TestClient, tenant: TenantHandle
) -> None:
    rule = programme.rule(grant("share.created", 10))
    sent = event("share.created", "ann", local(1, 12), event_id="share-1")
    programme.send(sent)
    changed = client.patch(
        f"/v1/loyalty/rules/{rule['id']}",
        json={"rule": grant("share.created", 50)},
        headers=tenant.headers,
    )
    assert changed.status_code == 200, changed.text

    again = programme.send(sent)
    batch = programme.send(sent, event("share.created", "ann", local(1, 13), event_id="share-2"))

    [replayed] = again["events"]
    assert (replayed["status"], replayed["points"]) == ("duplicate", 10)
    assert again["balances"] == [
        {"user_id": "ann", "available": 10, "pending": 0, "held": 0, "tier": "normal"}
    ]
    assert [(e["status"], e["points"]) for e in batch["events"]] == [
        ("duplicate", 10),
        ("applied", 50),
    ]
    assert programme.balance("ann")["available"] == 60
    assert len(programme.lots("ann")) == 2


def test_the_same_event_twice_in_a_batch_counts_once(programme: Programme) -> None:
    programme.rule(grant("share.created", 10))
    sent = event("share.created", "ann", local(1, 12))

    result = programme.send(sent, sent)

    first, second = result["events"]
    assert (first["status"], first["points"]) == ("applied", 10)
    assert (second["status"], second["points"]) == ("duplicate", 10)  # the first's points
    assert result["balances"] == [
        {"user_id": "ann", "available": 10, "pending": 0, "held": 0, "tier": "normal"}
    ]
    assert len(programme.lots("ann")) == 1


def test_the_answer_carries_every_members_balance_after_the_batch(
    programme: Programme,
) -> None:
    install_defaults(programme)
    programme.send(event("share.created", "bob", local(2, 12)))

    result = programme.send(
        event("payment.succeeded", "ann", local(1, 12), amount_fen=12800, order_id="pos-1"),
        event("share.created", "ann", local(1, 13)),
        event("invite.accepted", "ann", local(1, 14), counterparty_id="bob"),
    )

    assert [(e["points"], e["pending"]) for e in result["events"]] == [
        (178, True),
        (5, False),
        (20, False),
    ]
    balances = {b["user_id"]: b for b in result["balances"]}
    assert balances["ann"] == {
        "user_id": "ann",
        "available": 25,
        "pending": 178,
        "held": 0,
        "tier": "normal",
    }
    assert balances["bob"]["available"] == 25
    for user in ("ann", "bob"):
        assert programme.balance(user) == balances[user]


# Payments through zanloop --------------------------------------------------------------------


def test_a_payment_through_zanloop_earns_for_its_buyer(
    programme: Programme, client: TestClient, tenant: TenantHandle, paid_order: Pay
) -> None:
    install_defaults(programme, partner_stores=["mall-2"])

    order = paid_order(tenant, 12800, metadata={"user_id": "ann", "store_id": "mall-2"})
    anonymous = paid_order(tenant, 5000)

    assert anonymous["status"] == "SUCCESS"
    # 128 + 50, doubled at a partner store; pending through the 7-day refund window.
    assert programme.balance("ann") == {
        "user_id": "ann",
        "available": 0,
        "pending": 356,
        "held": 0,
        "tier": "normal",
    }
    [lot] = programme.lots("ann")
    assert (lot["status"], lot["points"], lot["ref"]) == (
        "PENDING",
        356,
        f"event:order:{order['id']}",
    )
    assert programme.ledger() == {"loyalty:issued": -356, "user:ann:pending": 356}


def test_a_tenant_without_a_programme_is_unaffected_by_payments(
    client: TestClient, make_tenant: Callable[..., TenantHandle], paid_order: Pay
) -> None:
    plain = make_tenant("No points here")

    order = paid_order(plain, 12800, metadata={"user_id": "ann"})
    refund = client.post(
        f"/v1/payments/orders/{order['id']}/refunds", json=None, headers=plain.write_headers()
    )

    assert refund.status_code in (200, 201, 202), refund.text
    member = client.get("/v1/loyalty/members/ann", headers=plain.headers)
    assert member.status_code == 404
    balance = client.get(
        "/v1/ledger/balances/user:ann", params={"asset": "POINTS"}, headers=plain.headers
    )
    assert balance.status_code in (200, 404), balance.text
    assert balance.status_code == 404 or balance.json()["balance"] == 0
    programme = client.get("/v1/loyalty/programme", headers=plain.headers).json()
    assert programme["rules_version"] == 0  # never opened
