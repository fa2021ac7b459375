"""Ledger jobs: holds whose time ran out are voided, releasing what they reserved."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from zanloop.jobs.service import JobContext, handler
from zanloop.ledger import service


@handler("ledger.expire_holds", every_seconds=60)
def expire_holds(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    service.void_expired_holds(session)
