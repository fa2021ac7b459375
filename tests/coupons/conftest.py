from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from tests.conftest import TenantHandle
from zanloop.jobs.worker import Worker

FIVE_OFF = {"name": "5 CNY off", "kind": "FIXED", "amount_fen": 500, "valid_days": 7}
_numbers = itertools.count()


@dataclass
class Shop:
    """A tenant selling through checkouts with coupons; helpers drive the merchant's, the
    user's and the buyer's side through the API and the sandbox."""

    client: TestClient
    worker: Worker
    tenant: TenantHandle

    def create_template(self, **fields: Any) -> httpx.Response:
        return self.client.post(
            "/v1/coupon-templates", json={**FIVE_OFF, **fields}, headers=self.tenant.headers
        )

    def template(self, **fields: Any) -> dict[str, Any]:
        response = self.create_template(**fields)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def get_template(self, template_id: str) -> dict[str, Any]:
        response = self.client.get(
            f"/v1/coupon-templates/{template_id}", headers=self.tenant.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def issue(self, template_id: str, user: str, request_no: str | None = None) -> httpx.Response:
        body = {
            "template_id": template_id,
            "user_id": user,
            "request_no": request_no or f"req-{next(_numbers)}",
        }
        return self.client.post("/v1/coupons", json=body, headers=self.tenant.headers)

    def issued(self, template_id: str, user: str, request_no: str | None = None) -> dict[str, Any]:
        response = self.issue(template_id, user, request_no)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def coupon(self, coupon_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/coupons/{coupon_id}", headers=self.tenant.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def checkout(
        self, user: str, amount_fen: int, coupon_id: str | None = None, **fields: Any
    ) -> httpx.Response:
        body = {
            "user_id": user,
            "payer_openid": f"o-{user}",
            "amount_fen": amount_fen,
            "description": "Latte and croissant",
            **({"coupon_id": coupon_id} if coupon_id else {}),
            **fields,
        }
        return self.client.post("/v1/checkouts", json=body, headers=self.tenant.write_headers())

    def checked_out(
        self, user: str, amount_fen: int, coupon_id: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        response = self.checkout(user, amount_fen, coupon_id, **fields)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def pay(self, checkout: dict[str, Any]) -> None:
        paid = self.client.post(
            f"/v1/sandbox/orders/{checkout['order']['out_trade_no']}/pay",
            headers=self.tenant.headers,
        )
        assert paid.status_code == 200, paid.text
        self.worker.drain()

    def fail(self, checkout: dict[str, Any]) -> None:
        """The buyer's payment fails; the order query finds it (PAYERROR)."""
        failed = self.client.post(
            f"/v1/sandbox/orders/{checkout['order']['out_trade_no']}/fail",
            headers=self.tenant.headers,
        )
        assert failed.status_code == 200, failed.text
        synced = self.client.post(
            f"/v1/payments/orders/{checkout['order']['id']}/sync", headers=self.tenant.headers
        )
        assert synced.json()["status"] == "PAYERROR", synced.text
        self.worker.drain()

    def close(self, checkout: dict[str, Any]) -> None:
        closed = self.client.post(
            f"/v1/payments/orders/{checkout['order']['id']}/close", headers=self.tenant.headers
        )
        assert closed.json()["status"] == "CLOSED", closed.text
        self.worker.drain()

    def refund(self, checkout: dict[str, Any], amount_fen: int | None = None) -> None:
        response = self.client.post(
            f"/v1/payments/orders/{checkout['order']['id']}/refunds",
            json={} if amount_fen is None else {"amount_fen": amount_fen},
            headers=self.tenant.write_headers(),
        )
        assert response.status_code == 201, response.text
        self.worker.drain()

    def order(self, order_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/payments/orders/{order_id}", headers=self.tenant.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def orders(self) -> list[dict[str, Any]]:
        response = self.client.get("/v1/payments/orders", headers=self.tenant.headers)
        return list(response.json()["data"])

    def key(self, *scopes: str) -> dict[str, str]:
        """Headers of a new key of this tenant with just ``scopes``."""
        response = self.client.post(
            "/v1/api-keys",
            json={"name": "+".join(scopes), "scopes": list(scopes)},
            headers=self.tenant.headers,
        )
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['key']}"}


@pytest.fixture
def shop(client: TestClient, worker: Worker, tenant: TenantHandle) -> Shop:
    return Shop(client, worker, tenant)


@pytest.fixture
def make_shop(
    client: TestClient, worker: Worker, make_tenant: Callable[..., TenantHandle]
) -> Callable[[], Shop]:
    return lambda: Shop(client, worker, make_tenant())
