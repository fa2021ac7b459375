from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from zanloop.db import dialect_insert, is_postgres
from zanloop.jobs.domain import JobStatus
from zanloop.jobs.tables import Job


def insert(session: Session, row: dict[str, Any]) -> None:
    stmt = dialect_insert(session, Job).values(row)
    if row.get("unique_key") is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["unique_key"])
    session.execute(stmt)


def claim(
    session: Session, worker_id: str, now: datetime, lease_seconds: int, limit: int
) -> Sequence[Job]:
    """Take up to ``limit`` due jobs, including ones whose previous runner's lease ran out.

    A job whose runner vanished with no attempts left is buried (DEAD) rather than retried for
    ever. PostgreSQL skips rows another worker is claiming (SKIP LOCKED); on SQLite the write
    transaction already holds the database lock."""
    abandoned = and_(Job.status == JobStatus.RUNNING.value, Job.locked_until < now)
    session.execute(
        update(Job)
        .where(abandoned, Job.attempts >= Job.max_attempts)
        .values(
            status=JobStatus.DEAD.value,
            finished_at=now,
            locked_by=None,
            locked_until=None,
            last_error="the worker running it stopped and no attempts are left",
        )
    )
    due = or_(and_(Job.status == JobStatus.QUEUED.value, Job.run_at <= now), abandoned)
    candidates = select(Job.id).where(due).order_by(Job.run_at, Job.id).limit(limit)
    if is_postgres(session):
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(session.scalars(candidates))
    if not ids:
        return []
    session.execute(
        update(Job)
        .where(Job.id.in_(ids))
        .values(
            status=JobStatus.RUNNING.value,
            locked_by=worker_id,
            locked_until=now + timedelta(seconds=lease_seconds),
            attempts=Job.attempts + 1,
        )
    )
    return list(
        session.scalars(
            select(Job)
            .where(Job.id.in_(ids))
            .order_by(Job.id)
            .execution_options(populate_existing=True)
        )
    )


def renew(session: Session, job_id: int, worker_id: str, until: datetime) -> bool:
    """Extend this worker's lease before it starts the job; False if another worker took it."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.locked_by == worker_id, Job.status == JobStatus.RUNNING.value)
        .values(locked_until=until)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish(session: Session, job_id: int, worker_id: str, now: datetime) -> bool:
    """Mark done only if this worker still holds the job; else the caller rolls back."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.locked_by == worker_id, Job.status == JobStatus.RUNNING.value)
        .values(status=JobStatus.DONE.value, finished_at=now, locked_until=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def fail(
    session: Session,
    job_id: int,
    worker_id: str,
    error: str,
    retry_at: datetime | None,
    now: datetime,
) -> None:
    values: dict[str, Any] = {"last_error": error[:4000], "locked_until": None, "locked_by": None}
    if retry_at is None:
        values |= {"status": JobStatus.DEAD.value, "finished_at": now}
    else:
        values |= {"status": JobStatus.QUEUED.value, "run_at": retry_at}
    session.execute(update(Job).where(Job.id == job_id, Job.locked_by == worker_id).values(values))


def next_due_at(session: Session) -> datetime | None:
    return session.scalar(select(func.min(Job.run_at)).where(Job.status == JobStatus.QUEUED.value))


def counts(session: Session) -> dict[str, int]:
    return {s: n for s, n in session.execute(select(Job.status, func.count()).group_by(Job.status))}


def purge_finished(session: Session, before: datetime) -> int:
    result = session.execute(
        delete(Job).where(Job.status == JobStatus.DONE.value, Job.finished_at < before)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def get(session: Session, job_id: int) -> Job | None:
    return session.get(Job, job_id)
