"""The pinned list's fast path answers exactly what the route answers, and never a stale or
foreign list."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.pins.conftest import PinWorld
from zanloop.db import Database
from zanloop.pins import fastpath


def test_a_cached_read_answers_what_the_route_answers_and_follows_every_change(
    world: PinWorld, monkeypatch: pytest.MonkeyPatch, db: Database
) -> None:
    world.bind("v1")
    world.bind("v2")
    first = world.buy("v1", 500)
    url, headers = f"/v1/contents/{world.content}/pins", world.tenant.headers

    built = world.client.get(url, headers=headers)  # builds and caches the list
    answered: list[bytes | None] = []
    original = fastpath.PinnedListFastPath._cached_answer

    def spy(scope: dict[str, object]) -> bytes | None:
        answer = original(scope)
        answered.append(answer)
        return answer

    monkeypatch.setattr(fastpath.PinnedListFastPath, "_cached_answer", staticmethod(spy))
    cached = world.client.get(url, headers=headers)
    # served by the fast path on SQLite; on PostgreSQL the route answers (no blocking query
    # on the event loop)
    assert (answered[-1] is not None) == db.is_sqlite
    assert cached.content == built.content
    assert cached.headers["x-request-id"]

    # a new pin changes the stamp: the next read is the new list, not the cached one
    second = world.buy("v2", 900)
    after = world.client.get(url, headers=headers).json()
    assert [p["pin_id"] for p in after["pinned"]] == [second["pin"]["id"], first["pin"]["id"]]


def test_foreign_keys_and_odd_requests_fall_through_to_the_route(
    world: PinWorld, make_world: Callable[[], PinWorld]
) -> None:
    world.bind("v1")
    world.buy("v1", 500)
    url = f"/v1/contents/{world.content}/pins"
    world.client.get(url, headers=world.tenant.headers)  # cached now
    other = make_world()

    assert world.client.get(url).status_code == 401
    assert world.client.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    foreign = world.client.get("/v1/contents/not-there/pins", headers=other.tenant.headers)
    assert foreign.status_code == 404
    # the other tenant's own video-1 is its own list, empty
    assert world.client.get(url, headers=other.tenant.headers).json()["pinned"] == []
    with_query = world.client.get(url, params={"x": "1"}, headers=world.tenant.headers)
    assert with_query.status_code == 200
