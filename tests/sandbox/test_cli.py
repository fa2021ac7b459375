"""`zanloop sandbox pay|fail`: the buyer's side from a terminal, against the same database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import zanloop.db
from tests.conftest import TenantHandle
from zanloop import cli
from zanloop.config import get_settings
from zanloop.db import Database
from zanloop.jobs.worker import Worker

Order = dict[str, Any]


@pytest.fixture
def runner(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("ZANLOOP_DATABASE_URL", db.url)
    get_settings.cache_clear()
    # The CLI never disposes the Database it opens (its pooled connections are left to the
    # garbage collector, a ResourceWarning on PostgreSQL); close them here, after each run.
    opened: list[Database] = []

    class Closable(Database):
        def __init__(self, url: str) -> None:
            super().__init__(url)
            opened.append(self)

    monkeypatch.setattr(zanloop.db, "Database", Closable)
    yield CliRunner()
    for database in opened:
        database.dispose()
    get_settings.cache_clear()


def test_sandbox_pay_pays_and_the_worker_settles(
    runner: CliRunner,
    client: TestClient,
    worker: Worker,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
) -> None:
    order = create_order(tenant, 1200)

    result = runner.invoke(cli.app, ["sandbox", "pay", order["out_trade_no"]])
    worker.drain()

    assert result.exit_code == 0, result.output
    assert f"{order['out_trade_no']}: SUCCESS" in result.output
    settled = client.get(f"/v1/payments/orders/{order['id']}", headers=tenant.headers).json()
    assert settled["status"] == "SUCCESS"
    balance = client.get("/v1/ledger/balances/merchant", headers=tenant.headers).json()
    assert balance["balance"] == 1200


def test_sandbox_fail_shows_after_sync(
    runner: CliRunner, client: TestClient, tenant: TenantHandle, create_order: Callable[..., Order]
) -> None:
    order = create_order(tenant)

    result = runner.invoke(cli.app, ["sandbox", "fail", order["out_trade_no"]])
    synced = client.post(f"/v1/payments/orders/{order['id']}/sync", headers=tenant.headers)

    assert result.exit_code == 0, result.output
    assert f"{order['out_trade_no']}: PAYERROR" in result.output
    assert synced.json()["status"] == "PAYERROR"


def test_sandbox_pay_of_an_unknown_order_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["sandbox", "pay", "NOSUCHORDER"])

    assert result.exit_code == 2
    assert "0 sandbox orders" in result.output
    assert "NOSUCHORDER" in result.output
