"""Member rows and their tiers, as the workflows share them: a member opened on first use, the
tier of a member (as other areas ask it), the qualifying total over the tier window, and a tier
change recorded. The views a member sees are in ``service``; claw-back and the scheduled
re-evaluation move tiers through here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from zanloop.kit.clock import utcnow
from zanloop.loyalty import repository
from zanloop.loyalty.domain import Settings
from zanloop.loyalty.setup import settings
from zanloop.loyalty.tables import LoyaltyMember


def ensure_member(session: Session, tenant_id: str, user_id: str) -> LoyaltyMember:
    """The member, opened in the programme's first tier if new."""
    found = repository.get_member(session, tenant_id, user_id)
    if found is not None:
        return found
    first = settings(session, tenant_id).first_tier
    now = utcnow()
    repository.ensure_members(
        session,
        [
            {
                "tenant_id": tenant_id,
                "user_id": user_id,
                "tier": first,
                "base_tier": first,
                "birthday": None,
                "owed_points": 0,
                "tier_changed_at": now,
                "created_at": now,
            }
        ],
    )
    found = repository.get_member(session, tenant_id, user_id)
    assert found is not None
    return found


def member_tier(session: Session, tenant_id: str, user_id: str) -> str | None:
    """The member's tier, or None if the tenant runs no programme or the user is not in it."""
    if repository.get_programme(session, tenant_id) is None:
        return None
    member = repository.get_member(session, tenant_id, user_id)
    return member.tier if member is not None else None


def qualifying_totals(
    session: Session, tenant_id: str, conf: Settings, users: Sequence[str], now: datetime
) -> dict[str, int]:
    """What counts towards each member's tier over the window: points or spend."""
    since = now - timedelta(days=conf.tier_window_days)
    if conf.tier_basis == "points":
        return repository.qualifying_points(session, tenant_id, users, since)
    return repository.qualifying_spend(session, tenant_id, users, since)


def tier_change(
    member: LoyaltyMember, tier: str, reason: str, qualifying: int, at: datetime
) -> dict[str, Any]:
    """Moves the member to ``tier`` and answers the history row to insert."""
    row = {
        "tenant_id": member.tenant_id,
        "user_id": member.user_id,
        "from_tier": member.tier,
        "to_tier": tier,
        "reason": reason,
        "qualifying": qualifying,
        "at": at,
    }
    member.tier, member.tier_changed_at = tier, at
    return row
