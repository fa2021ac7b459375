"""The jobs table cleans up after itself: finished jobs are kept a week for inspection."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from zanloop.jobs import repository
from zanloop.jobs.service import JobContext, handler
from zanloop.kit.clock import utcnow

KEEP_FINISHED = timedelta(days=7)


@handler("jobs.purge", every_seconds=3600)
def purge(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    repository.purge_finished(session, utcnow() - KEEP_FINISHED)
