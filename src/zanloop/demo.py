"""``zanloop demo``: a simulated day for a coffee shop, driven through the real HTTP API.

It creates a tenant, registers a webhook receiver that verifies every signature with the
Standard Webhooks library, places orders, lets sandbox buyers pay (or fail, or walk away),
refunds a few, waits for the sandbox's signed notifications to settle everything, and prints
what the ledger and the webhook log say. Every figure it prints is read back from the API.
Then ``demo_pins`` runs the paid-pinned-likes scenario on a platform tenant of its own, and
``demo_campaigns`` a coffee chain's campaigns (pay 50 CNY → like → 5 CNY coupon; 5 likes → free
coffee) on a merchant tenant of its own, and ``demo_loyalty`` a month of a coffee club's points
programme (earning, a tier upgrade, a streak, expiry, a redemption, a refund's claw-back) on
another. The command exits non-zero if any check fails.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2 as httpx
import uvicorn
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from zanloop import migrate
from zanloop.config import get_settings
from zanloop.db import Database
from zanloop.kit.money import format_fen
from zanloop.ops.logging import configure as configure_logging
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import TenantKind

BUYERS = [f"o_demo_buyer_{i:02d}" for i in range(12)]
MENU = [
    ("Americano", 1800),
    ("Latte", 2600),
    ("Flat white", 2800),
    ("Mocha", 3200),
    ("Beans 250 g", 8800),
]


@dataclass
class Receiver:
    """A merchant's webhook endpoint: counts deliveries whose signatures verify."""

    secret: str = ""
    verified: int = 0
    rejected: int = 0
    types: dict[str, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, body: bytes, headers: dict[str, str]) -> int:
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            with self.lock:
                self.rejected += 1
            return 400
        with self.lock:
            self.verified += 1
            self.types[payload["type"]] = self.types.get(payload["type"], 0) + 1
            self.events.append(payload)
        return 204


