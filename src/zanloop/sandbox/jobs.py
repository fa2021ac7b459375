"""Sandbox jobs: deliver notifications on WeChat's schedule, settle refunds."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
from sqlalchemy.orm import Session

from zanloop.jobs.service import JobContext, handler
from zanloop.sandbox import service


@handler(service.DELIVER_JOB)
def deliver_notification(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    notification_id = str(payload["notification_id"])
    with ctx.db.read_session() as read:
        url, body, headers = service.signed_delivery(read, notification_id)
    status_code: int | None = None
    error: str | None = None
    try:
        response = ctx.http.post(url, content=body.encode(), headers=headers)
        status_code = response.status_code
        if status_code not in (200, 204):
            error = response.text[:500]
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        error = f"{type(exc).__name__}: {exc}"
    service.record_attempt(
        session, notification_id, status_code, error, ctx.settings.sandbox_retry_scale
    )


@handler(service.SETTLE_REFUND_JOB)
def settle_refund(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    service.settle_refund(session, str(payload["mchid"]), str(payload["out_refund_no"]))
