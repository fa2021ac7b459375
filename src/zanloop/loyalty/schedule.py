"""The programme's scheduled work, run by ``loyalty.jobs``: pending points maturing once the
refund window closes (paying off what members owe), lots expiring (breakage), notices of points
about to expire, and the rolling re-evaluation of tiers. Each pass works in batches across
tenants and only flushes."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.kit.clock import as_utc, utcnow
from zanloop.ledger import service as ledger
from zanloop.loyalty import domain, lots_repository, postings, repository
from zanloop.loyalty.domain import (
    CLAWED,
    EXPIRED,
    LotStatus,
    Settings,
    available_owner,
    pending_owner,
)
from zanloop.loyalty.members import qualifying_totals, tier_change
from zanloop.loyalty.setup import settings
from zanloop.loyalty.tables import LoyaltyLot


def mature_due(session: Session, now: datetime | None = None, limit: int = 2000) -> int:
    """Pending lots whose refund window has closed become available."""
    now = now or utcnow()
    due = lots_repository.due_lots(session, now, limit)
    by_tenant: dict[str, list[LoyaltyLot]] = defaultdict(list)
    for lot in due:
        by_tenant[lot.tenant_id].append(lot)
    for tenant_id, lots_ in by_tenant.items():
        moves = [(pending_owner(x.user_id), available_owner(x.user_id), x.remaining) for x in lots_]
        owing = {
            m.user_id: m
            for m in repository.owing_members(session, tenant_id, {x.user_id for x in lots_})
        }
        settled: dict[str, int] = defaultdict(int)
        for lot in lots_:
            lot.status = LotStatus.AVAILABLE.value
            member = owing.get(lot.user_id)
            if member is not None and member.owed_points:
                # What a member owes is paid off from points as they become available.
                settle = min(member.owed_points, lot.remaining)
                member.owed_points -= settle
                lot.remaining -= settle
                lot.clawed += settle
                settled[available_owner(lot.user_id)] -= settle
        requests = postings.pairs("mature", moves, "pending points became available")
        if settled:
            requests += postings.from_counter(
                "settle", CLAWED, settled, "owed points paid off", overdraft=False
            )[0]
        if requests:
            ledger.post_many(session, tenant_id, requests)
    session.flush()
    return len(due)


def expire_due(
    session: Session,
    now: datetime | None = None,
    limit: int = 2000,
    tenant_id: str | None = None,
    user_id: str | None = None,
) -> int:
    """Lots past their expiry lose what remains of them (breakage), FIFO by expiry."""
    now = now or utcnow()
    due = lots_repository.expired_lots(session, now, limit, tenant_id, user_id)
    by_tenant: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    expired_by: dict[tuple[str, str], int] = defaultdict(int)
    for lot in due:
        by_tenant[lot.tenant_id][available_owner(lot.user_id)] -= lot.remaining
        expired_by[(lot.tenant_id, lot.user_id)] += lot.remaining
        lot.expired += lot.remaining
        lot.remaining = 0
    for tenant, amounts in by_tenant.items():
        requests, _ = postings.from_counter(
            "expire", EXPIRED, amounts, "points expired", overdraft=False
        )
        ledger.post_many(session, tenant, requests)
    for (tenant, user), points in sorted(expired_by.items()):
        events.publish(
            session,
            events.Event("loyalty.points.expired", tenant, {"user_id": user, "points": points}),
        )
    session.flush()
    return len(due)


def notify_expiring(session: Session, now: datetime | None = None, limit: int = 2000) -> int:
    """Tell members, once per lot, that points expire within the programme's notice period."""
    now = now or utcnow()
    notices: dict[tuple[str, str], list[LoyaltyLot]] = defaultdict(list)
    # Each programme with its own notice period, so one tenant's lots never crowd out another's.
    for tenant_id, raw in repository.programme_settings(session):
        notice_days = Settings.model_validate(raw).expiry.notice_days
        if not notice_days:
            continue  # the programme sends no notice
        horizon = now + timedelta(days=notice_days)
        for lot in lots_repository.expiring_unnotified(session, tenant_id, horizon, limit):
            notices[(tenant_id, lot.user_id)].append(lot)
    for (tenant_id, user_id), lots_ in sorted(notices.items()):
        first = min(as_utc(x.expires_at) for x in lots_ if x.expires_at is not None)
        for lot in lots_:
            lot.notified_at = now
        events.publish(
            session,
            events.Event(
                "loyalty.points.expiring",
                tenant_id,
                {
                    "user_id": user_id,
                    "points": sum(x.remaining for x in lots_),
                    "expires_at": first.isoformat(),
                },
            ),
        )
    session.flush()
    return sum(len(v) for v in notices.values())


def evaluate_tiers(
    session: Session, now: datetime | None = None, tenant_id: str | None = None, batch: int = 500
) -> int:
    """The scheduled re-evaluation (L2): every member's tier against the rolling window, down
    as the downgrade policy says; the result is the floor a later refund cannot go below."""
    now = now or utcnow()
    changed = 0
    after: tuple[str, str] | None = None
    while True:
        ids = repository.member_ids(session, tenant_id, after, batch)
        if not ids:
            return changed
        after = ids[-1]
        by_tenant: dict[str, list[str]] = defaultdict(list)
        for t, u in ids:
            by_tenant[t].append(u)
        for tenant, users in by_tenant.items():
            conf = settings(session, tenant)
            qualifying = qualifying_totals(session, tenant, conf, users, now)
            rows = []
            for member in repository.lock_members(session, tenant, users):
                q = qualifying.get(member.user_id, 0)
                tier = domain.tier_after_evaluation(conf, member.tier, q)
                if tier != member.tier:
                    rows.append(tier_change(member, tier, "evaluation", q, now))
                member.base_tier = member.tier
            repository.add_tier_changes(session, rows)
            changed += len(rows)
        session.flush()
