"""Many viewers pin one content item at once, through a real server: every purchase gets its
own order, every paid pin goes live once, and the display order is exactly amount then time."""

from __future__ import annotations

import httpx2 as httpx

from tests.conftest import at_once
from tests.pins.conftest import PinWorld


def test_concurrent_purchases_on_one_item_keep_order_and_slots_right(
    world: PinWorld, live_server: str, http: httpx.Client
) -> None:
    # given: twelve bound viewers; amounts with ties
    amounts = [100, 500, 500, 2000, 200, 100, 800, 2000, 50, 500, 300, 1000]
    for i in range(len(amounts)):
        world.bind(f"v{i}")

    # when: they all buy at once, then all pay at once
    bought = at_once(
        len(amounts),
        lambda i: http.post(
            f"{live_server}/v1/pins",
            json={
                "content_id": world.content,
                "buyer_id": f"v{i}",
                "amount_fen": amounts[i],
                "device_id": f"d{i}",
            },
            headers=world.tenant.write_headers(),
        ),
    )
    assert [r.status_code for r in bought] == [201] * len(amounts), [r.text for r in bought]
    at_once(
        len(amounts),
        lambda i: http.post(
            f"{live_server}/v1/sandbox/orders/{bought[i].json()['payment']['out_trade_no']}/pay",
            headers=world.tenant.headers,
        ).raise_for_status(),
    )
    world.worker.drain()

    # then: all live, once each, in amount-then-time order
    pins = [world.pin(r.json()["pin"]["id"]) for r in bought]
    assert {p["status"] for p in pins} == {"ACTIVE"}
    assert len({p["payment_order_id"] for p in pins}) == len(amounts)
    expected = sorted(pins, key=lambda p: (-p["amount_fen"], p["activated_at"], p["id"]))
    listed = world.pinned()
    assert [e["pin_id"] for e in listed["pinned"]] == [p["id"] for p in expected[:3]]
    assert [e["pin_id"] for e in listed["queued"]] == [p["id"] for p in expected[3:]]
    total = sum(amounts)
    creator = sum(p["creator_fen"] for p in pins)
    assert world.balance(world.creator_owner()) == creator
    assert world.balance("platform:pins") == total - creator
    assert world.balance("pins:sales") == 0


def test_concurrent_removals_of_one_pin_refund_it_once(
    world: PinWorld, live_server: str, http: httpx.Client
) -> None:
    world.bind("v")
    bought = world.buy("v", 1000)

    responses = at_once(
        6,
        lambda _: http.post(
            f"{live_server}/v1/pins/{bought['pin']['id']}/remove",
            json={"reason": "dup"},
            headers=world.tenant.write_headers(),
        ),
    )
    world.worker.drain()

    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    order = world.client.get(
        f"/v1/payments/orders/{bought['payment']['order_id']}", headers=world.tenant.headers
    ).json()
    assert order["refunded_fen"] == 1000
    assert world.pin(bought["pin"]["id"])["status"] == "REFUNDED"
