"""The programme's economics (L6): what points cost, what is owed, what lapsed.

Points are valued at the programme's ``point_value_fen``. Liability is every point still a
member's (available, pending or held) at that value; breakage is what expired. Issuance cost per
member per month is the value of the points issued in a month (net of claw-backs) over the
members who earned in it; seed 003 alerts above 50 CNY.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.orm import Session

from zanloop.loyalty import lots_repository, service
from zanloop.quotas import service as quotas

# Seed 003's alert: a member costing more than 50 CNY of points a month.
COST_ALERT_FEN = 5000


@dataclass(frozen=True)
class Month:
    month: str
    points_issued: int
    points_clawed: int
    earning_members: int
    cost_fen: int
    cost_per_member_fen: int
    over_alert: bool


@dataclass(frozen=True)
class RuleSpend:
    rule_id: str
    name: str
    rewards: int
    cost_fen: int
    max_rewards: int | None
    max_cost_fen: int | None


@dataclass(frozen=True)
class Economics:
    point_value_fen: str
    points_issued: int
    points_clawed: int
    points_expired: int
    points_redeemed: int
    points_outstanding: int
    points_pending: int
    points_held: int
    liability_fen: int
    breakage_fen: int
    breakage_rate: float
    months: list[Month]
    rules: list[RuleSpend]


def _fen(points: int, value: Decimal) -> int:
    return int((points * value).quantize(Decimal(1), ROUND_HALF_UP))


def economics(session: Session, tenant_id: str, since: datetime, until: datetime) -> Economics:
    conf = service.settings(session, tenant_id)
    value = conf.point_value_fen
    totals = lots_repository.lot_totals(session, tenant_id)
    outstanding = totals["available"] + totals["pending"] + totals["held"]
    net = totals["issued"] - totals["clawed"]
    months = []
    for month, issued, clawed, members in lots_repository.issued_by_month(
        session, tenant_id, since, until, conf.zone()
    ):
        cost = _fen(issued - clawed, value)
        per = cost // members if members else 0
        months.append(Month(month, issued, clawed, members, cost, per, per > COST_ALERT_FEN))
    rules = service.list_rules(session, tenant_id)
    rewards = quotas.used(session, tenant_id, "loyalty.rewards", [r.id for r in rules])
    costs = quotas.used(session, tenant_id, "loyalty.cost", [r.id for r in rules])
    spend = []
    for r in rules:
        budget = r.document.get("budget") or {}
        spend.append(
            RuleSpend(
                r.id,
                r.name,
                rewards.get(r.id, 0),
                costs.get(r.id, 0),
                budget.get("max_rewards"),
                budget.get("max_cost_fen"),
            )
        )
    return Economics(
        point_value_fen=str(value),
        points_issued=totals["issued"],
        points_clawed=totals["clawed"],
        points_expired=totals["expired"],
        points_redeemed=totals["redeemed"],
        points_outstanding=outstanding,
        points_pending=totals["pending"],
        points_held=totals["held"],
        liability_fen=_fen(outstanding, value),
        breakage_fen=_fen(totals["expired"], value),
        breakage_rate=round(totals["expired"] / net, 4) if net else 0.0,
        months=months,
        rules=spend,
    )
