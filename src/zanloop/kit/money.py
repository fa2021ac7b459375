"""Money is integer fen (1 CNY = 100 fen); points are integers. No floats anywhere."""

from __future__ import annotations

from enum import StrEnum


class Asset(StrEnum):
    CNY = "CNY"
    POINTS = "POINTS"


def format_fen(amount_fen: int) -> str:
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    return f"{sign}{yuan}.{fen:02d} CNY"
