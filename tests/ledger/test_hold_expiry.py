"""A hold with an expiry cannot be posted after it, and the expiry job releases it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.conftest import TenantHandle
from zanloop.db import Database
from zanloop.errors import InvalidState
from zanloop.kit.clock import utcnow
from zanloop.kit.money import Asset
from zanloop.ledger import service
from zanloop.ledger.domain import Leg, TransferRequest
from zanloop.ledger.tables import LedgerHold


def _funded_hold(db: Database, tenant_id: str, hold_id: str) -> None:
    with db.session() as session:
        service.post(
            session,
            tenant_id,
            TransferRequest(
                transfer_id=f"fund-{hold_id}",
                asset=Asset.POINTS,
                legs=(Leg("world", -100, overdraft_allowed=True), Leg("user:1", 100)),
            ),
        )
        service.place_hold(
            session,
            tenant_id,
            hold_id,
            Asset.POINTS,
            "user:1",
            "shop",
            60,
            expires_at=utcnow() + timedelta(minutes=5),
        )


def _expire(db: Database, hold_id: str) -> None:
    with db.session() as session:
        session.execute(
            update(LedgerHold)
            .where(LedgerHold.hold_id == hold_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def test_an_expired_hold_cannot_be_posted(db: Database, tenant: TenantHandle) -> None:
    tenant_id = tenant.id
    _funded_hold(db, tenant_id, "redeem-1")
    _expire(db, "redeem-1")

    with db.session() as session, pytest.raises(InvalidState, match="expired"):
        service.post_hold(session, tenant_id, "redeem-1")


def test_the_expiry_job_voids_expired_holds_and_releases_the_amount(
    db: Database, tenant: TenantHandle
) -> None:
    tenant_id = tenant.id
    _funded_hold(db, tenant_id, "redeem-2")
    _funded_hold(db, tenant_id, "redeem-3")
    _expire(db, "redeem-2")

    with db.session() as session:
        voided = service.void_expired_holds(session)

    assert voided == 1
    with db.read_session() as session:
        assert service.get_hold(session, tenant_id, "redeem-2").status == "VOIDED"
        assert service.get_hold(session, tenant_id, "redeem-3").status == "PENDING"
        balance = service.balance(session, tenant_id, "user:1", Asset.POINTS)
    assert balance.balance == 200
    assert balance.pending_out == 60
