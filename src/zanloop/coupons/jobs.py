"""Coupons jobs: coupons past their expiry are marked EXPIRED (reads treat them so already)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from zanloop.coupons import service
from zanloop.jobs.service import JobContext, handler
from zanloop.kit.clock import utcnow


@handler("coupons.expire", every_seconds=60)
def expire(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    service.expire_due(session, utcnow())
