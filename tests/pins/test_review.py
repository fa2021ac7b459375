"""A pin that risk control holds: paid, not shown, the creator's share reserved until an
analyst decides; approval puts it live, rejection refunds the buyer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.pins.conftest import PinWorld

# Pins above 20 CNY wait for a person.
HOLD_BIG_PINS = {
    "rules": [
        {
            "id": "big-pin",
            "type": "amount_limit",
            "actions": ["pin.purchase"],
            "max_amount_fen": 2000,
            "verdict": "REVIEW",
        }
    ]
}


@pytest.fixture
def held(world: PinWorld) -> dict[str, Any]:
    world.client.put(
        "/v1/risk/policy", json=HOLD_BIG_PINS, headers=world.tenant.headers
    ).raise_for_status()
    world.bind("whale")
    bought = world.buy("whale", 50000)
    pin = world.pin(bought["pin"]["id"])
    assert pin["status"] == "IN_REVIEW"
    return bought


def _review(world: PinWorld) -> dict[str, Any]:
    queue = world.client.get("/v1/risk/reviews", headers=world.tenant.headers).json()["data"]
    assert len(queue) == 1
    return dict(queue[0])


def test_a_held_pin_is_paid_but_not_shown_and_its_share_is_reserved(
    world: PinWorld, held: dict[str, Any]
) -> None:
    review = _review(world)
    assert world.pinned()["pinned"] == []
    assert (review["amount"], review["to_owner"]) == (35000, world.creator_owner())
    sales = world.client.get("/v1/ledger/balances/pins:sales", headers=world.tenant.headers).json()
    assert (sales["balance"], sales["pending_out"]) == (50000, 35000)


def test_approval_puts_the_pin_live_with_exactly_the_held_share(
    world: PinWorld, held: dict[str, Any]
) -> None:
    review = _review(world)

    approved = world.client.post(
        f"/v1/risk/reviews/{review['id']}/approve", headers=world.tenant.write_headers()
    )

    assert approved.status_code == 200, approved.text
    assert world.pin(held["pin"]["id"])["status"] == "ACTIVE"
    assert [p["pin_id"] for p in world.pinned()["pinned"]] == [held["pin"]["id"]]
    assert world.balance(world.creator_owner()) == 35000
    assert world.balance("platform:pins") == 15000
    assert world.balance("pins:sales") == 0


def test_rejection_refunds_the_buyer_and_leaves_every_balance_as_before(
    world: PinWorld, held: dict[str, Any]
) -> None:
    review = _review(world)

    rejected = world.client.post(
        f"/v1/risk/reviews/{review['id']}/reject", headers=world.tenant.write_headers()
    )
    world.worker.drain()

    assert rejected.status_code == 200, rejected.text
    pin = world.pin(held["pin"]["id"])
    assert pin["status"] == "REFUNDED"
    order = world.client.get(
        f"/v1/payments/orders/{held['payment']['order_id']}", headers=world.tenant.headers
    ).json()
    assert order["refunded_fen"] == 50000
    for owner in (world.creator_owner(), "platform:pins", "pins:sales"):
        assert world.balance(owner) == 0, owner
    assert world.pinned()["pinned"] == []
