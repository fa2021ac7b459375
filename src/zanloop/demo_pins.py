"""The paid-pinned-likes (置顶赞) part of ``zanloop demo``, driven through the real HTTP API.

A platform tenant registers creators (two in a programme, one in none) and their content (one
item of too low quality to accept pins), binds the payment accounts of fifteen viewers, and the
viewers buy pins of varied amounts with messages. Most pay in the sandbox; one walks away; one
device bursts and is blocked by risk control. The creator takes one pin down (refunded), the
platform takes one down for a violation (not refunded). Once the sandbox's notifications and
the refund have settled, it prints per creator the pinned list of their top content, the pins
they received, their analytics and ledger balances, and checks that ``pins:sales`` is back to
zero and that every paid pin went live exactly once. Every figure it prints is read back from
the API.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
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

# A live stream's pins are timed: shown 10 min to 5 h by amount (the tenant's default is lasting).
TIMED = {
    "mode": "timed",
    "slots": 2,
    "tiers": [
        {"min_amount_fen": 10, "duration_seconds": 600, "max_message_chars": 20},
        {"min_amount_fen": 100, "duration_seconds": 1800, "max_message_chars": 50},
        {"min_amount_fen": 1000, "duration_seconds": 3600, "max_message_chars": 100},
        {"min_amount_fen": 5000, "duration_seconds": 18000, "max_message_chars": 300},
    ],
}
# (id, name, programmes, policy override)
CREATORS: list[tuple[str, str, list[str], dict[str, Any]]] = [
    ("creator-xiong", "熊二赶海", ["incentive"], {}),
    ("creator-lin", "林间小厨", ["commerce", "incentive"], TIMED),
    ("creator-zhou", "周末画画", [], {}),  # in no programme: none of their content takes pins
]
# (id, creator, kind, title, completion rate, engagement rate)
CONTENTS: list[tuple[str, str, str, str, float, float]] = [
    ("video-tide", "creator-xiong", "video", "Low tide at dawn", 0.62, 0.08),
    ("post-shells", "creator-xiong", "post", "Shells I kept", 0.12, 0.01),  # quality 11 < 30
    ("live-kitchen", "creator-lin", "live", "Sunday night kitchen, live", 0.71, 0.12),
    ("video-dumplings", "creator-lin", "video", "Dumplings three ways", 0.55, 0.06),
    ("video-sketch", "creator-zhou", "video", "A ten-minute sketch", 0.80, 0.10),
]
REGIONS = ["Guangdong", "Zhejiang", "Sichuan", "Beijing", "Shanghai", "Hunan", "Fujian"]
VIEWERS = [f"viewer-{i:02d}" for i in range(1, 16)]
# (viewer number, content, amount in fen, message). Amounts set the message length allowed.
PURCHASES: list[tuple[int, str, int, str]] = [
    (1, "video-tide", 5000, "日出那一刻太美了，谢谢你每天早起"),
    (2, "video-tide", 1000, "Love the tide pools"),
    (3, "video-tide", 500, "加油!"),
    (4, "video-tide", 2000, "明天还去赶海吗?"),
    (5, "video-tide", 100, "+1"),
    (6, "video-tide", 10000, "Best channel on the coast. Thank you for every dawn."),
    (1, "video-tide", 2000, "Again, for the crabs"),
    (7, "video-tide", 300, "first!!!"),  # the creator takes it down
    (8, "video-tide", 888, "加微信领福利 wx_promo8"),  # the platform takes it down: a violation
    (6, "video-tide", 500, "还有螃蟹吗"),
    (10, "live-kitchen", 100, "好香"),
    (11, "live-kitchen", 5000, "饺子教程求更新，下周还直播吗?"),
    (12, "live-kitchen", 1000, "Greetings from Chengdu"),
    (13, "live-kitchen", 200, "+1"),
    (2, "live-kitchen", 500, "火候讲得好清楚"),
    (11, "live-kitchen", 2000, "再来一锅"),
    (14, "live-kitchen", 10, "hi"),
    (15, "video-dumplings", 1500, "学会了，今晚就包"),
    (3, "video-dumplings", 1000, "thanks!"),
    (9, "video-tide", 1000, "等我付款"),  # walks away without paying: stays PENDING
]
WALKS_AWAY = 9
CREATOR_REMOVES = (7, "video-tide")
PLATFORM_REMOVES = (8, "video-tide")
REFUSED = [(5, "post-shells", 100, "nice"), (12, "video-sketch", 100, "nice")]
BURST = 14  # this viewer's device then sends pin after pin
PAID_STATES = {"ACTIVE", "EXPIRED", "REMOVED", "REFUNDED", "IN_REVIEW"}
STATUSES = ["ACTIVE", "IN_REVIEW", "EXPIRED", "REMOVED", "REFUNDED", "PENDING", "CANCELLED"]


def region(viewer: int) -> str:
    return REGIONS[viewer % len(REGIONS)]


def device(viewer: int) -> str:
    return f"fp-{viewer * 7919:05x}"


def ip(viewer: int) -> str:
    return f"{'203.0.113' if viewer % 2 else '198.51.100'}.{20 + viewer}"


@dataclass
class Scenario:
    """What the API answered while the scenario ran: the ids to read the figures back by."""

    bought: dict[tuple[int, str, int, str], dict[str, Any]] = field(default_factory=dict)
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    burst_accepted: list[dict[str, Any]] = field(default_factory=list)
    burst_block: dict[str, Any] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)  # pin ids

    def pin_of(self, viewer: int, content: str) -> dict[str, Any]:
        """The pin (as bought) of the viewer's first purchase on the content."""
        return next(p["pin"] for k, p in self.bought.items() if k[:2] == (viewer, content))


