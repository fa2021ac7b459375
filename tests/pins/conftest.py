from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import TenantHandle
from zanloop.jobs.worker import Worker


@dataclass
class PinWorld:
    """A tenant with a creator in the incentive programme and one video; helpers to drive the
    viewer's side through the API and the sandbox."""

    client: TestClient
    worker: Worker
    tenant: TenantHandle
    creator: str = "creator-1"
    content: str = "video-1"

    def bind(self, viewer: str, openid: str | None = None) -> None:
        response = self.client.put(
            f"/v1/bindings/{viewer}",
            json={"openid": openid or f"o-{viewer}", "real_name_verified": True},
            headers=self.tenant.headers,
        )
        assert response.status_code == 200, response.text

    def request_pin(self, viewer: str, amount_fen: int, **extra: Any) -> Any:
        body = {"content_id": self.content, "buyer_id": viewer, "amount_fen": amount_fen}
        return self.client.post(
            "/v1/pins",
            json={**body, "device_id": f"device-{viewer}", **extra},
            headers=self.tenant.write_headers(),
        )

    def buy(
        self, viewer: str, amount_fen: int, *, pay: bool = True, **extra: Any
    ) -> dict[str, Any]:
        response = self.request_pin(viewer, amount_fen, **extra)
        assert response.status_code == 201, response.text
        bought = dict(response.json())
        if pay:
            self.pay(bought)
        return bought

    def pay(self, bought: dict[str, Any]) -> None:
        paid = self.client.post(
            f"/v1/sandbox/orders/{bought['payment']['out_trade_no']}/pay",
            headers=self.tenant.headers,
        )
        assert paid.status_code == 200, paid.text
        self.worker.drain()

    def pin(self, pin_id: str) -> dict[str, Any]:
        return dict(self.client.get(f"/v1/pins/{pin_id}", headers=self.tenant.headers).json())

    def pinned(self, content: str | None = None) -> dict[str, Any]:
        response = self.client.get(
            f"/v1/contents/{content or self.content}/pins", headers=self.tenant.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def balance(self, owner: str) -> int:
        response = self.client.get(f"/v1/ledger/balances/{owner}", headers=self.tenant.headers)
        return int(response.json()["balance"])

    def creator_owner(self) -> str:
        return f"creator:{self.creator}"


@pytest.fixture
def world(client: TestClient, worker: Worker, tenant: TenantHandle) -> PinWorld:
    w = PinWorld(client, worker, tenant)
    created = client.put(
        f"/v1/creators/{w.creator}",
        json={"name": "熊二赶海", "programmes": ["incentive"]},
        headers=tenant.headers,
    )
    assert created.status_code == 200, created.text
    content = client.put(
        f"/v1/contents/{w.content}",
        json={"creator_id": w.creator, "kind": "video", "title": "Low tide at dawn"},
        headers=tenant.headers,
    )
    assert content.status_code == 200, content.text
    return w


@pytest.fixture
def make_world(
    client: TestClient, worker: Worker, make_tenant: Callable[..., TenantHandle]
) -> Callable[[], PinWorld]:
    def make() -> PinWorld:
        tenant = make_tenant()
        w = PinWorld(client, worker, tenant)
        client.put(
            f"/v1/creators/{w.creator}",
            json={"name": "c", "programmes": ["commerce"]},
            headers=tenant.headers,
        ).raise_for_status()
        client.put(
            f"/v1/contents/{w.content}",
            json={"creator_id": w.creator, "kind": "live", "title": "t"},
            headers=tenant.headers,
        ).raise_for_status()
        return w

    return make
