"""The merchant-campaign part of ``zanloop demo``, driven through the real HTTP API.

A coffee chain (a merchant tenant of its own) runs "pay 50 CNY or more → like → 5 CNY off your
next visit; 5 likes → a free coffee": two coupon templates and three campaigns. Sixteen buyers
come by over four rounds of one day (morning, lunch, afternoon, evening); their mini-program
opens checkouts (four of them with a 5 CNY coupon earned earlier that day), the sandbox pays
them, and once its signed notifications have settled a round, the buyers like (and some share)
the purchases they are prompted for. Three payments are refunded: one that was liked (its
coupon is taken back), one whose prompt was still open, and part of a small one. A webhook
receiver verifies the signed ``campaign.*`` events.

Risk control allows 3 like prompts a user a day, so the day's most loyal buyer is refused a
fourth prompt, and nobody can reach the free coffee's 5 likes in one day: the report shows where
each buyer's track stands. It prints the buyers, the refunds explained, and the merchant
metrics, and checks them against what the day implies. Every figure is read back from the API.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx2 as httpx
from rich.console import Console
from rich.table import Table

from zanloop.config import get_settings
from zanloop.db import Database
from zanloop.demo import Receiver, serve_receiver, wait_for
from zanloop.kit.money import format_fen
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import TenantKind

THRESHOLD_FEN = 5000
GOAL = 5
PROMPTS_A_DAY = 3  # the default risk policy's like-prompts-day
FIVE_OFF: dict[str, Any] = {
    "name": "5 CNY off your next visit",
    "kind": "FIXED",
    "amount_fen": 500,
    "valid_days": 30,
}
FREE_COFFEE: dict[str, Any] = {
    "name": "A free coffee",
    "kind": "FIXED",
    "amount_fen": 3200,
    "valid_days": 30,
}


@dataclass(frozen=True)
class Visit:
    round: str
    buyer: int
    what: str
    list_fen: int
    coupon: bool = False  # pays with a 5 CNY coupon from the wallet
    then: str = ""  # "like", "share" (like, then share), or "": any prompt is left open


# One buyer visits at most once a round: a round's payments settle in any order.
DAY: list[Visit] = [
    Visit("morning", 1, "2 lattes", 5200, then="share"),
    Visit("morning", 2, "Latte and sandwich", 5400, then="like"),
    Visit("morning", 3, "Americano", 1800),
    Visit("morning", 4, "Beans 250 g", 8800, then="like"),
    Visit("morning", 5, "Flat white", 2800),
    Visit("morning", 6, "Team order: 4 lattes", 10400, then="share"),
    Visit("morning", 7, "Mocha and croissant", 4800),
    Visit("morning", 8, "Latte and cake", 5600),  # leaves the prompt open; refunded later
    Visit("lunch", 1, "Latte and cake", 5600, coupon=True, then="like"),  # pays 51: prompted
    Visit("lunch", 2, "2 flat whites", 5600, then="like"),
    Visit("lunch", 4, "Latte", 2600, coupon=True),
    Visit("lunch", 9, "Americano", 1800),
    Visit("lunch", 10, "Beans 250 g", 8800, then="like"),  # refunded later: coupon taken back
    Visit("lunch", 11, "Mocha", 3200),
    Visit("lunch", 12, "Lunch set for two", 6400, then="like"),
    Visit("lunch", 13, "Latte", 2600),  # half refunded later
    Visit("afternoon", 1, "2 mochas", 6400, then="like"),
    Visit("afternoon", 2, "Beans 250 g", 8800, then="like"),
    Visit("afternoon", 6, "Latte and cake", 5600, coupon=True, then="share"),
    Visit("afternoon", 14, "Flat white", 2800),
    Visit("afternoon", 15, "Afternoon tea for three", 9600, then="like"),
    Visit("afternoon", 16, "Mocha", 3200),
    Visit("evening", 1, "Beans 250 g", 8800, then="like"),  # a 4th prompt today: risk says no
    Visit("evening", 12, "Americano", 1800, coupon=True),
    Visit("evening", 3, "Latte", 2600),
]
ROUNDS = list(dict.fromkeys(v.round for v in DAY))
# (buyer, what they bought, fen refunded or None for all of it, reason)
REFUNDS: list[tuple[int, str, int | None, str]] = [
    (10, "Beans 250 g", None, "the beans went back"),
    (8, "Latte and cake", None, "wrong order"),
    (13, "Latte", 1300, "one cup spilled"),
]
BUYERS = sorted({v.buyer for v in DAY})


def user(buyer: int) -> str:
    return f"guest-{buyer:02d}"


def openid(buyer: int) -> str:
    return f"o_demo_guest_{buyer:02d}"


@dataclass
class Paid:
    """One visit as the API answered it: the checkout's order and the prompt it brought."""

    visit: Visit
    order: dict[str, Any]
    coupon_id: str | None
    prompt: dict[str, Any] | None = None

    def label(self) -> str:
        return f"{user(self.visit.buyer)}'s {self.visit.what} ({self.visit.round})"


