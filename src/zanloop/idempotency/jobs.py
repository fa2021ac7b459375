"""Forget Idempotency-Key answers once their retention window has passed."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from zanloop.idempotency import service
from zanloop.jobs.service import JobContext, handler
from zanloop.kit.clock import utcnow


@handler("idempotency.purge", every_seconds=3600)
def purge(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    service.purge(session, utcnow())
