"""Job kinds for the tests, a record of what ran, and helpers that read the jobs table."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zanloop.db import Database
from zanloop.jobs import service
from zanloop.jobs.service import JobContext
from zanloop.jobs.tables import Job
from zanloop.kit.clock import utcnow

RECORD = "tests.record"
FLAKY = "tests.flaky"
FOLLOW_UP = "tests.follow_up"
PERIODIC = "tests.periodic"
# The periodic test kind's slot is ~31 years long, so one test never straddles two slots.
PERIODIC_EVERY = 10**9


class Ran:
    """What handlers ran, in order; safe to append to from several worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[Any] = []

    def add(self, item: Any) -> None:
        with self._lock:
            self.items.append(item)

    def clear(self) -> None:
        with self._lock:
            self.items.clear()


ran = Ran()


@service.handler(RECORD)
def record(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    ran.add(payload["n"])


@service.handler(FLAKY)
def flaky(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    """Fails on the first ``failures`` attempts."""
    ran.add(ctx.attempt)
    if ctx.attempt <= payload["failures"]:
        raise RuntimeError(f"boom on attempt {ctx.attempt}")


@service.handler(FOLLOW_UP)
def follow_up(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    """Writes in the job's transaction: enqueues a RECORD job naming the attempt that ran.
    While its first attempt runs, it calls ``hooks["during_first_attempt"]`` if set."""
    if ctx.attempt == 1 and "during_first_attempt" in hooks:
        hooks["during_first_attempt"]()
    service.enqueue(session, RECORD, {"n": f"{payload['n']}@attempt{ctx.attempt}"})


@service.handler(PERIODIC)
def periodic(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    ran.add("periodic")


hooks: dict[str, Callable[[], object]] = {}


@pytest.fixture(autouse=True)
def _fresh_record() -> Iterator[None]:
    ran.clear()
    hooks.clear()
    yield
    hooks.clear()


@pytest.fixture
def periodic_kind(monkeypatch: pytest.MonkeyPatch) -> str:
    """Schedule PERIODIC for this test only, so other tests' schedulers never see it."""
    monkeypatch.setitem(service._periodic, PERIODIC, service.Periodic(PERIODIC, PERIODIC_EVERY))
    return PERIODIC


def jobs_of(db: Database, kind: str | None = None) -> list[Job]:
    """Rows as they are now, detached so they can be read after the session ends."""
    with db.read_session() as session:
        stmt = select(Job).order_by(Job.id)
        if kind is not None:
            stmt = stmt.where(Job.kind == kind)
        rows = list(session.scalars(stmt))
        session.expunge_all()
        return rows


def job(db: Database, job_id: int) -> Job:
    [found] = [j for j in jobs_of(db) if j.id == job_id]
    return found


def make_due(db: Database, job_id: int) -> None:
    """Travel to the job's next run: its backoff or lease is over now."""
    past = utcnow() - timedelta(seconds=1)
    with db.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(run_at=past))


def expire_lease(db: Database, job_id: int) -> None:
    past = utcnow() - timedelta(seconds=1)
    with db.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(locked_until=past))


def enqueue(db: Database, kind: str, payload: dict[str, Any], **options: Any) -> int:
    with db.session() as session:
        service.enqueue(session, kind, payload, **options)
    return max(j.id for j in jobs_of(db, kind))
