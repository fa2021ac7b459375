"""(a) Verified WeChat Pay v3 notifications settled per second through the HTTP API on SQLite.

Setup (untimed): a fresh migrated SQLite file, a tenant, a live API in a child process, N unpaid
orders placed through ``POST /v1/payments/orders``; the sandbox buyer pays each order
(``sandbox.service.pay``), which queues the signed, AES-GCM encrypted TRANSACTION.SUCCESS
notification exactly as WeChat Pay would send it, and ``sandbox.service.signed_delivery`` signs
each body. Timed: those notifications POSTed to ``/v1/payments/notify/{tenant_id}`` from
``CONCURRENCY`` client threads. Checked afterwards: every request answered 204, every order is
SUCCESS, each notification is recorded once, and the merchant's ledger balance equals the sum
of the orders (replayed notifications must change nothing).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from zanloop import migrate
from zanloop.bench.load import Call, LoadResult, run_load
from zanloop.bench.report import Report, ms, percentile, rate
from zanloop.bench.server import COMMAND, ServerProcess
from zanloop.db import Database
from zanloop.kit.money import Asset
from zanloop.ledger import service as ledger
from zanloop.payments import service as payments
from zanloop.payments.domain import clearing_owner
from zanloop.payments.tables import PaymentOrder, ProviderNotification
from zanloop.sandbox import service as sandbox
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import TenantKind

SECTION = "(a)"
CONCURRENCY = 8
TARGET_PER_SECOND = 2_000
TARGET_P99_SECONDS = 0.020
PAYEE = "merchant"


@dataclass(frozen=True)
class NotifySizes:
    """Orders are placed in chunks until ``max_orders``, or until ``setup_seconds`` have passed
    once ``min_orders`` exist: placing an order is far slower than settling one, and the
    run must stay short either way. The first ``warmup`` orders settle untimed."""

    min_orders: int
    max_orders: int
    setup_seconds: float
    warmup: int
    replays: int


@dataclass(frozen=True)
class PlacedOrder:
    id: str
    out_trade_no: str
    amount_fen: int


def amount_for(i: int) -> int:
    return 100 + (i * 37) % 9_900


def run(
    report: Report,
    workdir: Path,
    sizes: NotifySizes,
    *,
    python: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> None:
    """Run (a) into ``report``. ``python`` (another interpreter) and ``extra_env`` change how
    the server starts: benchmarks/profile_sqlite_paths.py adds a profiling hook that way."""
    url = f"sqlite:///{workdir / 'notify.db'}"
    migrate.upgrade(url)
    db = Database(url)
    server = ServerProcess(url, workdir, python=python, extra_env=extra_env)
    server.start()
    try:
        with db.session() as session:
            tenant, issued = tenancy.create_tenant(session, "bench merchant", TenantKind.MERCHANT)
            mchid = payments.get_config(session, tenant.id).mchid
        with server:
            _run(report, db, server, tenant.id, issued.plaintext, mchid, sizes)
    finally:
        server.stop()
        db.dispose()


def _run(
    report: Report,
    db: Database,
    server: ServerProcess,
    tenant_id: str,
    api_key: str,
    mchid: str,
    sizes: NotifySizes,
) -> None:
    orders = _place_orders(report, server, api_key, sizes)
    if not report.check(
        "(a) orders placed through the API",
        len(orders) >= sizes.min_orders,
        f"{len(orders):,} orders",
    ):
        return
    calls = _notifications(db, mchid, tenant_id, orders)
    timed_count = len(calls) - sizes.warmup

    warmup = run_load(server.base_url, calls[: sizes.warmup], CONCURRENCY)
    cpu_before, client_before = server.cpu_seconds(), time.process_time()
    timed = run_load(server.base_url, calls[sizes.warmup :], CONCURRENCY)
    cpu_after, client_after = server.cpu_seconds(), time.process_time()
    replayed = run_load(server.base_url, calls[: sizes.replays], CONCURRENCY)

    latencies = timed.sorted_latencies()
    per_second = timed.count / timed.seconds if timed.seconds else 0.0
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    report.add(
        SECTION,
        f"notifications settled/s, HTTP, SQLite, c={CONCURRENCY}",
        rate(timed.count, timed.seconds),
        f">= {TARGET_PER_SECOND:,}/s",
        per_second >= TARGET_PER_SECOND,
    )
    report.add(SECTION, "latency p50", ms(p50))
    report.add(
        SECTION, "latency p99", ms(p99), f"<= {ms(TARGET_P99_SECONDS)}", p99 <= TARGET_P99_SECONDS
    )
    report.add(SECTION, "latency max", ms(latencies[-1] if latencies else float("nan")))
    if cpu_before is not None and cpu_after is not None and timed.count:
        server_cpu = (cpu_after - cpu_before) / timed.count
        report.add(SECTION, "server CPU per notification", ms(server_cpu))
        report.add(SECTION, "  => one-core ceiling at that cost", f"{1 / server_cpu:,.0f}/s")
    if timed.count:
        client_cpu = (client_after - client_before) / timed.count
        report.add(SECTION, "client CPU per notification (8 threads)", ms(client_cpu))
    report.add(
        SECTION,
        "notifications timed (+ untimed warm-up, replays)",
        f"{timed.count:,} (+{warmup.count}, +{replayed.count})",
    )
    report.add(SECTION, "server: a child process, 1 worker", COMMAND)
    report.add(
        SECTION, "  HTTP stack", server_stack(python_is_ours=server.python == sys.executable)
    )

    _check_responses(report, "warm-up", warmup, sizes.warmup)
    _check_responses(report, "timed", timed, timed_count)
    _check_responses(report, "replayed", replayed, sizes.replays)
    _check_settled(report, db, tenant_id, orders)


def server_stack(*, python_is_ours: bool) -> str:
    """What uvicorn picks with its defaults: httptools and uvloop when installed."""
    import uvicorn

    if not python_is_ours:
        return f"uvicorn {uvicorn.__version__} (another interpreter)"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"uvicorn {uvicorn.__version__}, {http}, {loop}"


def _order_call(api_key: str, i: int) -> Call:
    return Call(
        "/v1/payments/orders",
        {
            "Authorization": f"Bearer {api_key}",
            "Idempotency-Key": f"bench-order-{i}",
            "Content-Type": "application/json",
        },
        json.dumps(
            {
                "amount_fen": amount_for(i),
                "description": "bench order",
                "payer_openid": "o_bench_buyer",
                "out_trade_no": f"bench{i:010d}",
                "payee": PAYEE,
            }
        ).encode(),
    )


def _place_orders(
    report: Report, server: ServerProcess, api_key: str, sizes: NotifySizes
) -> list[PlacedOrder]:
    chunk = 10 * CONCURRENCY
    results = LoadResult(seconds=0.0)
    bodies: list[tuple[int, Any]] = []
    placed = 0
    while placed < sizes.max_orders and (
        placed < sizes.min_orders or results.seconds < sizes.setup_seconds
    ):
        n = min(chunk, sizes.max_orders - placed)
        result = run_load(
            server.base_url,
            [_order_call(api_key, i) for i in range(placed, placed + n)],
            CONCURRENCY,
            keep_json=True,
        )
        results.seconds += result.seconds
        results.latencies += result.latencies
        results.errors += result.errors
        for status, count in result.statuses.items():
            results.statuses[status] = results.statuses.get(status, 0) + count
        bodies += [(placed + i, body) for i, body in result.bodies]
        placed += n
    report.add(
        SECTION,
        f"setup: orders placed/s (POST /v1/payments/orders, c={CONCURRENCY})",
        rate(results.count, results.seconds),
    )
    _check_responses(report, "order", results, placed, expected_status=201)
    orders: list[PlacedOrder] = []
    for _, body in sorted(bodies, key=lambda item: int(item[0])):
        if isinstance(body, dict) and "out_trade_no" in body:
            orders.append(
                PlacedOrder(str(body["id"]), str(body["out_trade_no"]), int(body["amount_fen"]))
            )
    return orders


def _notifications(
    db: Database, mchid: str, tenant_id: str, orders: list[PlacedOrder]
) -> list[Call]:
    """The buyer pays every order in the sandbox; each payment queues the signed, encrypted
    notification that is then taken, signed for delivery, exactly as the sandbox sends it."""
    with db.session() as session:
        for order in orders:
            sandbox.pay(session, mchid, order.out_trade_no)
    path = f"/v1/payments/notify/{tenant_id}"
    calls: list[Call] = []
    with db.session() as session:
        queued = sandbox.list_notifications(session, mchid, limit=len(orders))
        for notification in reversed(queued):
            notify_url, body, headers = sandbox.signed_delivery(session, notification.id)
            assert notify_url.endswith(path), notify_url
            calls.append(Call(path, headers, body.encode()))
    return calls


def _check_responses(
    report: Report, what: str, result: LoadResult, expected: int, *, expected_status: int = 204
) -> None:
    ok = result.statuses == {expected_status: expected} and not result.errors
    detail = f"{expected} x {expected_status}" if ok else f"statuses {result.statuses}"
    if result.errors:
        detail += f"; {len(result.errors)} errors, first: {result.errors[0]}"
    report.check(f"(a) every {what} request answered {expected_status}", ok, detail)


def _check_settled(report: Report, db: Database, tenant_id: str, orders: list[PlacedOrder]) -> None:
    expected_sum = sum(o.amount_fen for o in orders)
    with db.read_session() as session:
        statuses: dict[str, Any] = dict(
            session.execute(
                select(PaymentOrder.status, func.count())
                .where(PaymentOrder.tenant_id == tenant_id)
                .group_by(PaymentOrder.status)
            ).all()
        )
        recorded = session.scalar(
            select(func.count()).where(ProviderNotification.tenant_id == tenant_id)
        )
        merchant = ledger.balance(session, tenant_id, PAYEE, Asset.CNY).balance
        merchant_entries = ledger.entries_sum(session, tenant_id, PAYEE, Asset.CNY)
        clearing = ledger.balance(session, tenant_id, clearing_owner("sandbox"), Asset.CNY).balance
    report.check(
        "(a) every order is SUCCESS",
        statuses == {"SUCCESS": len(orders)},
        f"{statuses}",
    )
    report.check(
        "(a) each notification recorded once (replays de-duplicated)",
        recorded == len(orders),
        f"{recorded} recorded for {len(orders)} orders",
    )
    report.check(
        "(a) merchant ledger balance == sum of the orders",
        merchant == merchant_entries == expected_sum and clearing == -expected_sum,
        f"balance {merchant}, entries {merchant_entries}, clearing {clearing}, "
        f"expected {expected_sum} fen",
    )
