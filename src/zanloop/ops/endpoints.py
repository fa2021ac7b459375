"""Health and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from zanloop import __version__
from zanloop.http.deps import DatabaseDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness and database check")
def healthz(db: DatabaseDep) -> dict[str, Any]:
    with db.read_session() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__, "database": db.engine.dialect.name}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