@dataclass(frozen=True)
class Setup:
    five_off: str  # the template's id
    prompt: str  # the campaigns' ids
    coupon: str
    track: str

    def campaigns(self) -> tuple[str, str, str]:
        return self.prompt, self.coupon, self.track


class Api:
    """One HTTP client, a key per role: the chain's back office, its mini-program, an analyst."""

    def __init__(self, base: str, admin_key: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)
        self.keys = {"admin": admin_key}
        self.writes = 0

    def call(self, role: str, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        self.writes += 1
        headers["Idempotency-Key"] = f"demo-campaigns-{self.writes}"
        response = self.client.request(method, path, json=body, headers=headers)
        response.raise_for_status()
        return response.json()

    def get(self, path: str, role: str = "merchant", **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        response = self.client.get(path, params=params or None, headers=headers)
        response.raise_for_status()
        return response.json()

    def every(self, path: str, role: str = "merchant", **params: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.get(
                path, role, limit=200, **params, **({"cursor": cursor} if cursor else {})
            )
            rows += page["data"]
            cursor = page["next_cursor"]
            if not cursor or not page["data"]:
                return rows


def run_campaigns(base: str, console: Console) -> bool:
    """Run the scenario against ``base``, print what the API says; True if every check holds."""
    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            tenant, issued = tenancy.create_tenant(
                session, "Demo coffee chain (zanloop demo: campaigns)", TenantKind.MERCHANT
            )
    finally:
        db.dispose()
    api = Api(base, issued.plaintext)
    receiver = Receiver()
    hook_server, hook_url = serve_receiver(receiver)
    try:
        for role, scope in (("merchant", "merchant"), ("app", "app"), ("analyst", "analyst")):
            key = api.call("admin", "POST", "/v1/api-keys", {"name": role, "scopes": [scope]})
            api.keys[role] = str(key["key"])
        endpoint = api.call(
            "merchant",
            "POST",
            "/v1/webhooks/endpoints",
            {"url": hook_url, "event_types": ["campaign.*"]},
        )
        receiver.secret = endpoint["secret"]
        setup = _set_up(api)
        day: list[Paid] = []
        for name in ROUNDS:
            day += _round(api, setup, [v for v in DAY if v.round == name])
        _refund(api, day)
        r = _read(api, setup, day)
        reversed_ = sum(r.metrics[c]["rewards_reversed"] for c in setup.campaigns())
        wait_for(  # until the signed webhooks have announced every prompt and reversal
            lambda: (
                receiver.types.get("campaign.prompt.created", 0)
                >= r.metrics[setup.prompt]["prompts"]
                and receiver.types.get("campaign.reward.reversed", 0) >= reversed_
            ),
            seconds=30,
        )
        return _report(api, console, tenant.id, setup, day, r, receiver)
    finally:
        api.client.close()
        hook_server.shutdown()


def _set_up(api: Api) -> Setup:
    five_off = api.call("merchant", "POST", "/v1/coupon-templates", FIVE_OFF)["id"]
    free = api.call("merchant", "POST", "/v1/coupon-templates", FREE_COFFEE)["id"]
    rules: list[tuple[str, dict[str, Any]]] = [
        (
            "Pay 50 CNY, get a like prompt",
            {
                "trigger": "payment.succeeded",
                "conditions": [{"type": "amount_gte", "fen": THRESHOLD_FEN}],
                "effects": [
                    {
                        "type": "prompt_like",
                        "store": "Zanloop Coffee, Jing'an",
                        "image_url": "https://example.com/latte.jpg",
                        "slogan": "Liked your coffee? Tell us: 5 CNY off your next one",
                    }
                ],
            },
        ),
        (
            "A like earns 5 CNY off",
            {
                "trigger": "like.created",
                "effects": [{"type": "issue_coupon", "template_id": five_off}],
                "budget": {"max_cost_fen": 50000},
            },
        ),
        (
            "5 likes, a free coffee",
            {
                "trigger": "like.created",
                "effects": [
                    {
                        "type": "progress_tier",
                        "goal": GOAL,
                        "reward": [{"type": "issue_coupon", "template_id": free}],
                    }
                ],
            },
        ),
    ]
    ids = [
        api.call("merchant", "POST", "/v1/campaigns", {"name": n, "rule": r})["id"]
        for n, r in rules
    ]
    return Setup(five_off, *ids)


def _round(api: Api, setup: Setup, visits: list[Visit]) -> list[Paid]:
    """The round's checkouts, paid in the sandbox; once its notifications have settled them,
    the buyers act on the prompts their mini-program shows."""
    paid = []
    for visit in visits:
        coupon_id = None
        if visit.coupon:
            wallet = api.get(f"/v1/users/{user(visit.buyer)}/coupons", "app", status="AVAILABLE")
            coupon_id = min(  # the oldest 5 CNY coupon in the wallet
                (c for c in wallet["data"] if c["template_id"] == setup.five_off),
                key=lambda c: str(c["issued_at"]),
            )["id"]
        body = {
            "user_id": user(visit.buyer),
            "payer_openid": openid(visit.buyer),
            "amount_fen": visit.list_fen,
            "description": visit.what,
            "store_id": "jingan",
            "categories": ["beans"] if "Beans" in visit.what else ["coffee"],
            **({"coupon_id": coupon_id} if coupon_id else {}),
        }
        checkout = api.call("app", "POST", "/v1/checkouts", body)
        api.call("app", "POST", f"/v1/sandbox/orders/{checkout['order']['out_trade_no']}/pay")
        paid.append(Paid(visit, checkout["order"], coupon_id))
    wait_for(lambda: all(_order(api, p)["status"] == "SUCCESS" for p in paid))
    for p in paid:
        buyer = user(p.visit.buyer)
        prompts = api.get(f"/v1/users/{buyer}/prompts", "app", status="OPEN")
        p.prompt = next((x for x in prompts if x["order_id"] == p.order["id"]), None)
        if p.prompt is None or not p.visit.then:
            continue
        # Each buyer's phone: its own device and address (two networks in the shop).
        phone = {"device_id": f"fp-{p.visit.buyer * 7919:05x}", "ip": _ip(p.visit.buyer)}
        api.call("app", "POST", f"/v1/prompts/{p.prompt['id']}/like", phone)
        if p.visit.then == "share":
            api.call("app", "POST", f"/v1/prompts/{p.prompt['id']}/share", {"channel": "moments"})
    return paid


def _ip(buyer: int) -> str:
    return f"{'203.0.113' if buyer % 2 else '198.51.100'}.{20 + buyer}"


def _order(api: Api, paid: Paid) -> dict[str, Any]:
    order: dict[str, Any] = api.get(f"/v1/payments/orders/{paid.order['id']}")
    return order


def _find(day: list[Paid], buyer: int, what: str) -> Paid:
    return next(p for p in day if (p.visit.buyer, p.visit.what) == (buyer, what))


def _refund(api: Api, day: list[Paid]) -> None:
    """The evening's refunds, until settled (their notifications reverse the rewards)."""
    refunds = []
    for buyer, what, amount_fen, reason in REFUNDS:
        order_id = _find(day, buyer, what).order["id"]
        body = {"reason": reason} | ({} if amount_fen is None else {"amount_fen": amount_fen})
        refunds.append(
            api.call("merchant", "POST", f"/v1/payments/orders/{order_id}/refunds", body)
        )
    wait_for(
        lambda: all(
            api.get(f"/v1/payments/refunds/{x['id']}")["status"] == "SUCCESS" for x in refunds
        )
    )


# The report: every figure read back from the API ---------------------------------------------


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


def _read(api: Api, setup: Setup, day: list[Paid]) -> Readings:
    return Readings(
        orders={p.order["id"]: _order(api, p) for p in day},
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


def _report(
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
        p = _find(day, buyer, what)
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
