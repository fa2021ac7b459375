"""Identifiers: a type prefix plus a time-ordered random body (ULID layout, Crockford base32),
so ids sort by creation time and say what they name (``pay_01J...``)."""

from __future__ import annotations

import os
import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    body = _base32(millis, 10) + _base32(int.from_bytes(os.urandom(10), "big"), 16)
    return f"{prefix}_{body}"


def new_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)
