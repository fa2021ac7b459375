"""FastAPI dependencies: settings, database, the calling principal, read sessions."""

import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from zanloop.config import Settings
from zanloop.db import Database
from zanloop.errors import Forbidden, Unauthorized
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import Principal, Scope, hash_key

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer zl_...`")


# The cheap dependencies are ``async``: FastAPI runs a plain ``def`` dependency in a worker
# thread, and the hand-off costs more than the work.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def read_session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    with db.read_session() as session:
        yield session


class PrincipalCache:
    """Recently seen keys, so a burst of requests does not look the same key up each time.
    Revocation through this process clears it; other processes notice within ``ttl``."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._items: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> Principal | None:
        item = self._items.get(key_hash)
        if item is None or item[1] < time.monotonic():
            return None
        return item[0]

    def put(self, key_hash: str, principal: Principal) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key_hash] = (principal, time.monotonic() + self.ttl)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    db: Annotated[Database, Depends(get_db)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    cache: PrincipalCache = request.app.state.principals
    key_hash = hash_key(credentials.credentials)
    principal = cache.get(key_hash)
    if principal is None:
        # Only a key not seen lately costs a database look-up, in a worker thread.
        principal = await run_in_threadpool(_look_up, db, credentials.credentials)
        cache.put(key_hash, principal)
    request.state.principal = principal
    return principal


def _look_up(db: Database, plaintext: str) -> Principal:
    with db.read_session() as session:
        return tenancy.authenticate(session, plaintext)


def require(*scopes: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits keys holding ADMIN or any one of ``scopes``."""

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.allows(*scopes):
            wanted = ", ".join(s.value for s in (Scope.ADMIN, *scopes))
            raise Forbidden(f"this API key lacks the scope for this call (one of: {wanted})")
        return principal

    return dependency


ReadSession = Annotated[Session, Depends(read_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]
