"""Identifiers: a type prefix plus a time-ordered random body (ULID layout, Crockford base32),
so ids sort by creation time and say what they name (``pay_01J...``).

The body is 10 digits of milliseconds then 16 random digits (80 bits). Ids are made in bulk
(one per ledger transfer), so the random digits come from one ``bytes.translate`` of 16 random
bytes, 5 bits of each, and the time digits are computed once per millisecond."""

from __future__ import annotations

import functools
import os
import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Byte value -> the digit of its low 5 bits: uniform, as 256 is a multiple of 32.
_RANDOM_DIGITS = bytes(ord(_ALPHABET[value % 32]) for value in range(256))


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


@functools.lru_cache(maxsize=8)
def _time_digits(millis: int) -> str:
    return _base32(millis, 10)


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    random_digits = os.urandom(16).translate(_RANDOM_DIGITS).decode()
    return f"{prefix}_{_time_digits(millis)}{random_digits}"


def new_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)
