"""Creator analytics (P7): totals and a daily series; supporters by region and by spend band;
repeat high-value supporters."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from zanloop.pins import domain, repository
from zanloop.pins.domain import PinStatus

TOP_SUPPORTERS = 10
UNKNOWN_REGION = "unknown"


@dataclass(frozen=True)
class Figures:
    pins: int
    gross_fen: int
    refunded_fen: int
    creator_earnings_fen: int
    supporters: int
    daily: list[tuple[str, int, int]]
    regions: list[tuple[str, int, int]]
    spend_bands: list[tuple[str, int, int]]
    top_supporters: list[tuple[str, int, int]]


def creator_figures(
    session: Session, tenant_id: str, creator_id: str, since: datetime, until: datetime
) -> Figures:
    count = gross = refunded = earnings = 0
    daily: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    region_of: dict[str, str] = {}
    spend: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in repository.paid_pins(session, tenant_id, creator_id, since, until):
        buyer, region, amount, activated_at, status, creator_fen, platform_fen, back = tuple(row)
        count += 1
        gross += amount
        refunded += back
        # The creator keeps their share of what was not refunded (the fee's share of a refund
        # rounds down, as when it was reversed).
        earnings += creator_fen - (back - back * platform_fen // amount)
        day = daily[activated_at.date().isoformat()]
        day[0] += 1
        day[1] += amount
        if status == PinStatus.REFUNDED.value:
            continue  # refunded support is not support
        region_of.setdefault(buyer, region or UNKNOWN_REGION)
        spend[buyer][0] += 1
        spend[buyer][1] += amount - back
    regions: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    bands: dict[str, list[int]] = {name: [0, 0] for name, _, _ in domain.SPEND_BANDS}
    for buyer, (_, total) in spend.items():
        regions[region_of[buyer]][0] += 1
        regions[region_of[buyer]][1] += total
        band = bands[domain.spend_band(total)]
        band[0] += 1
        band[1] += total
    repeat = sorted(
        ((buyer, n, total) for buyer, (n, total) in spend.items() if n >= 2),
        key=lambda s: (-s[2], -s[1], s[0]),
    )
    return Figures(
        pins=count,
        gross_fen=gross,
        refunded_fen=refunded,
        creator_earnings_fen=earnings,
        # Buyers who kept at least one pin: the same people the regions and bands count.
        supporters=len(spend),
        daily=sorted((d, n, a) for d, (n, a) in daily.items()),
        regions=sorted(((r, n, a) for r, (n, a) in regions.items()), key=lambda r: (-r[2], r[0])),
        spend_bands=[(name, bands[name][0], bands[name][1]) for name, _, _ in domain.SPEND_BANDS],
        top_supporters=repeat[:TOP_SUPPORTERS],
    )
