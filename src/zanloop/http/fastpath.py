"""Hot reads answered before routing when they can be (a pinned list, a member's balance).

Routing, dependency solving and the thread-pool hand-offs cost several times the work of such a
read; a fast path skips them and nothing else: the access log, metrics and request id of
``RequestContext`` still wrap it, and the key and scope checks are those of the route. Anything
it is not sure of (an unknown key, PostgreSQL, an odd request) goes on to the FastAPI route,
which answers the same body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from starlette.types import ASGIApp, Receive, Scope, Send

from zanloop.db import Database
from zanloop.http.deps import PrincipalCache
from zanloop.tenancy.domain import Principal, hash_key


@dataclass(frozen=True)
class _Route:
    """What ``RequestContext`` reads to label the access log and metrics."""

    path: str


class FastRead:
    """A middleware answering one GET route from ``_cached_answer(scope)`` when it can."""

    route: ClassVar[str]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self._cached_answer(scope) if scope["type"] == "http" else None
        if body is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = _Route(self.route)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _cached_answer(scope: Scope) -> bytes | None:
        raise NotImplementedError


def caller(scope: Scope) -> tuple[Principal, Database] | None:
    """The caller of a plain GET (no query string) on SQLite whose key was seen lately, and the
    database; None for anything else (a network round trip must not block the event loop)."""
    if scope["method"] != "GET" or scope.get("query_string"):
        return None
    app = scope["app"]
    db: Database = app.state.db
    if not db.is_sqlite:
        return None
    token = _bearer(scope)
    if token is None:
        return None
    principals: PrincipalCache = app.state.principals
    principal = principals.get(hash_key(token))
    return None if principal is None else (principal, db)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None
