"""The scheduled group scan: every tenant's recent interactions, every six hours."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from zanloop.fraud import service
from zanloop.jobs.service import JobContext, handler


@handler("fraud.scan", every_seconds=6 * 3600)
def scan(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    service.scan_due(session, ctx.settings.fraud_scan_days)
