"""Queries of the points programme's set-up and members: the programme, rules and tasks, members
and their tiers, events, and task progress. Lots, redemptions and the economics totals over them
are in ``lots_repository``. Batch paths (ingest, jobs) read and write many rows per statement;
nothing here commits."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from zanloop.db import bulk_insert, bulk_update, dialect_insert, is_postgres
from zanloop.loyalty.domain import (
    PAYMENT_TRIGGER,
    REFUND_TRIGGER,
    EventStatus,
    LotStatus,
)
from zanloop.loyalty.tables import (
    LoyaltyEvent,
    LoyaltyLot,
    LoyaltyMember,
    LoyaltyProgramme,
    LoyaltyRule,
    LoyaltyTask,
    LoyaltyTaskProgress,
    LoyaltyTierChange,
)

T = TypeVar("T")
# Bound parameters per IN list: far under SQLite's limit, and plans stay cheap on PostgreSQL.
_CHUNK = 900


def chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    """``values`` in slices of one IN list each."""
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def add(session: Session, row: Any) -> None:
    session.add(row)
    session.flush()


# Programme, rules, tasks ---------------------------------------------------------------------


def get_programme(
    session: Session, tenant_id: str, *, lock: bool = False
) -> LoyaltyProgramme | None:
    stmt = select(LoyaltyProgramme).where(LoyaltyProgramme.tenant_id == tenant_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def insert_programme(session: Session, row: dict[str, Any]) -> None:
    session.execute(
        dialect_insert(session, LoyaltyProgramme)
        .values(row)
        .on_conflict_do_nothing(index_elements=["tenant_id"])
    )


def programme_settings(session: Session) -> list[tuple[str, dict[str, Any]]]:
    """Every programme's tenant and settings (a handful of rows: one per tenant)."""
    return [
        (t, dict(raw))
        for t, raw in session.execute(
            select(LoyaltyProgramme.tenant_id, LoyaltyProgramme.settings).order_by(
                LoyaltyProgramme.tenant_id
            )
        )
    ]


