"""Campaign jobs: open like prompts run out."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from zanloop.campaigns import service
from zanloop.jobs.service import JobContext, handler
from zanloop.kit.clock import utcnow


@handler("campaigns.expire_prompts", every_seconds=60)
def expire_prompts(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    service.expire_prompts(session, utcnow())
