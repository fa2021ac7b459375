from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from zanloop.bindings.tables import PayerBinding, PayerBindingEvent
from zanloop.db import insert_unless_exists


def get(
    session: Session, tenant_id: str, user_id: str, *, lock: bool = False
) -> PayerBinding | None:
    stmt = select(PayerBinding).where(
        PayerBinding.tenant_id == tenant_id, PayerBinding.user_id == user_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def ensure(session: Session, tenant_id: str, user_id: str) -> None:
    insert_unless_exists(
        session,
        PayerBinding,
        {"tenant_id": tenant_id, "user_id": user_id, "openid": None, "real_name_verified": False},
        ["tenant_id", "user_id"],
    )


def add_event(session: Session, event: PayerBindingEvent) -> None:
    session.add(event)
    session.flush()


def history(session: Session, tenant_id: str, user_id: str) -> list[PayerBindingEvent]:
    return list(
        session.scalars(
            select(PayerBindingEvent)
            .where(PayerBindingEvent.tenant_id == tenant_id, PayerBindingEvent.user_id == user_id)
            .order_by(PayerBindingEvent.id)
        )
    )
