"""Payments jobs: the order-query fallback for notifications that never came."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.orm import Session

from zanloop.jobs.service import JobContext, handler
from zanloop.payments import service

log = structlog.get_logger(__name__)


@handler("payments.reconcile", every_seconds=30)
def reconcile(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    changed = service.reconcile(session, ctx.settings)
    if any(changed.values()):
        log.info("reconciled payments", **changed)
