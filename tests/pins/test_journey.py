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
