"""The programme's scheduled work: pending points mature, lots expire (after a notice), stale
redemption holds are released, and tiers are re-evaluated daily."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from zanloop.jobs.service import JobContext, handler
from zanloop.loyalty import redemption, service


@handler("loyalty.mature", every_seconds=60)
def mature(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    service.mature_due(session)


@handler("loyalty.expire", every_seconds=60)
def expire(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    service.expire_due(session)


@handler("loyalty.notify_expiring", every_seconds=3600)
def notify_expiring(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    service.notify_expiring(session)


@handler("loyalty.release_holds", every_seconds=60)
def release_holds(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    redemption.cancel_stale(session)


@handler("loyalty.evaluate_tiers", every_seconds=86400)
def evaluate_tiers(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    service.evaluate_tiers(session)
