"""Every query of payments.

The statements a provider notification runs are built once, with bind parameters, and reused:
building a statement costs more CPU than SQLite takes to run it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from zanloop.db import insert_unless_exists, is_postgres
from zanloop.kit.clock import utcnow
from zanloop.payments.tables import (
    PaymentOrder,
    PaymentProviderConfig,
    ProviderNotification,
    Refund,
)


def get_config(session: Session, tenant_id: str) -> PaymentProviderConfig | None:
    return session.get(PaymentProviderConfig, tenant_id)


_configs = cast(Table, PaymentProviderConfig.__table__)
_CONFIG_VERSION = select(_configs.c.updated_at).where(
    _configs.c.tenant_id == bindparam("tenant_id")
)


def config_version(session: Session, tenant_id: str) -> datetime | None:
    """When the tenant's provider configuration last changed (None: it has none)."""
    version: datetime | None = session.scalar(_CONFIG_VERSION, {"tenant_id": tenant_id})
    return version


def save_config(session: Session, config: PaymentProviderConfig) -> None:
    session.merge(config)
    session.flush()


def get_order(
    session: Session, tenant_id: str, order_id: str, *, lock: bool = False
) -> PaymentOrder | None:
    stmt = select(PaymentOrder).where(
        PaymentOrder.tenant_id == tenant_id, PaymentOrder.id == order_id
    )
    if lock and is_postgres(session):
        stmt = stmt.with_for_update()
    return session.scalar(stmt.execution_options(populate_existing=True))


_ORDER_BY_OUT_TRADE_NO = (
    select(PaymentOrder)
    .where(
        PaymentOrder.tenant_id == bindparam("tenant_id"),
        PaymentOrder.out_trade_no == bindparam("out_trade_no"),
    )
    .execution_options(populate_existing=True)
)
_ORDER_BY_OUT_TRADE_NO_FOR_UPDATE = _ORDER_BY_OUT_TRADE_NO.with_for_update()


def get_order_by_out_trade_no(
    session: Session, tenant_id: str, out_trade_no: str, *, lock: bool = False
) -> PaymentOrder | None:
    stmt = _ORDER_BY_OUT_TRADE_NO
    if lock and is_postgres(session):
        stmt = _ORDER_BY_OUT_TRADE_NO_FOR_UPDATE
    return session.scalar(stmt, {"tenant_id": tenant_id, "out_trade_no": out_trade_no})


def insert_order(session: Session, row: dict[str, Any]) -> bool:
    """Insert unless the out_trade_no is taken; returns whether it was inserted."""
    return insert_unless_exists(session, PaymentOrder, row, ["tenant_id", "out_trade_no"])


def move_order(
    session: Session, order_id: str, sources: Iterable[str], target: str, **values: Any
) -> bool:
    """Atomic state change: applies only if the order is still in one of ``sources``.

    A plain UPDATE: orders loaded in the session are left as they were (read them again, or
    use ``move_loaded_order``)."""
    return _move_order(
        session, order_id, sources, {"status": target, "updated_at": utcnow(), **values}
    )


def move_loaded_order(
    session: Session, order: PaymentOrder, sources: Iterable[str], target: str, **values: Any
) -> bool:
    """``move_order`` for an order loaded in this session, which then shows the new values
    too (as already stored: the UPDATE was sent, no flush repeats it)."""
    changes = {"status": target, "updated_at": utcnow(), **values}
    if not _move_order(session, order.id, sources, changes):
        return False
    for key, value in changes.items():
        set_committed_value(order, key, value)
    return True


# A Core UPDATE of the table: the session's objects are neither searched nor synchronised.
# Executed with the new values keyed by column name, which become the SET clause.
_orders = cast(Table, PaymentOrder.__table__)
_MOVE_ORDER = update(_orders).where(
    _orders.c.id == bindparam("where_id"),
    _orders.c.status.in_(bindparam("where_status", expanding=True)),
)


def _move_order(
    session: Session, order_id: str, sources: Iterable[str], changes: dict[str, Any]
) -> bool:
    params = {"where_id": order_id, "where_status": list(sources), **changes}
    result = session.execute(_MOVE_ORDER, params)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def set_prepay_id(session: Session, order_id: str, prepay_id: str) -> None:
    session.execute(
        update(PaymentOrder).where(PaymentOrder.id == order_id).values(prepay_id=prepay_id)
    )


