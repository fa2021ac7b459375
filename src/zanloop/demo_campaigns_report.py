"""The report of the merchant-campaign demo (``demo_campaigns``): every figure read back from
the API once the day is over, printed (the buyers, a small payment, the refused prompts and the
refunds explained, the merchant metrics) and checked against what the day implies.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from zanloop.demo import Receiver
from zanloop.demo_campaigns import (
    BUYERS,
    FIVE_OFF,
    GOAL,
    PROMPTS_A_DAY,
    REFUNDS,
    THRESHOLD_FEN,
    Api,
    Paid,
    Setup,
    find_paid,
    read_order,
    user,
)
from zanloop.kit.money import format_fen


@dataclass(frozen=True)
class Readings:
    orders: dict[str, dict[str, Any]]  # by order id
    prompts: dict[int, list[dict[str, Any]]]  # by buyer
    coupons: dict[int, list[dict[str, Any]]]  # by buyer
    rewards: list[dict[str, Any]]  # of every campaign
    metrics: dict[str, dict[str, Any]]  # by campaign id, and "coupons" for the tenant's

    def rewards_of(self, order_id: str) -> list[dict[str, Any]]:
        return [x for x in self.rewards if x["order_id"] == order_id]

    def tracks(self, campaign_id: str) -> dict[str, int]:
        """Where each user's progress track stands."""
        by_user: dict[str, list[dict[str, Any]]] = {}
        for reward in self.rewards:
            if reward["campaign_id"] == campaign_id:
                by_user.setdefault(reward["user_id"], []).append(reward)
        return {u: _track(rewards) for u, rewards in sorted(by_user.items())}


def read_back(api: Api, setup: Setup, day: list[Paid]) -> Readings:
    return Readings(
        orders={p.order["id"]: read_order(api, p) for p in day},
        prompts={b: api.get(f"/v1/users/{user(b)}/prompts", "app", limit=200) for b in BUYERS},
        coupons={b: api.every(f"/v1/users/{user(b)}/coupons", "app") for b in BUYERS},
        rewards=api.every("/v1/campaign-rewards"),
        metrics={c: api.get(f"/v1/campaigns/{c}/metrics") for c in setup.campaigns()}
        | {"coupons": api.get("/v1/coupons/metrics")},
    )


def _track(rewards: list[dict[str, Any]]) -> int:
    """Where a buyer's free-coffee track stands: the count the engine recorded last, on a
    like (the reward's progress step) or on a refund (the reversal's step back)."""
    marks: list[tuple[datetime, int]] = []
    for reward in rewards:
        for effect in reward["effects"]:
            if effect.get("type") == "progress_tier":
                marks.append((datetime.fromisoformat(reward["created_at"]), effect["count"]))
            elif effect.get("type") == "reversal":
                marks += [
                    (datetime.fromisoformat(reward["reversed_at"]), undone["count"])
                    for undone in effect["undone"]
                    if undone.get("type") == "progress_tier"
                ]
    return max(marks)[1] if marks else 0


def report(
    api: Api,
    console: Console,
    tenant_id: str,
    setup: Setup,
    day: list[Paid],
    r: Readings,
    receiver: Receiver,
) -> bool:
    console.print()
    console.rule(f"merchant campaigns — coffee chain tenant {tenant_id}")
    _print_buyers(console, setup, day, r)
    refused = _print_outcomes(api, console, setup, day, r)
    _print_metrics(console, setup, r, len(refused))
    return _checks(console, setup, day, refused, r, receiver)


def _print_buyers(console: Console, setup: Setup, day: list[Paid], r: Readings) -> None:
    table = Table(title="the day's buyers: orders, prompts, wallets and free-coffee tracks")
    columns = ["buyer", "visits", "paid", "refunded", "prompts", "liked", "shared"]
    for column in columns:
        table.add_column(column, justify="left" if column == "buyer" else "right")
    table.add_column("5 CNY coupons")
    table.add_column(f"free coffee ({GOAL} likes)", justify="right")
    tracks = r.tracks(setup.track)
    for buyer in BUYERS:
        orders = [r.orders[p.order["id"]] for p in day if p.visit.buyer == buyer]
        prompts = r.prompts[buyer]
        held = Counter(c["status"] for c in r.coupons[buyer] if c["template_id"] == setup.five_off)
        track = tracks.get(user(buyer))
        table.add_row(
            user(buyer),
            str(len(orders)),
            format_fen(sum(o["amount_fen"] for o in orders)),
            format_fen(sum(o["refunded_fen"] for o in orders)),
            str(len(prompts)),
            str(sum(1 for p in prompts if p["liked_at"])),
            str(sum(1 for p in prompts if p["shared_at"])),
            _counted(held),
            "—" if track is None else f"{track}/{GOAL}",
        )
    console.print(table)


