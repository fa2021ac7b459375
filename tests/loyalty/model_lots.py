"""Members' points as the model (tests/loyalty/model.py) keeps them, from docs/loyalty.md
alone: lots (each amount earned, when it becomes available and when it expires), what a member
owes, holds; and what moves points between them: a lot earned, clawed back, matured, expired,
held and spent. What every POINTS account should hold follows from them.

The base of ``Model``, which decides from the events and the programme what to earn and claw
back. Where docs/loyalty.md leaves a choice open, the choice made here is marked READING.
"""

from __future__ import annotations

import calendar
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.loyalty.model_programme import Conf

PENDING = "PENDING"
AVAILABLE = "AVAILABLE"
REVERSED = "REVERSED"


# State ---------------------------------------------------------------------------------------


@dataclass
class Lot:
    seq: int
    user: str
    ref: str
    points: int
    remaining: int
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None
    status: str
    expired: int = 0
    clawed: int = 0
    event_id: str | None = None
    task: tuple[str, int] | None = None

    def view(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "status": self.status,
            "points": self.points,
            "remaining": self.remaining,
            "expired": self.expired,
            "clawed": self.clawed,
            "earned_at": self.earned_at,
            "available_at": self.available_at,
            "expires_at": self.expires_at,
        }


@dataclass
class Member:
    user: str
    tier: str
    base: str  # the tier the last scheduled evaluation confirmed
    birthday: str | None = None
    owed: int = 0
    held: int = 0
    history: list[tuple[str, str, str, int]] = field(default_factory=list)
    rewarded: dict[str, int] = field(default_factory=dict)
    # The event that earned each tier it climbed to.
    upgraded_by: dict[str, str] = field(default_factory=dict)


@dataclass
class Hold:
    user: str
    points: int
    allocations: dict[int, int]
    expires_at: datetime
    status: str = "HELD"


@dataclass
class Stats:
    """What happened, for the test to check that the month covered what it claims."""

    upgrades_earned: int = 0
    downgrades_refund: int = 0
    refunds_held_by_evaluation: int = 0
    evaluation_changes: int = 0
    rewards_clawed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rewards_issued: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    capped: int = 0
    budget_refused: int = 0
    applied: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pending_clawed: int = 0
    expired_points: int = 0
    expired_at_once: int = 0
    pending_rewards: int = 0
    duplicates: int = 0
    rejected: int = 0


def end_of_local_day(day: date, zone: ZoneInfo) -> datetime:
    """The end of a local day: the first instant of the next one, in UTC."""
    nxt = day + timedelta(days=1)
    return datetime.combine(nxt, time(0), tzinfo=zone).astimezone(UTC)


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


