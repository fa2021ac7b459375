"""Pins jobs: timed pins run out; a pin rejected by risk review is refunded."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from zanloop.jobs.service import JobContext, handler
from zanloop.kit.clock import utcnow
from zanloop.pins import service


@handler("pins.expire", every_seconds=5)
def expire(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    service.expire_due(session, utcnow())


@handler("pins.refund")
def refund(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    service.refund_pin(session, ctx.settings, payload["tenant_id"], payload["pin_id"])