def serve_receiver(receiver: Receiver) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(receiver.handle(body, {k: v for k, v in self.headers.items()}))
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hooks"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(console: Console) -> str:
    from zanloop.app import create_app

    settings = get_settings().model_copy()
    settings.port = _free_port()
    settings.public_url = None
    # The demo compresses the sandbox's day-long retry schedule and refund delay.
    settings.sandbox_retry_scale = 0.01
    settings.reconcile_after_seconds = 5
    migrate.upgrade(settings.database_url)
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_config=None, access_log=False)
    )
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{settings.port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    console.print(f"[dim]started zanloop on {base} ({settings.database_url})[/dim]")
    return base


def run(
    orders: int = 40,
    url: str | None = None,
    seed: int = 7,
    pins: bool = True,
    campaigns: bool = True,
    loyalty: bool = True,
) -> dict[str, int]:
    """The coffee shop's day, then (with ``pins``) the pinned-likes scenario of ``demo_pins``,
    (with ``campaigns``) the merchant-campaign scenario of ``demo_campaigns`` and (with
    ``loyalty``) the points-programme month of ``demo_loyalty``.

    Raises ``SystemExit(1)`` after printing if a check fails, so ``zanloop demo`` exits non-zero.
    """
    from zanloop.demo_campaigns import run_campaigns  # they build on this module's receiver
    from zanloop.demo_loyalty import run_loyalty
    from zanloop.demo_pins import run_pins

    configure_logging("WARNING", json=False)
    console = Console()
    rng = random.Random(seed)
    base = url.rstrip("/") if url else _start_server(console)
    with Database(get_settings().database_url).session() as session:
        tenant, issued = tenancy.create_tenant(
            session, "Demo coffee (zanloop demo)", TenantKind.MERCHANT
        )
    auth = {"Authorization": f"Bearer {issued.plaintext}"}
    receiver = Receiver()
    hook_server, hook_url = serve_receiver(receiver)
    api = httpx.Client(base_url=base, headers=auth, timeout=30)
    try:
        endpoint = api.post("/v1/webhooks/endpoints", json={"url": hook_url, "event_types": []})
        endpoint.raise_for_status()
        receiver.secret = endpoint.json()["secret"]
        paid, failed, abandoned = _a_day_of_orders(api, rng, orders)
        refunds = _some_refunds(api, rng, paid)
        # One webhook per paid, failed, closed and refunded order.
        _wait_until_settled(api, refunds, receiver, len(paid) + failed + abandoned + len(refunds))
        summary = _summary(api, orders, paid, failed, abandoned, refunds, receiver)
    finally:
        api.close()
        hook_server.shutdown()
    ok = _print(console, tenant.id, summary)
    if pins:
        ok = run_pins(base, console) and ok
    if campaigns:
        ok = run_campaigns(base, console) and ok
    if loyalty:
        ok = run_loyalty(base, console) and ok
    if not ok:
        raise SystemExit(1)
    return summary


def _a_day_of_orders(
    api: httpx.Client, rng: random.Random, count: int
) -> tuple[list[dict[str, Any]], int, int]:
    paid: list[dict[str, Any]] = []
    failed = abandoned = 0
    with Progress() as progress:
        task = progress.add_task("a day of orders", total=count)
        for i in range(count):
            item, price = rng.choice(MENU)
            quantity = rng.choice([1, 1, 1, 2, 3])
            order = api.post(
                "/v1/payments/orders",
                json={
                    "amount_fen": price * quantity,
                    "description": f"{quantity} x {item}",
                    "payer_openid": rng.choice(BUYERS),
                    "attach": json.dumps({"store": rng.choice(["Xuhui", "Jing'an"])}),
                },
                headers={"Idempotency-Key": f"demo-order-{i}-{rng.random()}"},
            )
            order.raise_for_status()
            created = order.json()
            roll = rng.random()
            if roll < 0.82:
                api.post(f"/v1/sandbox/orders/{created['out_trade_no']}/pay").raise_for_status()
                paid.append(created)
            elif roll < 0.90:
                api.post(f"/v1/sandbox/orders/{created['out_trade_no']}/fail").raise_for_status()
                api.post(f"/v1/payments/orders/{created['id']}/sync").raise_for_status()
                failed += 1
            else:
                api.post(f"/v1/payments/orders/{created['id']}/close").raise_for_status()
                abandoned += 1
            progress.advance(task)
    return paid, failed, abandoned


def wait_for(check: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not check():
        time.sleep(0.2)


def _some_refunds(
    api: httpx.Client, rng: random.Random, paid: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    def settled() -> bool:
        return all(
            api.get(f"/v1/payments/orders/{o['id']}").json()["status"] == "SUCCESS" for o in paid
        )

    wait_for(settled)
    refunds = []
    for order in rng.sample(paid, k=max(1, len(paid) // 7)):
        partial = rng.random() < 0.5
        body = (
            {"amount_fen": order["amount_fen"] // 2, "reason": "one cup spilled"} if partial else {}
        )
        response = api.post(
            f"/v1/payments/orders/{order['id']}/refunds",
            json=body,
            headers={"Idempotency-Key": f"demo-refund-{order['id']}"},
        )
        response.raise_for_status()
        refunds.append(response.json())
    return refunds


def _wait_until_settled(
    api: httpx.Client, refunds: list[dict[str, Any]], receiver: Receiver, expected_webhooks: int
) -> None:
    def done() -> bool:
        states = [api.get(f"/v1/payments/refunds/{r['id']}").json()["status"] for r in refunds]
        return all(s == "SUCCESS" for s in states) and receiver.verified >= expected_webhooks

    wait_for(done)


def _summary(
    api: httpx.Client,
    orders: int,
    paid: list[dict[str, Any]],
    failed: int,
    abandoned: int,
    refunds: list[dict[str, Any]],
    receiver: Receiver,
) -> dict[str, int]:
    balance = api.get("/v1/ledger/balances/merchant", params={"asset": "CNY"}).json()
    clearing = api.get("/v1/ledger/balances/provider:sandbox", params={"asset": "CNY"}).json()
    deliveries = api.get(
        "/v1/webhooks/deliveries", params={"status": "SUCCEEDED", "limit": 200}
    ).json()
    return {
        "orders": orders,
        "paid": len(paid),
        "failed": failed,
        "closed": abandoned,
        "refunds": len(refunds),
        "paid_fen": sum(o["amount_fen"] for o in paid),
        "refunded_fen": sum(r["amount_fen"] for r in refunds),
        "merchant_balance_fen": balance["balance"],
        "clearing_balance_fen": clearing["balance"],
        "webhooks_verified": receiver.verified,
        "webhooks_rejected": receiver.rejected,
        "deliveries_succeeded": len(deliveries["data"]),
    }


def _print(console: Console, tenant_id: str, s: dict[str, int]) -> bool:
    table = Table(title=f"zanloop demo — tenant {tenant_id}")
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("orders placed", str(s["orders"])),
        ("paid (verified notifications)", str(s["paid"])),
        ("payment failed", str(s["failed"])),
        ("closed unpaid", str(s["closed"])),
        ("refunds", str(s["refunds"])),
        ("taken", format_fen(s["paid_fen"])),
        ("refunded", format_fen(s["refunded_fen"])),
        ("ledger: merchant balance", format_fen(s["merchant_balance_fen"])),
        ("ledger: sandbox clearing", format_fen(s["clearing_balance_fen"])),
        ("webhooks received and verified", str(s["webhooks_verified"])),
        ("webhooks with bad signatures", str(s["webhooks_rejected"])),
    ]
    for what, value in rows:
        table.add_row(what, value)
    console.print(table)
    balanced = s["merchant_balance_fen"] == s["paid_fen"] - s["refunded_fen"]
    zero_sum = s["merchant_balance_fen"] + s["clearing_balance_fen"] == 0
    console.print(
        "ledger check: merchant = taken − refunded "
        + ("[green]OK[/green]" if balanced else "[red]MISMATCH[/red]")
        + "; merchant + clearing = 0 "
        + ("[green]OK[/green]" if zero_sum else "[red]MISMATCH[/red]")
    )
    return balanced and zero_sum and s["webhooks_rejected"] == 0
