"""Removing pins (P8): the creator's own removal is refunded through the provider and the
ledger reverses; a removal for breaking the rules is not refunded."""

from __future__ import annotations

from typing import Any

from tests.conftest import TenantHandle
from tests.pins.conftest import PinWorld
from zanloop.db import Database
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import Scope


def _creator_key(db: Database, world: PinWorld, creator: str | None = None) -> TenantHandle:
    with db.session() as session:
        issued = tenancy.create_key(
            session, world.tenant.id, "creator", [Scope.CREATOR], creator or world.creator
        )
    return TenantHandle(world.tenant.id, issued.plaintext)


def _remove(world: PinWorld, who: TenantHandle, pin_id: str, **body: Any) -> Any:
    return world.client.post(f"/v1/pins/{pin_id}/remove", json=body, headers=who.write_headers())


def _order(world: PinWorld, order_id: str) -> dict[str, Any]:
    return dict(
        world.client.get(f"/v1/payments/orders/{order_id}", headers=world.tenant.headers).json()
    )


def test_the_creators_own_removal_refunds_the_buyer_and_reverses_the_ledger(
    world: PinWorld, db: Database
) -> None:
    # given: a live 10 CNY pin
    world.bind("viewer-1")
    bought = world.buy("viewer-1", 1000)
    creator = _creator_key(db, world)

    # when: the creator removes it
    removed = _remove(world, creator, bought["pin"]["id"], reason="off topic")

    # then: hidden at once; refunded once the provider confirms
    assert removed.status_code == 200, removed.text
    assert (removed.json()["status"], removed.json()["removed_by"]) == ("REMOVED", "creator")
    assert world.pinned()["pinned"] == []
    world.worker.drain()
    assert world.pin(bought["pin"]["id"])["status"] == "REFUNDED"
    order = _order(world, bought["payment"]["order_id"])
    assert (order["status"], order["refunded_fen"]) == ("REFUND", 1000)
    assert world.balance(world.creator_owner()) == 0
    assert world.balance("platform:pins") == 0
    assert world.balance("pins:sales") == 0


def test_a_platform_removal_for_a_violation_keeps_the_money_where_it_was(
    world: PinWorld,
) -> None:
    world.bind("viewer-2")
    bought = world.buy("viewer-2", 1000)

    removed = _remove(world, world.tenant, bought["pin"]["id"], reason="abuse", violation=True)
    world.worker.drain()

    assert removed.status_code == 200, removed.text
    pin = world.pin(bought["pin"]["id"])
    assert (pin["status"], pin["removed_by"], pin["end_reason"]) == ("REMOVED", "platform", "abuse")
    assert _order(world, bought["payment"]["order_id"])["refunded_fen"] == 0
    assert world.balance(world.creator_owner()) == 700
    assert world.balance("platform:pins") == 300
    assert world.pinned()["pinned"] == []


def test_removing_twice_is_harmless_and_a_pending_pin_cannot_be_removed(
    world: PinWorld, db: Database
) -> None:
    world.bind("viewer-3")
    live = world.buy("viewer-3", 500)
    pending = world.buy("viewer-3", 500, pay=False)
    creator = _creator_key(db, world)

    first = _remove(world, creator, live["pin"]["id"])
    again = _remove(world, creator, live["pin"]["id"])
    not_live = _remove(world, creator, pending["pin"]["id"])
    world.worker.drain()

    assert first.status_code == again.status_code == 200
    assert not_live.status_code == 409
    order = _order(world, live["payment"]["order_id"])
    assert order["refunded_fen"] == 500  # refunded once, not twice


def test_a_creator_policy_can_keep_the_money_on_its_own_removals(
    world: PinWorld, db: Database
) -> None:
    world.client.put(
        f"/v1/creators/{world.creator}",
        json={
            "name": "熊二赶海",
            "programmes": ["incentive"],
            "policy": {"refund_on_creator_removal": False},
        },
        headers=world.tenant.headers,
    ).raise_for_status()
    world.bind("viewer-4")
    bought = world.buy("viewer-4", 1000, pay=False)
    assert "Not refunded if the creator removes it" in bought["disclosure"]["refund_terms"]
    world.pay(bought)

    _remove(world, _creator_key(db, world), bought["pin"]["id"]).raise_for_status()
    world.worker.drain()

    assert world.pin(bought["pin"]["id"])["status"] == "REMOVED"
    assert _order(world, bought["payment"]["order_id"])["refunded_fen"] == 0


def test_a_refund_made_directly_through_payments_also_ends_the_pin(world: PinWorld) -> None:
    world.bind("viewer-5")
    bought = world.buy("viewer-5", 1000)

    world.client.post(
        f"/v1/payments/orders/{bought['payment']['order_id']}/refunds",
        json={"amount_fen": 400},
        headers=world.tenant.write_headers(),
    ).raise_for_status()
    world.worker.drain()
    partly = world.pin(bought["pin"]["id"])
    partial_balances = (world.balance(world.creator_owner()), world.balance("platform:pins"))
    world.client.post(
        f"/v1/payments/orders/{bought['payment']['order_id']}/refunds",
        headers=world.tenant.write_headers(),
    ).raise_for_status()
    world.worker.drain()

    # a partial refund reverses its share (400: creator 280, platform 120), the rest ends it
    assert partly["status"] == "ACTIVE"
    assert partial_balances == (700 - 280, 300 - 120)
    assert world.pin(bought["pin"]["id"])["status"] == "REFUNDED"
    assert (world.balance(world.creator_owner()), world.balance("platform:pins")) == (0, 0)
    assert world.balance("pins:sales") == 0


def test_a_creator_key_acts_for_its_own_creator_only(world: PinWorld, db: Database) -> None:
    # given: another creator's key, and this creator's live pin
    world.client.put(
        "/v1/creators/rival",
        json={"name": "r", "programmes": ["commerce"]},
        headers=world.tenant.headers,
    ).raise_for_status()
    rival = _creator_key(db, world, "rival")
    world.bind("viewer-6")
    bought = world.buy("viewer-6", 500)

    # then: it can neither remove the pin, nor read the analytics, nor change the content
    assert _remove(world, rival, bought["pin"]["id"]).status_code == 403
    analytics = world.client.get(f"/v1/creators/{world.creator}/analytics", headers=rival.headers)
    patched = world.client.patch(
        f"/v1/contents/{world.content}", json={"pins_enabled": False}, headers=rival.headers
    )
    assert analytics.status_code == patched.status_code == 403
    assert world.pin(bought["pin"]["id"])["status"] == "ACTIVE"
    own = world.client.get("/v1/creators/rival/analytics", headers=rival.headers)
    assert own.status_code == 200


def test_a_creator_key_must_name_its_creator(world: PinWorld) -> None:
    response = world.client.post(
        "/v1/api-keys", json={"name": "c", "scopes": ["creator"]}, headers=world.tenant.headers
    )
    named = world.client.post(
        "/v1/api-keys",
        json={"name": "c", "scopes": ["creator"], "creator_id": world.creator},
        headers=world.tenant.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "creator_id"
    assert named.status_code == 201
    assert named.json()["creator_id"] == world.creator
