"""Idempotency-Key lifecycle.

1. ``claim`` (its own short transaction): record the key as IN_PROGRESS with a lock, or find it
   already there: a finished request is replayed, a different body is 422, a running one 409.
2. The change runs in the request's transaction and ``complete`` stores the response in that
   same transaction, so the key and the change commit together.
3. If the change fails, ``release`` forgets the key so the client may retry it.
A process that dies mid-request leaves a lock that expires; the next retry takes over.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from zanloop.db import Database
from zanloop.idempotency import domain, repository
from zanloop.idempotency.domain import KeyStatus, Replay, Stored
from zanloop.kit.clock import utcnow


def claim(db: Database, tenant_id: str, key: str, fingerprint: str) -> Replay | None:
    domain.check_key(key)
    now = utcnow()
    locked_until = now + timedelta(seconds=domain.LOCK_SECONDS)
    with db.session() as session:
        if repository.try_insert(
            session,
            {
                "tenant_id": tenant_id,
                "key": key,
                "fingerprint": fingerprint,
                "status": KeyStatus.IN_PROGRESS.value,
                "locked_until": locked_until,
                "created_at": now,
            },
        ):
            return None
        record = repository.get(session, tenant_id, key)
        if record is None:  # released between our insert and read: claim again
            return claim(db, tenant_id, key, fingerprint)
        stored = Stored(
            KeyStatus(record.status),
            record.fingerprint,
            record.response_status,
            record.response_body,
            record.locked_until,
        )
        replay = domain.on_repeat(stored, fingerprint, now)
        if replay is not None:
            return replay
        if not repository.take_over(session, tenant_id, key, now, locked_until):
            domain.on_repeat(
                Stored(stored.status, stored.fingerprint, None, None, locked_until),
                fingerprint,
                now,
            )
        return None


def complete(session: Session, tenant_id: str, key: str, status_code: int, body: Any) -> None:
    repository.complete(session, tenant_id, key, status_code, body)


def release(db: Database, tenant_id: str, key: str) -> None:
    with db.session() as session:
        repository.release(session, tenant_id, key)


def purge(session: Session, now: datetime) -> int:
    """Forget finished keys after the retention window: a retry that late is a new request."""
    return repository.purge_completed(session, now - timedelta(hours=domain.RETENTION_HOURS))
