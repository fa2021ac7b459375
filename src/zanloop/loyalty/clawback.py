"""Taking points back, and the points other areas grant: a refunded order's or a single event's
reversal (its lots clawed back, quota given back, task rewards that no longer stand undone, an
upgrade the refund undid reversed), a grant from another area (a campaign's reward) and its
claw-back, and points a cancelled redemption returns to a lot reversed meanwhile. What a member
no longer has is recorded as owed and paid off from later earnings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.errors import NotFound
from zanloop.kit.clock import as_utc, utcnow
from zanloop.kit.ids import new_id
from zanloop.kit.money import Asset
from zanloop.ledger import service as ledger
from zanloop.ledger.domain import Leg, TransferRequest
from zanloop.loyalty import domain, lots_repository, postings, repository
from zanloop.loyalty.domain import (
    CLAWED,
    RETURNED_PREFIX,
    EventStatus,
    LotStatus,
    available_owner,
    pending_owner,
)
from zanloop.loyalty.members import ensure_member, member_tier, qualifying_totals, tier_change
from zanloop.loyalty.setup import parse_task, settings
from zanloop.loyalty.tables import LoyaltyEvent, LoyaltyLot, LoyaltyMember
from zanloop.quotas.service import Taken, Tally

# Points granted by other areas --------------------------------------------------------------


def grant(
    session: Session,
    tenant_id: str,
    user_id: str,
    points: int,
    *,
    ref: str,
    transfer_id: str,
    issuer: str,
    description: str,
    metadata: dict[str, Any] | None = None,
) -> LoyaltyLot:
    """Points another area grants (a campaign's reward): a lot like any other, so they are
    spent, expired and clawed back the same way. Once per ``ref``."""
    for lot in lots_repository.lots_by_ref(session, tenant_id, [ref]):
        return lot
    conf = settings(session, tenant_id)
    ensure_member(session, tenant_id, user_id)
    now = utcnow()
    ledger.post(
        session,
        tenant_id,
        TransferRequest(
            transfer_id=transfer_id,
            asset=Asset.POINTS,
            legs=(
                Leg(issuer, -points, overdraft_allowed=True),
                Leg(available_owner(user_id), points),
            ),
            description=description,
            metadata=metadata or {},
        ),
    )
    lot = LoyaltyLot(
        id=new_id("lot"),
        tenant_id=tenant_id,
        user_id=user_id,
        ref=ref,
        status=LotStatus.AVAILABLE.value,
        points=points,
        remaining=points,
        expired=0,
        clawed=0,
        detail={"issuer": issuer},
        earned_at=now,
        available_at=now,
        expires_at=domain.expires_at(conf, now),
        transfer_id=transfer_id,
    )
    repository.add(session, lot)
    return lot


def claw_back(session: Session, tenant_id: str, ref: str, reason: str) -> tuple[int, int]:
    """Take back a grant's points (``grant``'s ``ref``): (points taken back, points owed)."""
    lots_ = [
        lot
        for lot in lots_repository.lots_by_ref(session, tenant_id, [ref])
        if lot.status != LotStatus.REVERSED.value
    ]
    members = {
        m.user_id: m
        for m in repository.lock_members(session, tenant_id, {lot.user_id for lot in lots_})
    }
    claw = _Claw(session, tenant_id, members)
    for lot in lots_:
        claw.lot(lot)
    claw.post(reason)
    session.flush()
    return sum(claw.clawed.values()), sum(claw.owed_by_lot.values())


def put_back(
    session: Session,
    tenant_id: str,
    member: LoyaltyMember,
    lot: LoyaltyLot,
    points: int,
    hold_id: str,
) -> None:
    """Points a cancelled redemption returns to the lot they were held from. A lot reversed
    meanwhile (its payment was refunded) cannot take them back: they pay off what the member
    came to owe, and any rest is a lot of its own with the old lot's expiry."""
    if lot.status != LotStatus.REVERSED.value:
        lot.remaining += points
        return
    settle = min(member.owed_points, points)
    if settle:
        member.owed_points -= settle
        lot.clawed += settle
        requests, _ = postings.from_counter(
            "settle",
            CLAWED,
            {available_owner(member.user_id): -settle},
            "owed points paid off",
            overdraft=False,
        )
        ledger.post_many(session, tenant_id, requests)
    rest = points - settle
    if rest:
        repository.add(
            session,
            LoyaltyLot(
                id=new_id("lot"),
                tenant_id=tenant_id,
                user_id=member.user_id,
                ref=f"{RETURNED_PREFIX}{hold_id}:{lot.id}",
                status=LotStatus.AVAILABLE.value,
                points=rest,
                remaining=rest,
                expired=0,
                clawed=0,
                detail={"returned_from": lot.id},
                earned_at=lot.earned_at,
                available_at=lot.available_at,
                expires_at=lot.expires_at,
                transfer_id=hold_id,
            ),
        )


