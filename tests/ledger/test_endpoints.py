"""The ledger over HTTP: what an integrating merchant sees."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle
from tests.ledger.helpers import BANK, balance_of, fund, open_bank, post_transfer, transfer_body
from zanloop.kit.pagination import encode_cursor
from zanloop.tenancy.domain import Scope

PROBLEM = "urn:zanloop:problem:"


def _pages(client: TestClient, tenant: TenantHandle, url: str, limit: int) -> list[list[Any]]:
    pages: list[list[Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = client.get(url, params=params, headers=tenant.headers)
        assert response.status_code == 200, response.text
        pages.append(response.json()["data"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages
        params["cursor"] = cursor


# Transfers ----------------------------------------------------------------------------------


def test_a_transfer_is_posted_and_can_be_read_back(
    client: TestClient, tenant: TenantHandle
) -> None:
    fund(client, tenant, "alice", 500)

    created = post_transfer(client, tenant, "t1", "alice", "bob", 120)
    fetched = client.get("/v1/ledger/transfers/t1", headers=tenant.headers)

    assert created.status_code == 201
    assert created.json()["replayed"] is False
    assert fetched.status_code == 200
    assert fetched.json()["amount"] == 120
    assert sorted((leg["owner"], leg["amount"]) for leg in fetched.json()["legs"]) == [
        ("alice", -120),
        ("bob", 120),
    ]
    assert balance_of(client, tenant, "bob")["balance"] == 120


def test_an_overdraft_is_a_409_problem_and_changes_nothing(
    client: TestClient, tenant: TenantHandle
) -> None:
    fund(client, tenant, "alice", 100)

    response = post_transfer(client, tenant, "t1", "alice", "bob", 101)

    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == PROBLEM + "insufficient-funds"
    assert balance_of(client, tenant, "alice")["balance"] == 100
    assert client.get("/v1/ledger/transfers/t1", headers=tenant.headers).status_code == 404


def test_legs_that_do_not_balance_are_a_422_naming_legs(
    client: TestClient, tenant: TenantHandle
) -> None:
    body = transfer_body("t1", "alice", "bob", 10)
    body["legs"][1]["amount"] = 9

    response = client.post("/v1/ledger/transfers", json=body, headers=tenant.write_headers())

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["legs"]


def test_a_transfer_id_resent_with_a_new_idempotency_key_is_replayed(
    client: TestClient, tenant: TenantHandle
) -> None:
    fund(client, tenant, "alice", 500)
    post_transfer(client, tenant, "t1", "alice", "bob", 120)

    again = post_transfer(client, tenant, "t1", "alice", "bob", 120)
    other = post_transfer(client, tenant, "t1", "alice", "bob", 121)

    assert again.status_code == 201
    assert again.json()["replayed"] is True
    assert other.status_code == 409
    assert other.json()["type"] == PROBLEM + "duplicate"
    assert balance_of(client, tenant, "bob")["balance"] == 120


def test_a_batch_with_one_insufficient_transfer_posts_nothing(
    client: TestClient, tenant: TenantHandle
) -> None:
    fund(client, tenant, "alice", 100)
    batch = [transfer_body("b1", "alice", "bob", 60), transfer_body("b2", "alice", "carol", 60)]

    refused = client.post(
        "/v1/ledger/transfers/batch", json={"transfers": batch}, headers=tenant.write_headers()
    )
    batch[1] = transfer_body("b2", "alice", "carol", 40)
    accepted = client.post(
        "/v1/ledger/transfers/batch", json={"transfers": batch}, headers=tenant.write_headers()
    )

    assert refused.status_code == 409
    assert refused.json()["type"] == PROBLEM + "insufficient-funds"
    assert accepted.status_code == 201
    assert [t["transfer_id"] for t in accepted.json()] == ["b1", "b2"]
    assert balance_of(client, tenant, "alice")["balance"] == 0


def _with(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = json.loads(json.dumps(body))
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


HOLD = {"hold_id": "h1", "asset": "CNY", "from_owner": BANK, "to_owner": "bob", "amount": 1}


@pytest.mark.parametrize(
    ("url", "body"),
    [
        pytest.param(
            "/v1/ledger/transfers",
            _with(transfer_body("t1", BANK, "bob", 1), ("legs", 1, "owner"), "bob\x00"),
            id="nul-in-owner",
        ),
        pytest.param(
            "/v1/ledger/transfers",
            _with(transfer_body("t1", BANK, "bob", 1), ("transfer_id",), "t\x001"),
            id="nul-in-transfer-id",
        ),
        pytest.param(
            "/v1/ledger/transfers",
            _with(transfer_body("t1", BANK, "bob", 1), ("description",), "\x00"),
            id="nul-in-description",
        ),
        pytest.param(
            "/v1/ledger/transfers", transfer_body("t1", BANK, "bob", 10**22), id="amount-too-big"
        ),
        pytest.param("/v1/ledger/holds", _with(HOLD, ("amount",), 10**22), id="hold-too-big"),
        pytest.param("/v1/ledger/holds", _with(HOLD, ("hold_id",), "h\x00"), id="nul-in-hold-id"),
        pytest.param(
            "/v1/ledger/holds",
            _with(HOLD, ("expires_at",), "2030-01-01T00:00:00"),
            id="expiry-without-timezone",
        ),
    ],
)
def test_bad_input_is_a_422_and_changes_nothing(
    client: TestClient, tenant: TenantHandle, url: str, body: dict[str, Any]
) -> None:
    open_bank(client, tenant)

    response = client.post(url, json=body, headers=tenant.write_headers())

    assert response.status_code == 422, response.text
    assert response.json()["errors"]
    bank = balance_of(client, tenant, BANK)
    assert (bank["balance"], bank["pending_out"]) == (0, 0)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("/v1/ledger/transfers/t%001", id="transfer"),
        pytest.param("/v1/ledger/holds/h%001", id="hold"),
        pytest.param("/v1/ledger/balances/bob%00", id="balance"),
        pytest.param("/v1/ledger/balances/bob%00/entries", id="entries"),
    ],
)
def test_a_nul_in_the_path_is_a_422(client: TestClient, tenant: TenantHandle, url: str) -> None:
    assert client.get(url, headers=tenant.headers).status_code == 422


def test_an_unknown_transfer_is_404(client: TestClient, tenant: TenantHandle) -> None:
    response = client.get("/v1/ledger/transfers/nope", headers=tenant.headers)

    assert response.status_code == 404
    assert response.json()["type"] == PROBLEM + "not-found"


# Holds --------------------------------------------------------------------------------------


def _hold(client: TestClient, tenant: TenantHandle, hold_id: str, amount: int) -> Any:
    body = {
        "hold_id": hold_id,
        "asset": "CNY",
        "from_owner": "alice",
        "to_owner": "shop",
        "amount": amount,
    }
    return client.post("/v1/ledger/holds", json=body, headers=tenant.write_headers())


def test_a_hold_shows_as_pending_and_reduces_available(
    client: TestClient, tenant: TenantHandle
) -> None:
    fund(client, tenant, "alice", 100)

    created = _hold(client, tenant, "h1", 70)

    assert created.status_code == 201
    assert created.json()["status"] == "PENDING"
    alice = balance_of(client, tenant, "alice")
    assert (alice["balance"], alice["pending_out"], alice["available"]) == (100, 70, 30)
    assert balance_of(client, tenant, "shop")["pending_in"] == 70
    assert post_transfer(client, tenant, "t1", "alice", "bob", 31).status_code == 409


def test_a_partly_posted_hold_releases_the_rest_and_posts_once(
    client: TestClient, tenant: TenantHandle
) -> None:
    fund(client, tenant, "alice", 100)
    _hold(client, tenant, "h1", 70)

    posted = client.post(
        "/v1/ledger/holds/h1/post", json={"amount": 25}, headers=tenant.write_headers()
    )
    again = client.post("/v1/ledger/holds/h1/post", headers=tenant.write_headers())
    void = client.post("/v1/ledger/holds/h1/void", headers=tenant.write_headers())

    assert posted.status_code == 200
    assert (posted.json()["status"], posted.json()["posted_amount"]) == ("POSTED", 25)
    assert again.status_code == 200
    assert again.json()["posted_amount"] == 25
    assert void.status_code == 409
    assert void.json()["type"] == PROBLEM + "invalid-state"
    alice = balance_of(client, tenant, "alice")
    assert (alice["balance"], alice["pending_out"], alice["available"]) == (75, 0, 75)
    assert client.get("/v1/ledger/transfers/hold:h1", headers=tenant.headers).json()["amount"] == 25


def test_a_voided_hold_gives_the_money_back(client: TestClient, tenant: TenantHandle) -> None:
    fund(client, tenant, "alice", 100)
    _hold(client, tenant, "h1", 70)

    voided = client.post("/v1/ledger/holds/h1/void", headers=tenant.write_headers())
    post = client.post("/v1/ledger/holds/h1/post", headers=tenant.write_headers())

    assert voided.status_code == 200
    assert voided.json()["status"] == "VOIDED"
    assert post.status_code == 409
    assert balance_of(client, tenant, "alice")["available"] == 100
    fetched = client.get("/v1/ledger/holds/h1", headers=tenant.headers).json()
    assert (fetched["status"], fetched["resolved_at"] is not None) == ("VOIDED", True)


@pytest.mark.parametrize(
    ("hold_id", "amount", "status"),
    [
        pytest.param("h1", 101, 409, id="more-than-available"),
        pytest.param("h" * 196, 10, 422, id="hold-id-too-long"),
    ],
)
def test_a_hold_is_refused(
    client: TestClient, tenant: TenantHandle, hold_id: str, amount: int, status: int
) -> None:
    fund(client, tenant, "alice", 100)

    assert _hold(client, tenant, hold_id, amount).status_code == status
    assert balance_of(client, tenant, "alice")["pending_out"] == 0


# Reversals ----------------------------------------------------------------------------------


def _reverse(client: TestClient, tenant: TenantHandle, transfer_id: str, **body: Any) -> Any:
    return client.post(
        f"/v1/ledger/transfers/{transfer_id}/reversals", json=body, headers=tenant.write_headers()
    )


def test_a_partial_then_full_reversal_restores_the_balances(
    client: TestClient, tenant: TenantHandle
) -> None:
    long_id = "order-" + "9" * 120
    fund(client, tenant, "alice", 100)
    post_transfer(client, tenant, long_id, "alice", "bob", 60)

    part = _reverse(client, tenant, long_id, reversal_id="r1", amount=20)
    rest = _reverse(client, tenant, long_id, reversal_id="r2")
    more = _reverse(client, tenant, long_id, reversal_id="r3")

    assert (part.status_code, rest.status_code) == (201, 201)
    assert (part.json()["reverses_id"], part.json()["kind"]) == (long_id, "reversal")
    assert rest.json()["amount"] == 40
    assert more.status_code == 409
    original = client.get(f"/v1/ledger/transfers/{long_id}", headers=tenant.headers).json()
    assert original["reversed_amount"] == 60
    assert balance_of(client, tenant, "alice")["balance"] == 100
    assert balance_of(client, tenant, "bob")["balance"] == 0


def test_a_reversal_never_exceeds_the_original_and_posts_once(
    client: TestClient, tenant: TenantHandle
) -> None:
    fund(client, tenant, "alice", 100)
    post_transfer(client, tenant, "t1", "alice", "bob", 60)
    _reverse(client, tenant, "t1", reversal_id="r1", amount=50)

    too_much = _reverse(client, tenant, "t1", reversal_id="r2", amount=11)
    replay = _reverse(client, tenant, "t1", reversal_id="r1", amount=50)

    assert too_much.status_code == 422
    assert [e["field"] for e in too_much.json()["errors"]] == ["amount"]
    assert replay.status_code == 201
    assert replay.json()["replayed"] is True
    assert balance_of(client, tenant, "bob")["balance"] == 10


# Pagination ---------------------------------------------------------------------------------


def test_entries_page_newest_first_until_the_cursor_runs_out(
    client: TestClient, tenant: TenantHandle
) -> None:
    open_bank(client, tenant)
    for i in range(1, 6):
        post_transfer(client, tenant, f"t{i}", BANK, "alice", i)

    pages = _pages(client, tenant, "/v1/ledger/balances/alice/entries", limit=2)

    entries = [e for page in pages for e in page]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [e["transfer_id"] for e in entries] == ["t5", "t4", "t3", "t2", "t1"]
    assert [e["balance_after"] for e in entries] == [15, 10, 6, 3, 1]
    assert entries[0]["balance_after"] == balance_of(client, tenant, "alice")["balance"]


def test_accounts_page_through_every_account_once(client: TestClient, tenant: TenantHandle) -> None:
    open_bank(client, tenant)
    owners = [f"user:{i}" for i in range(5)]
    for owner in owners:
        post_transfer(client, tenant, f"t-{owner}", BANK, owner, 1)

    pages = _pages(client, tenant, "/v1/ledger/accounts", limit=2)

    listed = [a["owner"] for page in pages for a in page]
    assert sorted(listed) == sorted([BANK, *owners])
    assert len(pages) == 3


@pytest.mark.parametrize(
    ("url", "cursor"),
    [
        pytest.param("/v1/ledger/accounts", "not-a-cursor!", id="accounts-garbage"),
        pytest.param("/v1/ledger/accounts", encode_cursor(5), id="accounts-wrong-type"),
        pytest.param("/v1/ledger/accounts", encode_cursor("acc\x00"), id="accounts-nul"),
        pytest.param(
            "/v1/ledger/balances/bank/entries", encode_cursor("acc_x"), id="entries-wrong-type"
        ),
    ],
)
def test_a_cursor_this_api_did_not_return_is_a_422(
    client: TestClient, tenant: TenantHandle, url: str, cursor: str
) -> None:
    open_bank(client, tenant)

    response = client.get(url, params={"cursor": cursor}, headers=tenant.headers)

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["cursor"]


def test_entries_of_an_owner_without_an_account_are_404(
    client: TestClient, tenant: TenantHandle
) -> None:
    response = client.get("/v1/ledger/balances/ghost/entries", headers=tenant.headers)

    assert response.status_code == 404
    assert balance_of(client, tenant, "ghost")["balance"] == 0


# Scopes -------------------------------------------------------------------------------------


def test_an_analyst_key_reads_but_cannot_move_money(
    client: TestClient, make_tenant: Callable[..., TenantHandle]
) -> None:
    analyst = make_tenant(scopes=(Scope.ANALYST,))

    read = client.get("/v1/ledger/balances/alice", headers=analyst.headers)
    write = post_transfer(client, analyst, "t1", "alice", "bob", 1)

    assert read.status_code == 200
    assert write.status_code == 403
    assert write.json()["type"] == PROBLEM + "forbidden"


def test_opening_an_existing_account_differently_is_a_conflict(
    client: TestClient, tenant: TenantHandle
) -> None:
    body = {"owner": "bank", "asset": "CNY", "overdraft_allowed": True}
    first = client.post("/v1/ledger/accounts", json=body, headers=tenant.write_headers())
    again = client.post("/v1/ledger/accounts", json=body, headers=tenant.write_headers())
    other = client.post(
        "/v1/ledger/accounts",
        json={**body, "overdraft_allowed": False},
        headers=tenant.write_headers(),
    )

    assert first.status_code == 201
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert other.json()["type"] == "urn:zanloop:problem:duplicate"