class Lots:
    """Every member's lots, holds and debt under the programme's settings, and what moves points
    between them. Earns nothing by itself: ``Model`` decides what each event earns and claws
    back, and calls ``_lot`` and ``_claw``."""

    def __init__(self, conf: Conf) -> None:
        self.conf = conf
        self.members: dict[str, Member] = {}
        self.lots: list[Lot] = []
        self.lots_of: dict[str, list[Lot]] = defaultdict(list)
        self.holds: dict[str, Hold] = {}
        self.redeemed = 0
        self.stats = Stats()
        self._seq = itertools.count()

    # Configuration ---------------------------------------------------------------------------

    def set_conf(self, conf: Conf) -> None:
        self.conf = conf

    def member(self, user: str) -> Member:
        if user not in self.members:
            first = self.conf.tiers[0].name
            self.members[user] = Member(user, first, first)
        return self.members[user]

    def set_birthday(self, user: str, birthday: str) -> None:
        self.member(user).birthday = birthday

    # Lots ------------------------------------------------------------------------------------

    def expires_at(self, available_at: datetime) -> datetime:
        zone = self.conf.zone
        day = available_at.astimezone(zone).date()
        return end_of_local_day(add_months(day, self.conf.expiry_months), zone)

    def _lot(
        self,
        user: str,
        ref: str,
        points: int,
        earned_at: datetime,
        available_at: datetime,
        pending: bool,
        now: datetime,
        event_id: str | None = None,
        task: tuple[str, int] | None = None,
    ) -> Lot:
        lot = Lot(
            seq=next(self._seq),
            user=user,
            ref=ref,
            points=points,
            remaining=points,
            earned_at=earned_at,
            available_at=available_at,
            expires_at=self.expires_at(available_at),
            status=PENDING if pending else AVAILABLE,
            event_id=event_id,
            task=task,
        )
        member = self.member(user)
        if member.owed and not pending:
            # READING: what is owed is paid off from the next points earned, recorded on
            # the new lot as clawed.
            pay = min(member.owed, lot.remaining)
            lot.remaining -= pay
            lot.clawed += pay
            member.owed -= pay
        if lot.status == AVAILABLE and lot.expires_at is not None and lot.expires_at <= now:
            # A late event whose points would already have expired: granted and expired at
            # once.
            lot.expired += lot.remaining
            self.stats.expired_points += lot.remaining
            self.stats.expired_at_once += lot.remaining
            lot.remaining = 0
        self.lots.append(lot)
        self.lots_of[user].append(lot)
        return lot

    def user_lots(self, user: str) -> list[Lot]:
        return self.lots_of.get(user, [])

    def qualifying(self, user: str, at: datetime) -> int:
        # READING: points earned in the window, net of claw-backs; a reversed lot no longer
        # counts at all.
        since = at - timedelta(days=self.conf.tier_window_days)
        return sum(
            lot.points - lot.clawed
            for lot in self.user_lots(user)
            if lot.status != REVERSED and since < lot.earned_at <= at
        )

    def _claw(self, lot: Lot, member: Member) -> int:
        """Claw back a lot: from itself, then the member's other lots (soonest-expiring
        first), and what is left is owed. Returns the points clawed.

        READING: points of the lot that have expired are gone already: they are neither
        clawed from other lots nor owed (only spent points are)."""
        need = lot.points - lot.clawed - lot.expired
        clawed = 0
        if lot.status == PENDING:
            self.stats.pending_clawed += lot.remaining
        take = min(need, lot.remaining)
        lot.remaining -= take
        lot.clawed += take
        need -= take
        clawed += take
        lot.status = REVERSED
        if need:
            others = sorted(
                (o for o in self.user_lots(member.user) if o.status == AVAILABLE and o.remaining),
                key=lambda o: (o.expires_at, o.earned_at, o.seq),
            )
            for other in others:
                take = min(need, other.remaining)
                other.remaining -= take
                other.clawed += take
                need -= take
                clawed += take
                if not need:
                    break
        member.owed += need
        return clawed

    # Jobs ------------------------------------------------------------------------------------

    def run_jobs(self, at: datetime) -> None:
        due = [x for x in self.lots if x.status == PENDING and x.available_at <= at]
        for lot in sorted(due, key=lambda x: (x.available_at, x.seq)):
            lot.status = AVAILABLE
            member = self.member(lot.user)
            if member.owed:
                # What is owed is paid off from points that become available, too.
                pay = min(member.owed, lot.remaining)
                lot.remaining -= pay
                lot.clawed += pay
                member.owed -= pay
        self._expire(at)
        for hold in self.holds.values():
            if hold.status == "HELD" and hold.expires_at <= at:
                self._release(hold, "EXPIRED")

    def _expire(self, at: datetime, user: str | None = None) -> None:
        for lot in self.lots if user is None else self.user_lots(user):
            if (
                lot.status == AVAILABLE
                and lot.remaining
                and lot.expires_at is not None
                and lot.expires_at <= at
            ):
                lot.expired += lot.remaining
                self.stats.expired_points += lot.remaining
                lot.remaining = 0

    # Redemption ------------------------------------------------------------------------------

    def redeem(
        self,
        rid: str,
        user: str,
        points: int,
        now: datetime,
        confirm: bool,
        expires_at: datetime | None = None,
        chosen: dict[int, int] | None = None,
    ) -> bool:
        """Hold (or spend) points, soonest-expiring lots first, among equal expiries the
        oldest. False: not enough. ``chosen`` (lot seq -> points) is how the product split
        it: taken if it keeps to that order, as lots earned at the same moment (an event and
        the task reward it completed) may go in either order."""
        self._expire(now, user)
        spendable = sorted(
            (x for x in self.user_lots(user) if x.status == AVAILABLE and x.remaining),
            key=lambda x: (x.expires_at, x.earned_at, x.seq),
        )
        if sum(x.remaining for x in spendable) < points:
            return False
        allocations: dict[int, int] = {}
        if chosen is not None:
            assert sum(chosen.values()) == points, chosen
            for lot in spendable:
                take = chosen.get(lot.seq, 0)
                assert 0 <= take <= lot.remaining, (lot, take)
                if lot.remaining - take:
                    later = [
                        x
                        for x in spendable
                        if chosen.get(x.seq)
                        and (x.expires_at, x.earned_at) > (lot.expires_at, lot.earned_at)
                    ]
                    assert not later, f"spent {later} before {lot}"
            assert set(chosen) <= {x.seq for x in spendable}, chosen
        need = points
        for lot in spendable:
            take = min(need, lot.remaining) if chosen is None else chosen.get(lot.seq, 0)
            if not take:
                continue
            lot.remaining -= take
            allocations[lot.seq] = take
            need -= take
            if not need:
                break
        hold = Hold(user, points, allocations, expires_at or now + timedelta(minutes=30))
        self.holds[rid] = hold
        if confirm:
            hold.status = "CONFIRMED"
            self.redeemed += points
        else:
            self.member(user).held += points
        return True

    def confirm(self, rid: str) -> None:
        hold = self.holds[rid]
        assert hold.status == "HELD"
        hold.status = "CONFIRMED"
        self.member(hold.user).held -= hold.points
        self.redeemed += hold.points

    def cancel(self, rid: str) -> None:
        self._release(self.holds[rid], "CANCELLED")

    def _release(self, hold: Hold, status: str) -> None:
        by_seq = {lot.seq: lot for lot in self.lots}
        for seq, points in hold.allocations.items():
            by_seq[seq].remaining += points
        self.member(hold.user).held -= hold.points
        hold.status = status

    # Views -----------------------------------------------------------------------------------

    def balance(self, user: str) -> dict[str, Any]:
        lots = self.user_lots(user)
        member = self.member(user)
        return {
            "user_id": user,
            "available": sum(x.remaining for x in lots if x.status == AVAILABLE),
            "pending": sum(x.remaining for x in lots if x.status == PENDING),
            "held": member.held,
            "tier": member.tier,
        }

    def ledger(self) -> dict[str, int]:
        """What every POINTS account should hold, zero balances left out."""
        out: dict[str, int] = defaultdict(int)
        for lot in self.lots:
            out["loyalty:issued"] -= lot.points
            out["loyalty:clawed"] += lot.clawed
            out["loyalty:expired"] += lot.expired
            if lot.status == AVAILABLE:
                out[f"user:{lot.user}"] += lot.remaining
            elif lot.status == PENDING:
                out[f"user:{lot.user}:pending"] += lot.remaining
        for member in self.members.values():
            out[f"user:{member.user}"] += member.held
        out["loyalty:redeemed"] += self.redeemed
        return {k: v for k, v in out.items() if v}
