"""RFC 9457 problem details for every error, and the field that caused it."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from zanloop.errors import ZanloopError

log = structlog.get_logger(__name__)
MEDIA_TYPE = "application/problem+json"


class ProblemField(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemField] = []


def problem(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:zanloop:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    if extensions:
        body.update({k: v for k, v in extensions.items() if k not in body})
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    if loc and loc[0] == "header":
        return parts[0] if parts else "header"
    return ".".join(parts) or str(loc[0] if loc else "body")


def install(app: FastAPI) -> None:
    @app.exception_handler(ZanloopError)
    async def _zanloop(request: Request, exc: ZanloopError) -> JSONResponse:
        if exc.status_code >= 500:
            log.error("server error", error=exc.message, type=type(exc).__name__)
        return problem(
            request,
            exc.status_code,
            exc.slug,
            exc.title,
            exc.message,
            [{"field": e.field, "message": e.message} for e in exc.errors],
            exc.extensions,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem(
                request,
                400,
                "malformed-json",
                "Malformed JSON",
                "the body is not valid JSON",
                errors,
            )
        names = ", ".join(sorted({e["field"] for e in errors}))
        return problem(
            request, 422, "validation", "Invalid request", f"invalid field(s): {names}", errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            404: "Not found",
            405: "Method not allowed",
            401: "Unauthorized",
            403: "Forbidden",
        }
        response = problem(
            request,
            exc.status_code,
            f"http-{exc.status_code}",
            titles.get(exc.status_code, "HTTP error"),
            str(exc.detail),
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
        # The last line of defence for input the schemas let through but the database cannot
        # hold (a NUL character, a number beyond 64 bits): the transaction rolled back.
        log.warning("unstorable input", path=request.url.path, error=str(exc).splitlines()[0])
        return problem(
            request,
            422,
            "unstorable-value",
            "Value cannot be stored",
            "a value holds a character or a number the database cannot store",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return problem(
            request,
            500,
            "internal",
            "Internal error",
            "an unexpected error occurred; it was logged",
        )


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Malformed request, or Idempotency-Key missing"},
    401: {"model": Problem, "description": "Missing or unknown API key"},
    403: {"model": Problem, "description": "The API key lacks the scope"},
    404: {"model": Problem, "description": "Not found (or another tenant's)"},
    409: {"model": Problem, "description": "A business rule refuses the change"},
    422: {"model": Problem, "description": "Invalid field; `errors` names it"},
}
