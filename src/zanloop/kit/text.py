"""Text that can be stored and answered: JSON may carry a lone UTF-16 surrogate (``"\\ud800"``),
which PostgreSQL refuses and no response can encode; such input is a 422, not a 500."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def no_surrogates(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text may not contain lone UTF-16 surrogates") from None
    return value


EncodableText = Annotated[str, AfterValidator(no_surrogates)]
