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
metrics, and checks them against what the day implies. Every figure is read back from the API
(``demo_campaigns_report``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
from rich.console import Console

from zanloop.config import get_settings
from zanloop.db import Database
from zanloop.demo import Receiver, serve_receiver, wait_for
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
    from zanloop.demo_campaigns_report import read_back, report  # it imports this module

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
        r = read_back(api, setup, day)
        reversed_ = sum(r.metrics[c]["rewards_reversed"] for c in setup.campaigns())
        wait_for(  # until the signed webhooks have announced every prompt and reversal
            lambda: (
                receiver.types.get("campaign.prompt.created", 0)
                >= r.metrics[setup.prompt]["prompts"]
                and receiver.types.get("campaign.reward.reversed", 0) >= reversed_
            ),
            seconds=30,
        )
        return report(api, console, tenant.id, setup, day, r, receiver)
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
    wait_for(lambda: all(read_order(api, p)["status"] == "SUCCESS" for p in paid))
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


def read_order(api: Api, paid: Paid) -> dict[str, Any]:
    order: dict[str, Any] = api.get(f"/v1/payments/orders/{paid.order['id']}")
    return order


def find_paid(day: list[Paid], buyer: int, what: str) -> Paid:
    return next(p for p in day if (p.visit.buyer, p.visit.what) == (buyer, what))


def _refund(api: Api, day: list[Paid]) -> None:
    """The evening's refunds, until settled (their notifications reverse the rewards)."""
    refunds = []
    for buyer, what, amount_fen, reason in REFUNDS:
        order_id = find_paid(day, buyer, what).order["id"]
        body = {"reason": reason} | ({} if amount_fen is None else {"amount_fen": amount_fen})
        refunds.append(
            api.call("merchant", "POST", f"/v1/payments/orders/{order_id}/refunds", body)
        )
    wait_for(
        lambda: all(
            api.get(f"/v1/payments/refunds/{x['id']}")["status"] == "SUCCESS" for x in refunds
        )
    )
