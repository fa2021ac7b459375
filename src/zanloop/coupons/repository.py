"""Every query of the coupons area."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select, update
from sqlalchemy.orm import Session

from zanloop.coupons.domain import CouponStatus
from zanloop.coupons.tables import Coupon, CouponTemplate
from zanloop.db import insert_unless_exists

AVAILABLE = CouponStatus.AVAILABLE.value
LOCKED = CouponStatus.LOCKED.value
REDEEMED = CouponStatus.REDEEMED.value
EXPIRED = CouponStatus.EXPIRED.value
REVOKED = CouponStatus.REVOKED.value

# Templates -----------------------------------------------------------------------------------


def add_template(session: Session, template: CouponTemplate) -> None:
    session.add(template)
    session.flush()


def get_template(session: Session, tenant_id: str, template_id: str) -> CouponTemplate | None:
    return session.scalars(
        select(CouponTemplate).where(
            CouponTemplate.tenant_id == tenant_id, CouponTemplate.id == template_id
        )
    ).first()


def templates_by_id(
    session: Session, tenant_id: str, ids: Iterable[str]
) -> dict[str, CouponTemplate]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.scalars(
        select(CouponTemplate).where(
            CouponTemplate.tenant_id == tenant_id, CouponTemplate.id.in_(wanted)
        )
    )
    return {t.id: t for t in rows}


def list_templates(
    session: Session, tenant_id: str, status: str | None, before_id: str | None, limit: int
) -> list[CouponTemplate]:
    stmt = select(CouponTemplate).where(CouponTemplate.tenant_id == tenant_id)
    if status:
        stmt = stmt.where(CouponTemplate.status == status)
    if before_id:
        stmt = stmt.where(CouponTemplate.id < before_id)
    return list(session.scalars(stmt.order_by(CouponTemplate.id.desc()).limit(limit)))


def update_template(session: Session, template_id: str, values: dict[str, Any]) -> None:
    session.execute(
        update(CouponTemplate)
        .where(CouponTemplate.id == template_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


# Coupons -------------------------------------------------------------------------------------


def insert_coupon(session: Session, row: dict[str, Any]) -> bool:
    """Insert unless the template already has a coupon of this request number."""
    return insert_unless_exists(session, Coupon, row, ["tenant_id", "template_id", "request_no"])


def coupon_by_request(
    session: Session, tenant_id: str, template_id: str, request_no: str
) -> Coupon | None:
    return session.scalars(
        select(Coupon).where(
            Coupon.tenant_id == tenant_id,
            Coupon.template_id == template_id,
            Coupon.request_no == request_no,
        )
    ).first()


def get_coupon(session: Session, tenant_id: str, coupon_id: str) -> Coupon | None:
    return session.scalars(
        select(Coupon).where(Coupon.tenant_id == tenant_id, Coupon.id == coupon_id)
    ).first()


def _status_is(status: str, now: datetime) -> ColumnElement[bool]:
    """The coupon's status as the API shows it: AVAILABLE past expiry counts as EXPIRED."""
    if status == AVAILABLE:
        return and_(Coupon.status == AVAILABLE, Coupon.expires_at > now)
    if status == EXPIRED:
        return (Coupon.status == EXPIRED) | and_(
            Coupon.status == AVAILABLE, Coupon.expires_at <= now
        )
    return Coupon.status == status


def wallet(
    session: Session,
    tenant_id: str,
    user_id: str,
    status: str | None,
    now: datetime,
    before_id: str | None,
    limit: int,
) -> list[Coupon]:
    stmt = select(Coupon).where(Coupon.tenant_id == tenant_id, Coupon.user_id == user_id)
    if status:
        stmt = stmt.where(_status_is(status, now))
    if before_id:
        stmt = stmt.where(Coupon.id < before_id)
    return list(session.scalars(stmt.order_by(Coupon.id.desc()).limit(limit)))


def move(
    session: Session,
    tenant_id: str,
    coupon_id: str,
    sources: Iterable[str],
    *conditions: ColumnElement[bool],
    **values: Any,
) -> bool:
    """Change the coupon if it is in one of ``sources`` (and meets ``conditions``): one
    guarded UPDATE, so of concurrent movers exactly one wins."""
    result = session.execute(
        update(Coupon)
        .where(
            Coupon.tenant_id == tenant_id,
            Coupon.id == coupon_id,
            Coupon.status.in_(list(sources)),
            *conditions,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def move_by_order(
    session: Session,
    tenant_id: str,
    order_id: str,
    source: str,
    now: datetime,
    values: dict[str, Any],
) -> int:
    """Move the coupon held by (or redeemed on) the order out of ``source``: to AVAILABLE, or
    EXPIRED when it is past its expiry."""
    result = session.execute(
        update(Coupon)
        .where(Coupon.tenant_id == tenant_id, Coupon.order_id == order_id, Coupon.status == source)
        .values(
            status=case((Coupon.expires_at <= now, EXPIRED), else_=AVAILABLE),
            updated_at=now,
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def redeem_locked(session: Session, tenant_id: str, order_id: str, now: datetime) -> int:
    result = session.execute(
        update(Coupon)
        .where(Coupon.tenant_id == tenant_id, Coupon.order_id == order_id, Coupon.status == LOCKED)
        .values(status=REDEEMED, redeemed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def expire_due(session: Session, now: datetime) -> int:
    """Every tenant's AVAILABLE coupons past their expiry become EXPIRED: one UPDATE."""
    result = session.execute(
        update(Coupon)
        .where(Coupon.status == AVAILABLE, Coupon.expires_at <= now)
        .values(status=EXPIRED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# Figures -------------------------------------------------------------------------------------


def counts_by_template(
    session: Session, tenant_id: str, template_ids: Iterable[str]
) -> dict[str, tuple[int, int]]:
    """(issued, redeemed) per template."""
    ids = list(template_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(
            Coupon.template_id,
            func.count(),
            func.count().filter(Coupon.status == REDEEMED),
        )
        .where(Coupon.tenant_id == tenant_id, Coupon.template_id.in_(ids))
        .group_by(Coupon.template_id)
    )
    return {template_id: (int(issued), int(redeemed)) for template_id, issued, redeemed in rows}


def figures(
    session: Session,
    tenant_id: str,
    now: datetime,
    template_id: str | None,
    source_prefix: str | None,
) -> tuple[int, ...]:
    """(issued, redeemed, expired, revoked, discount_fen, spend_fen, list_fen) in one scan."""
    redeemed = Coupon.status == REDEEMED
    stmt = select(
        func.count(),
        func.count().filter(redeemed),
        func.count().filter(_status_is(EXPIRED, now)),
        func.count().filter(Coupon.status == REVOKED),
        func.coalesce(func.sum(Coupon.discount_fen).filter(redeemed), 0),
        func.coalesce(func.sum(Coupon.list_fen - Coupon.discount_fen).filter(redeemed), 0),
        func.coalesce(func.sum(Coupon.list_fen).filter(redeemed), 0),
    ).where(Coupon.tenant_id == tenant_id)
    if template_id is not None:
        stmt = stmt.where(Coupon.template_id == template_id)
    if source_prefix is not None:
        stmt = stmt.where(Coupon.source.startswith(source_prefix, autoescape=True))
    row = session.execute(stmt).one()
    return tuple(int(value) for value in row)
