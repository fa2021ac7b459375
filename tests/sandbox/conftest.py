"""Sandbox fixtures: a notify URL of the test's own that answers as it is told."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.payments.conftest import db, sandbox_platform_key_pem  # noqa: F401  (same seeding)


@dataclass
class Received:
    at: float
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """Answers each POST with the next of ``answers`` (the last one repeats)."""

    url: str = ""
    answers: list[int] = field(default_factory=lambda: [500])
    received: list[Received] = field(default_factory=list)

    def answer(self) -> int:
        return self.answers[min(len(self.received) - 1, len(self.answers) - 1)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.received.append(Received(time.monotonic(), body, dict(self.headers.items())))
            status = state.answer()
            payload = b"" if status == 204 else b'{"code":"FAIL","message":"busy"}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/wechat/notify"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()