def _print_outcomes(
    api: Api, console: Console, setup: Setup, day: list[Paid], r: Readings
) -> list[Paid]:
    """A small payment, the prompts risk control refused and the refunds, as the API explains
    them. Returns the payments of 50 CNY or more that risk control refused a prompt."""

    def explained(p: Paid) -> dict[str, Any]:
        found: dict[str, Any] = api.get(f"/v1/campaigns/explain/orders/{p.order['id']}")
        return found

    def paid(p: Paid) -> int:
        return int(r.orders[p.order["id"]]["amount_fen"])

    small = next(p for p in day if paid(p) < THRESHOLD_FEN)
    [verdict] = [
        v
        for e in explained(small)["events"]
        for v in e["verdicts"]
        if v["campaign_id"] == setup.prompt
    ]
    console.print(f"  {small.label()}, {format_fen(paid(small))}: {verdict['message']}")
    refused = []
    for p in day:
        if paid(p) < THRESHOLD_FEN or p.prompt is not None:
            continue
        outcomes = [v["outcome"] for e in explained(p)["events"] for v in e["verdicts"]]
        if outcomes == ["risk_blocked"]:
            refused.append(p)
    for p in refused:
        decisions = api.get(
            "/v1/risk/decisions", "analyst", user_id=user(p.visit.buyer), action="like.prompt"
        )["data"]
        [decision] = [d for d in decisions if d["payment_order_id"] == p.order["id"]]
        console.print(
            f"  {p.label()}, {format_fen(paid(p))}: no like prompt, {decision['verdict']} "
            + "; ".join(f"{x['rule_id']} ({x['message']})" for x in decision["reasons"])
        )
    for buyer, what, _, reason in REFUNDS:
        p = find_paid(day, buyer, what)
        order = r.orders[p.order["id"]]
        rewards = Counter(x["status"] for x in r.rewards_of(order["id"]))
        prompt = next((x for x in r.prompts[buyer] if x["order_id"] == order["id"]), None)
        coupons = Counter(c["status"] for c in _coupons_earned(r, order["id"]))
        console.print(
            f"  {p.label()}, {format_fen(paid(p))}, {format_fen(order['refunded_fen'])} refunded "
            f"({reason}): {explained(p)['summary']}\n    prompt "
            f"{prompt['status'] if prompt else 'none'}; rewards {_counted(rewards)}; "
            f"coupons {_counted(coupons)}"
        )
    return refused