# Reversal (claw-back) ------------------------------------------------------------------------


@dataclass
class Reversal:
    event_id: str
    clawed: int
    owed: int
    tier: str


def reverse_event(
    session: Session, tenant_id: str, event_id: str, reason: str, now: datetime | None = None
) -> Reversal:
    event = repository.get_event(session, tenant_id, event_id, lock=True)
    if event is None:
        raise NotFound(f"event {event_id} not found")
    return _reverse(session, tenant_id, [event], reason, now or utcnow())[0]


def reverse_order(
    session: Session, tenant_id: str, order_id: str, reason: str, now: datetime | None = None
) -> list[Reversal]:
    """A refund of ``order_id``: every event it earned on is reversed."""
    found = repository.events_of_order(session, tenant_id, order_id)
    return _reverse(session, tenant_id, found, reason, now or utcnow())


def _reverse(
    session: Session, tenant_id: str, found: Sequence[LoyaltyEvent], reason: str, now: datetime
) -> list[Reversal]:
    todo = [e for e in found if e.status == EventStatus.APPLIED.value]
    if not todo:  # reversed already: nothing more to take back
        return [
            Reversal(e.event_id, 0, 0, member_tier(session, tenant_id, e.user_id) or "")
            for e in found
        ]
    conf = settings(session, tenant_id)
    # Members before their lots, as redemptions and ingest lock them: one lock order.
    members = {
        m.user_id: m for m in repository.lock_members(session, tenant_id, {e.user_id for e in todo})
    }
    refs = [r for e in todo for r in (f"event:{e.event_id}", f"event:{e.event_id}:counterparty")]
    granted = [
        lot
        for lot in lots_repository.lots_by_ref(session, tenant_id, refs)
        if lot.status != LotStatus.REVERSED.value
    ]
    users = {e.user_id for e in todo} | {lot.user_id for lot in granted}
    if users - members.keys():  # an invitation's other side
        members.update(
            (m.user_id, m)
            for m in repository.lock_members(session, tenant_id, users - members.keys())
        )
    for e in todo:
        e.status, e.reversed_at = EventStatus.REVERSED.value, now
    claw = _Claw(session, tenant_id, members)
    taken = [Taken.from_json(t) for lot in granted for t in lot.detail.get("taken", [])]
    if taken:
        tally = Tally(session, tenant_id, [(t.scope, t.key) for t in taken])
        tally.give_back(taken)
        tally.save()
    for lot in granted:
        claw.lot(lot)
    # Tasks: the events leave the marks; completions that no longer stand are clawed too.
    keys = {e.event_id for e in todo}
    tasks = {t.id: t for t in repository.list_tasks(session, tenant_id)}
    task_lots: dict[str, list[str]] = defaultdict(list)
    for user_id in sorted(users):
        for row in repository.member_progress(session, tenant_id, user_id):
            if not keys & row.marks.keys() or row.task_id not in tasks:
                continue
            row.marks = {k: v for k, v in row.marks.items() if k not in keys}
            due = domain.completions(parse_task(tasks[row.task_id].document), row.marks.values())
            if due < row.rewarded:
                lost = [f"task:{row.task_id}:{n}" for n in range(due + 1, row.rewarded + 1)]
                for lot in lots_repository.lots_by_ref(session, tenant_id, lost):
                    if lot.user_id == user_id and lot.status != LotStatus.REVERSED.value:
                        claw.lot(lot)
                        task_lots[user_id].append(lot.id)
                row.rewarded = due
            row.updated_at = now
    claw.post(reason)
    session.flush()
    # Tiers: an upgrade the refund undid is undone, never below the last evaluated tier.
    qualifying = qualifying_totals(session, tenant_id, conf, sorted(users), now)
    changes = []
    for member in members.values():
        tier = domain.tier_after_refund(
            conf, member.tier, member.base_tier, qualifying.get(member.user_id, 0)
        )
        if tier != member.tier:
            changes.append(
                tier_change(member, tier, "refund", qualifying.get(member.user_id, 0), now)
            )
    repository.add_tier_changes(session, changes)
    session.flush()
    out = []
    for e in found:
        # What the event's lots gave back, and the task rewards it took down with it (counted
        # on the first of a member's reversed events).
        mine = [lot.id for lot in granted if lot.ref == f"event:{e.event_id}"]
        mine += task_lots.pop(e.user_id, []) if e in todo else []
        out.append(
            Reversal(
                e.event_id,
                sum(claw.clawed.get(lot_id, 0) for lot_id in mine),
                sum(claw.owed_by_lot.get(lot_id, 0) for lot_id in mine),
                members[e.user_id].tier if e.user_id in members else "",
            )
        )
    for e, r in zip(found, out, strict=True):
        if e not in todo:
            continue
        events.publish(
            session,
            events.Event(
                "loyalty.points.reversed",
                tenant_id,
                {
                    "event_id": e.event_id,
                    "user_id": e.user_id,
                    "order_id": e.order_id,
                    "reason": reason,
                    "points_clawed": r.clawed,
                    "points_owed": r.owed,
                    "tier": r.tier,
                },
            ),
        )
    return out


