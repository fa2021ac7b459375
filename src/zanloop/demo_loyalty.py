"""The points-programme part of ``zanloop demo``: a month of a coffee chain's members, driven
through the real HTTP API.

A merchant tenant of its own sets its programme (a 3-day refund window, points that expire a
month after they become available with a week's notice, a silver tier at 1,000 points), installs
the seed article's rules and tasks with a partner store, and gives one member a birthday inside
the month. A month of events ending now follows: the tills and the app send what five members
did (payments, shares, reading, a week of check-ins, an invitation) in one batch, as a POS
would, and three members pay today in the sandbox (the programme hears ``payment.succeeded``).

Then the demo runs the programme's scheduled jobs on its database (pending points mature, old
points expire, members are told what expires soon), a member redeems a coupon (hold, then
confirm), and a refund of a sandbox payment claws back its points, the achievement it completed
and the tier upgrade it caused. A webhook receiver verifies the signed ``loyalty.*`` events.
Every figure is read back from the API and checked (``demo_loyalty_report``).
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx2 as httpx
from rich.console import Console

from zanloop.config import get_settings
from zanloop.db import Database
from zanloop.demo import Receiver, serve_receiver, wait_for
from zanloop.loyalty import service as loyalty_jobs
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import TenantKind

TZ = ZoneInfo("Asia/Shanghai")
PARTNER = "mall-2"  # the partner store: payments there earn double
STORE = "xuhui"
REFUND_WINDOW_DAYS = 3
SILVER = 1000
PROGRAMME: dict[str, Any] = {
    "point_value_fen": "1",
    "timezone": "Asia/Shanghai",
    "refund_window_days": REFUND_WINDOW_DAYS,
    "expiry": {"policy": "rolling", "months": 1, "notice_days": 7},
    "tiers": [
        {"name": "normal", "threshold": 0, "multiplier": "1.0"},
        {"name": "silver", "threshold": SILVER, "multiplier": "1.2"},
        {"name": "gold", "threshold": 5000, "multiplier": "1.5"},
    ],
    "tier_basis": "points",
    "tier_window_days": 365,
    "downgrade": "one_step",
}
MEMBERS = ["mei", "jun", "lan", "hao", "yu"]
BIRTHDAY = ("jun", 12)  # the member, and how many days ago their birthday was
# Hao's last till payment was three days ago, to within seconds: its refund window closes while
# the demo runs, and the maturing job makes its points available.
CLOSES_IN_SECONDS = 2.0
COUPON: dict[str, Any] = {
    "name": "10 CNY off your next order",
    "kind": "FIXED",
    "amount_fen": 1000,
    "valid_days": 30,
}
PRICE_POINTS = 800
REDEEMER = "jun"


@dataclass(frozen=True)
class Act:
    """One thing a member did, as the tills or the app report it, and the points the rules
    should give it (the event's own points; a task reward it completes is a lot of its own)."""

    member: str
    days_ago: int
    at: str  # local time of day
    type: str
    expect: int
    amount_fen: int = 0
    store: str | None = None
    value: int = 0
    friend: str | None = None
    why: str = ""
    closing: bool = False  # occurred a refund window ago, to within seconds (see above)

    @property
    def till(self) -> bool:
        return self.type == "payment.succeeded"


def _pay(member: str, days_ago: int, at: str, fen: int, store: str, expect: int, why: str) -> Act:
    return Act(member, days_ago, at, "payment.succeeded", expect, fen, store, why=why)


def _checkins() -> list[Act]:
    return [
        Act("mei", d, "08:05", "store.checkin", 5, store=PARTNER, why=f"check-in {7 - d + 3} of 7")
        for d in range(9, 2, -1)
    ]


# The month, oldest first. Points a month old have expired by now: what became available 33 or
# more days ago expires before today, whatever the months' lengths.
MONTH: list[Act] = [
    Act("mei", 34, "09:10", "share.created", 5, why="daily share"),
    Act("mei", 34, "21:40", "article.read", 15, value=100, why="a whole article"),
    Act("mei", 33, "20:05", "comment.created", 2, why="comment"),
    Act("mei", 33, "20:30", "video.completed", 20, why="watched to the end"),
    _pay("jun", 30, "12:30", 12800, STORE, 178, "128 + 50 for 100 CNY or more"),
    Act("jun", 25, "18:00", "share.created", 5, why="daily share"),
    _pay("jun", 22, "13:10", 25600, PARTNER, 612, "(256 + 50) × 2 at the partner store"),
    *[
        Act("hao", 20, f"07:{50 + i}", "like.created", 2 if i < 5 else 0, why=f"like {i + 1}")
        for i in range(6)
    ],
    Act("mei", 15, "19:00", "invite.accepted", 20, friend="lan", why="lan joined: 20 each"),
    Act("lan", 14, "21:00", "article.read", 15, value=100, why="a whole article"),
    Act("lan", 14, "21:20", "article.read", 0, value=60, why="60 % of an article"),
    _pay("jun", 12, "19:30", 16800, STORE, 436, "(168 + 50) × 2 on his birthday"),
    Act("lan", 10, "20:00", "video.watched", 10, value=45, why="45 seconds watched"),
    Act("lan", 10, "20:05", "video.completed", 20, why="watched to the end"),
    *_checkins(),
    _pay("lan", 8, "12:00", 4500, PARTNER, 90, "45 × 2 at the partner store"),
    _pay("yu", 7, "18:30", 15000, STORE, 200, "150 + 50"),
    _pay("jun", 6, "08:40", 8800, STORE, 105, "88 × 1.2 (silver), rounded down"),
    Act("jun", 5, "18:00", "share.created", 6, why="5 × 1.2 (silver)"),
    _pay("jun", 2, "12:10", 5800, STORE, 69, "58 × 1.2"),
    Act(
        "hao",
        REFUND_WINDOW_DAYS,
        "",
        "payment.succeeded",
        66,
        6600,
        STORE,
        why="its refund window closes during the demo",
        closing=True,
    ),
]


@dataclass(frozen=True)
class SandboxPay:
    member: str
    what: str
    amount_fen: int
    store: str
    expect: int


# Today, paid through zanloop's sandbox: the programme hears payment.succeeded.
TODAY = [
    SandboxPay("mei", "Gift set", 38800, PARTNER, 876),  # (388 + 50) × 2; refunded later
    SandboxPay("lan", "2 lattes", 3600, STORE, 36),
    SandboxPay("yu", "Beans 250 g", 5200, STORE, 52),
]
REFUNDED = "mei"


def event_id(index: int, act: Act) -> str:
    return f"{'pos' if act.till else 'app'}-{act.member}-{index:03d}"


def occurred(act: Act, now: datetime, sent: datetime) -> datetime:
    """When the act happened: a local time ``days_ago`` days before ``now``'s local day (the
    closing payment: a refund window before ``sent``, the batch's sending, to within seconds)."""
    if act.closing:
        return sent - timedelta(days=REFUND_WINDOW_DAYS) + timedelta(seconds=CLOSES_IN_SECONDS)
    hour, minute = (int(x) for x in act.at.split(":"))
    today = now.astimezone(TZ).date()
    return datetime.combine(today - timedelta(days=act.days_ago), time(hour, minute), TZ)


class Api:
    """One HTTP client, a key per role: the back office and tills ("merchant"), the members'
    app ("app")."""

    def __init__(self, base: str, admin_key: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)
        self.keys = {"admin": admin_key}
        self.writes = 0

    def call(self, role: str, method: str, path: str, body: Any = None) -> Any:
        self.writes += 1
        headers = {
            "Authorization": f"Bearer {self.keys[role]}",
            "Idempotency-Key": f"demo-loyalty-{self.writes}",
        }
        response = self.client.request(method, path, json=body, headers=headers)
        response.raise_for_status()
        return response.json() if response.content else None

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


@dataclass
class Story:
    """What happened, as the API answered at each step; the report prints and checks it."""

    tenant_id: str
    now: datetime  # when the month ends: the demo's start
    sent: datetime | None = None  # when the month's batch was sent
    labels: dict[str, str] = field(default_factory=dict)  # lot ref -> what earned it
    rules: int = 0
    tasks: dict[str, str] = field(default_factory=dict)  # task id -> name
    expiry_rule: str = ""
    batch: dict[str, Any] = field(default_factory=dict)
    replay: dict[str, Any] = field(default_factory=dict)
    after_replay: dict[str, dict[str, Any]] = field(default_factory=dict)  # member -> balance
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # member -> sandbox order
    after_month: dict[str, dict[str, Any]] = field(default_factory=dict)  # member -> account
    tier_history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    mei_tasks: list[dict[str, Any]] = field(default_factory=list)
    hao_lot: dict[str, Any] = field(default_factory=dict)  # the lot that matured
    before_redeem: dict[str, Any] = field(default_factory=dict)
    held: dict[str, Any] = field(default_factory=dict)
    held_lots: list[dict[str, Any]] = field(default_factory=list)
    confirmed: dict[str, Any] = field(default_factory=dict)
    wallet: list[dict[str, Any]] = field(default_factory=list)
    before_refund: dict[str, Any] = field(default_factory=dict)
    refund: dict[str, Any] = field(default_factory=dict)
    after_refund: dict[str, Any] = field(default_factory=dict)
    tiers_after_refund: list[dict[str, Any]] = field(default_factory=list)
    # Read back once everything is over.
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    lots: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ledger: dict[str, int] = field(default_factory=dict)  # POINTS account -> balance
    economics: dict[str, Any] = field(default_factory=dict)
    after_tasks: list[dict[str, Any]] = field(default_factory=list)


def run_loyalty(base: str, console: Console) -> bool:
    """Run the scenario against ``base``, print what the API says; True if every check holds."""
    from zanloop.demo_loyalty_report import report  # it imports this module

    started = clock.monotonic()
    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            tenant, issued = tenancy.create_tenant(
                session, "Demo coffee club (zanloop demo: loyalty)", TenantKind.MERCHANT
            )
        api = Api(base, issued.plaintext)
        receiver = Receiver()
        hook_server, hook_url = serve_receiver(receiver)
        try:
            story = Story(tenant.id, datetime.now(UTC))
            _set_up(api, story, hook_url, receiver)
            _month(api, story)
            _today(api, story)
            _jobs(api, story, db)
            _redeem(api, story)
            _refund(api, story)
            _read_back(api, story)
            wait_for(lambda: _webhooks_in(story, receiver), seconds=30)
            return report(console, story, receiver, clock.monotonic() - started)
        finally:
            api.client.close()
            hook_server.shutdown()
    finally:
        db.dispose()


def _set_up(api: Api, story: Story, hook_url: str, receiver: Receiver) -> None:
    for role, scope in (("merchant", "merchant"), ("app", "app")):
        key = api.call("admin", "POST", "/v1/api-keys", {"name": role, "scopes": [scope]})
        api.keys[role] = str(key["key"])
    endpoint = api.call(
        "merchant",
        "POST",
        "/v1/webhooks/endpoints",
        {"url": hook_url, "event_types": ["loyalty.*"]},
    )
    receiver.secret = endpoint["secret"]
    story.expiry_rule = api.call("merchant", "PUT", "/v1/loyalty/programme", PROGRAMME)[
        "expiry_rule"
    ]
    defaults = api.call(
        "merchant", "POST", "/v1/loyalty/defaults", {"activate": True, "partner_stores": [PARTNER]}
    )
    story.rules = len(defaults["rules"])
    story.tasks = {t["id"]: t["name"] for t in defaults["tasks"]}
    for task_id, name in story.tasks.items():
        story.labels[f"task:{task_id}:1"] = f"task: {name}"
    member, days_ago = BIRTHDAY
    birthday = (story.now.astimezone(TZ).date() - timedelta(days=days_ago)).strftime("%m-%d")
    api.call("merchant", "PUT", f"/v1/loyalty/members/{member}", {"birthday": birthday})


def _month(api: Api, story: Story) -> None:
    """The month's events from the tills and the app, in one batch (then sent again, as a
    till that lost the answer would: nothing changes)."""
    events = []
    story.sent = datetime.now(UTC)
    for index, act in enumerate(MONTH):
        eid = event_id(index, act)
        event: dict[str, Any] = {
            "event_id": eid,
            "type": act.type,
            "user_id": act.member,
            "occurred_at": occurred(act, story.now, story.sent).isoformat(),
        }
        if act.till:
            event |= {"amount_fen": act.amount_fen, "order_id": f"till-{eid}"}
        if act.store:
            event["store_id"] = act.store
        if act.value:
            event["value"] = act.value
        if act.friend:
            event["counterparty_id"] = act.friend
            story.labels[f"event:{eid}:counterparty"] = f"{act.member} invited them"
        events.append(event)
        story.labels[f"event:{eid}"] = _label(act)
    story.batch = api.call("merchant", "POST", "/v1/loyalty/events/batch", {"events": events})
    story.replay = api.call("merchant", "POST", "/v1/loyalty/events/batch", {"events": events})
    story.after_replay = {m: api.get(f"/v1/loyalty/members/{m}/balance", "app") for m in MEMBERS}


def _label(act: Act) -> str:
    what = act.type.split(".")[0]
    if act.till:
        what = f"paid {act.amount_fen // 100} CNY at {act.store}"
    elif act.type == "store.checkin":
        what = "check-in"
    elif act.type == "invite.accepted":
        what = f"invited {act.friend}"
    elif act.type.startswith("video"):
        what = act.type.replace(".", " ")
    return what


def _today(api: Api, story: Story) -> None:
    """Today's payments through the sandbox: the buyers pay, its signed notifications settle
    the orders, and the programme hears payment.succeeded."""
    for pay in TODAY:
        order = api.call(
            "merchant",
            "POST",
            "/v1/payments/orders",
            {
                "amount_fen": pay.amount_fen,
                "description": pay.what,
                "payer_openid": f"o_demo_member_{pay.member}",
                "metadata": {"user_id": pay.member, "store_id": pay.store},
            },
        )
        api.call("app", "POST", f"/v1/sandbox/orders/{order['out_trade_no']}/pay")
        story.orders[pay.member] = order
        story.labels[f"event:order:{order['id']}"] = (
            f"paid {pay.amount_fen // 100} CNY at {pay.store} (sandbox)"
        )
    wait_for(
        lambda: all(
            api.get(f"/v1/payments/orders/{o['id']}")["status"] == "SUCCESS"
            for o in story.orders.values()
        )
    )
    for order in story.orders.values():  # read the settled orders
        order |= api.get(f"/v1/payments/orders/{order['id']}")
    story.after_month = {m: api.get(f"/v1/loyalty/members/{m}", "app") for m in MEMBERS}
    story.tier_history = {
        m: api.get(f"/v1/loyalty/members/{m}/tier-history", "app") for m in MEMBERS
    }
    story.mei_tasks = api.get("/v1/loyalty/members/mei/tasks", "app")


def _jobs(api: Api, story: Story, db: Database) -> None:
    """The programme's scheduled jobs, run now on the demo's database (the server's worker runs
    them every minute, the notice hourly): Hao's pending points mature, what is past its expiry
    expires, and members are told what expires within the notice period."""
    assert story.sent is not None
    closes = story.sent + timedelta(seconds=CLOSES_IN_SECONDS)
    clock.sleep(max(0.0, (closes - datetime.now(UTC)).total_seconds() + 0.05))
    with db.session() as session:
        loyalty_jobs.mature_due(session)
    with db.session() as session:
        loyalty_jobs.expire_due(session, tenant_id=story.tenant_id)
    with db.session() as session:
        loyalty_jobs.notify_expiring(session)
    ref = f"event:{event_id(len(MONTH) - 1, MONTH[-1])}"
    story.hao_lot = next(x for x in _lots(api, "hao") if x["ref"] == ref)


def _lots(api: Api, member: str) -> list[dict[str, Any]]:
    return api.every(f"/v1/loyalty/members/{member}/lots", "app")


def _redeem(api: Api, story: Story) -> None:
    """Jun trades points for a coupon in the app: a hold, then a confirmation."""
    template = api.call("merchant", "POST", "/v1/coupon-templates", COUPON)["id"]
    item = api.call(
        "merchant",
        "POST",
        "/v1/loyalty/catalogue",
        {
            "name": COUPON["name"],
            "kind": "COUPON",
            "price_points": PRICE_POINTS,
            "coupon_template_id": template,
            "stock": 100,
            "per_user_limit": 1,
        },
    )
    story.before_redeem = api.get(f"/v1/loyalty/members/{REDEEMER}", "app")
    story.held = api.call(
        "app",
        "POST",
        "/v1/loyalty/redemptions",
        {"user_id": REDEEMER, "item_id": item["id"], "request_no": f"app-{REDEEMER}-redeem-1"},
    )
    story.held_lots = _lots(api, REDEEMER)
    story.confirmed = api.call("app", "POST", f"/v1/loyalty/redemptions/{story.held['id']}/confirm")
    story.wallet = api.every(f"/v1/users/{REDEEMER}/coupons", "app")


def _refund(api: Api, story: Story) -> None:
    """Mei returns today's gift set: the refund goes through /v1/payments, and the programme
    claws back what the payment earned once the sandbox has settled it."""
    order = story.orders[REFUNDED]
    story.before_refund = api.get(f"/v1/loyalty/members/{REFUNDED}", "app")
    story.refund = api.call(
        "merchant",
        "POST",
        f"/v1/payments/orders/{order['id']}/refunds",
        {"reason": "returned the gift set"},
    )
    wait_for(lambda: api.get(f"/v1/payments/refunds/{story.refund['id']}")["status"] == "SUCCESS")
    story.refund = api.get(f"/v1/payments/refunds/{story.refund['id']}")
    story.after_refund = api.get(f"/v1/loyalty/members/{REFUNDED}", "app")
    story.tiers_after_refund = api.get(f"/v1/loyalty/members/{REFUNDED}/tier-history", "app")
    story.after_tasks = api.get(f"/v1/loyalty/members/{REFUNDED}/tasks", "app")


def _read_back(api: Api, story: Story) -> None:
    story.accounts = {m: api.get(f"/v1/loyalty/members/{m}", "app") for m in MEMBERS}
    story.lots = {m: _lots(api, m) for m in MEMBERS}
    story.ledger = {
        a["owner"]: a["balance"] for a in api.every("/v1/ledger/accounts") if a["asset"] == "POINTS"
    }
    story.economics = api.get("/v1/loyalty/economics")


def _webhooks_in(story: Story, receiver: Receiver) -> bool:
    types = receiver.types
    return all(
        types.get(t, 0) >= 1
        for t in (
            "loyalty.points.expired",
            "loyalty.points.expiring",
            "loyalty.points.reversed",
            "loyalty.redemption.held",
            "loyalty.redemption.confirmed",
        )
    )
