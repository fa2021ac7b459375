from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zanloop.db import insert_unless_exists
from zanloop.kit.clock import utcnow
from zanloop.quotas.tables import QuotaCounter


def take(session: Session, tenant_id: str, scope: str, key: str, amount: int, limit: int) -> bool:
    """One conditional UPDATE: on PostgreSQL the row lock makes concurrent takers queue and
    re-check ``used + amount <= limit`` against the committed value, so a limit never overshoots
    whatever the concurrency; SQLite has one writer at a time anyway."""
    insert_unless_exists(
        session,
        QuotaCounter,
        {"tenant_id": tenant_id, "scope": scope, "key": key, "used": 0, "updated_at": utcnow()},
        ["tenant_id", "scope", "key"],
    )
    result = session.execute(
        update(QuotaCounter)
        .where(
            QuotaCounter.tenant_id == tenant_id,
            QuotaCounter.scope == scope,
            QuotaCounter.key == key,
            QuotaCounter.used + amount <= limit,
        )
        .values(used=QuotaCounter.used + amount, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def give_back(session: Session, tenant_id: str, scope: str, key: str, amount: int) -> None:
    session.execute(
        update(QuotaCounter)
        .where(
            QuotaCounter.tenant_id == tenant_id,
            QuotaCounter.scope == scope,
            QuotaCounter.key == key,
        )
        .values(used=QuotaCounter.used - amount, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def used(session: Session, tenant_id: str, scope: str, keys: Iterable[str]) -> dict[str, int]:
    rows = session.execute(
        select(QuotaCounter.key, QuotaCounter.used).where(
            QuotaCounter.tenant_id == tenant_id,
            QuotaCounter.scope == scope,
            QuotaCounter.key.in_(list(keys)),
        )
    )
    return {key: int(value) for key, value in rows}