class _Claw:
    """Takes lots' points back: pending points from the pending account; available ones from
    the lot, then the member's other lots (soonest-expiring first); what the member no longer
    has is recorded as owed and paid off from later earnings."""

    def __init__(self, session: Session, tenant_id: str, members: dict[str, LoyaltyMember]) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.members = members
        self.debits: dict[str, int] = defaultdict(int)
        self.clawed: dict[str, int] = {}
        self.owed_by_lot: dict[str, int] = {}
        self._others: dict[str, list[LoyaltyLot]] = {}

    def lot(self, lot: LoyaltyLot) -> None:
        if lot.status == LotStatus.PENDING.value:
            self.debits[pending_owner(lot.user_id)] += lot.remaining
            got, owed = lot.remaining, 0
            lot.clawed += lot.remaining
            lot.remaining = 0
        else:
            want = lot.points - lot.expired - lot.clawed
            own = min(lot.remaining, want)
            lot.remaining -= own
            lot.clawed += own
            rest = want - own
            from_others = self._from_others(lot, rest) if rest else 0
            owed = rest - from_others
            got = own + from_others
            self.debits[available_owner(lot.user_id)] += got
            if owed:
                member = self.members.get(lot.user_id) or _locked(
                    self.session, self.tenant_id, lot.user_id
                )
                member.owed_points += owed
        lot.status = LotStatus.REVERSED.value
        self.clawed[lot.id] = got
        self.owed_by_lot[lot.id] = owed

    def _from_others(self, lot: LoyaltyLot, want: int) -> int:
        if lot.user_id not in self._others:
            self._others[lot.user_id] = lots_repository.spendable_lots(
                self.session, self.tenant_id, lot.user_id
            )
        spendable = [x for x in self._others[lot.user_id] if x.id != lot.id and x.remaining > 0]
        total = sum(x.remaining for x in spendable)
        plan = (
            domain.allocate(
                [
                    domain.Spendable(
                        x.id,
                        x.remaining,
                        as_utc(x.expires_at) if x.expires_at else None,
                        as_utc(x.earned_at),
                    )
                    for x in spendable
                ],
                min(want, total),
            )
            or {}
        )
        for x in spendable:
            take = plan.get(x.id, 0)
            x.remaining -= take
            x.clawed += take
        return sum(plan.values())

    def post(self, reason: str) -> None:
        if any(self.debits.values()):
            requests, _ = postings.from_counter(
                "claw",
                CLAWED,
                {o: -p for o, p in self.debits.items()},
                f"points clawed back: {reason}"[:500],
                overdraft=False,
            )
            ledger.post_many(self.session, self.tenant_id, requests)


def _locked(session: Session, tenant_id: str, user_id: str) -> LoyaltyMember:
    return repository.lock_members(session, tenant_id, [user_id])[0]
