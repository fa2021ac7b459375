"""Shared fixtures: a real database (a SQLite file, or PostgreSQL when
ZANLOOP_TEST_DATABASE_URL is set) created by the migrations, the ASGI app, a worker whose HTTP
client reaches the app, and tenants with API keys."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2 as httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from zanloop import migrate
from zanloop.app import create_app
from zanloop.config import Settings
from zanloop.db import Database, normalise_url
from zanloop.jobs.worker import Worker
from zanloop.tables import metadata
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import Scope, TenantKind

PG_URL = os.environ.get("ZANLOOP_TEST_DATABASE_URL")
BASE_URL = "http://testserver"
_keys = itertools.count()


def is_postgres() -> bool:
    return bool(PG_URL)


T = TypeVar("T")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[str]:
    """Migrated once per test process: a template SQLite file, or a PostgreSQL database of
    this process's own (created beside the configured one, dropped at the end)."""
    if not PG_URL:
        template = tmp_path_factory.mktemp("template") / "zanloop.db"
        migrate.upgrade(f"sqlite:///{template}")
        yield f"sqlite:///{template}"
        return
    url = make_url(normalise_url(PG_URL))
    name = f"{url.database}_{worker_id}_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    own = url.set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(own)
    yield own
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def db(database_url: str, tmp_path: Path) -> Iterator[Database]:
    if PG_URL:
        database = Database(database_url)
        # DELETE is far cheaper than TRUNCATE on tables this small.
        with database.engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
    else:
        path = tmp_path / "zanloop.db"
        shutil.copyfile(database_url.removeprefix("sqlite:///"), path)
        database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


@pytest.fixture
def settings(db: Database, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db.url,
        public_url=BASE_URL,
        data_dir=tmp_path / "var",
        sandbox_retry_scale=0.0001,
        webhook_retry_scale=0.0001,
        reconcile_after_seconds=0,
        run_worker_in_process=False,
        bootstrap_demo_tenant=False,
        log_json=False,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    return create_app(settings, db=db, run_worker=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def worker(db: Database, settings: Settings, client: TestClient) -> Iterator[Worker]:
    """A job worker whose requests to http://testserver reach the app in-process; other URLs
    (webhook receivers the tests start) go over real HTTP."""
    http = httpx.Client(mounts={BASE_URL: client._transport}, timeout=5)
    yield Worker(db, settings, http=http)
    http.close()


@dataclass(frozen=True)
class TenantHandle:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def write_headers(self, key: str | None = None) -> dict[str, str]:
        return {**self.headers, "Idempotency-Key": key or f"test-{next(_keys)}"}


@pytest.fixture
def make_tenant(db: Database) -> Callable[..., TenantHandle]:
    def make(
        name: str = "Test merchant", scopes: tuple[Scope, ...] = (Scope.ADMIN,)
    ) -> TenantHandle:
        with db.session() as session:
            tenant, issued = tenancy.create_tenant(
                session, name, TenantKind.MERCHANT, key_scopes=scopes
            )
        return TenantHandle(tenant.id, issued.plaintext)

    return make


@pytest.fixture
def tenant(make_tenant: Callable[..., TenantHandle]) -> TenantHandle:
    return make_tenant()


@pytest.fixture
def create_order(client: TestClient) -> Callable[..., dict[str, Any]]:
    def create(t: TenantHandle, amount_fen: int = 990, **fields: Any) -> dict[str, Any]:
        body = {
            "amount_fen": amount_fen,
            "description": "Latte",
            "payer_openid": "o_buyer",
            **fields,
        }
        response = client.post("/v1/payments/orders", json=body, headers=t.write_headers())
        assert response.status_code == 201, response.text
        return dict(response.json())

    return create


@pytest.fixture
def paid_order(
    client: TestClient, worker: Worker, create_order: Callable[..., dict[str, Any]]
) -> Callable[..., dict[str, Any]]:
    """Create an order, pay it in the sandbox, deliver the notification; returns the order."""

    def pay(t: TenantHandle, amount_fen: int = 990, **fields: Any) -> dict[str, Any]:
        order = create_order(t, amount_fen, **fields)
        response = client.post(f"/v1/sandbox/orders/{order['out_trade_no']}/pay", headers=t.headers)
        assert response.status_code == 200, response.text
        worker.drain()
        settled = client.get(f"/v1/payments/orders/{order['id']}", headers=t.headers).json()
        assert settled["status"] == "SUCCESS", settled
        return dict(settled)

    return pay


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    """The app behind a real uvicorn server on a free 127.0.0.1 port (requests run truly
    concurrently in its thread pool); yields the base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start in time"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def at_once(times: int, call: Callable[[int], T]) -> list[T]:
    """Run ``call(0..times-1)`` from ``times`` threads released together by a barrier."""
    start = threading.Barrier(times)

    def one(i: int) -> T:
        start.wait()
        return call(i)

    with ThreadPoolExecutor(times) as pool:
        return list(pool.map(one, range(times)))


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A real HTTP client for the live server, with a connection per concurrent request."""
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with httpx.Client(timeout=30, limits=limits, trust_env=False) as client:
        yield client
