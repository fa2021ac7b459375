"""Tenancy (X1): one tenant's programme never sees or touches another's members, lots, rules,
tasks, catalogue, redemptions or events, even where ids coincide."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.loyalty.conftest import Programme, event, points_of
from zanloop.db import Database

YESTERDAY = datetime.now(UTC) - timedelta(days=1)


def shares(points: int) -> dict[str, Any]:
    return {"trigger": "share.created", "effects": [{"type": "grant_points", "points": points}]}


@pytest.fixture
def other(client: TestClient, make_tenant: Callable[..., TenantHandle], db: Database) -> Programme:
    return Programme(client, make_tenant("Another merchant"), db)


def get(p: Programme, url: str) -> Any:
    return p.client.get(url, headers=p.tenant.headers)


def post(p: Programme, url: str, body: Any = None) -> Any:
    return p.client.post(url, json=body, headers=p.tenant.headers)


def test_members_lots_and_events_are_the_tenants_own(
    programme: Programme, other: Programme
) -> None:
    programme.rule(shares(100))
    other.rule(shares(7))
    programme.send(event("share.created", "ann", YESTERDAY, event_id="same-id"))
    programme.send(event("share.created", "zed", YESTERDAY, event_id="only-here"))

    # The same event id and the same user in another tenant: a new event, not a replay.
    theirs = other.send(event("share.created", "ann", YESTERDAY, event_id="same-id"))

    assert [e["status"] for e in theirs["events"]] == ["applied"]
    assert points_of(theirs) == [7]
    assert programme.balance("ann")["available"] == 100
    assert other.balance("ann")["available"] == 7
    assert [lot["points"] for lot in other.lots("ann")] == [7]
    assert get(other, "/v1/loyalty/members/zed").status_code == 404
    assert get(other, "/v1/loyalty/members/zed/balance").status_code == 404
    assert other.lots("zed") == []
    assert get(other, "/v1/loyalty/members/zed/tier-history").json() == []
    assert get(other, "/v1/loyalty/members/zed/redemptions").json() == []
    missing = post(other, "/v1/loyalty/events/only-here/reverse", {"reason": "not yours"})
    assert missing.status_code == 404
    assert programme.balance("zed")["available"] == 100
    ledger = other.ledger()
    assert ledger == {"loyalty:issued": -7, "user:ann": 7}
    economics = get(other, "/v1/loyalty/economics").json()
    assert (economics["points_issued"], economics["points_outstanding"]) == (7, 7)


def test_rules_tasks_and_the_catalogue_are_the_tenants_own(
    programme: Programme, other: Programme
) -> None:
    rule = programme.rule(shares(100))
    task = programme.task(
        {"type": "achievement", "actions": ["share.created"], "points": 5}, name="mine"
    )
    item = programme.item(name="Mug", price_points=50)
    programme.send(event("share.created", "ann", YESTERDAY))
    held = programme.redeem("ann", item["id"], request_no="r-1").json()
    other.rule(shares(1))
    other.send(event("share.created", "ann", YESTERDAY))

    assert [r["name"] for r in get(other, "/v1/loyalty/rules").json()] == ["rule"]
    assert get(other, f"/v1/loyalty/rules/{rule['id']}").status_code == 404
    patched = other.client.patch(
        f"/v1/loyalty/rules/{rule['id']}", json={"status": "PAUSED"}, headers=other.tenant.headers
    )
    assert patched.status_code == 404
    assert get(other, "/v1/loyalty/tasks").json() == []
    assert other.tasks("ann") == []
    paused = other.client.patch(
        f"/v1/loyalty/tasks/{task['id']}", json={"status": "PAUSED"}, headers=other.tenant.headers
    )
    assert paused.status_code == 404
    assert get(other, "/v1/loyalty/catalogue").json() == []
    assert other.redeem("ann", item["id"]).status_code == 404
    assert get(other, f"/v1/loyalty/redemptions/{held['id']}").status_code == 404
    assert post(other, f"/v1/loyalty/redemptions/{held['id']}/confirm").status_code == 404
    assert post(other, f"/v1/loyalty/redemptions/{held['id']}/cancel").status_code == 404

    # The same request number in each tenant is two redemptions.
    own = other.item(name="Pen", price_points=1)
    mine = other.redeem("ann", own["id"], request_no="r-1")
    assert mine.status_code == 201, mine.text
    assert mine.json()["id"] != held["id"]
    # Nothing of the first tenant moved.
    assert get(programme, f"/v1/loyalty/redemptions/{held['id']}").json()["status"] == "HELD"
    assert get(programme, f"/v1/loyalty/rules/{rule['id']}").json()["status"] == "ACTIVE"
    assert programme.balance("ann") == {
        "user_id": "ann",
        "available": 55,
        "pending": 0,
        "held": 50,
        "tier": "normal",
    }


def test_a_receipt_code_earns_only_in_the_programme_that_signed_it(
    programme: Programme, other: Programme
) -> None:
    receipts = {
        "trigger": "receipt.scanned",
        "effects": [{"type": "earn_per_yuan", "points_per_yuan": "1"}],
    }
    programme.rule(receipts)
    other.rule(receipts)
    signed = post(programme, "/v1/loyalty/receipt-codes", {"store_id": "s1", "amount_fen": 5000})
    code = signed.json()["code"]

    elsewhere = other.send(event("receipt.scanned", "ann", YESTERDAY, code=code))
    here = programme.send(event("receipt.scanned", "ann", YESTERDAY, code=code))

    [refused] = elsewhere["events"]
    assert (refused["status"], refused["reason"]) == ("rejected", "the receipt code is not valid")
    assert points_of(here) == [50]
