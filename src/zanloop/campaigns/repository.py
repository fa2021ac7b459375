from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from zanloop.campaigns.tables import (
    Campaign,
    CampaignEvent,
    CampaignProgress,
    CampaignReward,
    LikePrompt,
)
from zanloop.db import insert_unless_exists
from zanloop.kit.clock import utcnow

# Campaigns -----------------------------------------------------------------------------------


def add(session: Session, row: Any) -> None:
    session.add(row)
    session.flush()


def get_campaign(session: Session, tenant_id: str, campaign_id: str) -> Campaign | None:
    return session.scalars(
        select(Campaign).where(Campaign.tenant_id == tenant_id, Campaign.id == campaign_id)
    ).first()


def list_campaigns(
    session: Session,
    tenant_id: str,
    *,
    status: str | None = None,
    trigger: str | None = None,
    after_id: str | None = None,
    limit: int | None = None,
) -> list[Campaign]:
    stmt = select(Campaign).where(Campaign.tenant_id == tenant_id)
    if status is not None:
        stmt = stmt.where(Campaign.status == status)
    if trigger is not None:
        stmt = stmt.where(Campaign.trigger == trigger)
    if after_id is not None:
        stmt = stmt.where(Campaign.id > after_id)
    stmt = stmt.order_by(Campaign.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def active_version(session: Session, tenant_id: str) -> tuple[int, datetime | None]:
    """Changes whenever an active campaign is added, changed, paused or ended: the compiled
    rule set of a tenant is cached by it."""
    count, latest = session.execute(
        select(func.count(), func.max(Campaign.updated_at)).where(Campaign.tenant_id == tenant_id)
    ).one()
    return int(count), latest


# Events --------------------------------------------------------------------------------------


def insert_event(session: Session, row: dict[str, Any]) -> bool:
    return insert_unless_exists(session, CampaignEvent, row, ["tenant_id", "event_ref"])


def get_event_by_ref(session: Session, tenant_id: str, event_ref: str) -> CampaignEvent | None:
    return session.scalars(
        select(CampaignEvent).where(
            CampaignEvent.tenant_id == tenant_id, CampaignEvent.event_ref == event_ref
        )
    ).first()


def get_event(session: Session, tenant_id: str, event_id: str) -> CampaignEvent | None:
    return session.scalars(
        select(CampaignEvent).where(
            CampaignEvent.tenant_id == tenant_id, CampaignEvent.id == event_id
        )
    ).first()


def events_of_order(session: Session, tenant_id: str, order_id: str) -> list[CampaignEvent]:
    return list(
        session.scalars(
            select(CampaignEvent)
            .where(CampaignEvent.tenant_id == tenant_id, CampaignEvent.order_id == order_id)
            .order_by(CampaignEvent.created_at, CampaignEvent.id)
        )
    )


def paid_before(session: Session, tenant_id: str, user_id: str, order_id: str) -> bool:
    """Whether the user has a payment event other than this order's on record."""
    found = session.execute(
        select(CampaignEvent.id)
        .where(
            CampaignEvent.tenant_id == tenant_id,
            CampaignEvent.user_id == user_id,
            CampaignEvent.trigger == "payment.succeeded",
            CampaignEvent.order_id != order_id,
        )
        .limit(1)
    ).first()
    return found is not None


def set_outcomes(session: Session, event_id: str, outcomes: list[dict[str, Any]]) -> None:
    session.execute(
        update(CampaignEvent)
        .where(CampaignEvent.id == event_id)
        .values(outcomes=outcomes)
        .execution_options(synchronize_session=False)
    )


def payment_events_by_user(
    session: Session, tenant_id: str, users: Sequence[str]
) -> dict[str, int]:
    rows = session.execute(
        select(CampaignEvent.user_id, func.count())
        .where(
            CampaignEvent.tenant_id == tenant_id,
            CampaignEvent.trigger == "payment.succeeded",
            CampaignEvent.user_id.in_(list(users)),
        )
        .group_by(CampaignEvent.user_id)
    )
    return {str(user): int(n) for user, n in rows}


# Rewards -------------------------------------------------------------------------------------


def rewards_of_order(
    session: Session, tenant_id: str, order_id: str, *, lock: bool = False
) -> list[CampaignReward]:
    stmt = (
        select(CampaignReward)
        .where(CampaignReward.tenant_id == tenant_id, CampaignReward.order_id == order_id)
        .order_by(CampaignReward.created_at, CampaignReward.id)
    )
    if lock:
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


def rewards_of_event(session: Session, event_id: str) -> list[CampaignReward]:
    return list(session.scalars(select(CampaignReward).where(CampaignReward.event_id == event_id)))


def get_reward(session: Session, tenant_id: str, reward_id: str) -> CampaignReward | None:
    return session.scalars(
        select(CampaignReward).where(
            CampaignReward.tenant_id == tenant_id, CampaignReward.id == reward_id
        )
    ).first()


def list_rewards(
    session: Session,
    tenant_id: str,
    *,
    user_id: str | None,
    campaign_id: str | None,
    order_id: str | None,
    status: str | None,
    before_id: str | None,
    limit: int,
) -> list[CampaignReward]:
    stmt = select(CampaignReward).where(CampaignReward.tenant_id == tenant_id)
    for column, value in (
        (CampaignReward.user_id, user_id),
        (CampaignReward.campaign_id, campaign_id),
        (CampaignReward.order_id, order_id),
        (CampaignReward.status, status),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if before_id is not None:
        stmt = stmt.where(CampaignReward.id < before_id)
    return list(session.scalars(stmt.order_by(CampaignReward.id.desc()).limit(limit)))


def completing_rewards(
    session: Session, tenant_id: str, campaign_id: str, user_id: str
) -> list[CampaignReward]:
    """The user's rewards on a campaign, newest first: where a progress goal's grants live."""
    return list(
        session.scalars(
            select(CampaignReward)
            .where(
                CampaignReward.tenant_id == tenant_id,
                CampaignReward.campaign_id == campaign_id,
                CampaignReward.user_id == user_id,
            )
            .order_by(CampaignReward.created_at.desc(), CampaignReward.id.desc())
        )
    )


def reward_counts(session: Session, tenant_id: str, campaign_id: str) -> dict[str, int]:
    rows = session.execute(
        select(CampaignReward.status, func.count())
        .where(CampaignReward.tenant_id == tenant_id, CampaignReward.campaign_id == campaign_id)
        .group_by(CampaignReward.status)
    )
    return {str(status): int(n) for status, n in rows}


def rewarded_users(session: Session, tenant_id: str, campaign_id: str) -> list[str]:
    return [
        str(u)
        for u in session.scalars(
            select(CampaignReward.user_id)
            .where(
                CampaignReward.tenant_id == tenant_id,
                CampaignReward.campaign_id == campaign_id,
                CampaignReward.status == "GRANTED",
            )
            .distinct()
        )
    ]


# Prompts -------------------------------------------------------------------------------------


def insert_prompt(session: Session, row: dict[str, Any]) -> bool:
    return insert_unless_exists(session, LikePrompt, row, ["tenant_id", "order_id"])


def get_prompt(
    session: Session, tenant_id: str, prompt_id: str, *, lock: bool = False
) -> LikePrompt | None:
    stmt = select(LikePrompt).where(LikePrompt.tenant_id == tenant_id, LikePrompt.id == prompt_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def prompt_of_order(session: Session, tenant_id: str, order_id: str) -> LikePrompt | None:
    return session.scalars(
        select(LikePrompt).where(LikePrompt.tenant_id == tenant_id, LikePrompt.order_id == order_id)
    ).first()


def user_prompts(
    session: Session, tenant_id: str, user_id: str, status: str | None, limit: int
) -> list[LikePrompt]:
    stmt = select(LikePrompt).where(
        LikePrompt.tenant_id == tenant_id, LikePrompt.user_id == user_id
    )
    if status is not None:
        stmt = stmt.where(LikePrompt.status == status)
    return list(session.scalars(stmt.order_by(LikePrompt.created_at.desc()).limit(limit)))


def move_prompt(session: Session, prompt_id: str, source: str, target: str, **values: Any) -> bool:
    result = session.execute(
        update(LikePrompt)
        .where(LikePrompt.id == prompt_id, LikePrompt.status == source)
        .values(status=target, **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def expire_prompts(session: Session, now: datetime, limit: int = 1000) -> int:
    due = select(LikePrompt.id).where(LikePrompt.status == "OPEN", LikePrompt.expires_at <= now)
    ids = list(session.scalars(due.limit(limit)))
    if not ids:
        return 0
    result = session.execute(
        update(LikePrompt)
        .where(LikePrompt.id.in_(ids), LikePrompt.status == "OPEN")
        .values(status="EXPIRED")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def prompt_counts(session: Session, tenant_id: str, campaign_id: str) -> tuple[int, int, int]:
    """(prompts, liked, shared) of a campaign."""
    total, liked, shared = session.execute(
        select(
            func.count(),
            func.count(LikePrompt.liked_at),
            func.count(LikePrompt.shared_at),
        ).where(LikePrompt.tenant_id == tenant_id, LikePrompt.campaign_id == campaign_id)
    ).one()
    return int(total), int(liked), int(shared)


# Progress ------------------------------------------------------------------------------------


def lock_progress(
    session: Session, tenant_id: str, campaign_id: str, user_id: str
) -> CampaignProgress:
    insert_unless_exists(
        session,
        CampaignProgress,
        {
            "tenant_id": tenant_id,
            "campaign_id": campaign_id,
            "user_id": user_id,
            "count": 0,
            "completions": 0,
            "tier": None,
            "updated_at": utcnow(),
        },
        ["tenant_id", "campaign_id", "user_id"],
    )
    progress = session.scalars(
        select(CampaignProgress)
        .where(
            CampaignProgress.tenant_id == tenant_id,
            CampaignProgress.campaign_id == campaign_id,
            CampaignProgress.user_id == user_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return progress


def user_progress(session: Session, tenant_id: str, user_id: str) -> list[CampaignProgress]:
    return list(
        session.scalars(
            select(CampaignProgress).where(
                CampaignProgress.tenant_id == tenant_id, CampaignProgress.user_id == user_id
            )
        )
    )


def liked_prompts(
    session: Session, tenant_id: str, since: datetime, until: datetime
) -> Sequence[tuple[str, str, datetime]]:
    stmt = select(LikePrompt.user_id, LikePrompt.campaign_id, LikePrompt.liked_at).where(
        LikePrompt.tenant_id == tenant_id,
        LikePrompt.liked_at >= since,
        LikePrompt.liked_at < until,
    )
    return [(u, c, at) for u, c, at in session.execute(stmt) if at is not None]


def granted_rewards_of(
    session: Session, tenant_id: str, user_ids: Sequence[str], since: datetime, until: datetime
) -> Sequence[CampaignReward]:
    stmt = (
        select(CampaignReward)
        .where(
            CampaignReward.tenant_id == tenant_id,
            CampaignReward.user_id.in_(user_ids),
            CampaignReward.status.in_(("GRANTED", "HELD")),
            CampaignReward.created_at >= since,
            CampaignReward.created_at < until,
        )
        .order_by(CampaignReward.id)
    )
    return session.scalars(stmt).all()
