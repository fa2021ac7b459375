"""Reconciliation: the order-query fallback that settles what notifications missed, closes
what expired, and never lets one order's trouble stop the others."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.conftest import TenantHandle
from tests.payments.conftest import order_of, refund, sandbox
from zanloop.config import Settings
from zanloop.db import Database
from zanloop.jobs.worker import Worker
from zanloop.kit.clock import utcnow
from zanloop.payments import service as payments
from zanloop.payments.tables import PaymentOrder
from zanloop.sandbox import service as sandbox_service

Order = dict[str, Any]
Balance = Callable[..., int]


def reconcile(db: Database, settings: Settings) -> dict[str, int]:
    with db.session() as session:
        return payments.reconcile(session, settings)


def test_reconcile_settles_a_payment_whose_notification_never_arrived(
    client: TestClient,
    db: Database,
    settings: Settings,
    worker: Worker,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
) -> None:
    order = create_order(tenant, 880)
    assert sandbox(client, tenant, order, "pay").status_code == 200  # delivery not drained

    changed = reconcile(db, settings)
    worker.drain()  # the notification arrives late: nothing more happens

    assert changed["orders"] == 1
    assert order_of(client, tenant, order["id"])["status"] == "SUCCESS"
    assert (
        client.get("/v1/ledger/balances/merchant", headers=tenant.headers).json()["balance"] == 880
    )


def test_reconcile_closes_an_expired_unpaid_order(
    client: TestClient,
    db: Database,
    settings: Settings,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
) -> None:
    expired = create_order(tenant)
    fresh = create_order(tenant)
    with db.session() as session:
        session.execute(
            update(PaymentOrder)
            .where(PaymentOrder.id == expired["id"])
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )

    changed = reconcile(db, settings)

    assert changed["closed"] == 1
    assert order_of(client, tenant, expired["id"])["status"] == "CLOSED"
    assert order_of(client, tenant, fresh["id"])["status"] == "NOTPAY"
    at_provider = client.get(
        f"/v1/sandbox/orders/{expired['out_trade_no']}", headers=tenant.headers
    ).json()
    assert at_provider["resource"]["trade_state"] == "CLOSED"


def test_reconcile_closes_a_failed_order_once_it_expires(
    client: TestClient,
    db: Database,
    settings: Settings,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
) -> None:
    order = create_order(tenant)
    assert sandbox(client, tenant, order, "fail").status_code == 200
    reconcile(db, settings)
    assert order_of(client, tenant, order["id"])["status"] == "PAYERROR"
    with db.session() as session:
        session.execute(
            update(PaymentOrder)
            .where(PaymentOrder.id == order["id"])
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )

    changed = reconcile(db, settings)

    assert changed["closed"] == 1
    assert order_of(client, tenant, order["id"])["status"] == "CLOSED"


def test_reconcile_leaves_recent_orders_alone(
    client: TestClient,
    db: Database,
    settings: Settings,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
) -> None:
    order = create_order(tenant)
    sandbox(client, tenant, order, "pay")
    settings.reconcile_after_seconds = 3600

    assert reconcile(db, settings) == {"orders": 0, "closed": 0, "refunds": 0}
    assert order_of(client, tenant, order["id"])["status"] == "NOTPAY"


def test_reconcile_settles_a_refund_whose_notification_never_arrived(
    client: TestClient,
    db: Database,
    settings: Settings,
    tenant: TenantHandle,
    paid_order: Callable[..., Order],
) -> None:
    order = paid_order(tenant, 1000)
    created = refund(client, tenant, order["id"], amount_fen=250).json()
    with db.session() as session:  # the provider settles; its notification is never delivered
        config = payments.get_config(session, tenant.id)
        sandbox_service.settle_refund(session, config.mchid, created["out_refund_no"])

    changed = reconcile(db, settings)

    assert changed["refunds"] == 1
    assert order_of(client, tenant, order["id"])["refunded_fen"] == 250
    assert (
        client.get("/v1/ledger/balances/merchant", headers=tenant.headers).json()["balance"] == 750
    )
