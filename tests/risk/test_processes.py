"""The same limits hold across API processes that share Redis: two live ``zanloop serve``
processes on one database, hit concurrently and alternately."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import TenantHandle
from zanloop.db import Database

ONE_PROMPT_A_DAY_AND_TWO_ACCOUNTS_A_DEVICE = {
    "rules": [
        {
            "id": "prompts",
            "type": "velocity",
            "actions": ["like.prompt"],
            "window": "1d",
            "max_count": 1,
        },
        {
            "id": "spend",
            "type": "velocity",
            "actions": ["pin.purchase"],
            "subject": "payment_account",
            "window": "1d",
            "max_sum_fen": 1000,
        },
        {
            "id": "devices",
            "type": "distinct_users",
            "actions": ["pin.purchase"],
            "subject": "device",
            "window": "1d",
            "max_users": 2,
        },
    ]
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def two_servers(db: Database, redis_url: str, tmp_path: Path) -> Iterator[list[str]]:
    ports = [_free_port(), _free_port()]
    env = {
        **os.environ,
        "ZANLOOP_DATABASE_URL": db.url,
        "ZANLOOP_REDIS_URL": redis_url,
        "ZANLOOP_BOOTSTRAP_DEMO_TENANT": "false",
        "ZANLOOP_DATA_DIR": str(tmp_path / "var"),
        "ZANLOOP_LOG_LEVEL": "WARNING",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "zanloop.cli", "serve", "--port", str(p), "--no-worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for p in ports
    ]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for url, process in zip(urls, processes, strict=True):
            _wait_healthy(url, process)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
            assert process.stderr is not None
            process.stderr.close()


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            assert process.stderr is not None
            pytest.fail(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not become healthy")


def _burst(urls: list[str], tenant: TenantHandle, bodies: list[dict[str, Any]]) -> list[str]:
    """Send the bodies concurrently, alternating between the servers; return the verdicts."""
    with httpx.Client(timeout=30) as http:

        def send(index: int) -> str:
            response = http.post(
                f"{urls[index % len(urls)]}/v1/risk/decisions",
                json=bodies[index],
                headers=tenant.write_headers(),
            )
            assert response.status_code == 201, response.text
            return str(response.json()["verdict"])

        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(send, range(len(bodies))))


@pytest.mark.slow
def test_limits_hold_across_two_api_processes_sharing_redis(
    two_servers: list[str], tenant: TenantHandle
) -> None:
    # given: the tenant's policy, set through one server
    with httpx.Client(timeout=10) as http:
        http.put(
            f"{two_servers[0]}/v1/risk/policy",
            json=ONE_PROMPT_A_DAY_AND_TWO_ACCOUNTS_A_DEVICE,
            headers=tenant.headers,
        ).raise_for_status()

    # when: 20 prompts for one user, 12 accounts on one device, 10 × 3 CNY from one payer
    prompts = _burst(two_servers, tenant, [{"action": "like.prompt", "user_id": "u"}] * 20)
    accounts = _burst(
        two_servers,
        tenant,
        [
            {"action": "pin.purchase", "user_id": f"acct-{i}", "device_id": "farm-device"}
            for i in range(12)
        ],
    )
    spend = _burst(
        two_servers,
        tenant,
        [
            {
                "action": "pin.purchase",
                "user_id": f"p-{i}",
                "payment_account": "o-one",
                "amount_fen": 300,
            }
            for i in range(10)
        ],
    )

    # then: exactly the allowance went through, whichever process answered
    assert prompts.count("ALLOW") == 1
    assert accounts.count("ALLOW") == 2
    assert spend.count("ALLOW") == 3
