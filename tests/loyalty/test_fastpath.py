"""A member's balance answered before routing is byte for byte what the route answers, follows
every change at once, and never answers for another tenant or a key without the scope."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import TenantHandle
from tests.loyalty.conftest import Programme, event
from zanloop.db import Database
from zanloop.loyalty import fastpath

EARN = {"trigger": "share.created", "effects": [{"type": "grant_points", "points": 5}]}


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[bytes | None]:
    seen: list[bytes | None] = []
    original = fastpath.BalanceFastPath._cached_answer

    def spy(scope: dict[str, object]) -> bytes | None:
        answer = original(scope)
        seen.append(answer)
        return answer

    monkeypatch.setattr(fastpath.BalanceFastPath, "_cached_answer", staticmethod(spy))
    return seen


def test_the_fast_answer_is_the_route_answer_and_follows_each_write(
    programme: Programme, answered: list[bytes | None], db: Database
) -> None:
    programme.rule(EARN)
    at = datetime.now(UTC) - timedelta(hours=1)
    programme.send(event("share.created", "ann", at))
    url, headers = "/v1/loyalty/members/ann/balance", programme.tenant.headers

    fast = programme.client.get(url, headers=headers)
    assert (answered[-1] is not None) == db.is_sqlite
    # a query string always goes through the route
    routed = programme.client.get(url, params={"via": "route"}, headers=headers)
    assert answered[-1] is None
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content
    assert fast.json() == {
        "user_id": "ann",
        "available": 5,
        "pending": 0,
        "held": 0,
        "tier": "normal",
    }
    assert fast.headers["x-request-id"]

    programme.send(event("share.created", "ann", at + timedelta(minutes=1)))
    assert programme.client.get(url, headers=headers).json()["available"] == 10


def test_strangers_and_foreign_tenants_fall_through_to_the_route(
    programme: Programme, make_tenant: Callable[..., TenantHandle], answered: list[bytes | None]
) -> None:
    programme.rule(EARN)
    programme.send(event("share.created", "ann", datetime.now(UTC) - timedelta(hours=1)))
    url = "/v1/loyalty/members/ann/balance"
    programme.client.get(url, headers=programme.tenant.headers)  # the key is seen now

    assert programme.client.get(url).status_code == 401
    other = make_tenant("other")
    assert programme.client.get(url, headers=other.headers).status_code == 404
    unknown = programme.client.get(
        "/v1/loyalty/members/nobody/balance", headers=programme.tenant.headers
    )
    assert unknown.status_code == 404
    assert answered.count(None) >= 4
