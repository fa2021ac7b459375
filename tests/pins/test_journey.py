"""The paid pinned like, end to end through the API and the sandbox."""

from __future__ import annotations

from tests.pins.conftest import PinWorld


def test_a_paid_pin_goes_live_on_the_verified_payment_and_splits_the_money(
    world: PinWorld,
) -> None:
    # given: a viewer with a bound payment account
    world.bind("viewer-1")

    # when: the viewer asks for a 5 CNY pin with a message
    bought = world.buy("viewer-1", 500, message="加油!", pay=False)

    # then: a payment order with JSAPI parameters and a disclosure; nothing shows yet
    assert bought["pin"]["status"] == "PENDING"
    assert set(bought["payment"]["pay_params"]) >= {"appId", "package", "paySign"}
    disclosure = bought["disclosure"]
    assert disclosure["amount_fen"] == 500
    assert "Low tide at dawn" in disclosure["what"]
    assert "Refunded in full if the creator removes it" in disclosure["refund_terms"]
    assert world.pinned()["pinned"] == []

    # when: the buyer pays in the sandbox and the signed notification arrives
    world.pay(bought)

    # then: the pin is live at the top and the money is split 70 / 30
    pin = world.pin(bought["pin"]["id"])
    assert pin["status"] == "ACTIVE"
    listed = world.pinned()
    assert [p["pin_id"] for p in listed["pinned"]] == [pin["id"]]
    assert listed["pinned"][0]["message"] == "加油!"
    assert (pin["creator_fen"], pin["platform_fen"]) == (350, 150)
    assert world.balance(world.creator_owner()) == 350
    assert world.balance("platform:pins") == 150
    assert world.balance("pins:sales") == 0


def test_the_pinned_list_shows_the_top_slots_by_amount_then_time_and_queues_the_rest(
    world: PinWorld,
) -> None:
    # given: five viewers pin 1, 5, 5, 20 and 2 CNY, in that order (3 slots)
    amounts = {"v1": 100, "v2": 500, "v3": 500, "v4": 2000, "v5": 200}
    pins = {}
    for viewer, amount in amounts.items():
        world.bind(viewer)
        pins[viewer] = world.buy(viewer, amount)["pin"]["id"]

    # then
    listed = world.pinned()
    assert [p["pin_id"] for p in listed["pinned"]] == [pins["v4"], pins["v2"], pins["v3"]]
    assert [p["pin_id"] for p in listed["queued"]] == [pins["v5"], pins["v1"]]
    assert listed["slots"] == 3


def test_a_pin_whose_payment_never_completes_never_shows(world: PinWorld) -> None:
    world.bind("viewer-2")
    bought = world.buy("viewer-2", 300, pay=False)

    failed = world.client.post(
        f"/v1/sandbox/orders/{bought['payment']['out_trade_no']}/fail",
        headers=world.tenant.headers,
    )
    world.worker.drain()
    closed = world.client.post(
        f"/v1/payments/orders/{bought['payment']['order_id']}/close",
        headers=world.tenant.write_headers(),
    )
    world.worker.drain()

    assert failed.status_code == 200, failed.text
    assert closed.status_code == 200, closed.text
    assert world.pin(bought["pin"]["id"])["status"] == "CANCELLED"
    assert world.pinned()["pinned"] == []
    assert world.balance("pins:sales") == 0


def test_paying_needs_a_bound_payment_account(world: PinWorld) -> None:
    unbound = world.request_pin("stranger", 500)

    world.bind("stranger")
    world.client.delete("/v1/bindings/stranger", headers=world.tenant.headers).raise_for_status()
    unbound_again = world.request_pin("stranger", 500)

    for response in (unbound, unbound_again):
        assert response.status_code == 409
        assert response.json()["type"] == "urn:zanloop:problem:payer-not-bound"
    assert world.client.get("/v1/pins", headers=world.tenant.headers).json()["data"] == []


def test_content_of_an_unenrolled_creator_or_of_low_quality_takes_no_pins(
    world: PinWorld,
) -> None:
    world.bind("viewer-3")
    client, headers = world.client, world.tenant.headers
    client.put(
        "/v1/creators/hobbyist", json={"name": "h", "programmes": []}, headers=headers
    ).raise_for_status()
    client.put(
        "/v1/contents/hobby-video",
        json={"creator_id": "hobbyist", "kind": "video", "title": "h"},
        headers=headers,
    ).raise_for_status()
    low = client.patch(
        f"/v1/contents/{world.content}",
        json={"completion_rate": 0.1, "engagement_rate": 0.001},
        headers=headers,
    )

    unenrolled = world.request_pin("viewer-3", 500, content_id="hobby-video")
    low_quality = world.request_pin("viewer-3", 500)

    assert low.json()["accepts_pins"] is False
    assert low.json()["quality_score"] == 6
    assert unenrolled.status_code == low_quality.status_code == 409
    assert "no incentive or commerce programme" in unenrolled.json()["detail"]
    assert "quality score 6 is below 30" in low_quality.json()["detail"]
    hobby = client.get("/v1/contents/hobby-video", headers=headers).json()
    assert (hobby["accepts_pins"], hobby["eligibility"]) == (
        False,
        "the creator is in no incentive or commerce programme",
    )


def test_amount_and_message_follow_the_policy(world: PinWorld) -> None:
    world.bind("viewer-4")

    too_small = world.request_pin("viewer-4", 9)
    long_message = world.request_pin("viewer-4", 10, message="x" * 21)
    fits = world.request_pin("viewer-4", 10, message="x" * 20)

    assert too_small.status_code == long_message.status_code == 422
    assert too_small.json()["errors"][0]["field"] == "amount_fen"
    assert long_message.json()["errors"][0]["field"] == "message"
    assert fits.status_code == 201


def test_a_burst_of_pins_from_one_device_is_blocked_and_logged(world: PinWorld) -> None:
    # given: six accounts on one phone; the default allows 10 pins a minute per device and 3
    # accounts per device a day
    for i in range(6):
        world.bind(f"burst-{i}")
    statuses = [
        world.request_pin(f"burst-{i % 3}", 100, device_id="one-phone").status_code
        for i in range(12)
    ]
    fourth_account = world.request_pin("burst-4", 100, device_id="one-phone")

    assert statuses == [201] * 10 + [403, 403]
    assert fourth_account.status_code == 403
    problem = fourth_account.json()
    assert problem["type"] == "urn:zanloop:problem:risk-blocked"
    assert "too_many_accounts" in problem["reasons"]
    logged = world.client.get(
        f"/v1/risk/decisions/{problem['decision_id']}", headers=world.tenant.headers
    ).json()
    assert logged["verdict"] == "BLOCK"
