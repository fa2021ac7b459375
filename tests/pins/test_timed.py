"""Timed tiers (Super Chat style): the amount buys display time; a pin whose time is over
leaves the list at once, and the expiry job records it."""

from __future__ import annotations

import time

from tests.pins.conftest import PinWorld
from zanloop.db import Database
from zanloop.kit.clock import utcnow
from zanloop.pins import service

TIMED = {
    "mode": "timed",
    "slots": 2,
    "tiers": [
        {"min_amount_fen": 10, "duration_seconds": 1, "max_message_chars": 10},
        {"min_amount_fen": 1000, "duration_seconds": 3600, "max_message_chars": 100},
    ],
}


def test_a_timed_pin_shows_for_its_tiers_time_then_expires(world: PinWorld, db: Database) -> None:
    # given: a timed policy; a 1-second pin and a one-hour pin
    put = world.client.put("/v1/pins/policy", json=TIMED, headers=world.tenant.headers)
    assert put.status_code == 200, put.text
    world.bind("viewer-1")
    world.bind("viewer-2")
    short = world.buy("viewer-1", 100, pay=False)
    long = world.buy("viewer-2", 1000)
    world.pay(short)
    assert "for 1 s once it is live" in short["disclosure"]["refund_terms"]

    # then: both show, the bigger first, each with its end time
    listed = world.pinned()
    assert [p["pin_id"] for p in listed["pinned"]] == [long["pin"]["id"], short["pin"]["id"]]
    assert all(p["expires_at"] for p in listed["pinned"])

    # when: a second passes
    time.sleep(1.1)

    # then: the short pin is gone from the list, and the job marks it EXPIRED
    assert [p["pin_id"] for p in world.pinned()["pinned"]] == [long["pin"]["id"]]
    with db.session() as session:
        assert service.expire_due(session, utcnow()) == 1
    assert world.pin(short["pin"]["id"])["status"] == "EXPIRED"
    assert world.pin(long["pin"]["id"])["status"] == "ACTIVE"
    assert world.balance(world.creator_owner()) == 70 + 700  # expiry keeps the money


def test_a_creator_can_run_timed_pins_while_the_tenant_keeps_lasting_ones(
    world: PinWorld,
) -> None:
    world.client.put(
        f"/v1/creators/{world.creator}",
        json={"name": "n", "programmes": ["incentive"], "policy": TIMED},
        headers=world.tenant.headers,
    ).raise_for_status()
    content = world.client.get(f"/v1/contents/{world.content}", headers=world.tenant.headers)

    assert content.json()["terms"]["mode"] == "timed"
    assert world.client.get("/v1/pins/policy", headers=world.tenant.headers).json()["mode"] == (
        "lasting"
    )


def test_an_invalid_policy_names_its_field(world: PinWorld) -> None:
    bad = world.client.put(
        "/v1/pins/policy",
        json={**TIMED, "tiers": [{"min_amount_fen": 100, "duration_seconds": 0}]},
        headers=world.tenant.headers,
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} >= {
        "tiers.0.duration_seconds",
        "tiers.0.max_message_chars",
    }
    creator_bad = world.client.put(
        f"/v1/creators/{world.creator}",
        json={"name": "n", "programmes": ["incentive"], "policy": {"slots": 0}},
        headers=world.tenant.headers,
    )
    assert creator_bad.status_code == 422
    assert creator_bad.json()["errors"][0]["field"] == "slots"
