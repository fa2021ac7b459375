from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import TenantHandle
from zanloop.jobs.worker import Worker

_orders = itertools.count()


@dataclass
class Shop:
    """A coffee chain (one tenant) with helpers to run its campaigns through the API and the
    sandbox, as an integrator would."""

    client: TestClient
    worker: Worker
    tenant: TenantHandle

    def campaign(
        self, rule: dict[str, Any], name: str = "campaign", **extra: Any
    ) -> dict[str, Any]:
        response = self.client.post(
            "/v1/campaigns", json={"name": name, "rule": rule, **extra}, headers=self.tenant.headers
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def coupon_template(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "5 off", "kind": "FIXED", "amount_fen": 500, "valid_days": 30, **fields}
        response = self.client.post("/v1/coupon-templates", json=body, headers=self.tenant.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def pay(
        self,
        user: str,
        amount_fen: int,
        store: str | None = "store-1",
        categories: tuple[str, ...] = ("coffee",),
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {"user_id": user, "categories": list(categories)}
        if store is not None:
            metadata["store_id"] = store
        body = {
            "amount_fen": amount_fen,
            "description": "Latte",
            "payer_openid": f"o-{user}",
            "metadata": metadata,
            "out_trade_no": f"cafe{next(_orders):010d}",
        }
        created = self.client.post(
            "/v1/payments/orders", json=body, headers=self.tenant.write_headers()
        )
        assert created.status_code == 201, created.text
        order = created.json()
        paid = self.client.post(
            f"/v1/sandbox/orders/{order['out_trade_no']}/pay", headers=self.tenant.headers
        )
        assert paid.status_code == 200, paid.text
        self.worker.drain()
        return self.order(order["id"])

    def order(self, order_id: str) -> dict[str, Any]:
        return dict(
            self.client.get(f"/v1/payments/orders/{order_id}", headers=self.tenant.headers).json()
        )

    def refund(self, order_id: str, amount_fen: int | None = None) -> None:
        body = {"amount_fen": amount_fen} if amount_fen else None
        response = self.client.post(
            f"/v1/payments/orders/{order_id}/refunds",
            json=body,
            headers=self.tenant.write_headers(),
        )
        assert response.status_code in (200, 201, 202), response.text
        self.worker.drain()

    def prompts(self, user: str, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else {}
        response = self.client.get(
            f"/v1/users/{user}/prompts", params=params, headers=self.tenant.headers
        )
        assert response.status_code == 200, response.text
        return list(response.json())

    def like(self, prompt_id: str, **body: Any) -> Any:
        return self.client.post(
            f"/v1/prompts/{prompt_id}/like", json=body, headers=self.tenant.write_headers()
        )

    def share(self, prompt_id: str, channel: str = "wechat") -> Any:
        return self.client.post(
            f"/v1/prompts/{prompt_id}/share",
            json={"channel": channel},
            headers=self.tenant.write_headers(),
        )

    def wallet(self, user: str, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else {}
        response = self.client.get(
            f"/v1/users/{user}/coupons", params=params, headers=self.tenant.headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return list(body["data"] if isinstance(body, dict) else body)

    def points(self, user: str) -> int:
        response = self.client.get(
            f"/v1/ledger/balances/user:{user}",
            params={"asset": "POINTS"},
            headers=self.tenant.headers,
        )
        if response.status_code == 404:
            return 0
        assert response.status_code == 200, response.text
        return int(response.json()["balance"])

    def explain(self, order_id: str) -> dict[str, Any]:
        response = self.client.get(
            f"/v1/campaigns/explain/orders/{order_id}", headers=self.tenant.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def simulate(self, **event: Any) -> dict[str, Any]:
        response = self.client.post(
            "/v1/campaigns/simulate", json=event, headers=self.tenant.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def metrics(self, campaign_id: str) -> dict[str, Any]:
        response = self.client.get(
            f"/v1/campaigns/{campaign_id}/metrics", headers=self.tenant.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


PAY_50_PROMPT: dict[str, Any] = {
    "trigger": "payment.succeeded",
    "conditions": [{"type": "amount_gte", "fen": 5000}],
    "effects": [
        {
            "type": "prompt_like",
            "store": "Lujiazui",
            "image_url": "https://example.com/latte.jpg",
            "slogan": "Liked it? Tell us.",
        }
    ],
}


def like_coupon(template_id: str) -> dict[str, Any]:
    return {
        "trigger": "like.created",
        "effects": [{"type": "issue_coupon", "template_id": template_id}],
    }


@pytest.fixture
def shop(client: TestClient, worker: Worker, tenant: TenantHandle) -> Shop:
    return Shop(client, worker, tenant)


@pytest.fixture
def make_shop(
    client: TestClient, worker: Worker, make_tenant: Callable[..., TenantHandle]
) -> Callable[[], Shop]:
    return lambda: Shop(client, worker, make_tenant())
