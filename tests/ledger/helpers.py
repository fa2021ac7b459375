"""Small helpers for ledger tests: a tenant's books through the service, and through HTTP."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response

from tests.conftest import TenantHandle
from zanloop.db import Database
from zanloop.kit.money import Asset
from zanloop.ledger import service
from zanloop.ledger.domain import two_party
from zanloop.ledger.service import Balance, Posted
from zanloop.ledger.tables import LedgerHold

BANK = "bank"  # an overdraft account: where test money comes from
_funding = itertools.count()


@dataclass(frozen=True)
class Books:
    """One tenant's ledger, each call its own committed transaction (as a request would be)."""

    db: Database
    tenant_id: str

    def open_bank(self, asset: Asset = Asset.CNY) -> None:
        with self.db.session() as session:
            service.open_account(session, self.tenant_id, BANK, asset, overdraft_allowed=True)

    def transfer(
        self,
        transfer_id: str,
        from_owner: str,
        to_owner: str,
        amount: int,
        asset: Asset = Asset.CNY,
    ) -> Posted:
        with self.db.session() as session:
            return service.post(
                session,
                self.tenant_id,
                two_party(transfer_id, asset, from_owner, to_owner, amount),
            )

    def fund(self, owner: str, amount: int, asset: Asset = Asset.CNY) -> Posted:
        self.open_bank(asset)
        return self.transfer(f"fund-{next(_funding)}", BANK, owner, amount, asset)

    def reverse(self, transfer_id: str, reversal_id: str, amount: int | None = None) -> Posted:
        with self.db.session() as session:
            return service.reverse(session, self.tenant_id, transfer_id, reversal_id, amount)

    def hold(
        self, hold_id: str, from_owner: str, to_owner: str, amount: int, asset: Asset = Asset.CNY
    ) -> tuple[LedgerHold, bool]:
        with self.db.session() as session:
            return service.place_hold(
                session, self.tenant_id, hold_id, asset, from_owner, to_owner, amount
            )

    def post_hold(self, hold_id: str, amount: int | None = None) -> LedgerHold:
        with self.db.session() as session:
            return service.post_hold(session, self.tenant_id, hold_id, amount)

    def void_hold(self, hold_id: str) -> LedgerHold:
        with self.db.session() as session:
            return service.void_hold(session, self.tenant_id, hold_id)

    def balance(self, owner: str, asset: Asset = Asset.CNY) -> Balance:
        with self.db.read_session() as session:
            return service.balance(session, self.tenant_id, owner, asset)

    def entries_sum(self, owner: str, asset: Asset = Asset.CNY) -> int:
        with self.db.read_session() as session:
            return service.entries_sum(session, self.tenant_id, owner, asset)


# HTTP ---------------------------------------------------------------------------------------


def open_bank(client: TestClient, tenant: TenantHandle, asset: str = "CNY") -> None:
    response = client.post(
        "/v1/ledger/accounts",
        json={"owner": BANK, "asset": asset, "overdraft_allowed": True},
        headers=tenant.write_headers(),
    )
    assert response.status_code == 201, response.text


def transfer_body(
    transfer_id: str, from_owner: str, to_owner: str, amount: int, asset: str = "CNY"
) -> dict[str, Any]:
    return {
        "transfer_id": transfer_id,
        "asset": asset,
        "legs": [{"owner": from_owner, "amount": -amount}, {"owner": to_owner, "amount": amount}],
    }


def post_transfer(
    client: TestClient,
    tenant: TenantHandle,
    transfer_id: str,
    from_owner: str,
    to_owner: str,
    amount: int,
    *,
    key: str | None = None,
) -> Response:
    return client.post(
        "/v1/ledger/transfers",
        json=transfer_body(transfer_id, from_owner, to_owner, amount),
        headers=tenant.write_headers(key),
    )


def fund(client: TestClient, tenant: TenantHandle, owner: str, amount: int) -> None:
    open_bank(client, tenant)
    response = post_transfer(client, tenant, f"fund-{next(_funding)}", BANK, owner, amount)
    assert response.status_code == 201, response.text


def balance_of(client: TestClient, tenant: TenantHandle, owner: str) -> dict[str, Any]:
    response = client.get(f"/v1/ledger/balances/{owner}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())
