"""Enqueue jobs inside the caller's transaction; wake the in-process worker after commit."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx2 as httpx
from sqlalchemy import event
from sqlalchemy.orm import Session

from zanloop.config import Settings
from zanloop.db import Database
from zanloop.jobs import repository
from zanloop.kit.clock import utcnow

_wake = threading.Event()


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop("jobs_enqueued", False):
        _wake.set()


def wake_event() -> threading.Event:
    return _wake


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    tenant_id: str | None = None,
    run_at: datetime | None = None,
    unique_key: str | None = None,
    max_attempts: int = 10,
) -> None:
    if kind not in _handlers:
        load_handlers()
    if kind not in _handlers:
        raise KeyError(f"no job handler registered for {kind!r}")
    repository.insert(
        session,
        {
            "kind": kind,
            "tenant_id": tenant_id,
            "payload": payload,
            "status": "QUEUED",
            "run_at": run_at or utcnow(),
            "attempts": 0,
            "max_attempts": max_attempts,
            "unique_key": unique_key,
            "created_at": utcnow(),
        },
    )
    session.info["jobs_enqueued"] = True


@dataclass
class JobContext:
    """What a handler may use besides its session."""

    settings: Settings
    http: httpx.Client
    # Handlers that call out over the network read through ``db.read_session()`` first and
    # write to their own session only afterwards, so no write lock is held during the call.
    db: Database
    attempt: int = 1
    extras: dict[str, Any] = field(default_factory=dict)


JobHandler = Callable[[JobContext, Session, dict[str, Any]], None]


@dataclass(frozen=True)
class Periodic:
    kind: str
    every_seconds: int


_handlers: dict[str, JobHandler] = {}
_periodic: dict[str, Periodic] = {}


def handler(kind: str, *, every_seconds: int | None = None) -> Callable[[JobHandler], JobHandler]:
    """Register a job handler; ``every_seconds`` also schedules it periodically."""

    def register(fn: JobHandler) -> JobHandler:
        _handlers[kind] = fn
        if every_seconds is not None:
            _periodic[kind] = Periodic(kind, every_seconds)
        return fn

    return register


def get_handler(kind: str) -> JobHandler | None:
    return _handlers.get(kind)


def periodic_jobs() -> list[Periodic]:
    return list(_periodic.values())


def load_handlers() -> None:
    """Import every module that registers handlers."""
    from zanloop.campaigns import jobs as _campaigns  # noqa: F401
    from zanloop.coupons import jobs as _coupons  # noqa: F401
    from zanloop.fraud import jobs as _fraud  # noqa: F401
    from zanloop.idempotency import jobs as _idempotency  # noqa: F401
    from zanloop.jobs import housekeeping as _housekeeping  # noqa: F401
    from zanloop.ledger import jobs as _ledger  # noqa: F401
    from zanloop.loyalty import jobs as _loyalty  # noqa: F401
    from zanloop.payments import jobs as _payments  # noqa: F401
    from zanloop.pins import jobs as _pins  # noqa: F401
    from zanloop.sandbox import jobs as _sandbox  # noqa: F401
    from zanloop.webhooks import jobs as _webhooks  # noqa: F401