def reserve_refund(session: Session, order_id: str, amount_fen: int) -> bool:
    result = session.execute(
        update(PaymentOrder)
        .where(
            PaymentOrder.id == order_id,
            PaymentOrder.amount_fen - PaymentOrder.refund_reserved_fen >= amount_fen,
        )
        .values(
            refund_reserved_fen=PaymentOrder.refund_reserved_fen + amount_fen, updated_at=utcnow()
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release_refund(session: Session, order_id: str, amount_fen: int) -> None:
    session.execute(
        update(PaymentOrder)
        .where(PaymentOrder.id == order_id)
        .values(
            refund_reserved_fen=PaymentOrder.refund_reserved_fen - amount_fen, updated_at=utcnow()
        )
    )


def add_refunded(session: Session, order_id: str, amount_fen: int) -> None:
    session.execute(
        update(PaymentOrder)
        .where(PaymentOrder.id == order_id)
        .values(refunded_fen=PaymentOrder.refunded_fen + amount_fen, updated_at=utcnow())
    )


def list_orders(
    session: Session, tenant_id: str, before_id: str | None, limit: int, status: str | None
) -> list[PaymentOrder]:
    stmt = select(PaymentOrder).where(PaymentOrder.tenant_id == tenant_id)
    if status is not None:
        stmt = stmt.where(PaymentOrder.status == status)
    if before_id is not None:
        stmt = stmt.where(PaymentOrder.id < before_id)
    return list(session.scalars(stmt.order_by(PaymentOrder.id.desc()).limit(limit)))


def stale_unpaid(session: Session, created_before: datetime, limit: int) -> list[PaymentOrder]:
    return list(
        session.scalars(
            select(PaymentOrder)
            .where(
                PaymentOrder.status.in_(["NOTPAY", "USERPAYING", "PAYERROR"]),
                PaymentOrder.created_at < created_before,
            )
            .order_by(PaymentOrder.created_at)
            .limit(limit)
        )
    )


def insert_refund(session: Session, row: dict[str, Any]) -> bool:
    return insert_unless_exists(session, Refund, row, ["tenant_id", "out_refund_no"])


def get_refund(session: Session, tenant_id: str, refund_id: str) -> Refund | None:
    return session.scalar(
        select(Refund)
        .where(Refund.tenant_id == tenant_id, Refund.id == refund_id)
        .execution_options(populate_existing=True)
    )


def get_refund_by_out_refund_no(
    session: Session, tenant_id: str, out_refund_no: str
) -> Refund | None:
    return session.scalar(
        select(Refund)
        .where(Refund.tenant_id == tenant_id, Refund.out_refund_no == out_refund_no)
        .execution_options(populate_existing=True)
    )


def move_refund(session: Session, refund_pk: str, target: str, **values: Any) -> bool:
    result = session.execute(
        update(Refund)
        .where(Refund.id == refund_pk, Refund.status == "PROCESSING")
        .values(status=target, **values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def list_refunds(session: Session, tenant_id: str, order_id: str) -> list[Refund]:
    return list(
        session.scalars(
            select(Refund)
            .where(Refund.tenant_id == tenant_id, Refund.order_id == order_id)
            .order_by(Refund.created_at)
        )
    )


def processing_refunds(session: Session, created_before: datetime, limit: int) -> list[Refund]:
    return list(
        session.scalars(
            select(Refund)
            .where(Refund.status == "PROCESSING", Refund.created_at < created_before)
            .order_by(Refund.created_at)
            .limit(limit)
        )
    )


_notifications = cast(Table, ProviderNotification.__table__)
_RECORD_NOTIFICATION = {
    name: insert(_notifications)
    .on_conflict_do_nothing(index_elements=["tenant_id", "notification_id"])
    .returning(_notifications.c.id)
    for name, insert in (("sqlite", sqlite.insert), ("postgresql", postgresql.insert))
}


def record_notification(session: Session, row: dict[str, Any]) -> bool:
    """False when this notification id was already accepted (a replay)."""
    stmt = _RECORD_NOTIFICATION[session.get_bind().dialect.name]
    return session.execute(stmt, row).first() is not None