def _counted(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "none"


def _coupons_earned(r: Readings, order_id: str) -> list[dict[str, Any]]:
    """The coupons the rewards of a payment issued, as they stand in the wallets."""
    wallets = {c["id"]: c for b in BUYERS for c in r.coupons[b]}
    return [
        wallets[e["coupon_id"]]
        for reward in r.rewards_of(order_id)
        for e in reward["effects"]
        if e.get("type") == "issue_coupon" and e.get("coupon_id")
    ]


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _print_metrics(console: Console, setup: Setup, r: Readings, refused: int) -> None:
    prompt, coupon, track = (r.metrics[c] for c in setup.campaigns())
    every = r.metrics["coupons"]
    orders = list(r.orders.values())
    tracks = r.tracks(setup.track)
    furthest = max(tracks.values())
    leaders = ", ".join(u for u, n in tracks.items() if n == furthest)
    reversed_ = [m["rewards_reversed"] for m in (prompt, coupon, track)]
    table = Table(title="merchant metrics (GET /v1/campaigns/{id}/metrics, /v1/coupons/metrics)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    sections: list[list[tuple[str, str]]] = [
        [
            ("visits paid", str(sum(o["status"] in ("SUCCESS", "REFUND") for o in orders))),
            ("of 50 CNY or more", str(sum(o["amount_fen"] >= THRESHOLD_FEN for o in orders))),
            (
                "taken less refunds",
                format_fen(sum(o["amount_fen"] - o["refunded_fen"] for o in orders)),
            ),
        ],
        [
            ("like prompts", str(prompt["prompts"])),
            ("prompts refused by risk control", str(refused)),
            ("likes (like rate)", f"{prompt['likes']} ({_rate(prompt['like_rate'])})"),
            ("shares (share rate)", f"{prompt['shares']} ({_rate(prompt['share_rate'])})"),
        ],
        [
            ("5 CNY coupons issued", str(coupon["coupons_issued"])),
            (
                "redeemed (redemption rate)",
                f"{coupon['coupons_redeemed']} ({_rate(coupon['reward_redemption_rate'])})",
            ),
            ("discount given", format_fen(coupon["discount_fen"])),
            ("spend driven", format_fen(coupon["spend_fen"])),
            ("leverage (spend per fen of discount)", f"{coupon['leverage'] or 0:.2f}×"),
            (
                "rewarded buyers who paid again (repurchase rate)",
                f"{coupon['repurchasers']} of {coupon['rewarded_users']} "
                f"({_rate(coupon['repurchase_rate'])})",
            ),
        ],
        [
            ("likes counted toward the free coffee", str(track["rewards_granted"])),
            ("free coffees issued", str(track["coupons_issued"])),
            ("furthest along", f"{leaders} at {furthest}/{GOAL}"),
        ],
        [
            (
                "rewards reversed by refunds (prompt, coupon, track)",
                f"{sum(reversed_)} ({', '.join(map(str, reversed_))})",
            ),
            (
                "all coupons: issued, redeemed, revoked",
                f"{every['issued']}, {every['redeemed']}, {every['revoked']}",
            ),
        ],
    ]
    for rows in sections:
        for row in rows:
            table.add_row(*row)
        table.add_section()
    console.print(table)
    console.print(
        f"  free coffee at {GOAL} likes: nobody can reach it in one day, as risk control allows "
        f"{PROMPTS_A_DAY} like prompts a user a day; {leaders} stand at {furthest}/{GOAL}, and "
        "the track carries over to their next visits."
    )


def _checks(
    console: Console,
    setup: Setup,
    day: list[Paid],
    refused: list[Paid],
    r: Readings,
    receiver: Receiver,
) -> bool:
    prompt, coupon, track = (r.metrics[c] for c in setup.campaigns())
    prompts = [x for b in BUYERS for x in r.prompts[b]]
    refunded = {i for i, o in r.orders.items() if o["refunded_fen"]}
    big = {i for i, o in r.orders.items() if o["amount_fen"] >= THRESHOLD_FEN}
    prompted = {x["order_id"] for x in prompts}
    taken_back = [c["status"] for i in refunded for c in _coupons_earned(r, i)]
    redeeming = [p for p in day if p.coupon_id]
    kept = Counter(x["user_id"] for x in prompts if x["liked_at"] and x["order_id"] not in refunded)
    tracks = r.tracks(setup.track)
    reversed_ = sum(m["rewards_reversed"] for m in (prompt, coupon, track))
    checks = [
        ("no prompt below 50 CNY", prompted <= big),
        (
            f"every payment of 50 CNY or more prompted but {len(refused)} refused by risk",
            big - prompted == {p.order["id"] for p in refused},
        ),
        (
            f"5 CNY coupons issued = likes ({prompt['likes']})",
            coupon["coupons_issued"] == prompt["likes"],
        ),
        (
            "refunded payments: rewards REVERSED, coupons REVOKED, prompts closed",
            all(x["status"] == "REVERSED" for i in refunded for x in r.rewards_of(i))
            and taken_back != []
            and set(taken_back) == {"REVOKED"}
            and r.metrics["coupons"]["revoked"] == len(taken_back)
            and all(x["status"] != "OPEN" for x in prompts if x["order_id"] in refunded),
        ),
        (
            f"redeemed = coupon checkouts ({len(redeeming)}), 5 CNY off each",
            coupon["coupons_redeemed"] == len(redeeming)
            and coupon["discount_fen"] == FIVE_OFF["amount_fen"] * len(redeeming)
            and coupon["spend_fen"]
            == sum(r.orders[p.order["id"]]["amount_fen"] for p in redeeming),
        ),
        (
            "free-coffee tracks = likes kept",
            all(tracks.get(u, 0) == kept[u] for u in tracks.keys() | kept.keys())
            and track["coupons_issued"] == sum(n // GOAL for n in kept.values()),
        ),
        (
            "campaign webhooks: one per prompt and per reversal",
            receiver.types.get("campaign.prompt.created") == prompt["prompts"]
            and receiver.types.get("campaign.reward.reversed") == reversed_,
        ),
        ("webhook signatures", receiver.rejected == 0),
    ]
    console.print(
        "campaign check: "
        + "; ".join(
            f"{what} " + ("[green]OK[/green]" if ok else "[red]FAILED[/red]") for what, ok in checks
        )
    )
    return all(ok for _, ok in checks)
