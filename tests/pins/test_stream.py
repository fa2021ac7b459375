"""The creator's real-time notices (P5): a signed webhook to the creator's endpoint, and a live
Server-Sent Events stream served by a real ``zanloop serve`` process on the same database,
while the pins are bought and paid through the in-process app and the sandbox."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.pins.conftest import PinWorld
from zanloop.db import Database

Events = Iterator[httpx.ServerSentEvent]


# A live API process --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


@pytest.fixture
def server(db: Database, tmp_path: Path) -> Iterator[str]:
    """``zanloop serve`` in a process of its own, on the test's database, without a worker."""
    port = _free_port()
    env = {
        **os.environ,
        "ZANLOOP_DATABASE_URL": db.url,
        "ZANLOOP_BOOTSTRAP_DEMO_TENANT": "false",
        "ZANLOOP_DATA_DIR": str(tmp_path / "server-var"),
        "ZANLOOP_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "zanloop.cli", "serve", "--port", str(port), "--no-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()


def stream_token(world: PinWorld, creator: str | None = None) -> dict[str, Any]:
    response = world.client.post(
        f"/v1/creators/{creator or world.creator}/stream-tokens", headers=world.tenant.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


@contextmanager
def live_stream(server: str, world: PinWorld, last_event_id: int | None = None) -> Iterator[Events]:
    """The creator's stream, opened the way a browser's EventSource does; yields its events
    once the server has answered (its first message sets the reconnection delay)."""
    token = stream_token(world)["token"]
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    # A generous read timeout: a missing notice fails the test instead of hanging it.
    with (
        httpx.Client(timeout=httpx.Timeout(20.0)) as http,
        http.stream(
            "GET",
            f"{server}/v1/creators/{world.creator}/stream",
            params={"token": token},
            headers=headers,
        ) as response,
    ):
        assert response.status_code == 200, response.read().decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = iter(httpx.EventSource(response))
        opening = next(events)
        assert opening.retry == 2000
        yield events


def take(events: Events, count: int) -> list[httpx.ServerSentEvent]:
    return [next(events) for _ in range(count)]


def notice(event: httpx.ServerSentEvent) -> tuple[str, str, int]:
    data = event.json()
    assert isinstance(data, dict)
    return event.event, data["pin_id"], data["amount_fen"]


# The SSE stream ------------------------------------------------------------------------------


def test_a_new_pin_reaches_the_creators_live_stream(world: PinWorld, server: str) -> None:
    # given: the creator's dashboard is listening
    world.bind("viewer-1")
    with live_stream(server, world) as events:
        # when: a viewer buys and pays a 5 CNY pin with a message
        bought = world.buy("viewer-1", 500, message="加油!")

        # then: the stream tells of it at once, with what the creator wants to show
        [event] = take(events, 1)

    assert event.event == "pin.activated"
    assert int(event.id) > 0
    data = event.json()
    assert isinstance(data, dict)
    assert data["pin_id"] == bought["pin"]["id"]
    assert data["amount_fen"] == 500
    assert (data["status"], data["buyer_id"], data["message"]) == ("ACTIVE", "viewer-1", "加油!")
    assert (data["creator_id"], data["content_id"]) == ("creator-1", "video-1")
    activated_at = world.pin(bought["pin"]["id"])["activated_at"]
    assert datetime.fromisoformat(data["activated_at"]) == datetime.fromisoformat(activated_at)


def test_a_stream_opened_later_starts_with_the_next_pin_not_the_old_ones(
    world: PinWorld, server: str
) -> None:
    # given: a pin bought before the creator opened the dashboard
    world.bind("viewer-1")
    world.buy("viewer-1", 100)

    with live_stream(server, world) as events:
        # when: a second viewer pins while the stream is open
        world.bind("viewer-2")
        later = world.buy("viewer-2", 800)

        # then: the first message is the new pin
        [event] = take(events, 1)

    assert notice(event) == ("pin.activated", later["pin"]["id"], 800)


def test_a_reconnecting_stream_resumes_after_its_last_event_id(
    world: PinWorld, server: str
) -> None:
    # given: one pin stays up; another goes live, is removed and refunded
    world.bind("viewer-1")
    kept = world.buy("viewer-1", 300)["pin"]["id"]
    gone = world.buy("viewer-1", 700)["pin"]["id"]
    world.client.post(
        f"/v1/pins/{gone}/remove", json={}, headers=world.tenant.write_headers()
    ).raise_for_status()
    world.worker.drain()

    # when: a browser that has seen nothing asks from the start, then one that saw two
    with live_stream(server, world, last_event_id=0) as events:
        everything = take(events, 4)
    seen = int(everything[1].id)
    with live_stream(server, world, last_event_id=seen) as events:
        resumed = take(events, 2)

    # then: the whole story in order, and the resumed stream picks up right after
    assert [notice(e) for e in everything] == [
        ("pin.activated", kept, 300),
        ("pin.activated", gone, 700),
        ("pin.removed", gone, 700),
        ("pin.refunded", gone, 700),
    ]
    ids = [int(e.id) for e in everything]
    assert ids == sorted(set(ids))
    assert [(e.id, e.event) for e in resumed] == [(e.id, e.event) for e in everything[2:]]


def test_a_creators_stream_never_carries_another_tenants_pins(
    make_world: Callable[[], PinWorld], server: str
) -> None:
    # given: two tenants, each with a "creator-1"; the second one's creator is listening
    first, second = make_world(), make_world()
    first.bind("viewer-1")
    second.bind("viewer-1")
    with live_stream(server, second) as events:
        # when: the first tenant's creator gets a pin, then the second's
        first.buy("viewer-1", 900)
        own = second.buy("viewer-1", 200)

        # then: the first message the second creator sees is their own pin
        [event] = take(events, 1)

    assert notice(event) == ("pin.activated", own["pin"]["id"], 200)


def test_a_stream_token_names_the_stream_url(world: PinWorld) -> None:
    issued = stream_token(world)

    assert issued["token"].startswith("pst_")
    assert issued["url"] == (
        f"http://testserver/v1/creators/{world.creator}/stream?token={issued['token']}"
    )


@pytest.mark.parametrize(
    ("token", "status"),
    [
        pytest.param("pst_not-a-token-we-gave", 401, id="unknown-token"),
        pytest.param("", 401, id="empty-token"),
    ],
)
def test_a_stream_with_a_wrong_token_is_refused(world: PinWorld, token: str, status: int) -> None:
    response = world.client.get(f"/v1/creators/{world.creator}/stream", params={"token": token})

    assert response.status_code == status
    assert response.json()["type"] == "urn:zanloop:problem:unauthorized"


def test_a_stream_without_a_token_or_with_a_bad_last_event_id_is_refused(
    world: PinWorld,
) -> None:
    token = stream_token(world)["token"]
    path = f"/v1/creators/{world.creator}/stream"

    missing = world.client.get(path)
    bad_resume = world.client.get(path, params={"token": token}, headers={"Last-Event-ID": "x"})

    assert missing.status_code == bad_resume.status_code == 422
    assert missing.json()["errors"][0]["field"] == "token"
    assert bad_resume.json()["errors"][0]["field"] == "Last-Event-ID"


def test_a_token_opens_only_its_own_creators_stream(world: PinWorld) -> None:
    # given: a second creator of the same tenant, and a token for the first
    world.client.put(
        "/v1/creators/creator-2", json={"name": "c2"}, headers=world.tenant.headers
    ).raise_for_status()
    token = stream_token(world)["token"]

    # when: the token is used for the other creator's stream
    response = world.client.get("/v1/creators/creator-2/stream", params={"token": token})

    # then: as if that stream did not exist
    assert response.status_code == 404


# The webhook ---------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A creator's webhook endpoint on 127.0.0.1: records every POST and answers 200."""

    url: str = ""
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def types(self) -> list[str]:
        with self.lock:
            return [json.loads(body)["type"] for _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    received = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with received.lock:
                received.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    http_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http_server.daemon_threads = True
    received.url = f"http://127.0.0.1:{http_server.server_address[1]}/creator-hooks"
    thread = threading.Thread(target=http_server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield received
    http_server.shutdown()
    http_server.server_close()
    thread.join(5)


def test_a_new_pin_reaches_the_creators_webhook_signed(world: PinWorld, receiver: Receiver) -> None:
    # given: an endpoint for the tenant's pin events
    endpoint = world.client.post(
        "/v1/webhooks/endpoints",
        json={"url": receiver.url, "event_types": ["pin.*"], "description": "creator notices"},
        headers=world.tenant.headers,
    )
    assert endpoint.status_code == 201, endpoint.text
    world.bind("viewer-1")

    # when: a pin is bought and paid (buying drains the worker, which delivers)
    bought = world.buy("viewer-1", 1200, message="冲!")

    # then: exactly one signed pin.activated message, and no payment events for this endpoint
    [(headers, body)] = receiver.requests
    payload = Webhook(endpoint.json()["secret"]).verify(body, headers)
    assert payload["type"] == "pin.activated"
    data = payload["data"]
    assert (data["pin_id"], data["amount_fen"], data["message"]) == (
        bought["pin"]["id"],
        1200,
        "冲!",
    )
    assert (data["creator_id"], data["content_id"], data["status"]) == (
        "creator-1",
        "video-1",
        "ACTIVE",
    )


def test_removal_and_refund_reach_the_webhook_in_order(world: PinWorld, receiver: Receiver) -> None:
    world.client.post(
        "/v1/webhooks/endpoints",
        json={"url": receiver.url, "event_types": ["pin.*"]},
        headers=world.tenant.headers,
    ).raise_for_status()
    world.bind("viewer-1")
    pin_id = world.buy("viewer-1", 600)["pin"]["id"]

    world.client.post(
        f"/v1/pins/{pin_id}/remove", json={}, headers=world.tenant.write_headers()
    ).raise_for_status()
    world.worker.drain()

    assert receiver.types() == ["pin.activated", "pin.removed", "pin.refunded"]
    assert {json.loads(body)["data"]["pin_id"] for _, body in receiver.requests} == {pin_id}
