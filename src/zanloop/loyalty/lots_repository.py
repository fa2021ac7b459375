"""Queries of point lots and what draws on them: lots (earned, matured, expired, clawed back,
spent), the catalogue and redemptions (which hold and spend lots), and the economics totals over
both. Split from ``repository`` (the programme, members, events, task progress) to keep each
file short; nothing here commits."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from zanloop.db import bulk_insert, is_postgres
from zanloop.kit.clock import as_utc
from zanloop.loyalty.domain import RETURNED_PREFIX, LotStatus, RedemptionStatus
from zanloop.loyalty.repository import chunks
from zanloop.loyalty.tables import CatalogueItem, LoyaltyLot, Redemption

# Lots ----------------------------------------------------------------------------------------


def insert_lots(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        bulk_insert(session, LoyaltyLot, rows)


def lots_by_ref(session: Session, tenant_id: str, refs: Collection[str]) -> list[LoyaltyLot]:
    found: list[LoyaltyLot] = []
    for chunk in chunks(sorted(refs)):
        found.extend(
            session.scalars(
                select(LoyaltyLot)
                .where(LoyaltyLot.tenant_id == tenant_id, LoyaltyLot.ref.in_(chunk))
                .order_by(LoyaltyLot.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        )
    return found


def spendable_lots(session: Session, tenant_id: str, user_id: str) -> list[LoyaltyLot]:
    return list(
        session.scalars(
            select(LoyaltyLot)
            .where(
                LoyaltyLot.tenant_id == tenant_id,
                LoyaltyLot.user_id == user_id,
                LoyaltyLot.status == LotStatus.AVAILABLE.value,
                LoyaltyLot.remaining > 0,
            )
            .order_by(LoyaltyLot.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def lots_by_id(session: Session, tenant_id: str, lot_ids: Collection[str]) -> list[LoyaltyLot]:
    return list(
        session.scalars(
            select(LoyaltyLot)
            .where(LoyaltyLot.tenant_id == tenant_id, LoyaltyLot.id.in_(sorted(lot_ids)))
            .order_by(LoyaltyLot.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def member_lots(
    session: Session,
    tenant_id: str,
    user_id: str,
    status: str | None,
    after_id: str | None,
    limit: int,
) -> list[LoyaltyLot]:
    stmt = select(LoyaltyLot).where(
        LoyaltyLot.tenant_id == tenant_id, LoyaltyLot.user_id == user_id
    )
    if status is not None:
        stmt = stmt.where(LoyaltyLot.status == status)
    if after_id is not None:
        stmt = stmt.where(LoyaltyLot.id > after_id)
    return list(session.scalars(stmt.order_by(LoyaltyLot.id).limit(limit)))


def pending_summary(session: Session, tenant_id: str, user_id: str) -> tuple[int, datetime | None]:
    points, first = session.execute(
        select(func.sum(LoyaltyLot.remaining), func.min(LoyaltyLot.available_at)).where(
            LoyaltyLot.tenant_id == tenant_id,
            LoyaltyLot.user_id == user_id,
            LoyaltyLot.status == LotStatus.PENDING.value,
        )
    ).one()
    return int(points or 0), first


def next_expiry(session: Session, tenant_id: str, user_id: str) -> tuple[datetime, int] | None:
    when = session.scalar(
        select(func.min(LoyaltyLot.expires_at)).where(
            LoyaltyLot.tenant_id == tenant_id,
            LoyaltyLot.user_id == user_id,
            LoyaltyLot.status == LotStatus.AVAILABLE.value,
            LoyaltyLot.remaining > 0,
            LoyaltyLot.expires_at.is_not(None),
        )
    )
    if when is None:
        return None
    points = session.scalar(
        select(func.sum(LoyaltyLot.remaining)).where(
            LoyaltyLot.tenant_id == tenant_id,
            LoyaltyLot.user_id == user_id,
            LoyaltyLot.status == LotStatus.AVAILABLE.value,
            LoyaltyLot.expires_at == when,
        )
    )
    return when, int(points or 0)


def due_lots(session: Session, now: datetime, limit: int) -> list[LoyaltyLot]:
    """Pending lots whose refund window has closed."""
    stmt = (
        select(LoyaltyLot)
        .where(LoyaltyLot.status == LotStatus.PENDING.value, LoyaltyLot.available_at <= now)
        .order_by(LoyaltyLot.available_at, LoyaltyLot.id)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def expired_lots(
    session: Session,
    now: datetime,
    limit: int,
    tenant_id: str | None = None,
    user_id: str | None = None,
) -> list[LoyaltyLot]:
    stmt = select(LoyaltyLot).where(
        LoyaltyLot.status == LotStatus.AVAILABLE.value,
        LoyaltyLot.expires_at <= now,
        LoyaltyLot.remaining > 0,
    )
    if tenant_id is not None:
        stmt = stmt.where(LoyaltyLot.tenant_id == tenant_id)
    if user_id is not None:
        stmt = stmt.where(LoyaltyLot.user_id == user_id)
    stmt = stmt.order_by(LoyaltyLot.expires_at, LoyaltyLot.id).limit(limit)
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def expiring_unnotified(
    session: Session, tenant_id: str, until: datetime, limit: int
) -> list[LoyaltyLot]:
    stmt = (
        select(LoyaltyLot)
        .where(
            LoyaltyLot.tenant_id == tenant_id,
            LoyaltyLot.status == LotStatus.AVAILABLE.value,
            LoyaltyLot.expires_at <= until,
            LoyaltyLot.remaining > 0,
            LoyaltyLot.notified_at.is_(None),
        )
        .order_by(LoyaltyLot.expires_at, LoyaltyLot.id)
        .limit(limit)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


# Catalogue and redemptions -------------------------------------------------------------------


def get_item(session: Session, tenant_id: str, item_id: str) -> CatalogueItem | None:
    return session.scalars(
        select(CatalogueItem).where(
            CatalogueItem.tenant_id == tenant_id, CatalogueItem.id == item_id
        )
    ).first()


def list_items(session: Session, tenant_id: str, status: str | None) -> list[CatalogueItem]:
    stmt = select(CatalogueItem).where(CatalogueItem.tenant_id == tenant_id)
    if status is not None:
        stmt = stmt.where(CatalogueItem.status == status)
    return list(session.scalars(stmt.order_by(CatalogueItem.price_points, CatalogueItem.id)))


def get_redemption(
    session: Session, tenant_id: str, redemption_id: str, *, lock: bool = False
) -> Redemption | None:
    stmt = select(Redemption).where(
        Redemption.tenant_id == tenant_id, Redemption.id == redemption_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def redemption_by_request(session: Session, tenant_id: str, request_no: str) -> Redemption | None:
    return session.scalars(
        select(Redemption).where(
            Redemption.tenant_id == tenant_id, Redemption.request_no == request_no
        )
    ).first()


def member_redemptions(
    session: Session, tenant_id: str, user_id: str, after_id: str | None, limit: int
) -> list[Redemption]:
    stmt = select(Redemption).where(
        Redemption.tenant_id == tenant_id, Redemption.user_id == user_id
    )
    if after_id is not None:
        stmt = stmt.where(Redemption.id < after_id)
    return list(session.scalars(stmt.order_by(Redemption.id.desc()).limit(limit)))


def stale_holds(session: Session, now: datetime, limit: int) -> list[tuple[str, str]]:
    return [
        (t, r)
        for t, r in session.execute(
            select(Redemption.tenant_id, Redemption.id)
            .where(Redemption.status == RedemptionStatus.HELD.value, Redemption.expires_at <= now)
            .order_by(Redemption.expires_at)
            .limit(limit)
        )
    ]


# Economics -----------------------------------------------------------------------------------


def issued_by_month(
    session: Session, tenant_id: str, since: datetime, until: datetime, tz: ZoneInfo
) -> list[tuple[str, int, int, int]]:
    """(YYYY-MM of earning in ``tz``, points issued, points clawed back, members who earned)."""
    rows = session.execute(
        select(
            LoyaltyLot.user_id, LoyaltyLot.earned_at, LoyaltyLot.points, LoyaltyLot.clawed
        ).where(
            LoyaltyLot.tenant_id == tenant_id,
            LoyaltyLot.earned_at >= since,
            LoyaltyLot.earned_at < until,
        )
    )
    months: dict[str, tuple[int, int, set[str]]] = {}
    for user, at, points, clawed in rows:
        local = as_utc(at).astimezone(tz)
        key = f"{local.year:04d}-{local.month:02d}"
        issued, back, users = months.get(key, (0, 0, set()))
        users.add(user)
        months[key] = (issued + int(points), back + int(clawed), users)
    return sorted((k, i, c, len(u)) for k, (i, c, u) in months.items())


def lot_totals(session: Session, tenant_id: str) -> dict[str, int]:
    """Points over all lots: issued, clawed, expired, and what remains, pending or available."""
    returned = LoyaltyLot.ref.startswith(RETURNED_PREFIX)
    issued, back, clawed, expired = session.execute(
        select(
            func.coalesce(func.sum(LoyaltyLot.points).filter(~returned), 0),
            func.coalesce(func.sum(LoyaltyLot.points).filter(returned), 0),
            func.coalesce(func.sum(LoyaltyLot.clawed), 0),
            func.coalesce(func.sum(LoyaltyLot.expired), 0),
        ).where(LoyaltyLot.tenant_id == tenant_id)
    ).one()
    by_status = dict(
        session.execute(
            select(LoyaltyLot.status, func.coalesce(func.sum(LoyaltyLot.remaining), 0))
            .where(LoyaltyLot.tenant_id == tenant_id)
            .group_by(LoyaltyLot.status)
        ).all()
    )
    held = session.scalar(
        select(func.coalesce(func.sum(Redemption.points), 0)).where(
            Redemption.tenant_id == tenant_id, Redemption.status == RedemptionStatus.HELD.value
        )
    )
    redeemed = session.scalar(
        select(func.coalesce(func.sum(Redemption.points), 0)).where(
            Redemption.tenant_id == tenant_id, Redemption.status == RedemptionStatus.CONFIRMED.value
        )
    )
    return {
        # Returned points were issued once already, as the lot they came back from.
        "issued": int(issued),
        "returned": int(back),
        "clawed": int(clawed),
        "expired": int(expired),
        "pending": int(by_status.get(LotStatus.PENDING.value, 0)),
        "available": int(by_status.get(LotStatus.AVAILABLE.value, 0)),
        "held": int(held or 0),
        "redeemed": int(redeemed or 0),
    }


def delay_pending(
    session: Session, tenant_id: str, user_ids: Sequence[str], until: datetime
) -> int:
    """Pending lots of these members become available no sooner than ``until``."""
    done = session.execute(
        update(LoyaltyLot)
        .where(
            LoyaltyLot.tenant_id == tenant_id,
            LoyaltyLot.user_id.in_(list(user_ids)),
            LoyaltyLot.status == LotStatus.PENDING.value,
            LoyaltyLot.available_at < until,
        )
        .values(available_at=until)
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]