class Api:
    """One HTTP client, a key per role: the platform backend, the mini-program, each creator."""

    def __init__(self, base: str, keys: dict[str, str]) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)
        self.keys = keys
        self.writes = 0

    def call(
        self, role: str, method: str, path: str, body: Any = None, **params: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        if method != "GET":
            self.writes += 1
            headers["Idempotency-Key"] = f"demo-pins-{self.writes}"
        return self.client.request(method, path, json=body, params=params or None, headers=headers)

    def get(self, path: str, role: str = "platform", **params: Any) -> Any:
        response = self.call(role, "GET", path, **params)
        response.raise_for_status()
        return response.json()

    def ok(self, role: str, method: str, path: str, body: Any = None) -> Any:
        response = self.call(role, method, path, body)
        response.raise_for_status()
        return response.json()

    def all_pins(self, path: str, role: str = "platform", **params: Any) -> list[dict[str, Any]]:
        pins: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.get(
                path, role, limit=200, **params, **({"cursor": cursor} if cursor else {})
            )
            pins += page["data"]
            cursor = page["next_cursor"]
            if not cursor or not page["data"]:
                return pins

    def balance(self, owner: str) -> int:
        return int(self.get(f"/v1/ledger/balances/{owner}", asset="CNY")["balance"])


def run_pins(base: str, console: Console) -> bool:
    """Run the scenario against ``base``, print what the API says; True if every check holds."""
    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            tenant, issued = tenancy.create_tenant(
                session, "Demo video platform (zanloop demo: pinned likes)", TenantKind.PLATFORM
            )
    finally:
        db.dispose()
    api = Api(base, {"admin": issued.plaintext})
    receiver = Receiver()
    hook_server, hook_url = serve_receiver(receiver)
    try:
        _keys(api)
        endpoint = api.ok(
            "platform",
            "POST",
            "/v1/webhooks/endpoints",
            {"url": hook_url, "event_types": ["pin.activated"]},
        )
        receiver.secret = endpoint["secret"]
        _register(api)
        scenario = _buy(api)
        _pay(api, scenario)
        _moderate(api, scenario)
        _wait_until_settled(api, scenario, receiver)
        return _report(api, console, tenant.id, scenario, receiver)
    finally:
        api.client.close()
        hook_server.shutdown()


def _keys(api: Api) -> None:
    def issue(name: str, scope: str, creator_id: str | None = None) -> str:
        body: dict[str, Any] = {"name": name, "scopes": [scope]}
        if creator_id is not None:
            body["creator_id"] = creator_id  # a creator key acts for its own creator only
        created = api.ok("admin", "POST", "/v1/api-keys", body)
        return str(created["key"])

    api.keys["platform"] = issue("platform backend", "merchant")
    api.keys["app"] = issue("mini-program", "app")
    api.keys["analyst"] = issue("risk analyst", "analyst")
    for creator_id, *_ in CREATORS:
        api.keys[creator_id] = issue(f"{creator_id} studio", "creator", creator_id)


def _register(api: Api) -> None:
    for creator_id, name, programmes, policy in CREATORS:
        creator = {"name": name, "programmes": programmes, "policy": policy}
        api.ok("platform", "PUT", f"/v1/creators/{creator_id}", creator)
    for content_id, creator_id, kind, title, completion, engagement in CONTENTS:
        body: dict[str, Any] = {
            "creator_id": creator_id,
            "kind": kind,
            "title": title,
            "completion_rate": completion,
            "engagement_rate": engagement,
        }
        api.ok("platform", "PUT", f"/v1/contents/{content_id}", body)
    for n, viewer in enumerate(VIEWERS, start=1):
        api.ok(
            "app",
            "PUT",
            f"/v1/bindings/{viewer}",
            {"openid": f"o_demo_viewer_{n:02d}", "real_name_verified": True},
        )


def _pin_body(viewer: int, content: str, amount_fen: int, message: str) -> dict[str, Any]:
    return {
        "content_id": content,
        "buyer_id": VIEWERS[viewer - 1],
        "amount_fen": amount_fen,
        "message": message,
        "device_id": device(viewer),
        "ip": ip(viewer),
        "region": region(viewer),
    }


def _buy(api: Api) -> Scenario:
    scenario = Scenario()
    for purchase in PURCHASES:
        scenario.bought[purchase] = api.ok("app", "POST", "/v1/pins", _pin_body(*purchase))
    for viewer, content, amount, message in REFUSED:
        response = api.call("app", "POST", "/v1/pins", _pin_body(viewer, content, amount, message))
        problem = response.json()
        scenario.refused.append((content, response.status_code, problem.get("detail", "")))
    # One device sends pin after pin until risk control stops it (403 risk-blocked).
    for attempt in range(12):
        response = api.call(
            "app", "POST", "/v1/pins", _pin_body(BURST, "live-kitchen", 10, f"+{attempt}")
        )
        if response.status_code == 403:
            scenario.burst_block = response.json()
            break
        response.raise_for_status()
        scenario.burst_accepted.append(response.json())
    return scenario


def _pay(api: Api, scenario: Scenario) -> None:
    """The viewers pay in the sandbox, except the one who walks away and the burst."""
    for (viewer, *_), bought in scenario.bought.items():
        if viewer != WALKS_AWAY:
            api.ok("app", "POST", f"/v1/sandbox/orders/{bought['payment']['out_trade_no']}/pay")
    # The app gives up on the burst's orders: closed unpaid, their pins are cancelled.
    for bought in scenario.burst_accepted:
        api.ok("platform", "POST", f"/v1/payments/orders/{bought['payment']['order_id']}/close")


def _status(api: Api, pin_id: str) -> str:
    return str(api.get(f"/v1/pins/{pin_id}")["status"])


def _moderate(api: Api, scenario: Scenario) -> None:
    """Once the paid pins are live, the creator takes one down and the platform another."""
    paid = [b["pin"]["id"] for (v, *_), b in scenario.bought.items() if v != WALKS_AWAY]
    wait_for(lambda: all(_status(api, p) == "ACTIVE" for p in paid))
    off_topic = scenario.pin_of(*CREATOR_REMOVES)
    api.ok(  # with the creator's own key: refunded
        off_topic["creator_id"],
        "POST",
        f"/v1/pins/{off_topic['id']}/remove",
        {"reason": "off-topic"},
    )
    advert = scenario.pin_of(*PLATFORM_REMOVES)
    api.ok(  # by the platform, for breaking the rules: not refunded
        "platform",
        "POST",
        f"/v1/pins/{advert['id']}/remove",
        {"reason": "advertising", "violation": True},
    )
    scenario.removed = [off_topic["id"], advert["id"]]


def _wait_until_settled(api: Api, scenario: Scenario, receiver: Receiver) -> None:
    paid = sum(1 for v, *_ in scenario.bought if v != WALKS_AWAY)
    refunded = scenario.pin_of(*CREATOR_REMOVES)["id"]
    burst = [b["pin"]["id"] for b in scenario.burst_accepted]

    def done() -> bool:
        return (
            _status(api, refunded) == "REFUNDED"
            and all(_status(api, p) == "CANCELLED" for p in burst)
            and receiver.verified >= paid
            and api.balance("pins:sales") == 0
        )

    wait_for(done)


# The report: every figure read back from the API ---------------------------------------------


def _report(
    api: Api,
    console: Console,
    tenant_id: str,
    scenario: Scenario,
    receiver: Receiver,
) -> bool:
    console.print()
    console.rule(f"paid pinned likes (置顶赞) — platform tenant {tenant_id}")
    _print_contents(api, console)
    _print_outcomes(api, console, scenario)
    everything: list[dict[str, Any]] = []
    for creator_id, *_ in CREATORS:
        received = api.all_pins(f"/v1/creators/{creator_id}/pins", role=creator_id)
        everything += received
        if received:
            _print_creator(api, console, creator_id, received, receiver)
    return _checks(api, console, everything, receiver)


def _print_contents(api: Api, console: Console) -> None:
    table = Table(title="content and whether it accepts pins (GET /v1/contents/{id})")
    for column in ("content", "kind", "creator", "quality", "paid pins"):
        table.add_column(column, no_wrap=column != "paid pins")
    for content_id, *_ in CONTENTS:
        c = api.get(f"/v1/contents/{content_id}")
        terms = c["terms"]
        table.add_row(
            c["id"],
            c["kind"],
            c["creator_id"],
            str(c["quality_score"]),
            f"yes: {terms['mode']}, {terms['slots']} slots, "
            f"from {format_fen(terms['min_amount_fen'])}"
            if c["accepts_pins"]
            else f"no: {c['eligibility']}",
        )
    console.print(table)


def _print_outcomes(api: Api, console: Console, scenario: Scenario) -> None:
    """The refusals, the burst, the removals and the unpaid pin, each as the API has it now."""
    for content_id, status, detail in scenario.refused:
        console.print(f"  a pin on {content_id}: {status} {detail}")
    block = scenario.burst_block
    decision = api.get(f"/v1/risk/decisions/{block['decision_id']}", role="analyst")
    burst = Counter(_status(api, b["pin"]["id"]) for b in scenario.burst_accepted)
    console.print(
        f"  {VIEWERS[BURST - 1]}'s device {device(BURST)} bursts: {sum(burst.values())} pins "
        f"opened ({', '.join(f'{s} {n}' for s, n in burst.items())}: closed unpaid), then "
        f"{block['status']} {block['title']}: {decision['verdict']} "
        + "; ".join(f"{r['rule_id']} ({r['message']})" for r in decision["reasons"])
    )
    for pin_id in [*scenario.removed, scenario.pin_of(WALKS_AWAY, "video-tide")["id"]]:
        pin = api.get(f"/v1/pins/{pin_id}")
        how = (
            f"removed by the {pin['removed_by']} ({pin['end_reason']})"
            if pin["removed_by"]
            else "never paid"
        )
        console.print(
            f"  {pin['buyer_id']}'s {format_fen(pin['amount_fen'])} pin “{pin['message']}”: "
            f"{how}, now {pin['status']}"
        )


def _print_creator(
    api: Api,
    console: Console,
    creator_id: str,
    received: list[dict[str, Any]],
    receiver: Receiver,
) -> None:
    creator = api.get(f"/v1/creators/{creator_id}")
    by_content = Counter[str]()
    for pin in received:
        if pin["status"] in PAID_STATES:
            by_content[pin["content_id"]] += pin["amount_fen"]
    top = by_content.most_common(1)[0][0]
    listed = api.get(f"/v1/contents/{top}/pins")
    table = Table(
        title=f"{creator['name']} ({creator_id}) — pinned on {top} "
        f"({listed['slots']} slots, display order)"
    )
    for column in ("#", "place", "buyer", "amount", "message", "shown"):
        table.add_column(column, justify="right" if column in ("#", "amount") else "left")
    rows = [("pinned", e) for e in listed["pinned"]] + [("queued", e) for e in listed["queued"]]
    for n, (place, e) in enumerate(rows, start=1):
        until = f"until {e['expires_at'][11:19]} UTC" if e["expires_at"] else "until removed"
        table.add_row(
            str(n), place, e["buyer_id"], format_fen(e["amount_fen"]), e["message"], until
        )
    console.print(table)

    a = api.get(f"/v1/creators/{creator_id}/analytics", role=creator_id)
    figures = Table(title=f"{creator['name']} — received pins, analytics and ledger")
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    statuses = Counter(p["status"] for p in received)
    figures.add_row(
        "received, by status",
        ", ".join(f"{statuses[s]} {s}" for s in STATUSES if statuses[s]),
    )
    activated = sum(1 for e in receiver.events if e["data"]["creator_id"] == creator_id)
    figures.add_row("pin.activated webhooks", str(activated))
    figures.add_section()
    figures.add_row("paid pins", str(a["pins"]))
    figures.add_row("supporters", str(a["supporters"]))
    figures.add_row("gross", format_fen(a["gross_fen"]))
    figures.add_row("refunded", format_fen(a["refunded_fen"]))
    figures.add_row("creator earnings", format_fen(a["creator_earnings_fen"]))
    for day in a["daily"]:
        figures.add_row(
            f"  day {day['day']}", f"{day['pins']} pins, {format_fen(day['amount_fen'])}"
        )
    figures.add_section()
    for band in a["regions"]:
        figures.add_row(f"region {band['name']}", _band(band))
    figures.add_section()
    for band in a["spend_bands"]:
        figures.add_row(f"spend {band['name']}", _band(band))
    figures.add_section()
    for s in a["top_supporters"]:
        figures.add_row(
            f"top supporter {s['buyer_id']}", f"{s['pins']} pins, {format_fen(s['amount_fen'])}"
        )
    figures.add_section()
    figures.add_row(
        f"ledger creator:{creator_id}", format_fen(api.balance(f"creator:{creator_id}"))
    )
    console.print(figures)


def _band(band: dict[str, Any]) -> str:
    n = band["supporters"]
    return f"{n} supporter{'' if n == 1 else 's'}, {format_fen(band['amount_fen'])}"


def _checks(api: Api, console: Console, pins: list[dict[str, Any]], receiver: Receiver) -> bool:
    sales = api.balance("pins:sales")
    platform = api.balance("platform:pins")
    paid = {p["id"] for p in pins if p["status"] in PAID_STATES}
    kept = [p for p in pins if p["status"] in PAID_STATES - {"REFUNDED"}]
    activated = Counter(e["data"]["pin_id"] for e in receiver.events)
    live_once = set(activated) == paid and all(n == 1 for n in activated.values())
    fees_kept = platform == sum(p["platform_fen"] for p in kept)
    shown = Counter(
        e["pin_id"]
        for content_id, *_ in CONTENTS
        for listed in [api.get(f"/v1/contents/{content_id}/pins")]
        for e in listed["pinned"] + listed["queued"]
    )
    active = {p["id"] for p in pins if p["status"] == "ACTIVE"}
    lists_right = set(shown) == active and all(n == 1 for n in shown.values())
    earnings = all(
        api.balance(f"creator:{c}") == sum(p["creator_fen"] for p in kept if p["creator_id"] == c)
        for c, *_ in CREATORS
    )
    ledger = Table(title="platform ledger")
    ledger.add_column("account")
    ledger.add_column("balance", justify="right")
    ledger.add_row("platform:pins (fees)", format_fen(platform))
    ledger.add_row("pins:sales", format_fen(sales))
    console.print(ledger)
    checks = [
        (f"pins:sales = {format_fen(sales)}", sales == 0),
        (
            f"every paid pin live once ({len(paid)} paid, {receiver.verified} pin.activated)",
            live_once,
        ),
        ("pinned lists show the active pins only", lists_right),
        ("creator:<id> = kept shares", earnings),
        ("platform:pins = kept fees", fees_kept),
        ("webhook signatures", receiver.rejected == 0),
    ]
    console.print(
        "pins check: "
        + "; ".join(
            f"{what} " + ("[green]OK[/green]" if ok else "[red]FAILED[/red]") for what, ok in checks
        )
    )
    return all(ok for _, ok in checks)
