"""Deliver one webhook attempt. The HTTP call happens outside any write transaction."""

from __future__ import annotations

import time
from typing import Any

import httpx2 as httpx
from sqlalchemy.orm import Session

from zanloop.jobs.service import JobContext, handler
from zanloop.kit.clock import utcnow
from zanloop.ops import metrics
from zanloop.webhooks import service


@handler(service.DELIVER_JOB)
def deliver(ctx: JobContext, session: Session, payload: dict[str, Any]) -> None:
    delivery_id = str(payload["delivery_id"])
    with ctx.db.read_session() as read:
        request = service.signed_request(read, delivery_id, utcnow())
    if request is None:
        service.abandon(session, delivery_id)
        return
    status_code: int | None = None
    body: str | None = None
    error: str | None = None
    started = time.perf_counter()
    try:
        response = ctx.http.post(
            request.url,
            content=request.body.encode(),
            headers=request.headers,
            timeout=ctx.settings.webhook_timeout_seconds,
        )
        status_code, body = response.status_code, response.text
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        error = f"{type(exc).__name__}: {exc}"
    outcome = service.record_attempt(
        session,
        delivery_id,
        status_code=status_code,
        response_body=body,
        error=error,
        duration_ms=int((time.perf_counter() - started) * 1000),
        retry_scale=ctx.settings.webhook_retry_scale,
    )
    metrics.WEBHOOK_DELIVERIES.labels(outcome=outcome.value.lower()).inc()
