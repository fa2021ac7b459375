"""Cursor pagination: an opaque cursor that encodes the last key seen."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from zanloop.errors import Unprocessable

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )


def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Unprocessable("cursor is not one this API returned", field="cursor") from exc


def cursor_key(cursor: str | None, kind: type[int] | type[str]) -> Any:
    """Decode a cursor and check it holds the kind of key this list pages by."""
    key = decode_cursor(cursor)
    if key is None:
        return None
    if kind is int:
        valid = isinstance(key, int) and not isinstance(key, bool)
    else:
        valid = isinstance(key, str) and "\x00" not in key
    if not valid:
        raise Unprocessable("cursor is not one this API returned", field="cursor")
    return key


def split_page(
    rows: Sequence[R], limit: int, key: Callable[[R], Any]
) -> tuple[list[R], str | None]:
    """Rows fetched with ``limit + 1``: the page, and the next page's cursor if there is one."""
    page = list(rows[:limit])
    return page, encode_cursor(key(page[-1])) if len(rows) > limit else None