def bump_rules_version(session: Session, tenant_id: str, now: datetime) -> None:
    session.execute(
        update(LoyaltyProgramme)
        .where(LoyaltyProgramme.tenant_id == tenant_id)
        .values(rules_version=LoyaltyProgramme.rules_version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def rules_version(session: Session, tenant_id: str) -> int | None:
    return session.scalar(
        select(LoyaltyProgramme.rules_version).where(LoyaltyProgramme.tenant_id == tenant_id)
    )


def get_rule(session: Session, tenant_id: str, rule_id: str) -> LoyaltyRule | None:
    return session.scalars(
        select(LoyaltyRule).where(LoyaltyRule.tenant_id == tenant_id, LoyaltyRule.id == rule_id)
    ).first()


def list_rules(
    session: Session,
    tenant_id: str,
    status: str | None = None,
    after_id: str | None = None,
    limit: int | None = None,
) -> list[LoyaltyRule]:
    stmt = select(LoyaltyRule).where(LoyaltyRule.tenant_id == tenant_id)
    if status is not None:
        stmt = stmt.where(LoyaltyRule.status == status)
    if after_id is not None:
        stmt = stmt.where(LoyaltyRule.id > after_id)
    stmt = stmt.order_by(LoyaltyRule.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def get_task(session: Session, tenant_id: str, task_id: str) -> LoyaltyTask | None:
    return session.scalars(
        select(LoyaltyTask).where(LoyaltyTask.tenant_id == tenant_id, LoyaltyTask.id == task_id)
    ).first()


def list_tasks(session: Session, tenant_id: str, status: str | None = None) -> list[LoyaltyTask]:
    stmt = select(LoyaltyTask).where(LoyaltyTask.tenant_id == tenant_id)
    if status is not None:
        stmt = stmt.where(LoyaltyTask.status == status)
    # Creation order: ids made in the same millisecond would otherwise come in random order.
    return list(session.scalars(stmt.order_by(LoyaltyTask.created_at, LoyaltyTask.id)))


# Members -------------------------------------------------------------------------------------


def ensure_members(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(
            dialect_insert(session, LoyaltyMember.__table__).on_conflict_do_nothing(
                index_elements=["tenant_id", "user_id"]
            ),
            rows,
        )


def lock_members(
    session: Session, tenant_id: str, user_ids: Collection[str]
) -> list[LoyaltyMember]:
    """The members, locked in user order (two batches lock alike and never deadlock)."""
    found: list[LoyaltyMember] = []
    for chunk in chunks(sorted(user_ids)):
        stmt = (
            select(LoyaltyMember)
            .where(LoyaltyMember.tenant_id == tenant_id, LoyaltyMember.user_id.in_(chunk))
            .order_by(LoyaltyMember.user_id)
        )
        if is_postgres(session):
            stmt = stmt.with_for_update()
        found.extend(session.scalars(stmt))
    return found


@dataclass
class MemberState:
    """A member as a batch works on it (plain values, written back only if ``changed``)."""

    user_id: str
    tier: str
    base_tier: str
    birthday: str | None
    owed_points: int
    tier_changed_at: datetime
    changed: bool = False


def member_states(
    session: Session, tenant_id: str, user_ids: Collection[str]
) -> dict[str, MemberState]:
    """The members, locked in user order on PostgreSQL (as ``lock_members``)."""
    m = LoyaltyMember
    found: dict[str, MemberState] = {}
    for chunk in chunks(sorted(user_ids)):
        stmt = (
            select(m.user_id, m.tier, m.base_tier, m.birthday, m.owed_points, m.tier_changed_at)
            .where(m.tenant_id == tenant_id, m.user_id.in_(chunk))
            .order_by(m.user_id)
        )
        if is_postgres(session):
            stmt = stmt.with_for_update()
        found.update((row[0], MemberState(*row)) for row in session.execute(stmt))
    return found


def save_member_states(session: Session, tenant_id: str, states: Iterable[MemberState]) -> None:
    bulk_update(
        session,
        LoyaltyMember,
        ["tenant_id", "user_id"],
        [
            {
                "tier": m.tier,
                "owed_points": m.owed_points,
                "tier_changed_at": m.tier_changed_at,
                "tenant_id": tenant_id,
                "user_id": m.user_id,
            }
            for m in states
            if m.changed
        ],
    )


def owing_members(
    session: Session, tenant_id: str, user_ids: Collection[str]
) -> list[LoyaltyMember]:
    """Members among ``user_ids`` who owe points, locked; on PostgreSQL one busy elsewhere is
    skipped (a job runs after lots it has locked, and must not wait for a member)."""
    found: list[LoyaltyMember] = []
    for chunk in chunks(sorted(user_ids)):
        stmt = (
            select(LoyaltyMember)
            .where(
                LoyaltyMember.tenant_id == tenant_id,
                LoyaltyMember.user_id.in_(chunk),
                LoyaltyMember.owed_points > 0,
            )
            .order_by(LoyaltyMember.user_id)
        )
        if is_postgres(session):
            stmt = stmt.with_for_update(skip_locked=True)
        found.extend(session.scalars(stmt))
    return found


def get_member(session: Session, tenant_id: str, user_id: str) -> LoyaltyMember | None:
    return session.get(LoyaltyMember, (tenant_id, user_id))


def member_ids(
    session: Session, tenant_id: str | None, after: tuple[str, str] | None, limit: int
) -> list[tuple[str, str]]:
    stmt = select(LoyaltyMember.tenant_id, LoyaltyMember.user_id)
    if tenant_id is not None:
        stmt = stmt.where(LoyaltyMember.tenant_id == tenant_id)
    if after is not None:
        stmt = stmt.where(
            or_(
                LoyaltyMember.tenant_id > after[0],
                and_(LoyaltyMember.tenant_id == after[0], LoyaltyMember.user_id > after[1]),
            )
        )
    stmt = stmt.order_by(LoyaltyMember.tenant_id, LoyaltyMember.user_id).limit(limit)
    return [(t, u) for t, u in session.execute(stmt)]


def add_tier_changes(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        bulk_insert(session, LoyaltyTierChange, rows)


def tier_changes(
    session: Session, tenant_id: str, user_id: str, limit: int
) -> list[LoyaltyTierChange]:
    return list(
        session.scalars(
            select(LoyaltyTierChange)
            .where(LoyaltyTierChange.tenant_id == tenant_id, LoyaltyTierChange.user_id == user_id)
            .order_by(LoyaltyTierChange.id.desc())
            .limit(limit)
        )
    )


def qualifying_points(
    session: Session, tenant_id: str, user_ids: Collection[str], since: datetime
) -> dict[str, int]:
    """Points earned since ``since`` and not clawed back, per member."""
    found: dict[str, int] = {}
    for chunk in chunks(sorted(user_ids)):
        rows = session.execute(
            select(LoyaltyLot.user_id, func.sum(LoyaltyLot.points - LoyaltyLot.clawed))
            .where(
                LoyaltyLot.tenant_id == tenant_id,
                LoyaltyLot.user_id.in_(chunk),
                LoyaltyLot.earned_at >= since,
                LoyaltyLot.status != LotStatus.REVERSED.value,
            )
            .group_by(LoyaltyLot.user_id)
        )
        found.update((u, int(s or 0)) for u, s in rows)
    return found


def qualifying_spend(
    session: Session, tenant_id: str, user_ids: Collection[str], since: datetime
) -> dict[str, int]:
    """Fen paid since ``since`` in payments not refunded, per member."""
    found: dict[str, int] = {}
    for chunk in chunks(sorted(user_ids)):
        rows = session.execute(
            select(LoyaltyEvent.user_id, func.sum(LoyaltyEvent.amount_fen))
            .where(
                LoyaltyEvent.tenant_id == tenant_id,
                LoyaltyEvent.user_id.in_(chunk),
                LoyaltyEvent.occurred_at >= since,
                LoyaltyEvent.type == PAYMENT_TRIGGER,
                LoyaltyEvent.status == EventStatus.APPLIED.value,
            )
            .group_by(LoyaltyEvent.user_id)
        )
        found.update((u, int(s or 0)) for u, s in rows)
    return found


# Events --------------------------------------------------------------------------------------


def existing_events(
    session: Session, tenant_id: str, event_ids: Collection[str]
) -> dict[str, LoyaltyEvent]:
    found: dict[str, LoyaltyEvent] = {}
    for chunk in chunks(sorted(event_ids)):
        found.update(
            (e.event_id, e)
            for e in session.scalars(
                select(LoyaltyEvent).where(
                    LoyaltyEvent.tenant_id == tenant_id, LoyaltyEvent.event_id.in_(chunk)
                )
            )
        )
    return found


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        bulk_insert(session, LoyaltyEvent, rows)


def events_of_order(session: Session, tenant_id: str, order_id: str) -> list[LoyaltyEvent]:
    return list(
        session.scalars(
            select(LoyaltyEvent)
            .where(
                LoyaltyEvent.tenant_id == tenant_id,
                LoyaltyEvent.order_id == order_id,
                LoyaltyEvent.type != REFUND_TRIGGER,
            )
            .order_by(LoyaltyEvent.id)
            .with_for_update()
        )
    )


def get_event(
    session: Session, tenant_id: str, event_id: str, *, lock: bool = False
) -> LoyaltyEvent | None:
    stmt = select(LoyaltyEvent).where(
        LoyaltyEvent.tenant_id == tenant_id, LoyaltyEvent.event_id == event_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


# Tasks progress ------------------------------------------------------------------------------


@dataclass
class Track:
    """A member's progress on a task as a batch works on it."""

    task_id: str
    user_id: str
    marks: dict[str, str]
    rewarded: int
    changed: bool = False


def task_tracks(
    session: Session, tenant_id: str, pairs: Collection[tuple[str, str]]
) -> dict[tuple[str, str], Track]:
    """Progress of (task id, user id) pairs, locked, opening the missing ones (in the order
    ``quotas.repository.lock_many`` explains)."""
    if not pairs:
        return {}
    postgres = is_postgres(session)
    found = {} if postgres else _tracks(session, tenant_id, pairs, lock=False)
    missing = sorted(set(pairs) - found.keys())
    if missing:
        session.execute(
            dialect_insert(session, LoyaltyTaskProgress.__table__).on_conflict_do_nothing(
                index_elements=["tenant_id", "task_id", "user_id"]
            ),
            [
                {"tenant_id": tenant_id, "task_id": t, "user_id": u, "marks": {}, "rewarded": 0}
                for t, u in missing
            ],
        )
        found.update(((t, u), Track(t, u, {}, 0)) for t, u in missing)
    if postgres:
        found = _tracks(session, tenant_id, pairs, lock=True)
    return found


def _tracks(
    session: Session, tenant_id: str, pairs: Collection[tuple[str, str]], *, lock: bool
) -> dict[tuple[str, str], Track]:
    p = LoyaltyTaskProgress
    found: dict[tuple[str, str], Track] = {}
    for chunk in chunks(sorted({u for _, u in pairs})):
        stmt = (
            select(p.task_id, p.user_id, p.marks, p.rewarded)
            .where(p.tenant_id == tenant_id, p.user_id.in_(chunk))
            .order_by(p.task_id, p.user_id)
        )
        if lock:
            stmt = stmt.with_for_update()
        for task_id, user_id, marks, rewarded in session.execute(stmt):
            if (task_id, user_id) in pairs:
                found[(task_id, user_id)] = Track(task_id, user_id, dict(marks), int(rewarded))
    return found


def save_tracks(session: Session, tenant_id: str, tracks: Iterable[Track], now: datetime) -> None:
    bulk_update(
        session,
        LoyaltyTaskProgress,
        ["tenant_id", "task_id", "user_id"],
        [
            {
                "marks": x.marks,
                "rewarded": x.rewarded,
                "updated_at": now,
                "tenant_id": tenant_id,
                "task_id": x.task_id,
                "user_id": x.user_id,
            }
            for x in tracks
            if x.changed
        ],
    )


def member_progress(session: Session, tenant_id: str, user_id: str) -> list[LoyaltyTaskProgress]:
    stmt = select(LoyaltyTaskProgress).where(
        LoyaltyTaskProgress.tenant_id == tenant_id, LoyaltyTaskProgress.user_id == user_id
    )
    if is_postgres(session):
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


def applied_events(
    session: Session,
    tenant_id: str,
    since: datetime,
    until: datetime,
    user_ids: Collection[str] | None = None,
) -> Sequence[LoyaltyEvent]:
    stmt = select(LoyaltyEvent).where(
        LoyaltyEvent.tenant_id == tenant_id,
        LoyaltyEvent.status == EventStatus.APPLIED.value,
        LoyaltyEvent.occurred_at >= since,
        LoyaltyEvent.occurred_at < until,
    )
    if user_ids is not None:
        stmt = stmt.where(LoyaltyEvent.user_id.in_(list(user_ids)))
    return session.scalars(stmt.order_by(LoyaltyEvent.id)).all()
