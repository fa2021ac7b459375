"""Tiers (L2): earning upgrades at once, refunds undo what they caused, the scheduled
evaluation moves members up and down by policy, and every change is on record."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.loyalty.conftest import Programme, event, points_of
from zanloop.db import Database

SHANGHAI = ZoneInfo("Asia/Shanghai")
LADDER = [
    {"name": "normal", "threshold": 0, "multiplier": "1.0"},
    {"name": "silver", "threshold": 100, "multiplier": "1.5"},
    {"name": "gold", "threshold": 300, "multiplier": "2.0"},
]
PER_YUAN = {
    "trigger": "payment.succeeded",
    "effects": [{"type": "earn_per_yuan", "points_per_yuan": "1"}],
}


def today() -> date:
    return datetime.now(SHANGHAI).date()


def local(days_ago: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(today() - timedelta(days=days_ago), time(hour, minute), SHANGHAI)


def pay(user: str, at: datetime, amount_fen: int, **fields: Any) -> dict[str, Any]:
    return event("payment.succeeded", user, at, amount_fen=amount_fen, **fields)


def history(p: Programme, user: str) -> list[tuple[str, str, str, int]]:
    response = p.client.get(f"/v1/loyalty/members/{user}/tier-history", headers=p.tenant.headers)
    assert response.status_code == 200, response.text
    return [(c["from_tier"], c["to_tier"], c["reason"], c["qualifying"]) for c in response.json()]


def laddered(p: Programme, **settings: Any) -> None:
    p.settings(tiers=LADDER, **settings)
    p.rule(PER_YUAN)


def test_an_upgrade_mid_batch_raises_the_multiplier_of_later_events(programme: Programme) -> None:
    laddered(programme)
    first, second, third = local(1, 10), local(1, 11), local(1, 12)

    result = programme.send(
        pay("ann", third, 8000), pay("ann", first, 8000), pay("ann", second, 8000)
    )

    # In time order: 80 (normal), 80 (now 160: silver), then 80 x 1.5.
    assert points_of(result) == [120, 80, 80]
    assert [e["tier"] for e in result["events"]] == ["silver", "normal", "silver"]
    assert result["balances"][0]["tier"] == "silver"
    assert history(programme, "ann") == [("normal", "silver", "earned", 160)]
    # Event by event, the same month earns the same.
    one_by_one = [programme.send(pay("bob", at, 8000)) for at in (first, second, third)]
    assert [points_of(r)[0] for r in one_by_one] == [80, 80, 120]


def test_a_refund_undoes_the_upgrade_it_caused(programme: Programme) -> None:
    laddered(programme)
    programme.send(pay("ann", local(2, 10), 8000))
    upgraded = programme.send(pay("ann", local(2, 11), 8000, order_id="pos-2"))
    assert upgraded["balances"][0]["tier"] == "silver"

    refunded = programme.send(
        event("payment.refunded", "ann", local(1, 12), order_id="pos-2", amount_fen=8000)
    )

    assert refunded["balances"][0]["tier"] == "normal"
    assert history(programme, "ann") == [
        ("silver", "normal", "refund", 80),
        ("normal", "silver", "earned", 160),
    ]
    assert points_of(programme.send(pay("ann", local(1, 13), 1000))) == [10]


def test_a_refund_never_takes_a_member_below_the_evaluated_tier(programme: Programme) -> None:
    laddered(programme)
    programme.send(pay("ann", local(3, 10), 16000, event_id="silver-maker"))
    evaluated = programme.client.post(
        "/v1/loyalty/tiers/evaluate", headers=programme.tenant.headers
    )
    assert evaluated.status_code == 204
    gold = programme.send(pay("ann", local(2, 10), 10000, event_id="gold-maker"))
    assert (points_of(gold), gold["balances"][0]["tier"]) == ([150], "gold")

    first = programme.reverse("silver-maker")
    second = programme.reverse("gold-maker")

    assert (first["tier"], first["clawed"]) == ("silver", 160)  # 150 still qualifies
    assert (second["tier"], second["clawed"]) == ("silver", 150)  # 0 would not: the floor holds
    assert programme.account("ann")["tier"] == "silver"
    assert history(programme, "ann") == [
        ("gold", "silver", "refund", 150),
        ("silver", "gold", "earned", 310),
        ("normal", "silver", "earned", 160),
    ]


def test_the_scheduled_evaluation_downgrades_as_the_policy_says(
    client: TestClient, make_tenant: Callable[..., TenantHandle], db: Database
) -> None:
    expected = {  # policy: the tier after one evaluation, then after another
        "one_step": ("silver", "normal"),
        "to_qualified": ("normal", "normal"),
        "never": ("gold", "gold"),
    }
    window_passed = datetime.now(UTC) + timedelta(days=31)
    seen = {}
    for downgrade in expected:
        p = Programme(client, make_tenant(downgrade), db)
        laddered(p, downgrade=downgrade, tier_window_days=30)
        p.send(pay("ann", local(2, 10), 30000))
        assert p.account("ann")["tier"] == "gold"

        p.evaluate_tiers(window_passed)
        first = p.account("ann")["tier"]
        p.evaluate_tiers(window_passed + timedelta(days=1))
        seen[downgrade] = (first, p.account("ann")["tier"])

        # On record, oldest first, each with the qualifying points it saw (none in the window).
        evaluations = [c for c in reversed(history(p, "ann")) if c[2] == "evaluation"]
        path = ("gold", *seen[downgrade])
        assert evaluations == [(a, b, "evaluation", 0) for a, b in pairwise(path) if a != b]

    assert seen == expected


def test_the_evaluation_confirms_a_member_who_still_qualifies(programme: Programme) -> None:
    laddered(programme, downgrade="to_qualified")
    programme.send(pay("ann", local(2, 10), 30000))

    programme.evaluate_tiers(datetime.now(UTC))

    assert programme.account("ann")["tier"] == "gold"
    assert [c[2] for c in history(programme, "ann")] == ["earned"]


def test_the_evaluation_raises_members_to_what_now_qualifies(programme: Programme) -> None:
    laddered(programme)
    programme.send(pay("ann", local(2, 10), 5000))
    lower = [LADDER[0], {**LADDER[1], "threshold": 40}, LADDER[2]]
    programme.settings(tiers=lower)
    assert programme.account("ann")["tier"] == "normal"  # settings alone move no one

    evaluated = programme.client.post(
        "/v1/loyalty/tiers/evaluate", headers=programme.tenant.headers
    )

    assert evaluated.status_code == 204
    assert history(programme, "ann")[0] == ("normal", "silver", "evaluation", 50)
    assert points_of(programme.send(pay("ann", local(1, 10), 1000))) == [15]


def test_spend_can_qualify_for_tiers_instead_of_points(programme: Programme) -> None:
    programme.settings(
        tier_basis="spend",
        tiers=[
            {"name": "normal", "threshold": 0, "multiplier": "1.0"},
            {"name": "silver", "threshold": 10000, "multiplier": "1.5"},
            {"name": "gold", "threshold": 50000, "multiplier": "2.0"},
        ],
    )
    programme.rule(PER_YUAN)
    programme.rule(
        {"trigger": "share.created", "effects": [{"type": "grant_points", "points": 9000}]}
    )

    result = programme.send(
        event("share.created", "ann", local(2, 9)),  # points, but no spend
        pay("ann", local(2, 10), 6000),
        pay("ann", local(2, 11), 5000, order_id="pos-2"),
        pay("ann", local(2, 12), 2000),
    )

    assert points_of(result) == [9000, 60, 50, 30]
    assert history(programme, "ann") == [("normal", "silver", "earned", 11000)]
    refunded = programme.send(
        event("payment.refunded", "ann", local(1, 12), order_id="pos-2", amount_fen=5000)
    )
    assert refunded["balances"][0]["tier"] == "normal"
    assert programme.account("ann")["qualifying"] == 8000


def test_the_member_sees_the_tier_and_the_way_to_the_next(programme: Programme) -> None:
    laddered(programme)
    programme.send(pay("ann", local(2, 10), 12000))

    account = programme.account("ann")

    assert (account["tier"], account["multiplier"], account["qualifying"]) == ("silver", "1.5", 120)
    assert (account["next_tier"], account["next_tier_at"]) == ("gold", 300)
    programme.send(pay("ann", local(1, 10), 20000))
    top = programme.account("ann")
    assert (top["tier"], top["next_tier"], top["next_tier_at"]) == ("gold", None, None)
