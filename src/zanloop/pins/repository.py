"""Every query of the pins area."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from zanloop.db import insert_unless_exists
from zanloop.pins.domain import PinStatus
from zanloop.pins.tables import Content, Creator, Pin, PinNotice, PinPolicyRow

# Creators and content ------------------------------------------------------------------------


def insert_creator(session: Session, row: dict[str, Any]) -> bool:
    return insert_unless_exists(session, Creator, row, ["tenant_id", "external_id"])


def creator_by_external(
    session: Session, tenant_id: str, external_id: str, *, lock: bool = False
) -> Creator | None:
    stmt = select(Creator).where(Creator.tenant_id == tenant_id, Creator.external_id == external_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def creator_by_id(session: Session, creator_id: str) -> Creator | None:
    return session.get(Creator, creator_id)


def list_creators(
    session: Session, tenant_id: str, after_id: str | None, limit: int
) -> list[Creator]:
    stmt = select(Creator).where(Creator.tenant_id == tenant_id)
    if after_id:
        stmt = stmt.where(Creator.id > after_id)
    return list(session.scalars(stmt.order_by(Creator.id).limit(limit)))


def insert_content(session: Session, row: dict[str, Any]) -> bool:
    return insert_unless_exists(session, Content, row, ["tenant_id", "external_id"])


def content_by_external(
    session: Session, tenant_id: str, external_id: str, *, lock: bool = False
) -> Content | None:
    stmt = select(Content).where(Content.tenant_id == tenant_id, Content.external_id == external_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def content_by_id(session: Session, content_id: str, *, lock: bool = False) -> Content | None:
    if not lock:
        return session.get(Content, content_id)  # no query when the session holds it already
    return session.scalars(
        select(Content).where(Content.id == content_id).with_for_update()
    ).first()


def list_contents(
    session: Session, tenant_id: str, creator_id: str | None, after_id: str | None, limit: int
) -> list[Content]:
    stmt = select(Content).where(Content.tenant_id == tenant_id)
    if creator_id:
        stmt = stmt.where(Content.creator_id == creator_id)
    if after_id:
        stmt = stmt.where(Content.id > after_id)
    return list(session.scalars(stmt.order_by(Content.id).limit(limit)))


def bump_version(session: Session, content_id: str) -> None:
    session.execute(
        update(Content)
        .where(Content.id == content_id)
        .values(pins_version=Content.pins_version + 1)
    )


# What a pinned list depends on besides the clock: the content's pins version, the creator's
# and the tenant policy's last change. One indexed look-up, built once.
_STAMP = (
    select(Content.id, Content.pins_version, Creator.updated_at, PinPolicyRow.updated_at)
    .join(Creator, Creator.id == Content.creator_id)
    .outerjoin(PinPolicyRow, PinPolicyRow.tenant_id == Content.tenant_id)
    .where(
        Content.tenant_id == bindparam("tenant_id"),
        Content.external_id == bindparam("external_id"),
    )
)


_STAMP_SQLITE = str(_STAMP.compile(dialect=sqlite.dialect()))


def list_stamp(session: Session, tenant_id: str, external_id: str) -> tuple[Any, ...] | None:
    if session.get_bind().dialect.name == "sqlite":
        # The same raw values as raw_stamp gives, so that the two compare equal.
        raw = session.connection().connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        return raw_stamp(raw, tenant_id, external_id)
    return core_stamp(session.connection(), tenant_id, external_id)


def raw_stamp(conn: sqlite3.Connection, tenant_id: str, external_id: str) -> tuple[Any, ...] | None:
    row = conn.execute(_STAMP_SQLITE, (tenant_id, external_id)).fetchone()
    return None if row is None else tuple(row)


def core_stamp(conn: Connection, tenant_id: str, external_id: str) -> tuple[Any, ...] | None:
    row = conn.execute(_STAMP, {"tenant_id": tenant_id, "external_id": external_id}).first()
    return None if row is None else tuple(row)


# Policy --------------------------------------------------------------------------------------


def policy_document(session: Session, tenant_id: str) -> dict[str, Any] | None:
    row = session.get(PinPolicyRow, tenant_id)
    return None if row is None else row.document


def save_policy(session: Session, tenant_id: str, document: dict[str, Any], now: datetime) -> None:
    insert_unless_exists(
        session,
        PinPolicyRow,
        {"tenant_id": tenant_id, "document": {}, "updated_at": now},
        ["tenant_id"],
    )
    session.execute(
        update(PinPolicyRow)
        .where(PinPolicyRow.tenant_id == tenant_id)
        .values(document=document, updated_at=now)
    )


# Pins ----------------------------------------------------------------------------------------


def add(session: Session, obj: Any) -> None:
    session.add(obj)
    session.flush()


def get_pin(session: Session, tenant_id: str, pin_id: str, *, lock: bool = False) -> Pin | None:
    stmt = select(Pin).where(Pin.tenant_id == tenant_id, Pin.id == pin_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def pin_by_order(session: Session, order_id: str, *, lock: bool = False) -> Pin | None:
    stmt = select(Pin).where(Pin.payment_order_id == order_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def pin_by_decision(session: Session, tenant_id: str, decision_id: str) -> Pin | None:
    return session.scalars(
        select(Pin).where(Pin.tenant_id == tenant_id, Pin.decision_id == decision_id)
    ).first()


def showing_pins(session: Session, content_id: str, now: datetime, limit: int) -> list[Row[Any]]:
    """The first ``limit`` live pins of the content in display order (amount, then time),
    lightest columns only: the hot read, served by one index range."""
    return list(
        session.execute(
            select(
                Pin.id,
                Pin.buyer_id,
                Pin.amount_fen,
                Pin.message,
                Pin.activated_at,
                Pin.expires_at,
            )
            .where(
                Pin.content_id == content_id,
                Pin.status == PinStatus.ACTIVE.value,
                (Pin.expires_at.is_(None)) | (Pin.expires_at > now),
            )
            .order_by(Pin.amount_fen.desc(), Pin.activated_at, Pin.id)
            .limit(limit)
        )
    )


def next_expiry(session: Session, content_id: str, now: datetime) -> datetime | None:
    """When the first live timed pin of the content runs out (the list changes by itself)."""
    return session.execute(
        select(func.min(Pin.expires_at)).where(
            Pin.content_id == content_id,
            Pin.status == PinStatus.ACTIVE.value,
            Pin.expires_at > now,
        )
    ).scalar_one_or_none()


def list_pins(
    session: Session,
    tenant_id: str,
    *,
    buyer_id: str | None = None,
    creator_id: str | None = None,
    content_id: str | None = None,
    status: str | None = None,
    before_id: str | None = None,
    limit: int = 50,
) -> list[Pin]:
    stmt = select(Pin).where(Pin.tenant_id == tenant_id)
    if buyer_id is not None:
        stmt = stmt.where(Pin.buyer_id == buyer_id)
    if creator_id is not None:
        stmt = stmt.where(Pin.creator_id == creator_id)
    if content_id is not None:
        stmt = stmt.where(Pin.content_id == content_id)
    if status is not None:
        stmt = stmt.where(Pin.status == status)
    if before_id is not None:
        stmt = stmt.where(Pin.id < before_id)
    return list(session.scalars(stmt.order_by(Pin.id.desc()).limit(limit)))


def due_to_expire(session: Session, now: datetime, limit: int) -> list[Pin]:
    return list(
        session.scalars(
            select(Pin)
            .where(Pin.status == PinStatus.ACTIVE.value, Pin.expires_at <= now)
            .order_by(Pin.expires_at)
            .limit(limit)
        )
    )


def move(session: Session, pin_id: str, sources: Sequence[PinStatus], **values: Any) -> bool:
    """Change a pin only from one of ``sources``: a lost race changes nothing."""
    result = session.execute(
        update(Pin)
        .where(Pin.id == pin_id, Pin.status.in_([s.value for s in sources]))
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# Notices -------------------------------------------------------------------------------------


def notices_after(
    session: Session, tenant_id: str, creator_id: str, after_id: int, limit: int
) -> list[PinNotice]:
    return list(
        session.scalars(
            select(PinNotice)
            .where(
                PinNotice.tenant_id == tenant_id,
                PinNotice.creator_id == creator_id,
                PinNotice.id > after_id,
            )
            .order_by(PinNotice.id)
            .limit(limit)
        )
    )


def last_notice_id(session: Session, tenant_id: str, creator_id: str) -> int:
    return int(
        session.execute(
            select(func.coalesce(func.max(PinNotice.id), 0)).where(
                PinNotice.tenant_id == tenant_id, PinNotice.creator_id == creator_id
            )
        ).scalar_one()
    )


# Analytics -----------------------------------------------------------------------------------

PAID = (
    PinStatus.ACTIVE.value,
    PinStatus.EXPIRED.value,
    PinStatus.REMOVED.value,
    PinStatus.REFUNDED.value,
    PinStatus.IN_REVIEW.value,
)


def _paid(tenant_id: str, creator_id: str, since: datetime, until: datetime) -> Any:
    # A pin held for review has no activated_at yet: it counts once it goes live.
    return (
        (Pin.tenant_id == tenant_id)
        & (Pin.creator_id == creator_id)
        & (Pin.status.in_(PAID))
        & (Pin.activated_at >= since)
        & (Pin.activated_at < until)
    )


def creators_with_policy(session: Session, tenant_id: str) -> list[Creator]:
    return [
        c
        for c in session.scalars(select(Creator).where(Creator.tenant_id == tenant_id))
        if c.policy
    ]


def paid_pins(
    session: Session, tenant_id: str, creator_id: str, since: datetime, until: datetime
) -> list[Row[Any]]:
    """Every paid pin's figures, grouped in Python so that day boundaries and refund shares are
    computed the same way on SQLite and PostgreSQL."""
    return list(
        session.execute(
            select(
                Pin.buyer_id,
                Pin.region,
                Pin.amount_fen,
                Pin.activated_at,
                Pin.status,
                Pin.creator_fen,
                Pin.platform_fen,
                Pin.refunded_fen,
            )
            .where(_paid(tenant_id, creator_id, since, until))
            # In time order: a supporter's region is the one of their first pin.
            .order_by(Pin.activated_at, Pin.id)
        )
    )


def buyer_interactions(
    session: Session, tenant_id: str, since: datetime, until: datetime
) -> list[tuple[str, str, datetime]]:
    """(buyer, content, paid time) of every pin that went live in ``[since, until)``."""
    stmt = select(Pin.buyer_id, Pin.content_id, Pin.activated_at).where(
        Pin.tenant_id == tenant_id,
        Pin.activated_at >= since,
        Pin.activated_at < until,
    )
    return [(b, c, at) for b, c, at in session.execute(stmt) if at is not None]
