"""The report of the points-programme demo (``demo_loyalty``): the month's earning, the tier
upgrade, the streak, the jobs (maturing, expiry, notice), the redemption and the refund's
claw-back, then the programme's economics, each read back from the API, printed as a compact
table and checked against what the month implies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from zanloop.demo import Receiver
from zanloop.demo_loyalty import (
    BIRTHDAY,
    COUPON,
    MEMBERS,
    MONTH,
    PARTNER,
    PRICE_POINTS,
    REDEEMER,
    REFUNDED,
    TODAY,
    TZ,
    Story,
    event_id,
)
from zanloop.kit.money import format_fen

OK = "[green]OK[/green]"
FAILED = "[red]FAILED[/red]"


def _day(value: str | None) -> str:
    """A timestamp as its local day (the programme's time zone)."""
    if value is None:
        return "—"
    return datetime.fromisoformat(value).astimezone(TZ).strftime("%m-%d")


def _days(values: Iterable[str | None]) -> str:
    """Local days, as a range if they differ."""
    days = sorted({_day(v) for v in values})
    return days[0] if len(days) == 1 else f"{days[0]}…{days[-1]}"


def _table(title: str, *columns: str) -> Table:
    """A table; a column whose name ends in ">" holds figures, right-justified."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        figures = column.endswith(">")
        table.add_column(column.rstrip(">"), justify="right" if figures else "left")
    return table


def _pts(n: int) -> str:
    return f"{n:,}"


def report(console: Console, story: Story, receiver: Receiver, seconds: float) -> bool:
    console.print()
    console.rule(f"loyalty points — coffee club tenant {story.tenant_id}")
    _programme(console, story)
    _earning(console, story)
    _tiers_and_streak(console, story)
    _jobs(console, story, receiver)
    _redemption(console, story)
    _refund(console, story)
    _summary(console, story)
    ok = _checks(console, story, receiver)
    console.print(f"[dim]loyalty scenario: {seconds:.1f} s[/dim]")
    return ok


def _programme(console: Console, s: Story) -> None:
    member, days_ago = BIRTHDAY
    console.print(
        f"programme: 1 point = 1 fen; silver at 1,000 points (×1.2), gold at 5,000 (×1.5); "
        f"{s.rules} rules and {len(s.tasks)} tasks from the defaults, {PARTNER} a partner store "
        f"(double points); {member}'s birthday {days_ago} days ago.\n"
        f"  the expiry rule, as members see it: “{s.expiry_rule}”"
    )


def _outcomes(s: Story) -> dict[str, dict[str, Any]]:
    return {o["event_id"]: o for o in s.batch["events"]}


def _earning(console: Console, s: Story) -> None:
    outcomes = _outcomes(s)
    table = _table(
        "the month's payments: tills (one batch with the app's events) and today's sandbox",
        "member",
        "day>",
        "paid>",
        "where",
        "points>",
        "",
        "how",
    )
    for index, act in enumerate(MONTH):
        if act.till:
            o = outcomes[event_id(index, act)]
            when = f"{-act.days_ago} d"
            table.add_row(
                act.member,
                when,
                format_fen(act.amount_fen),
                act.store or "",
                str(o["points"]),
                "pending" if o["pending"] else "",
                act.why,
            )
    table.add_section()
    for pay in TODAY:
        lot = _lot(s, pay.member, f"event:order:{s.orders[pay.member]['id']}")
        table.add_row(
            pay.member,
            "today",
            format_fen(pay.amount_fen),
            pay.store,
            str(lot["points"]) if lot else "none",
            "pending" if lot and lot["status"] in ("PENDING", "REVERSED") else "",
            "sandbox" + (", refunded later" if pay.member == REFUNDED else ""),
        )
    console.print(table)
    statuses = Counter(o["status"] for o in s.batch["events"])
    replayed = Counter(o["status"] for o in s.replay["events"])
    zero = [act for act in MONTH if act.expect == 0]
    console.print(
        f"  batch of {len(MONTH)} events: {_counted(statuses)}; sent again: {_counted(replayed)}. "
        + "; ".join(f"{a.member}'s {a.why}: 0 points" for a in zero)
        + " (5 likes a day earn; reading counts from 100 %)."
    )
    members = _table(
        "members after the month (GET /v1/loyalty/members/{user})",
        "member",
        "events>",
        "available>",
        "pending>",
        "tier",
        "qualifying>",
        "next expiry>",
    )
    for m in MEMBERS:
        a = s.after_month[m]
        events = sum(1 for act in MONTH if act.member == m) + (m in s.orders)
        members.add_row(
            m,
            str(events),
            str(a["available"]),
            str(a["pending"]),
            a["tier"],
            _pts(a["qualifying"]),
            f"{a['next_expiry_points']} on {_day(a['next_expiry'])}" if a["next_expiry"] else "—",
        )
    console.print(members)
    past = [
        m
        for m in MEMBERS
        if s.after_month[m]["next_expiry"]
        and datetime.fromisoformat(s.after_month[m]["next_expiry"]) <= s.now
    ]
    if past:
        console.print(
            f"  {', '.join(past)}: the next expiry is already past; those points were earned over "
            "a month ago, and the expiry job takes them (below)."
        )


def _counted(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "none"


def _lot(s: Story, member: str, ref: str) -> dict[str, Any] | None:
    return next((x for x in s.lots.get(member, []) if x["ref"] == ref), None)


def _tiers_and_streak(console: Console, s: Story) -> None:
    table = _table(
        "tier changes (GET …/tier-history)", "member", "day", "from", "to", "reason", "qualifying>"
    )
    for m in MEMBERS:
        for change in reversed(s.tier_history[m]):
            table.add_row(
                m,
                _day(change["at"]),
                change["from_tier"],
                change["to_tier"],
                change["reason"],
                _pts(change["qualifying"]),
            )
    console.print(table)
    tasks = _table(
        f"{REFUNDED}'s tasks (GET …/tasks)", "task", "progress>", "completed>", "rewarded>", ""
    )
    for t in s.mei_tasks:
        tasks.add_row(
            t["name"],
            f"{t['progress']}/{t['goal']}",
            str(t["completed"]),
            str(t["rewarded"]),
            t["detail"],
        )
    console.print(tasks)


def _task_id(s: Story, kind: str) -> str:
    """The id of the defaults' task of ``kind`` (streak, achievement)."""
    return next(str(t["task_id"]) for t in s.mei_tasks if t["type"] == kind)


def _jobs(console: Console, s: Story, receiver: Receiver) -> None:
    console.print(
        "jobs: the demo ran loyalty.mature, loyalty.expire and loyalty.notify_expiring itself "
        "(zanloop.loyalty.service's mature_due, expire_due, notify_expiring) on its database at "
        "the real time; the server's worker runs them every minute (the notice hourly)."
    )
    table = _table(
        "what the jobs did, as the lots say (GET …/lots)",
        "member",
        "lot",
        "earned",
        "available",
        "expires",
        "points>",
        "now",
    )
    h = s.hao_lot
    table.add_row(
        "hao",
        s.labels.get(h["ref"], h["ref"]),
        _day(h["earned_at"]),
        datetime.fromisoformat(h["available_at"]).astimezone(TZ).strftime("%m-%d %H:%M:%S"),
        _day(h["expires_at"]),
        str(h["points"]),
        f"{h['status']} (window closed)",
    )
    for lot in _by_date(s.lots[REFUNDED]):
        if lot["expired"]:
            table.add_row(
                REFUNDED,
                s.labels.get(lot["ref"], lot["ref"]),
                _day(lot["earned_at"]),
                _day(lot["available_at"]),
                _day(lot["expires_at"]),
                str(lot["points"]),
                f"{lot['expired']} expired",
            )
    console.print(table)
    for event in _webhooks(receiver, "loyalty.points.expiring"):
        d = event["data"]
        console.print(
            f"  notice (webhook loyalty.points.expiring): {d['user_id']}, {d['points']} points "
            f"expire from {_day(d['expires_at'])}"
        )


def _by_date(lots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(lots, key=lambda x: (x["earned_at"], x["ref"]))


def _webhooks(receiver: Receiver, name: str) -> list[dict[str, Any]]:
    with receiver.lock:
        return [e for e in receiver.events if e["type"] == name]


def _redemption(console: Console, s: Story) -> None:
    before, held, done = s.before_redeem, s.held, s.confirmed
    table = _table(
        f"{REDEEMER} redeems {PRICE_POINTS} points for a coupon",
        "step",
        "status",
        "available>",
        "held>",
        "pending>",
    )
    table.add_row(
        "before", "", str(before["available"]), str(before["held"]), str(before["pending"])
    )
    for step, r in (("hold", held), ("confirm", done)):
        b = r["balance"]
        table.add_row(step, r["status"], str(b["available"]), str(b["held"]), str(b["pending"]))
    console.print(table)
    lots = {x["id"]: x for x in s.held_lots}
    taken = ", ".join(
        f"{points} from “{s.labels.get(lots[lot_id]['ref'], lot_id)}” "
        f"(expires {_day(lots[lot_id]['expires_at'])})"
        for lot_id, points in sorted(
            held["allocations"].items(), key=lambda kv: str(lots[kv[0]]["expires_at"])
        )
    )
    coupons = [c for c in s.wallet if c["id"] in done["coupon_ids"]]
    console.print(
        f"  the soonest-expiring points went first: {taken}.\n"
        f"  “{COUPON['name']}” issued to the wallet: "
        + ", ".join(f"{c['id']} ({format_fen(c['face_fen'])}, {c['status']})" for c in coupons)
    )


def _refund(console: Console, s: Story) -> None:
    order = s.orders[REFUNDED]
    before, after = s.before_refund, s.after_refund
    table = _table(
        f"{REFUNDED}'s gift set refunded ({format_fen(s.refund['amount_fen'])}, "
        f"{s.refund['status']})",
        "",
        "available>",
        "pending>",
        "tier",
        "qualifying>",
        "owed>",
    )
    for name, a in (("before", before), ("after", after)):
        table.add_row(
            name,
            str(a["available"]),
            str(a["pending"]),
            a["tier"],
            _pts(a["qualifying"]),
            str(a["owed"]),
        )
    console.print(table)
    lots = _table(
        f"{REFUNDED}'s lots after the refund",
        "lot",
        "earned",
        "status",
        "points>",
        "remaining>",
        "expired>",
        "clawed>",
        "expires",
    )
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for lot in _by_date(s.lots[REFUNDED]):  # alike lots (the check-ins) on one row
        groups.setdefault((s.labels.get(lot["ref"], lot["ref"]), lot["status"]), []).append(lot)
    for (label, status), alike in groups.items():
        lots.add_row(
            label if len(alike) == 1 else f"{label} ×{len(alike)}",
            _days(x["earned_at"] for x in alike),
            status,
            *(str(sum(x[k] for x in alike)) for k in ("points", "remaining", "expired", "clawed")),
            _days(x["expires_at"] for x in alike),
        )
    console.print(lots)
    achievement = next(t for t in s.after_tasks if t["type"] == "achievement")
    change = s.tiers_after_refund[0] if s.tiers_after_refund else None
    console.print(
        f"  the refund of {order['out_trade_no']} reversed its points, the achievement it "
        f"completed (now {achievement['progress']}/{achievement['goal']}: "
        f"{achievement['detail']}) and "
        + (
            f"the upgrade it caused ({change['from_tier']} → {change['to_tier']}, "
            f"{change['reason']})"
            if change
            else "no tier change"
        )
    )


def _summary(console: Console, s: Story) -> None:
    e = s.economics
    table = _table("the programme's economics (GET /v1/loyalty/economics)", "figure", "value>")
    rows = [
        ("points issued", _pts(e["points_issued"])),
        ("clawed back by refunds", _pts(e["points_clawed"])),
        ("expired (breakage)", f"{_pts(e['points_expired'])} ({e['breakage_rate'] * 100:.1f} %)"),
        ("redeemed", _pts(e["points_redeemed"])),
        (
            "outstanding: available, pending, held",
            f"{_pts(e['points_outstanding'])}: "
            f"{_pts(e['points_outstanding'] - e['points_pending'] - e['points_held'])}, "
            f"{_pts(e['points_pending'])}, {_pts(e['points_held'])}",
        ),
        (f"liability (1 point = {e['point_value_fen']} fen)", format_fen(e["liability_fen"])),
        ("breakage", format_fen(e["breakage_fen"])),
    ]
    for row in rows:
        table.add_row(*row)
    table.add_section()
    for month in e["months"]:
        table.add_row(
            f"{month['month']}: issued net, members, cost per member",
            f"{_pts(month['points_issued'])}, {month['earning_members']}, "
            f"{format_fen(month['cost_per_member_fen'])}"
            + (" [red]over the 50 CNY alert[/red]" if month["over_alert"] else ""),
        )
    table.add_section()
    for owner in ("loyalty:issued", "loyalty:clawed", "loyalty:expired", "loyalty:redeemed"):
        table.add_row(f"ledger {owner}", _pts(s.ledger.get(owner, 0)))
    console.print(table)


def _checks(console: Console, s: Story, receiver: Receiver) -> bool:
    outcomes = _outcomes(s)
    e = s.economics
    order_lots = {
        p.member: _lot(s, p.member, f"event:order:{s.orders[p.member]['id']}") for p in TODAY
    }
    earned = all(
        outcomes[event_id(i, act)]["status"] == "applied"
        and outcomes[event_id(i, act)]["points"] == act.expect
        for i, act in enumerate(MONTH)
    ) and all((order_lots[p.member] or {}).get("points") == p.expect for p in TODAY)
    first = {o["event_id"]: o["points"] for o in s.batch["events"]}
    replay = all(
        o["status"] == "duplicate" and o["points"] == first[o["event_id"]]
        for o in s.replay["events"]
    ) and sorted(s.batch["balances"], key=lambda b: b["user_id"]) == [
        s.after_replay[m] for m in sorted(MEMBERS)
    ]
    jun = [(c["from_tier"], c["to_tier"], c["reason"]) for c in s.tier_history[REDEEMER]]
    streak_lot = _lot(s, REFUNDED, f"task:{_task_id(s, 'streak')}:1")
    streak = next(t for t in s.mei_tasks if t["type"] == "streak")
    expected_expired = sum(a.expect for a in MONTH if not a.till and a.days_ago >= 33)
    expired_lots = sum(x["expired"] for m in MEMBERS for x in s.lots[m])
    expired_hooks = sum(
        e_["data"]["points"]
        for e_ in _webhooks(receiver, "loyalty.points.expired")
        if e_["data"]["user_id"] == REFUNDED
    )
    notices = {x["data"]["user_id"] for x in _webhooks(receiver, "loyalty.points.expiring")}
    held, done = s.held, s.confirmed
    lots_on_hold = [x for x in s.held_lots if x["status"] == "AVAILABLE"]
    soonest = sorted(
        (x for x in lots_on_hold if x["id"] in held["allocations"] or x["remaining"] > 0),
        key=lambda x: (x["expires_at"], x["earned_at"]),
    )
    first_ids = [x["id"] for x in soonest[: len(held["allocations"])]]
    coupons = [c for c in s.wallet if c["id"] in done["coupon_ids"]]
    pay_lot = order_lots[REFUNDED] or {}
    won = _lot(s, REFUNDED, f"task:{_task_id(s, 'achievement')}:1") or {}
    before, after = s.before_refund, s.after_refund
    achievement = next(t for t in s.after_tasks if t["type"] == "achievement")
    reversed_hooks = [
        x
        for x in _webhooks(receiver, "loyalty.points.reversed")
        if x["data"]["event_id"] == f"order:{s.orders[REFUNDED]['id']}"
    ]
    redemption_hooks = {
        x["type"]
        for x in receiver.events
        if x["type"].startswith("loyalty.redemption.")
        and x["data"].get("redemption_id") == held["id"]
    }
    lots_match = all(_lots_match(s, m) for m in MEMBERS) and (
        held["balance"]["available"] == sum(x["remaining"] for x in lots_on_hold)
        and held["balance"]["held"] == PRICE_POINTS
    )
    outstanding = sum(a["available"] + a["pending"] + a["held"] for a in s.accounts.values())
    checks = [
        ("every event earned what the rules say", earned),
        ("the batch sent again changed nothing", replay),
        (
            f"{REDEEMER} upgraded to silver on his birthday payment",
            jun == [("normal", "silver", "earned")],
        ),
        (
            "7 check-ins in a row rewarded 200 once",
            streak["completed"] == 1
            and streak["rewarded"] == 1
            and (streak_lot or {}).get("points") == 200,
        ),
        ("pending points matured when their window closed", s.hao_lot["status"] == "AVAILABLE"),
        (
            f"expired {expected_expired} = lots = economics = ledger loyalty:expired = webhooks",
            expected_expired
            == expired_lots
            == e["points_expired"]
            == s.ledger.get("loyalty:expired")
            == expired_hooks,
        ),
        (f"{REDEEMER} told of points expiring within the notice", REDEEMER in notices),
        (
            "redemption held the soonest-expiring points, then confirmed with a coupon",
            held["status"] == "HELD"
            and sorted(first_ids) == sorted(held["allocations"])
            and sum(held["allocations"].values()) == PRICE_POINTS
            and done["status"] == "CONFIRMED"
            and done["balance"]["held"] == 0
            and len(coupons) == 1
            and coupons[0]["status"] == "AVAILABLE",
        ),
        (
            "the refund clawed back the payment's points and the achievement, and the upgrade",
            pay_lot.get("status") == "REVERSED"
            and pay_lot.get("clawed") == pay_lot.get("points")
            and won.get("status") == "REVERSED"
            and won.get("clawed") == won.get("points") == 500
            # The achievement rested on the refunded payment, so its 500 were pending too.
            and (before["pending"] + before["available"]) - (after["pending"] + after["available"])
            == pay_lot.get("points", 0) + 500
            and (before["tier"], after["tier"]) == ("silver", "normal")
            and [c["reason"] for c in s.tiers_after_refund[:1]] == ["refund"]
            and achievement["completed"] == 0
            and after["owed"] == 0,
        ),
        ("ledger: POINTS accounts sum to zero", sum(s.ledger.values()) == 0),
        ("balances equal the lots", lots_match),
        (
            "economics: issued − clawed − expired − redeemed = outstanding = balances = ledger",
            e["points_issued"] - e["points_clawed"] - e["points_expired"] - e["points_redeemed"]
            == e["points_outstanding"]
            == outstanding
            and -s.ledger.get("loyalty:issued", 0) == e["points_issued"]
            and s.ledger.get("loyalty:clawed") == e["points_clawed"]
            and s.ledger.get("loyalty:redeemed") == e["points_redeemed"] == PRICE_POINTS
            and e["liability_fen"] == outstanding,
        ),
        (
            "webhooks: points reversed, redemption held and confirmed, signatures valid",
            len(reversed_hooks) == 1
            and redemption_hooks == {"loyalty.redemption.held", "loyalty.redemption.confirmed"}
            and receiver.rejected == 0,
        ),
    ]
    console.print(
        "loyalty check: " + "; ".join(f"{what} " + (OK if ok else FAILED) for what, ok in checks)
    )
    return all(ok for _, ok in checks)


def _lots_match(s: Story, member: str) -> bool:
    """The member's ledger accounts hold what their lots say: available lots plus held points
    in ``user:<id>``, pending lots in ``user:<id>:pending``."""
    lots = s.lots[member]
    account = s.accounts[member]
    available = sum(x["remaining"] for x in lots if x["status"] == "AVAILABLE")
    pending = sum(x["remaining"] for x in lots if x["status"] == "PENDING")
    return (
        s.ledger.get(f"user:{member}", 0) == available + account["held"]
        and s.ledger.get(f"user:{member}:pending", 0) == pending
        and (account["available"], account["pending"]) == (available, pending)
    )
