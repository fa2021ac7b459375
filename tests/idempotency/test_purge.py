"""Finished Idempotency-Key answers are forgotten after the retention window."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.conftest import TenantHandle
from zanloop.db import Database
from zanloop.idempotency import service
from zanloop.idempotency.tables import IdempotencyRecord
from zanloop.kit.clock import utcnow

BODY = {"amount_fen": 990, "description": "Latte", "payer_openid": "o_buyer"}


def _keys(db: Database) -> set[str]:
    with db.read_session() as session:
        return set(session.scalars(select(IdempotencyRecord.key)))


def test_purge_forgets_answers_older_than_a_day_and_keeps_recent_ones(
    client: TestClient, db: Database, tenant: TenantHandle
) -> None:
    for key in ("old-order", "new-order"):
        response = client.post("/v1/payments/orders", json=BODY, headers=tenant.write_headers(key))
        assert response.status_code == 201
    with db.session() as session:
        session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "old-order")
            .values(created_at=utcnow() - timedelta(hours=25))
        )

    with db.session() as session:
        purged = service.purge(session, utcnow())

    assert purged == 1
    assert _keys(db) == {"new-order"}
