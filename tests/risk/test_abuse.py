"""Scripted abuse, as a new user of zanloop would try it against the default policy: each
attack is stopped with the right reason while honest traffic beside it passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from tests.conftest import TenantHandle
from tests.risk.helpers import codes, decide, pin
from zanloop.jobs.worker import Worker


def test_many_accounts_on_one_device_are_blocked_after_the_third(
    client: TestClient, tenant: TenantHandle
) -> None:
    # given: a farm device that four fresh accounts use in turn, and an honest user elsewhere
    verdicts = [
        decide(client, tenant, **pin(f"farm-{i}", "device-farm", f"10.0.{i}.1"))["verdict"]
        for i in range(5)
    ]
    honest = decide(client, tenant, **pin("alice", "device-alice", "10.9.0.1"))

    # then: three accounts pass, the fourth and fifth are blocked; the first ones keep working
    assert verdicts == ["ALLOW", "ALLOW", "ALLOW", "BLOCK", "BLOCK"]
    blocked = decide(client, tenant, **pin("farm-4", "device-farm", "10.0.4.1"))
    assert codes(blocked) == {"too_many_accounts"}
    assert "device device-farm would be used by 4 accounts in 1d (limit 3)" in [
        r["message"] for r in blocked["reasons"]
    ]
    assert decide(client, tenant, **pin("farm-0", "device-farm", "10.0.0.1"))["verdict"] == "ALLOW"
    assert honest["verdict"] == "ALLOW"


def test_a_burst_of_paid_pins_is_blocked_and_does_not_use_up_the_allowance(
    client: TestClient, tenant: TenantHandle
) -> None:
    # when: one user buys eight pins in a row (limit: 5 a minute)
    burst = [decide(client, tenant, **pin("bob", "device-bob", "10.1.0.1")) for _ in range(8)]
    other = decide(client, tenant, **pin("carol", "device-carol", "10.1.0.2"))

    # then
    assert [d["verdict"] for d in burst] == ["ALLOW"] * 5 + ["BLOCK"] * 3
    assert all(codes(d) == {"velocity_count"} for d in burst[5:])
    assert burst[5]["reasons"][0]["rule_id"] == "pin-burst-user"
    assert other["verdict"] == "ALLOW"


def test_an_unverified_or_unbound_payer_cannot_buy_a_pin(
    client: TestClient, tenant: TenantHandle
) -> None:
    unverified = decide(client, tenant, **pin("dave", "d-dave", "10.2.0.1", payer_verified=False))
    unbound = pin("erin", "d-erin", "10.2.0.2")
    del unbound["payment_account"]
    no_binding = decide(client, tenant, **unbound)

    assert unverified["verdict"] == no_binding["verdict"] == "BLOCK"
    assert codes(unverified) == codes(no_binding) == {"real_name_required"}


def test_a_blocked_ip_range_stops_every_address_in_it(
    client: TestClient, tenant: TenantHandle
) -> None:
    # given: an analyst blocks a /24
    entry = client.post(
        "/v1/risk/lists",
        json={"list": "block", "subject": "ip", "value": "198.51.100.0/24", "note": "click farm"},
        headers=tenant.headers,
    )
    assert entry.status_code == 201, entry.text

    # when
    inside = decide(client, tenant, **pin("frank", "d-frank", "198.51.100.77"))
    outside = decide(client, tenant, **pin("grace", "d-grace", "198.51.101.77"))

    # then
    assert inside["verdict"] == "BLOCK"
    assert codes(inside) == {"blocklisted"}
    assert "198.51.100.0/24 is on the block list (click farm)" in inside["reasons"][0]["message"]
    assert outside["verdict"] == "ALLOW"


def test_like_prompts_stop_at_three_a_day(client: TestClient, tenant: TenantHandle) -> None:
    prompts = [
        decide(client, tenant, action="like.prompt", user_id="henry")["verdict"] for _ in range(4)
    ]
    assert prompts == ["ALLOW", "ALLOW", "ALLOW", "BLOCK"]


def _reward(order: dict[str, Any], user: str, **extra: Any) -> dict[str, Any]:
    return {
        "action": "reward.grant",
        "user_id": user,
        "amount_fen": order["amount_fen"],
        "payment_order_id": order["id"],
        "payment_account": order["payer_openid"],
        "device_id": f"device-{user}",
        "ip": "10.3.0.1",
        **extra,
    }


def test_split_orders_just_above_the_reward_threshold_go_to_review(
    client: TestClient,
    tenant: TenantHandle,
    paid_order: Callable[..., dict[str, Any]],
) -> None:
    # given: a 50 CNY reward threshold; one buyer splits 150 CNY in three 50.50 CNY payments,
    # another pays 120 CNY once
    context = {"reward_threshold_fen": 5000}
    split = [paid_order(tenant, 5050, payer_openid="o-ivan") for _ in range(3)]
    honest = paid_order(tenant, 12000, payer_openid="o-judy")

    # when
    verdicts = [decide(client, tenant, **_reward(o, "ivan", context=context)) for o in split]
    normal = decide(client, tenant, **_reward(honest, "judy", context=context))

    # then
    assert [d["verdict"] for d in verdicts] == ["ALLOW", "ALLOW", "REVIEW"]
    assert codes(verdicts[2]) == {"split_order"}
    assert normal["verdict"] == "ALLOW"


def test_a_reward_then_refund_is_remembered_and_the_next_reward_is_held(
    client: TestClient,
    tenant: TenantHandle,
    worker: Worker,
    paid_order: Callable[..., dict[str, Any]],
) -> None:
    # given: kim is rewarded for a payment, then refunds it
    first = paid_order(tenant, 6000, payer_openid="o-kim")
    assert decide(client, tenant, **_reward(first, "kim"))["verdict"] == "ALLOW"
    refund = client.post(
        f"/v1/payments/orders/{first['id']}/refunds", headers=tenant.write_headers()
    )
    assert refund.status_code == 201, refund.text
    worker.drain()

    # when: the refunded payment is claimed again, and a new payment earns a reward
    again = decide(client, tenant, **_reward(first, "kim"))
    second = paid_order(tenant, 6000, payer_openid="o-kim")
    next_reward = decide(client, tenant, **_reward(second, "kim"))
    honest_order = paid_order(tenant, 6000, payer_openid="o-lee")
    honest = decide(client, tenant, **_reward(honest_order, "lee"))

    # then
    assert again["verdict"] == "BLOCK"
    assert codes(again) == {"payment_refunded", "refund_after_reward"}
    assert next_reward["verdict"] == "REVIEW"
    assert codes(next_reward) == {"refund_after_reward"}
    assert honest["verdict"] == "ALLOW"


def test_a_reward_needs_a_completed_payment_of_that_amount_and_payer(
    client: TestClient,
    tenant: TenantHandle,
    create_order: Callable[..., dict[str, Any]],
    paid_order: Callable[..., dict[str, Any]],
) -> None:
    unpaid = create_order(tenant, 3000, payer_openid="o-mia")
    paid = paid_order(tenant, 3000, payer_openid="o-mia")

    cases = {
        "payment_missing": {"action": "reward.grant", "user_id": "mia"},
        "payment_not_found": _reward({**paid, "id": "pay_nope"}, "mia"),
        "payment_not_completed": _reward(unpaid, "mia"),
        "payment_amount_mismatch": _reward(paid, "mia", amount_fen=30000),
        "payer_mismatch": _reward(paid, "mia", payment_account="o-someone-else"),
    }
    for code, body in cases.items():
        decision = decide(client, tenant, **body)
        assert decision["verdict"] == "BLOCK", code
        assert codes(decision) == {code}
    assert decide(client, tenant, **_reward(paid, "mia"))["verdict"] == "ALLOW"
    # one reward per payment, whichever id names it; another user cannot claim it either
    again = decide(client, tenant, **_reward(paid, "mia", payment_order_id=paid["out_trade_no"]))
    thief = decide(client, tenant, **_reward(paid, "nina"))
    assert codes(again) == {"payment_reused"}
    assert again["verdict"] == thief["verdict"] == "BLOCK"


def test_an_allow_listed_tester_skips_velocity_but_not_the_payment_checks(
    client: TestClient, tenant: TenantHandle
) -> None:
    client.post(
        "/v1/risk/lists",
        json={"list": "allow", "subject": "user", "value": "qa-bot"},
        headers=tenant.headers,
    ).raise_for_status()

    burst = [decide(client, tenant, **pin("qa-bot", "d-qa", "10.4.0.1")) for _ in range(8)]
    reward = decide(client, tenant, action="reward.grant", user_id="qa-bot")

    assert {d["verdict"] for d in burst} == {"ALLOW"}
    assert codes(reward) == {"payment_missing"}
