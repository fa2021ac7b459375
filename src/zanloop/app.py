"""Builds the FastAPI application and mounts every area's router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from zanloop import __version__, events
from zanloop.bindings.endpoints import router as bindings_router
from zanloop.campaigns.endpoints import router as campaigns_router
from zanloop.config import Settings, get_settings
from zanloop.coupons.endpoints import router as coupons_router
from zanloop.db import Database
from zanloop.fraud.endpoints import router as fraud_router
from zanloop.http import problems
from zanloop.http.deps import PrincipalCache
from zanloop.jobs import service as jobs
from zanloop.jobs import worker
from zanloop.ledger.endpoints import router as ledger_router
from zanloop.loyalty.endpoints import router as loyalty_router
from zanloop.loyalty.fastpath import BalanceFastPath
from zanloop.ops.endpoints import router as ops_router
from zanloop.ops.middleware import RequestContext
from zanloop.payments.endpoints import router as payments_router
from zanloop.pins.endpoints import router as pins_router
from zanloop.pins.fastpath import PinnedListFastPath
from zanloop.risk import service as risk
from zanloop.risk.endpoints import router as risk_router
from zanloop.sandbox.endpoints import router as sandbox_router
from zanloop.tenancy.endpoints import router as tenancy_router
from zanloop.webhooks.endpoints import router as webhooks_router

DESCRIPTION = """
Payment-backed engagement: every like, pin and point stands on a verified payment.

Authenticate with `Authorization: Bearer <API key>`. Every POST that moves money takes an
`Idempotency-Key`. Errors are RFC 9457 problem details (`application/problem+json`) whose
`errors` list names the offending field. Amounts are integer fen (1 CNY = 100 fen).
"""


def create_app(
    settings: Settings | None = None, *, db: Database | None = None, run_worker: bool | None = None
) -> FastAPI:
    settings = settings or get_settings()
    database = db or Database(settings.database_url)
    events.wire()
    jobs.load_handlers()
    risk.configure(settings)
    start_worker = settings.run_worker_in_process if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = None
        if start_worker:
            _, stop = worker.start_in_thread(database, settings)
        try:
            yield
        finally:
            if stop is not None:
                stop.set()
                jobs.wake_event().set()
            if db is None:
                database.dispose()

    app = FastAPI(
        title="zanloop",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {
                "name": "payments",
                "description": "Payment orders and refunds (WeChat Pay v3 or the sandbox).",
            },
            {
                "name": "ledger",
                "description": "Double-entry accounts, transfers, holds and reversals.",
            },
            {
                "name": "webhooks",
                "description": "Outbound webhooks (Standard Webhooks), delivery log, replay.",
            },
            {
                "name": "pins",
                "description": "Paid pinned likes: creators, content, purchase, the pinned "
                "list, moderation, analytics, live stream.",
            },
            {
                "name": "bindings",
                "description": "Users' payment accounts (openid): paying needs one.",
            },
            {
                "name": "risk",
                "description": "Decisions (ALLOW/REVIEW/BLOCK), rules, lists, review queue.",
            },
            {
                "name": "fraud",
                "description": "Group fraud detection: scans, findings, the actions queue.",
            },
            {"name": "tenancy", "description": "The calling tenant and its API keys."},
            {
                "name": "sandbox",
                "description": "The built-in WeChat Pay stand-in: the buyer's side.",
            },
            {"name": "provider callbacks", "description": "Called by the payment provider."},
            {"name": "operations", "description": "Health and metrics."},
        ],
    )
    app.state.settings = settings
    app.state.db = database
    app.state.principals = PrincipalCache()
    problems.install(app)
    # Inner first: the pinned-list fast path answers inside RequestContext's log and metrics.
    app.add_middleware(PinnedListFastPath)
    app.add_middleware(BalanceFastPath)
    app.add_middleware(RequestContext)
    for router in (
        ops_router,
        tenancy_router,
        payments_router,
        ledger_router,
        bindings_router,
        pins_router,
        campaigns_router,
        coupons_router,
        loyalty_router,
        webhooks_router,
        risk_router,
        fraud_router,
        sandbox_router,
    ):
        app.include_router(router)
    return app
