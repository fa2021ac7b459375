from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from tests.conftest import TenantHandle
from zanloop.db import Database
from zanloop.ledger.tables import LedgerAccount
from zanloop.loyalty import redemption, service

_ids = itertools.count()


def event(
    type_: str, user: str, at: datetime, event_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "event_id": event_id or f"ev-{next(_ids)}",
        "type": type_,
        "user_id": user,
        "occurred_at": at.isoformat(),
        **fields,
    }


@dataclass
class Programme:
    """One tenant's points programme, run through the API as an integrator would; the
    scheduled jobs run at a chosen time through the same services the worker calls."""

    client: TestClient
    tenant: TenantHandle
    db: Database

    def settings(self, **fields: Any) -> dict[str, Any]:
        response = self.client.put(
            "/v1/loyalty/programme", json=fields, headers=self.tenant.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def rule(self, rule: dict[str, Any], name: str = "rule", **extra: Any) -> dict[str, Any]:
        response = self.client.post(
            "/v1/loyalty/rules",
            json={"name": name, "rule": rule, **extra},
            headers=self.tenant.headers,
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def task(self, task: dict[str, Any], name: str = "task") -> dict[str, Any]:
        response = self.client.post(
            "/v1/loyalty/tasks", json={"name": name, "task": task}, headers=self.tenant.headers
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def send(self, *events: dict[str, Any]) -> dict[str, Any]:
        if len(events) == 1:
            response = self.client.post(
                "/v1/loyalty/events", json=events[0], headers=self.tenant.headers
            )
        else:
            response = self.client.post(
                "/v1/loyalty/events/batch",
                json={"events": list(events)},
                headers=self.tenant.headers,
            )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def account(self, user: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/loyalty/members/{user}", headers=self.tenant.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def balance(self, user: str) -> dict[str, Any]:
        response = self.client.get(
            f"/v1/loyalty/members/{user}/balance", headers=self.tenant.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def lots(self, user: str, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get(
            f"/v1/loyalty/members/{user}/lots",
            params={"limit": 200, **params},
            headers=self.tenant.headers,
        )
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    def tasks(self, user: str) -> list[dict[str, Any]]:
        response = self.client.get(f"/v1/loyalty/members/{user}/tasks", headers=self.tenant.headers)
        assert response.status_code == 200, response.text
        return list(response.json())

    def reverse(self, event_id: str, reason: str = "refunded at the till") -> dict[str, Any]:
        response = self.client.post(
            f"/v1/loyalty/events/{event_id}/reverse",
            json={"reason": reason},
            headers=self.tenant.headers,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def item(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "Mug", "kind": "GOODS", "price_points": 100, **fields}
        response = self.client.post("/v1/loyalty/catalogue", json=body, headers=self.tenant.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def redeem(self, user: str, item_id: str, **fields: Any) -> Any:
        body = {"user_id": user, "item_id": item_id, "request_no": f"r-{next(_ids)}", **fields}
        return self.client.post("/v1/loyalty/redemptions", json=body, headers=self.tenant.headers)

    def run_jobs(self, at: datetime) -> None:
        """What the worker's periodic jobs do, as if it were ``at``."""
        with self.db.session() as session:
            service.mature_due(session, at)
            service.notify_expiring(session, at)
            service.expire_due(session, at)
            redemption.cancel_stale(session, at)

    def evaluate_tiers(self, at: datetime) -> None:
        with self.db.session() as session:
            service.evaluate_tiers(session, at, tenant_id=self.tenant.id)

    def ledger(self) -> dict[str, int]:
        """Every POINTS account of the tenant, by owner."""
        with self.db.session() as session:
            rows = session.execute(
                select(LedgerAccount.owner, LedgerAccount.balance).where(
                    LedgerAccount.tenant_id == self.tenant.id, LedgerAccount.asset == "POINTS"
                )
            )
            return {owner: int(balance) for owner, balance in rows}


@pytest.fixture
def programme(client: TestClient, tenant: TenantHandle, db: Database) -> Programme:
    return Programme(client, tenant, db)


def points_of(result: dict[str, Any]) -> list[int]:
    return [e["points"] for e in result["events"]]


def ids(items: Iterable[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in items]
