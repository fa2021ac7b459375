"""A real webhook receiver on 127.0.0.1 and helpers to register endpoints and wait for retries."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from zanloop.config import Settings
from zanloop.jobs.worker import Worker


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """Records every POST; answers ``fail_status`` to the next ``failures_left`` requests."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    failures_left: int = 0
    fail_status: int = 500
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, times: int, status: int = 500) -> None:
        with self.lock:
            self.failures_left, self.fail_status = times, status

    def answer(self, received: Received) -> int:
        with self.lock:
            self.requests.append(received)
            if self.failures_left:
                self.failures_left -= 1
                return self.fail_status
            return 200

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.requests if r.json()["type"] == event_type]


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.answer(Received(self.path, headers, body))
            reply = b"ok" if status == 200 else b"try again"
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _serve(receiver: Receiver) -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serve(Receiver())


@pytest.fixture
def second_receiver() -> Iterator[Receiver]:
    yield from _serve(Receiver())


@pytest.fixture
def retry_scale() -> float:
    """The whole Standard Webhooks schedule (5 s … 10 h) squeezed into about one second;
    parametrize ``retry_scale`` for a slower one."""
    return 0.00001


@pytest.fixture
def settings(settings: Settings, retry_scale: float) -> Settings:
    return settings.model_copy(update={"webhook_retry_scale": retry_scale})


@pytest.fixture
def add_endpoint(client: TestClient) -> Callable[..., dict[str, Any]]:
    def add(t: TenantHandle, url: str, event_types: list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"url": url, "description": "test receiver"}
        if event_types is not None:
            body["event_types"] = event_types
        response = client.post("/v1/webhooks/endpoints", json=body, headers=t.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    return add


def drain_until(worker: Worker, done: Callable[[], bool], timeout: float = 10.0) -> None:
    """Run due jobs until ``done()``; retries are scheduled a few milliseconds ahead."""
    deadline = time.monotonic() + timeout
    while True:
        worker.drain()
        if done():
            return
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting for the worker")
        time.sleep(0.02)
