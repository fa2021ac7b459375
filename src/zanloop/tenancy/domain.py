"""API keys and scopes: pure rules, no I/O."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from zanloop.errors import Unprocessable

KEY_PREFIX = "zl"


class Scope(StrEnum):
    ADMIN = "admin"
    MERCHANT = "merchant"
    CREATOR = "creator"
    ANALYST = "analyst"
    APP = "app"


class TenantKind(StrEnum):
    PLATFORM = "platform"
    MERCHANT = "merchant"
    SERVICE_PROVIDER = "service_provider"


@dataclass(frozen=True)
class NewKey:
    plaintext: str
    prefix: str
    key_hash: str


def hash_key(plaintext: str) -> str:
    # Keys carry 192 random bits, so a fast hash is enough; a slow KDF would only cost latency.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_key() -> NewKey:
    prefix = secrets.token_hex(4)
    plaintext = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(24)}"
    return NewKey(
        plaintext=plaintext, prefix=f"{KEY_PREFIX}_{prefix}", key_hash=hash_key(plaintext)
    )


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant and the scopes of the key used."""

    tenant_id: str
    key_id: str
    scopes: frozenset[Scope]
    # Set for a key that acts for one creator.
    creator_id: str | None = None

    def allows(self, *wanted: Scope) -> bool:
        """ADMIN implies every scope; otherwise any one of ``wanted`` is enough."""
        return Scope.ADMIN in self.scopes or any(s in self.scopes for s in wanted)


def check_creator_binding(scopes: set[Scope], creator_id: str | None) -> None:
    if creator_id is not None and scopes != {Scope.CREATOR}:
        raise Unprocessable(
            "only a key with just the creator scope acts for one creator", field="creator_id"
        )
    if creator_id is None and scopes == {Scope.CREATOR}:
        raise Unprocessable("a creator key must name the creator it acts for", field="creator_id")
