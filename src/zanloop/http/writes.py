"""Run an API write: one transaction, committed at the edge, with Idempotency-Key handling."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from zanloop.db import Database
from zanloop.errors import IdempotencyKeyMissing, ZanloopError
from zanloop.http.deps import get_db
from zanloop.idempotency import domain as idempotency_domain
from zanloop.idempotency import service as idempotency
from zanloop.tenancy.domain import Principal

Result = BaseModel | list[BaseModel] | None


class Writer:
    def __init__(
        self, db: Database, principal: Principal, key: str | None, fingerprint: str
    ) -> None:
        self.db = db
        self.principal = principal
        self.key = key
        self.fingerprint = fingerprint

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    def __call__(
        self, work: Callable[[Session], Result], status_code: int | Callable[[], int] = 200
    ) -> Response:
        """Run ``work`` in one transaction. ``status_code`` may be a callable asked after the
        work ran (201 for a creation, 200 for a replay by the caller's own number), so a replay
        of the Idempotency-Key answers with the status the first call had."""
        if self.key is not None:
            replay = idempotency.claim(self.db, self.tenant_id, self.key, self.fingerprint)
            if replay is not None:
                return _respond(replay.body, replay.status_code, {"Idempotent-Replayed": "true"})
        refusal: ZanloopError | None = None
        try:
            with self.db.session() as session:
                try:
                    result = work(session)
                except ZanloopError as exc:
                    if not exc.keeps_changes:
                        raise
                    refusal = exc  # commit what led to it (a risk decision's log), then refuse
                else:
                    body = _dump(result)
                    code = status_code() if callable(status_code) else status_code
                    if self.key is not None:
                        idempotency.complete(session, self.tenant_id, self.key, code, body)
        except BaseException:
            if self.key is not None:
                idempotency.release(self.db, self.tenant_id, self.key)
            raise
        if refusal is not None:
            if self.key is not None:
                idempotency.release(self.db, self.tenant_id, self.key)
            raise refusal
        return _respond(body, code)


def _respond(body: Any, status_code: int, headers: dict[str, str] | None = None) -> Response:
    if status_code == 204:
        return Response(status_code=204, headers=headers)
    return JSONResponse(body, status_code=status_code, headers=headers)


def _dump(result: Result) -> Any:
    if result is None:
        return None
    if isinstance(result, list):
        return [item.model_dump(mode="json") for item in result]
    return result.model_dump(mode="json")


def writer(
    principal_dependency: Callable[..., Principal], *, key_required: bool
) -> Callable[..., Any]:
    """A dependency giving a ``Writer`` for a caller admitted by ``principal_dependency``.

    Money-moving routes pass ``key_required=True``: without Idempotency-Key they answer 400."""

    async def dependency(
        request: Request,
        principal: Annotated[Principal, Depends(principal_dependency)],
        db: Annotated[Database, Depends(get_db)],
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description="Makes the request safe to retry"
                + (" (required)." if key_required else " (optional)."),
            ),
        ] = None,
    ) -> Writer:
        if idempotency_key is None and key_required:
            raise IdempotencyKeyMissing("this request moves money: send an Idempotency-Key header")
        body = await request.body()
        fingerprint = idempotency_domain.fingerprint(request.method, request.url.path, body)
        return Writer(db, principal, idempotency_key, fingerprint)

    return dependency
