from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.conftest import TenantHandle


def decide(client: TestClient, tenant: TenantHandle, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/risk/decisions", json=body, headers=tenant.write_headers())
    assert response.status_code == 201, response.text
    return dict(response.json())


def codes(decision: dict[str, Any]) -> set[str]:
    return {r["code"] for r in decision["reasons"] if r["mode"] == "enforce"}


def pin(user: str, device: str, ip: str, amount_fen: int = 100, **extra: Any) -> dict[str, Any]:
    """A paid-pin purchase by an honest-looking, real-name verified payer."""
    return {
        "action": "pin.purchase",
        "user_id": user,
        "amount_fen": amount_fen,
        "device_id": device,
        "ip": ip,
        "payment_account": f"openid-{user}",
        "payer_verified": True,
        **extra,
    }
