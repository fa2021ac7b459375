"""The review queue: a REVIEW holds its effect in the ledger until an analyst decides, and
nothing is lost either way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.conftest import TenantHandle
from tests.risk.helpers import decide
from zanloop.jobs.worker import Worker
from zanloop.tenancy.domain import Scope

MERCHANT = "merchant:coffee"
BUDGET = 1_000_000

# Rewards above 100 CNY of spend wait for a person; rewards need a real payment.
REVIEW_BIG_REWARDS = {
    "rules": [
        {
            "id": "big-reward",
            "type": "amount_limit",
            "actions": ["reward.grant"],
            "max_amount_fen": 10000,
            "verdict": "REVIEW",
            "score": 20,
        }
    ]
}


@pytest.fixture
def funded(client: TestClient, tenant: TenantHandle) -> TenantHandle:
    return _fund(client, tenant)


def _fund(client: TestClient, tenant: TenantHandle) -> TenantHandle:
    """Give a tenant the review policy and a merchant points budget."""
    client.put(
        "/v1/risk/policy", json=REVIEW_BIG_REWARDS, headers=tenant.headers
    ).raise_for_status()
    client.post(
        "/v1/ledger/accounts",
        json={"owner": "issuer", "asset": "POINTS", "overdraft_allowed": True},
        headers=tenant.write_headers(),
    ).raise_for_status()
    client.post(
        "/v1/ledger/transfers",
        json={
            "transfer_id": "budget",
            "asset": "POINTS",
            "legs": [{"owner": "issuer", "amount": -BUDGET}, {"owner": MERCHANT, "amount": BUDGET}],
        },
        headers=tenant.write_headers(),
    ).raise_for_status()
    return tenant


def _balance(client: TestClient, tenant: TenantHandle, owner: str) -> dict[str, Any]:
    response = client.get(
        f"/v1/ledger/balances/{owner}", params={"asset": "POINTS"}, headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _held_reward(
    client: TestClient, tenant: TenantHandle, user: str, points: int, amount_fen: int = 20000
) -> dict[str, Any]:
    decision = decide(
        client,
        tenant,
        action="reward.grant",
        user_id=user,
        amount_fen=amount_fen,
        hold={"asset": "POINTS", "from_owner": MERCHANT, "to_owner": user, "amount": points},
    )
    assert decision["verdict"] == "REVIEW", decision
    assert decision["review"] is not None
    return decision


def test_a_review_holds_the_reward_and_approval_posts_exactly_the_held_amount(
    client: TestClient, funded: TenantHandle
) -> None:
    # when
    decision = _held_reward(client, funded, "user:1", 500)
    review = decision["review"]

    # then: reserved from the merchant, not yet the user's
    merchant = _balance(client, funded, MERCHANT)
    assert (merchant["balance"], merchant["pending_out"]) == (BUDGET, 500)
    assert _balance(client, funded, "user:1")["balance"] == 0
    queue = client.get("/v1/risk/reviews", headers=funded.headers).json()["data"]
    assert [r["id"] for r in queue] == [review["id"]]

    # when: the analyst approves (twice: a retry)
    approved = client.post(
        f"/v1/risk/reviews/{review['id']}/approve",
        json={"note": "regular customer"},
        headers=funded.write_headers("approve-1"),
    )
    again = client.post(
        f"/v1/risk/reviews/{review['id']}/approve",
        json={"note": "regular customer"},
        headers=funded.write_headers("approve-2"),
    )

    # then
    assert approved.status_code == again.status_code == 200, approved.text
    assert approved.json()["status"] == "APPROVED"
    assert approved.json()["note"] == "regular customer"
    assert _balance(client, funded, "user:1")["balance"] == 500
    merchant = _balance(client, funded, MERCHANT)
    assert (merchant["balance"], merchant["pending_out"]) == (BUDGET - 500, 0)
    hold = client.get(f"/v1/ledger/holds/{review['hold_id']}", headers=funded.headers).json()
    assert (hold["status"], hold["posted_amount"]) == ("POSTED", 500)
    assert client.get("/v1/risk/reviews", headers=funded.headers).json()["data"] == []


def test_a_rejected_review_leaves_every_balance_as_before(
    client: TestClient, funded: TenantHandle
) -> None:
    review = _held_reward(client, funded, "user:2", 700)["review"]

    rejected = client.post(
        f"/v1/risk/reviews/{review['id']}/reject", headers=funded.write_headers()
    )
    approve_after = client.post(
        f"/v1/risk/reviews/{review['id']}/approve", headers=funded.write_headers()
    )

    assert rejected.status_code == 200
    assert rejected.json()["status"] == "REJECTED"
    assert approve_after.status_code == 409
    assert approve_after.json()["type"] == "urn:zanloop:problem:invalid-state"
    merchant = _balance(client, funded, MERCHANT)
    assert (merchant["balance"], merchant["pending_out"], merchant["available"]) == (
        BUDGET,
        0,
        BUDGET,
    )
    assert _balance(client, funded, "user:2")["balance"] == 0


def test_every_review_action_is_audited_with_its_analyst(
    client: TestClient, funded: TenantHandle, make_tenant: Callable[..., TenantHandle]
) -> None:
    review = _held_reward(client, funded, "user:3", 100)["review"]
    client.post(
        f"/v1/risk/reviews/{review['id']}/reject",
        json={"note": "ring"},
        headers=funded.write_headers(),
    ).raise_for_status()

    audit = client.get(
        "/v1/risk/audit", params={"subject_id": review["id"]}, headers=funded.headers
    ).json()["data"]

    assert [a["action"] for a in audit] == ["review.rejected", "review.opened"]
    assert audit[0]["detail"]["note"] == "ring"
    assert audit[0]["actor"] not in ("", "system")


def test_only_analysts_resolve_reviews(client: TestClient, funded: TenantHandle, db: Any) -> None:
    from zanloop.tenancy import service as tenancy

    review = _held_reward(client, funded, "user:4", 100)["review"]
    with db.session() as session:
        merchant_key = tenancy.create_key(session, funded.id, "shop", [Scope.MERCHANT]).plaintext
        analyst_key = tenancy.create_key(session, funded.id, "risk", [Scope.ANALYST]).plaintext
    merchant = TenantHandle(funded.id, merchant_key)
    analyst = TenantHandle(funded.id, analyst_key)

    refused = client.post(
        f"/v1/risk/reviews/{review['id']}/approve", headers=merchant.write_headers()
    )
    allowed = client.post(
        f"/v1/risk/reviews/{review['id']}/approve", headers=analyst.write_headers()
    )

    assert refused.status_code == 403
    assert allowed.status_code == 200


def test_a_refund_rejects_the_review_that_waited_on_the_payment(
    client: TestClient,
    funded: TenantHandle,
    worker: Worker,
    paid_order: Callable[..., dict[str, Any]],
) -> None:
    # given: a big reward on a real payment, held for review
    order = paid_order(funded, 20000, payer_openid="o-nick")
    review = decide(
        client,
        funded,
        action="reward.grant",
        user_id="user:5",
        amount_fen=20000,
        payment_order_id=order["id"],
        hold={"asset": "POINTS", "from_owner": MERCHANT, "to_owner": "user:5", "amount": 900},
    )["review"]

    # when: the buyer refunds before anyone looked at it
    client.post(
        f"/v1/payments/orders/{order['id']}/refunds", headers=funded.write_headers()
    ).raise_for_status()
    worker.drain()

    # then
    after = client.get(f"/v1/risk/reviews/{review['id']}", headers=funded.headers).json()
    assert (after["status"], after["resolved_by"]) == ("REJECTED", "system")
    assert _balance(client, funded, MERCHANT)["available"] == BUDGET
    assert _balance(client, funded, "user:5")["balance"] == 0


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.tuples(st.integers(1, 5000), st.booleans()), min_size=1, max_size=6))
def test_approved_reviews_move_exactly_their_amounts_and_rejected_ones_nothing(
    client: TestClient, make_tenant: Callable[..., TenantHandle], outcomes: list[tuple[int, bool]]
) -> None:
    # given: a fresh tenant per example, with its budget
    funded = _fund(client, make_tenant())
    reviews = [
        (_held_reward(client, funded, f"user:{i}", points)["review"], points, approve)
        for i, (points, approve) in enumerate(outcomes)
    ]

    # when
    for review, _, approve in reviews:
        verb = "approve" if approve else "reject"
        client.post(
            f"/v1/risk/reviews/{review['id']}/{verb}", headers=funded.write_headers()
        ).raise_for_status()

    # then
    approved = sum(points for _, points, ok in reviews if ok)
    merchant = _balance(client, funded, MERCHANT)
    assert (merchant["balance"], merchant["pending_out"]) == (BUDGET - approved, 0)
    for i, (_, points, ok) in enumerate(reviews):
        assert _balance(client, funded, f"user:{i}")["balance"] == (points if ok else 0)


def test_the_ledger_api_cannot_settle_a_hold_the_review_queue_owns(
    client: TestClient, funded: TenantHandle
) -> None:
    review = _held_reward(client, funded, "user:6", 100)["review"]

    posted = client.post(
        f"/v1/ledger/holds/{review['hold_id']}/post", headers=funded.write_headers()
    )
    voided = client.post(
        f"/v1/ledger/holds/{review['hold_id']}/void", headers=funded.write_headers()
    )
    placed = client.post(
        "/v1/ledger/holds",
        json={
            "hold_id": "managed:risk-review:forged",
            "asset": "POINTS",
            "from_owner": MERCHANT,
            "to_owner": "user:6",
            "amount": 1,
        },
        headers=funded.write_headers(),
    )

    assert posted.status_code == voided.status_code == placed.status_code == 409
    assert (
        client.get(f"/v1/ledger/holds/{review['hold_id']}", headers=funded.headers).json()["status"]
        == "PENDING"
    )


def test_only_merchant_keys_may_hold_an_effect(
    client: TestClient, funded: TenantHandle, db: Any
) -> None:
    from zanloop.tenancy import service as tenancy

    with db.session() as session:
        app_key = tenancy.create_key(session, funded.id, "app", [Scope.APP]).plaintext
    app = TenantHandle(funded.id, app_key)

    response = client.post(
        "/v1/risk/decisions",
        json={
            "action": "reward.grant",
            "user_id": "victim",
            "amount_fen": 20000,
            "hold": {"asset": "POINTS", "from_owner": MERCHANT, "to_owner": "x", "amount": 1},
        },
        headers=app.write_headers(),
    )

    assert response.status_code == 403
    assert _balance(client, funded, MERCHANT)["pending_out"] == 0


def test_a_review_on_a_refunded_payment_is_rejected_whatever_the_action(
    client: TestClient,
    funded: TenantHandle,
    worker: Worker,
    paid_order: Callable[..., dict[str, Any]],
) -> None:
    # given: a custom action held for review on a real payment
    client.put(
        "/v1/risk/policy",
        json={
            "rules": [
                {
                    "id": "all-big",
                    "type": "amount_limit",
                    "actions": ["*"],
                    "max_amount_fen": 100,
                    "verdict": "REVIEW",
                }
            ]
        },
        headers=funded.headers,
    ).raise_for_status()
    order = paid_order(funded, 20000, payer_openid="o-pat")
    review = decide(
        client,
        funded,
        action="membership.upgrade",
        user_id="user:7",
        amount_fen=20000,
        payment_order_id=order["id"],
        hold={"asset": "POINTS", "from_owner": MERCHANT, "to_owner": "user:7", "amount": 300},
    )["review"]

    # when
    client.post(
        f"/v1/payments/orders/{order['id']}/refunds", headers=funded.write_headers()
    ).raise_for_status()
    worker.drain()

    # then
    after = client.get(f"/v1/risk/reviews/{review['id']}", headers=funded.headers).json()
    assert after["status"] == "REJECTED"
    assert _balance(client, funded, MERCHANT)["available"] == BUDGET
