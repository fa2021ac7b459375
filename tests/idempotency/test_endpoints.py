"""Idempotency-Key on money-moving POSTs: what a client retrying over a bad network sees."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.conftest import TenantHandle
from tests.ledger.helpers import BANK, balance_of, fund, open_bank, transfer_body
from zanloop.db import Database
from zanloop.idempotency import domain, service
from zanloop.idempotency.tables import IdempotencyRecord
from zanloop.kit.clock import utcnow

PROBLEM = "urn:zanloop:problem:"
TRANSFERS = "/v1/ledger/transfers"


def _send(
    client: TestClient, tenant: TenantHandle, key: str, body: dict[str, Any], url: str = TRANSFERS
) -> Any:
    return client.post(url, json=body, headers=tenant.write_headers(key))


def _claim(db: Database, tenant: TenantHandle, key: str, raw: bytes, url: str = TRANSFERS) -> None:
    """Start a request with ``key`` as if another process were running it right now."""
    assert service.claim(db, tenant.id, key, domain.fingerprint("POST", url, raw)) is None


def _post_raw(client: TestClient, tenant: TenantHandle, key: str, raw: bytes) -> Any:
    headers = {**tenant.write_headers(key), "Content-Type": "application/json"}
    return client.post(TRANSFERS, content=raw, headers=headers)


# Missing key --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "body"),
    [
        pytest.param(TRANSFERS, transfer_body("t1", BANK, "bob", 10), id="transfer"),
        pytest.param(
            f"{TRANSFERS}/batch", {"transfers": [transfer_body("t1", BANK, "bob", 10)]}, id="batch"
        ),
        pytest.param(
            "/v1/ledger/holds",
            {"hold_id": "h1", "asset": "CNY", "from_owner": BANK, "to_owner": "bob", "amount": 1},
            id="hold",
        ),
        pytest.param(
            "/v1/payments/orders",
            {"amount_fen": 990, "description": "Latte", "payer_openid": "o_buyer"},
            id="payment-order",
        ),
    ],
)
def test_a_money_moving_post_without_a_key_is_400(
    client: TestClient, tenant: TenantHandle, url: str, body: dict[str, Any]
) -> None:
    open_bank(client, tenant)

    response = client.post(url, json=body, headers=tenant.headers)

    assert response.status_code == 400
    assert response.json()["type"] == PROBLEM + "idempotency-key-missing"
    assert balance_of(client, tenant, "bob")["pending_in"] == 0
    assert balance_of(client, tenant, "bob")["balance"] == 0


def test_a_key_that_is_too_long_is_422(client: TestClient, tenant: TenantHandle) -> None:
    open_bank(client, tenant)

    response = _send(client, tenant, "k" * 256, transfer_body("t1", BANK, "bob", 10))

    assert response.status_code == 422
    assert balance_of(client, tenant, "bob")["balance"] == 0


# Replays ------------------------------------------------------------------------------------


def test_the_same_key_and_body_replays_the_response_and_moves_money_once(
    client: TestClient, tenant: TenantHandle
) -> None:
    open_bank(client, tenant)
    body = transfer_body("t1", BANK, "bob", 10)

    first = _send(client, tenant, "k1", body)
    again = _send(client, tenant, "k1", body)

    assert (first.status_code, again.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert balance_of(client, tenant, "bob")["balance"] == 10


def test_a_replayed_payment_order_is_the_same_order(
    client: TestClient, tenant: TenantHandle
) -> None:
    body = {"amount_fen": 990, "description": "Latte", "payer_openid": "o_buyer"}

    first = _send(client, tenant, "order-1", body, "/v1/payments/orders")
    again = _send(client, tenant, "order-1", body, "/v1/payments/orders")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    orders = client.get("/v1/payments/orders", headers=tenant.headers).json()["data"]
    assert [o["id"] for o in orders] == [first.json()["id"]]


def test_a_replayed_batch_returns_the_whole_list(client: TestClient, tenant: TenantHandle) -> None:
    open_bank(client, tenant)
    body = {"transfers": [transfer_body("b1", BANK, "bob", 1), transfer_body("b2", BANK, "bob", 2)]}

    first = _send(client, tenant, "batch-1", body, f"{TRANSFERS}/batch")
    again = _send(client, tenant, "batch-1", body, f"{TRANSFERS}/batch")

    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert balance_of(client, tenant, "bob")["balance"] == 3


@pytest.mark.parametrize(
    ("second_body", "second_url"),
    [
        pytest.param(transfer_body("t1", BANK, "bob", 11), TRANSFERS, id="other-body"),
        pytest.param(transfer_body("t2", BANK, "bob", 10), TRANSFERS, id="other-transfer-id"),
        pytest.param(
            {"transfers": [transfer_body("t1", BANK, "bob", 10)]},
            f"{TRANSFERS}/batch",
            id="other-route",
        ),
    ],
)
def test_the_same_key_with_another_request_is_422(
    client: TestClient, tenant: TenantHandle, second_body: dict[str, Any], second_url: str
) -> None:
    open_bank(client, tenant)
    _send(client, tenant, "k1", transfer_body("t1", BANK, "bob", 10))

    response = _send(client, tenant, "k1", second_body, second_url)

    assert response.status_code == 422
    assert response.json()["type"] == PROBLEM + "idempotency-key-reused"
    assert balance_of(client, tenant, "bob")["balance"] == 10


def test_a_replayed_no_content_response_is_no_content(
    client: TestClient, tenant: TenantHandle
) -> None:
    created = client.post(
        "/v1/webhooks/endpoints", json={"url": "https://example.com/hook"}, headers=tenant.headers
    ).json()
    url = f"/v1/webhooks/endpoints/{created['id']}"

    first = client.delete(url, headers=tenant.write_headers("del-1"))
    again = client.delete(url, headers=tenant.write_headers("del-1"))

    assert (first.status_code, again.status_code) == (204, 204)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == b""


# Concurrent and failed first requests -------------------------------------------------------


def test_a_key_whose_first_request_still_runs_is_409(
    client: TestClient, db: Database, tenant: TenantHandle
) -> None:
    open_bank(client, tenant)
    raw = json.dumps(transfer_body("t1", BANK, "bob", 10)).encode()
    _claim(db, tenant, "k1", raw)

    response = _post_raw(client, tenant, "k1", raw)

    assert response.status_code == 409
    assert response.json()["type"] == PROBLEM + "idempotency-key-in-flight"
    assert balance_of(client, tenant, "bob")["balance"] == 0


def test_a_key_abandoned_by_a_crashed_request_is_taken_over(
    client: TestClient, db: Database, tenant: TenantHandle
) -> None:
    open_bank(client, tenant)
    raw = json.dumps(transfer_body("t1", BANK, "bob", 10)).encode()
    _claim(db, tenant, "k1", raw)
    with db.session() as session:  # the lock of the crashed process runs out
        session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.tenant_id == tenant.id, IdempotencyRecord.key == "k1")
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )

    response = _post_raw(client, tenant, "k1", raw)
    again = _post_raw(client, tenant, "k1", raw)

    assert response.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert balance_of(client, tenant, "bob")["balance"] == 10


def test_a_failed_request_releases_its_key_for_a_corrected_retry(
    client: TestClient, tenant: TenantHandle
) -> None:
    fund(client, tenant, "alice", 50)

    refused = _send(client, tenant, "k1", transfer_body("t1", "alice", "bob", 60))
    corrected = _send(client, tenant, "k1", transfer_body("t1", "alice", "bob", 50))

    assert refused.status_code == 409
    assert refused.json()["type"] == PROBLEM + "insufficient-funds"
    assert corrected.status_code == 201
    assert "Idempotent-Replayed" not in corrected.headers
    assert balance_of(client, tenant, "bob")["balance"] == 50


def test_a_failed_request_can_be_retried_unchanged_once_it_would_succeed(
    client: TestClient, tenant: TenantHandle
) -> None:
    body = transfer_body("t1", "alice", "bob", 60)
    refused = _send(client, tenant, "k1", body)
    fund(client, tenant, "alice", 60)

    retried = _send(client, tenant, "k1", body)

    assert refused.status_code == 409
    assert retried.status_code == 201
    assert balance_of(client, tenant, "bob")["balance"] == 60


# Tenants ------------------------------------------------------------------------------------


def test_keys_are_per_tenant(client: TestClient, make_tenant: Callable[..., TenantHandle]) -> None:
    ours, theirs = make_tenant("Ours"), make_tenant("Theirs")
    open_bank(client, ours)
    open_bank(client, theirs)

    mine = _send(client, ours, "shared-key", transfer_body("t1", BANK, "bob", 10))
    other = _send(client, theirs, "shared-key", transfer_body("t1", BANK, "bob", 25))

    assert (mine.status_code, other.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in other.headers
    assert balance_of(client, ours, "bob")["balance"] == 10
    assert balance_of(client, theirs, "bob")["balance"] == 25
