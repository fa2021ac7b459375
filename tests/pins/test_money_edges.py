"""The edges where money could get lost: payments that complete late, refunds cut in pieces
or refused, removals racing time, and keys acting beyond their creator."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import update

from tests.conftest import TenantHandle
from tests.pins.conftest import PinWorld
from zanloop.db import Database
from zanloop.pins import service
from zanloop.sandbox.tables import SandboxOrder
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import Scope


def _order(world: PinWorld, order_id: str) -> dict[str, Any]:
    response = world.client.get(f"/v1/payments/orders/{order_id}", headers=world.tenant.headers)
    return dict(response.json())


def _creator_key(db: Database, world: PinWorld, creator: str) -> TenantHandle:
    with db.session() as session:
        issued = tenancy.create_key(session, world.tenant.id, "c", [Scope.CREATOR], creator)
    return TenantHandle(world.tenant.id, issued.plaintext)


def test_a_payment_that_succeeds_after_failing_is_refunded_not_kept(
    world: PinWorld, db: Database
) -> None:
    # given: the first attempt fails and the order is seen as failed: the pin is cancelled
    world.bind("v1")
    bought = world.buy("v1", 1000, pay=False)
    out_trade_no, order_id = bought["payment"]["out_trade_no"], bought["payment"]["order_id"]
    headers = world.tenant.headers
    world.client.post(f"/v1/sandbox/orders/{out_trade_no}/fail", headers=headers)
    world.client.post(f"/v1/payments/orders/{order_id}/sync", headers=world.tenant.write_headers())
    assert world.pin(bought["pin"]["id"])["status"] == "CANCELLED"

    # when: the buyer pays after all (WeChat Pay allows PAYERROR -> SUCCESS; the sandbox does
    # not model a second attempt, so its order is set back to unpaid first)
    with db.session() as session:
        session.execute(
            update(SandboxOrder)
            .where(SandboxOrder.out_trade_no == out_trade_no)
            .values(trade_state="NOTPAY")
        )
    world.pay(bought)

    # then: the money goes back; nothing stays in pins:sales, nothing is shown
    order = _order(world, order_id)
    assert (order["status"], order["refunded_fen"]) == ("REFUND", 1000)
    assert world.pin(bought["pin"]["id"])["status"] == "REFUNDED"
    assert world.balance("pins:sales") == 0
    assert world.pinned()["pinned"] == []


def test_a_payment_for_content_that_stopped_taking_pins_is_refunded(world: PinWorld) -> None:
    world.bind("v2")
    bought = world.buy("v2", 500, pay=False)
    world.client.patch(
        f"/v1/contents/{world.content}", json={"pins_enabled": False}, headers=world.tenant.headers
    ).raise_for_status()

    world.pay(bought)

    pin = world.pin(bought["pin"]["id"])
    assert pin["status"] == "REFUNDED"
    assert "stopped accepting pins" in pin["end_reason"]
    assert world.balance("pins:sales") == 0


def test_refunds_cut_in_pieces_give_back_exactly_what_was_refunded(world: PinWorld) -> None:
    world.bind("v3")
    bought = world.buy("v3", 10)  # 7 fen to the creator, 3 to the platform
    order_id = bought["payment"]["order_id"]

    for step in range(1, 10):  # nine refunds of 1 fen
        world.client.post(
            f"/v1/payments/orders/{order_id}/refunds",
            json={"amount_fen": 1},
            headers=world.tenant.write_headers(),
        ).raise_for_status()
        world.worker.drain()
        creator, platform = world.balance(world.creator_owner()), world.balance("platform:pins")
        assert creator + platform == 10 - step
        assert world.balance("pins:sales") == 0
    assert world.pin(bought["pin"]["id"])["refunded_fen"] == 9


def test_a_refused_refund_is_tried_again(world: PinWorld, db: Database) -> None:
    world.bind("v4")
    bought = world.buy("v4", 800)

    # when: the provider refused a refund of this pin (as its refund.failed event says)
    with db.session() as session:
        service.on_refund_failed(session, bought["payment"]["order_id"])
    world.worker.drain()

    # then: a new refund went out and settled
    order = _order(world, bought["payment"]["order_id"])
    assert order["refunded_fen"] == 800
    refunds = world.client.get(
        f"/v1/payments/orders/{order['id']}/refunds", headers=world.tenant.headers
    ).json()
    assert [r["out_refund_no"].endswith("r1") for r in refunds] == [True]


def test_a_creator_cannot_call_its_removal_a_violation_to_keep_the_money(
    world: PinWorld, db: Database
) -> None:
    world.bind("v5")
    bought = world.buy("v5", 1000)
    creator = _creator_key(db, world, world.creator)

    response = world.client.post(
        f"/v1/pins/{bought['pin']['id']}/remove",
        json={"violation": True},
        headers=creator.write_headers(),
    )

    assert response.status_code == 403
    assert world.pin(bought["pin"]["id"])["status"] == "ACTIVE"


def test_the_refund_terms_shown_at_purchase_hold_after_a_policy_change(
    world: PinWorld, db: Database
) -> None:
    world.bind("v6")
    bought = world.buy("v6", 1000)
    world.client.put(
        "/v1/pins/policy", json={"refund_on_creator_removal": False}, headers=world.tenant.headers
    ).raise_for_status()

    world.client.post(
        f"/v1/pins/{bought['pin']['id']}/remove",
        headers=_creator_key(db, world, world.creator).write_headers(),
    ).raise_for_status()
    world.worker.drain()

    assert _order(world, bought["payment"]["order_id"])["refunded_fen"] == 1000


def test_a_timed_pin_whose_time_is_over_cannot_be_removed_for_a_refund(world: PinWorld) -> None:
    world.client.put(
        "/v1/pins/policy",
        json={
            "mode": "timed",
            "tiers": [{"min_amount_fen": 10, "duration_seconds": 1, "max_message_chars": 10}],
        },
        headers=world.tenant.headers,
    ).raise_for_status()
    world.bind("v7")
    bought = world.buy("v7", 100)
    time.sleep(1.1)

    response = world.client.post(
        f"/v1/pins/{bought['pin']['id']}/remove", headers=world.tenant.write_headers()
    )

    assert response.status_code == 409
    assert _order(world, bought["payment"]["order_id"])["refunded_fen"] == 0


def test_creator_keys_cannot_raise_their_own_quality_or_replay_past_the_check(
    world: PinWorld, db: Database
) -> None:
    own = _creator_key(db, world, world.creator)
    world.client.put(
        "/v1/creators/rival",
        json={"name": "r", "programmes": ["commerce"]},
        headers=world.tenant.headers,
    ).raise_for_status()
    rival = _creator_key(db, world, "rival")
    world.bind("v8")
    bought = world.buy("v8", 500)

    quality = world.client.patch(
        f"/v1/contents/{world.content}",
        json={"completion_rate": 1.0, "engagement_rate": 1.0},
        headers=own.headers,
    )
    switch_off = world.client.patch(
        f"/v1/contents/{world.content}", json={"pins_enabled": True}, headers=own.headers
    )
    # the owner removes with a key; the rival replays the very same key
    key = "remove-once"
    first = world.client.post(
        f"/v1/pins/{bought['pin']['id']}/remove", headers={**own.headers, "Idempotency-Key": key}
    )
    replay = world.client.post(
        f"/v1/pins/{bought['pin']['id']}/remove",
        headers={**rival.headers, "Idempotency-Key": key},
    )

    assert quality.status_code == 403
    assert switch_off.status_code == 200
    assert first.status_code == 200
    assert replay.status_code == 403


def test_odd_input_is_a_problem_not_a_500(world: PinWorld) -> None:
    headers = world.tenant.headers
    for body, field in (({"title": None}, "title"), ({"pins_enabled": None}, "pins_enabled")):
        response = world.client.patch(f"/v1/contents/{world.content}", json=body, headers=headers)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field
    naive = world.client.get(
        f"/v1/creators/{world.creator}/analytics",
        params={"since": "2020-01-01T00:00:00"},
        headers=headers,
    )
    no_device = world.client.post(
        "/v1/pins",
        json={"content_id": world.content, "buyer_id": "v9", "amount_fen": 100},
        headers=world.tenant.write_headers(),
    )
    assert naive.status_code == no_device.status_code == 422
    assert no_device.json()["errors"][0]["field"] == "device_id"


def test_a_tenant_policy_that_would_break_a_creators_overrides_is_refused(
    world: PinWorld,
) -> None:
    headers = world.tenant.headers
    world.client.put(
        f"/v1/creators/{world.creator}",
        json={"name": "n", "programmes": ["incentive"], "policy": {"min_amount_fen": 50}},
        headers=headers,
    ).raise_for_status()

    refused = world.client.put(
        "/v1/pins/policy",
        json={
            "tiers": [{"min_amount_fen": 100, "duration_seconds": 60, "max_message_chars": 10}],
            "min_amount_fen": 100,
        },
        headers=headers,
    )

    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"].startswith(f"creators.{world.creator}.")
    assert world.client.get(f"/v1/contents/{world.content}", headers=headers).status_code == 200
