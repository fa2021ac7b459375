from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from zanloop.db import insert_unless_exists
from zanloop.idempotency.tables import IdempotencyRecord


def try_insert(session: Session, row: dict[str, Any]) -> bool:
    return insert_unless_exists(session, IdempotencyRecord, row, ["tenant_id", "key"])


def get(session: Session, tenant_id: str, key: str) -> IdempotencyRecord | None:
    return session.scalar(
        select(IdempotencyRecord)
        .where(IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key)
        .execution_options(populate_existing=True)
    )


def take_over(
    session: Session, tenant_id: str, key: str, now: datetime, locked_until: datetime
) -> bool:
    result = session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.tenant_id == tenant_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.status == "IN_PROGRESS",
            IdempotencyRecord.locked_until < now,
        )
        .values(locked_until=locked_until)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def complete(session: Session, tenant_id: str, key: str, status_code: int, body: Any) -> None:
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key)
        .values(
            status="COMPLETED", response_status=status_code, response_body=body, locked_until=None
        )
    )


def release(session: Session, tenant_id: str, key: str) -> None:
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.tenant_id == tenant_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.status == "IN_PROGRESS",
        )
    )


def purge_completed(session: Session, before: datetime) -> int:
    result = session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.status == "COMPLETED", IdempotencyRecord.created_at < before
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
