"""A creator's live notices as Server-Sent Events (P5).

Notices are rows of ``pin_notices`` written in the transaction that made the change, so a
stream served by any API process sees pins that went live in any other process or worker. The
stream polls for rows after the last one sent; a reconnecting browser sends ``Last-Event-ID``
and misses nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from zanloop.db import Database
from zanloop.errors import Unauthorized
from zanloop.kit.clock import utcnow
from zanloop.pins import repository
from zanloop.pins.tables import PinStreamToken

TOKEN_LIFE = timedelta(hours=12)
POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, tenant_id: str, creator_id: str) -> tuple[str, datetime]:
    token = f"pst_{secrets.token_urlsafe(24)}"
    expires_at = utcnow() + TOKEN_LIFE
    repository.add(
        session,
        PinStreamToken(
            token_hash=_hash(token),
            tenant_id=tenant_id,
            creator_id=creator_id,
            expires_at=expires_at,
        ),
    )
    return token, expires_at


def check_token(session: Session, token: str) -> tuple[str, str]:
    """(tenant, creator) of a live token, else 401."""
    row = session.get(PinStreamToken, _hash(token))
    if row is None or row.expires_at <= utcnow():
        raise Unauthorized("the stream token is unknown or has expired")
    return row.tenant_id, row.creator_id


def _format(notice_id: int, kind: str, payload: dict[str, object]) -> str:
    return f"id: {notice_id}\nevent: {kind}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def events(
    db: Database,
    tenant_id: str,
    creator_id: str,
    last_event_id: int | None,
    disconnected: Callable[[], object],
) -> AsyncIterator[str]:
    def read(after: int) -> list[tuple[int, str, dict[str, object]]]:
        with db.read_session() as session:
            return [
                (n.id, n.kind, n.payload)
                for n in repository.notices_after(session, tenant_id, creator_id, after, 100)
            ]

    def newest() -> int:
        with db.read_session() as session:
            return repository.last_notice_id(session, tenant_id, creator_id)

    after = last_event_id if last_event_id is not None else await run_in_threadpool(newest)
    yield "retry: 2000\n\n"
    idle = 0.0
    while not await disconnected():  # type: ignore[misc]
        notices = await run_in_threadpool(read, after)
        for notice_id, kind, payload in notices:
            after = notice_id
            yield _format(notice_id, kind, payload)
        if notices:
            idle = 0.0
            continue
        await asyncio.sleep(POLL_SECONDS)
        idle += POLL_SECONDS
        if idle >= HEARTBEAT_SECONDS:
            idle = 0.0
            yield ": keep-alive\n\n"
