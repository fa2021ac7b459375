"""Acceptance: a month of a points programme, driven through the API as an integrator would,
checked against an independent calculation (tests/loyalty/model.py) written from
docs/loyalty.md.

Thirty-odd members (and the friends they invite) earn for five weeks ending two days ago, in
a New York programme (so a daylight-saving change falls inside the month): payments (some with
an order, so pending applies; some at the partner store, on a birthday or in the double-points
week), shares, comments, likes, reads, videos, invitations, receipt QR codes and store
check-ins.
The events go in as single calls and batches of every size, in time order; between them
payments are refunded (by reversing the event or by a ``payment.refunded`` event), among
them one that undoes a tier upgrade, one that breaks a completed check-in streak, one that
undoes an achievement and one the last scheduled evaluation holds up. The scheduled jobs run
at the end of every day and one second either side of every expiry, so a lot that expires a
second early or late is caught. After the month: redemptions (a refund of spent points leaves
a debt that the next earnings pay off), scheduled tier evaluations with a shorter window, and
the jobs run on until every point has matured and expired.

Every answer (each event's outcome, the balances it carries, each reversal) is compared with
the model as it comes; every day ends with the whole ledger compared; at the end of each phase
every member's balances, lots, tier, tier history and task progress are compared field by field,
and the ledger invariants are checked from the API alone.

The month itself (its events and the driving) is month.py; the comparisons, api_vs_model.py;
the small cases it found, test_month_regressions.py.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.loyalty.api_vs_model import at, compare_ledger, compare_members, lot_seqs
from tests.loyalty.conftest import Programme, event
from tests.loyalty.model import Model
from tests.loyalty.model_lots import AVAILABLE
from tests.loyalty.model_programme import (
    Achievement,
    Conf,
    Count,
    Rule,
    Streak,
    Task,
    Tier,
    seed_rules,
)
from tests.loyalty.month import DAYS, PARTNER, RULES_ZONE, ZONE, Month, Profile

TIERS = (
    Tier("normal", 0, Decimal("1.0")),
    Tier("silver", 1500, Decimal("1.2")),
    Tier("gold", 4000, Decimal("1.5")),
)
MEMBERS = 30
LIKE_BONUS = "Weekend like bonus"
COUNT_TASK = "Pay three times in the festival: 100"
ACHIEVEMENT = (
    "payment.succeeded",
    "share.created",
    "comment.created",
    "article.read",
    "video.completed",
)


def programme_settings(window: int = 365) -> dict[str, Any]:
    return {
        "timezone": ZONE,
        "refund_window_days": 3,
        "expiry": {"policy": "rolling", "months": 1, "notice_days": 3},
        "tiers": [
            {"name": t.name, "threshold": t.threshold, "multiplier": str(t.multiplier)}
            for t in TIERS
        ],
        "tier_basis": "points",
        "tier_window_days": window,
        "downgrade": "one_step",
    }


def open_programme(
    p: Programme, start: datetime
) -> tuple[Model, dict[str, str], tuple[datetime, datetime]]:
    """The programme, the defaults (with a partner store and a double-points week), a weekend
    like bonus with a budget, and a limited-time count task; the model of the same."""
    p.settings(**programme_settings())
    double = (start + timedelta(days=15, hours=1), start + timedelta(days=18, hours=1))
    response = p.client.post(
        "/v1/loyalty/defaults",
        json={
            "activate": True,
            "partner_stores": [PARTNER],
            "double_points_from": double[0].isoformat(),
            "double_points_to": double[1].isoformat(),
        },
        headers=p.tenant.headers,
    )
    assert response.status_code == 201, response.text
    installed = response.json()
    # The seed's rules are installed in the programme's zone: caps, birthdays, streaks and
    # expiry all count New York days.
    assert {r["rule"]["timezone"] for r in installed["rules"]} == {RULES_ZONE}
    rules = seed_rules([PARTNER], double, RULES_ZONE)
    assert sorted(r["name"] for r in installed["rules"]) == sorted(r.id for r in rules)
    rules.append(
        Rule(
            LIKE_BONUS,
            "like.created",
            ZONE,
            weekday_in=(6, 7),
            grant=3,
            per_user_total=3,
            max_rewards=25,
        )
    )
    p.rule(
        {
            "trigger": "like.created",
            "conditions": [{"type": "weekday_in", "days": [6, 7]}],
            "effects": [{"type": "grant_points", "points": 3}],
            "caps": {"per_user_total": 3},
            "budget": {"max_rewards": 25},
            "timezone": ZONE,
        },
        name=LIKE_BONUS,
    )
    tasks: dict[str, str] = {t["name"]: t["id"] for t in installed["tasks"]}
    streak = next(t for t in installed["tasks"] if t["task"]["type"] == "streak")
    assert (streak["task"]["trigger"], streak["task"]["days"], streak["task"]["points"]) == (
        "store.checkin",
        7,
        200,
    )
    festival = (start + timedelta(days=10, seconds=17), start + timedelta(days=20, seconds=17))
    count = p.task(
        {
            "type": "count",
            "trigger": "payment.succeeded",
            "goal": 3,
            "points": 100,
            "start": festival[0].isoformat(),
            "end": festival[1].isoformat(),
        },
        name=COUNT_TASK,
    )
    tasks[COUNT_TASK] = count["id"]
    model_tasks: list[Task] = [
        Streak(
            streak["id"],
            "store.checkin",
            7,
            200,
            grace_days=streak["task"]["grace_days"],
            repeat=streak["task"]["repeat"],
        ),
        Achievement(
            tasks["Try everything once: 500"],
            ACHIEVEMENT,
            500,
        ),
        Count(count["id"], "payment.succeeded", 3, 100, *festival),
    ]
    conf = Conf(ZONE, 3, 1, TIERS)
    return Model(conf, rules, model_tasks), tasks, double


# More seeds: ZANLOOP_MONTH_SEEDS=11,2026,90210 (each takes some ten seconds).
SEEDS = [int(s) for s in os.environ.get("ZANLOOP_MONTH_SEEDS", "11,2026").split(",")]


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed-{s}" for s in SEEDS])
def test_a_month_of_events_matches_an_independent_calculation(
    programme: Programme, seed: int
) -> None:
    p = programme
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=DAYS + 2)

    # Given a programme with the defaults, birthdays, and printed receipts
    model, tasks, _ = open_programme(p, start)
    codes = []
    for i in range(6):
        response = p.client.post(
            "/v1/loyalty/receipt-codes",
            json={"store_id": f"store-{i}", "amount_fen": 1000 + 1234 * i},
            headers=p.tenant.headers,
        )
        assert response.status_code == 201, response.text
        codes.append(response.json()["code"])
        model.receipt(codes[-1], f"store-{i}", 1000 + 1234 * i)
    profiles = [
        Profile(
            f"m{i:02d}",
            activity=rng.uniform(0.3, 0.95),
            regular=rng.random() < 0.35,
            scale=rng.choice([0.5, 1, 1, 2, 3]),
            partner=rng.uniform(0, 0.6),
        )
        for i in range(MEMBERS)
    ]
    zone = ZoneInfo(RULES_ZONE)
    birthdays: dict[str, date] = {}
    for prof in rng.sample(profiles, 10):
        day = (start + timedelta(days=rng.uniform(0.5, DAYS - 0.5))).astimezone(zone).date()
        birthdays[prof.user] = day
        response = p.client.put(
            f"/v1/loyalty/members/{prof.user}",
            json={"birthday": day.strftime("%m-%d")},
            headers=p.tenant.headers,
        )
        assert response.status_code == 200, response.text
        model.set_birthday(prof.user, day.strftime("%m-%d"))
    month = Month(
        p,
        model,
        rng,
        now,
        start,
        streak_id=tasks["Check in 7 days in a row: 200"],
        achievement_id=tasks["Try everything once: 500"],
        codes=codes,
    )
    month.generate(profiles, birthdays)
    month.scenarios()

    # When the month's events arrive, day by day, with refunds and the jobs in between
    by_day: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in month.events:
        k = (datetime.fromisoformat(e["occurred_at"]) - start) // timedelta(days=1)
        by_day[k].append(e)
    for k in range(DAYS):
        month.day(k, by_day[k])
    assert not month.forced

    # Then every member matches the model, and the ledger holds
    month.jobs(datetime.now(UTC))
    users = sorted(model.members)
    # A friend has one lot from an invitation: a few of them will do until the end.
    friends = [u for u in users if u.startswith("friend-")]
    sample = [u for u in users if u not in friends] + friends[::8]
    compare_members(p, model, sample)
    stats = model.stats
    assert month.done["upgrade undone"] >= 1
    assert month.done["streak broken"] >= 1
    assert month.done["refund held by evaluation"] >= 1
    assert month.done["refund events"] >= 1
    assert stats.rewards_clawed[month.achievement_id] >= 1
    assert stats.rewards_issued[month.streak_id] >= 3
    assert stats.rewards_issued[tasks[COUNT_TASK]] >= 1
    assert stats.pending_clawed > 0
    assert stats.expired_points > 0
    assert stats.expired_at_once > 0
    assert stats.pending_rewards >= 2
    assert stats.capped > 0
    assert stats.budget_refused > 0
    assert stats.duplicates >= 2
    assert stats.rejected >= 3
    assert sum(1 for m in model.members.values() if m.tier == "gold") >= 1
    for rule in (
        "Birthday: double points",
        "Partner merchants: double points",
        "Limited-time event: double points",
        "+50 for a payment of 100 CNY or more",
        "Receipt QR: 1 point a yuan",
        LIKE_BONUS,
    ):
        assert stats.applied[rule] >= 1, rule

    # When members redeem, and one is refunded a payment whose points they spent
    compare_members(p, model, redeem_and_owe(month))

    # When the scheduled evaluation runs, then again with a ten-day window
    evaluate(month, now + timedelta(hours=1))
    p.settings(**programme_settings(window=10))
    model.set_conf(replace(model.conf, tier_window_days=10))
    evaluate(month, now + timedelta(hours=2))
    evaluate(month, now + timedelta(hours=3))
    assert model.stats.evaluation_changes >= 1

    # Then the jobs run on until every point has matured and expired, each on its day
    last = max(lot.expires_at for lot in model.lots if lot.expires_at)
    month.jobs(last + timedelta(days=1))
    compare_members(p, model, sample)
    ledger = p.ledger()
    assert not any(v for k, v in ledger.items() if k.startswith("user:"))


def evaluate(month: Month, when: datetime) -> None:
    month.p.evaluate_tiers(when)
    month.model.evaluate(when)
    for user in sorted(month.model.members):
        assert month.p.balance(user)["tier"] == month.model.member(user).tier, user


def redeem_and_owe(month: Month) -> list[str]:
    """Returns the members it touched."""
    p, model, now = month.p, month.model, datetime.now(UTC)
    mug = p.item(name="Mug", price_points=150)
    bag = p.item(name="Bag", price_points=500, stock=2, per_user_limit=1)
    rich = sorted(
        (u for u in model.members if u.startswith("m")),
        key=lambda u: (-model.balance(u)["available"], u),
    )

    def redeem(user: str, item: dict[str, Any], confirm: bool = True) -> dict[str, Any]:
        response = p.redeem(user, item["id"], confirm=confirm)
        assert response.status_code == 201, response.text
        body = dict(response.json())
        expires = at(body["expires_at"])
        seqs = lot_seqs(p, model, user)
        chosen = {seqs[lot_id]: points for lot_id, points in body["allocations"].items()}
        assert model.redeem(body["id"], user, item["price_points"], now, confirm, expires, chosen)
        assert body["balance"] == model.balance(user), user
        return body

    for user in rich[:6]:
        redeem(user, mug)
    redeem(rich[0], bag)
    redeem(rich[1], bag)
    refused = p.redeem(rich[2], bag["id"], confirm=True)
    assert refused.status_code == 409, refused.text
    poor = next(u for u in sorted(model.members) if model.balance(u)["available"] < 150)
    short = p.redeem(poor, mug["id"], confirm=True)
    assert short.status_code == 409, short.text
    # A hold cancelled returns its points; a hold left alone is released by the job.
    held = redeem(rich[6], mug, confirm=False)
    assert p.balance(rich[6]) == model.balance(rich[6])
    response = p.client.post(
        f"/v1/loyalty/redemptions/{held['id']}/cancel", headers=p.tenant.headers
    )
    assert response.status_code == 200, response.text
    model.cancel(held["id"])
    assert response.json()["balance"] == model.balance(rich[6])
    redeem(rich[7], mug, confirm=False)
    # A member spends nearly all they have, then a payment of theirs is refunded: what was
    # spent is owed, and paid off from what they earn next and what matures.
    spender = next(
        u
        for u in sorted(rich[8:], key=lambda u: not model.balance(u)["pending"])
        if any(
            e.type == "payment.succeeded"
            and month.refundable(e.event_id)
            and any(x.status == AVAILABLE for x in model.user_lots(u) if x.event_id == e.event_id)
            for e in model.events_of[u]
        )
    )
    price = model.balance(spender)["available"] - 3
    redeem(spender, p.item(name="Everything", price_points=price))
    payment = next(
        e.event_id
        for e in reversed(model.events_of[spender])
        if e.type == "payment.succeeded"
        and month.refundable(e.event_id)
        and any(x.status == AVAILABLE for x in model.user_lots(spender) if x.event_id == e.event_id)
    )
    month.reverse(payment)
    assert model.member(spender).owed > 0
    month.send([event("payment.succeeded", spender, now - timedelta(hours=1), amount_fen=1000)])
    compare_ledger(p, model, "after the redemptions")
    return sorted({*rich[:8], poor, spender})
