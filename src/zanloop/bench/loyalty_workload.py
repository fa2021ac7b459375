"""The workload of ``zanloop bench loyalty`` and an independent computation of what it earns.

One seeded stream of member events over 60 days, sorted by time (then event id) and cut into
batches in that order, so the order the programme applies them in (by time within a batch, batch
after batch) is the stream's order. Users are drawn by a Zipf-like popularity (weight
``1 / (rank + 10)``), so a few members are heavy (they reach silver and gold, finish check-in
streaks) and most earn a little. The mix:

- ``payment.succeeded`` 55 %: amounts log-normal around 60 CNY, 30 stores plus the partner
  store ``mall-2`` (10 %, double points), a basket of categories on half, an ``order_id`` on
  40 % (pending for the 7-day refund window when recent);
- likes 12 %, check-ins 10 %, shares 8 %, comments 5 %, article reads 4 %, videos watched 2 %
  and completed 1.5 %, invitations accepted 1.5 % (a counterparty earns too), receipt QR codes
  1 % (signed with the programme's secret).

``expected`` works out, without zanloop's code, what the programme's default rules and tasks
(``service.default_rules(["mall-2"])``, ``service.default_tasks()``, default settings) give each
event and member, from the rules as written in docs/loyalty.md: per base rule
``floor(points x multipliers x tier multiplier)`` with exact fractions; daily caps per local day
(Asia/Shanghai); a counterparty's 20 points unmultiplied; the 7-day check-in streak (repeating)
and the try-everything achievement (once); the tier rising as soon as the points earned in the
window reach its threshold; a payment with an order id pending until ``occurred_at + 7 days``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from zanloop.loyalty import domain
from zanloop.loyalty.ingest import Incoming

SEED = 20261127
ZONE = ZoneInfo("Asia/Shanghai")
PARTNER_STORE = "mall-2"
STORES = tuple(f"store-{i:02d}" for i in range(1, 31))
CATEGORIES = ("coffee", "tea", "bakery", "snacks", "noodles", "dessert", "merch")
SPAN = timedelta(days=60)
REFUND_WINDOW = timedelta(days=7)
# No event falls this close to the end of the refund window as of the workload's ``now``:
# whether it is pending stays the same for an hour of benchmarking.
WINDOW_MARGIN = timedelta(hours=1)
# The first batch warms up (caches, compiled statements) and is not timed.
WARMUP_BATCH = 0
KINDS: tuple[tuple[str, float], ...] = (
    ("payment.succeeded", 55),
    ("like.created", 12),
    ("store.checkin", 10),
    ("share.created", 8),
    ("comment.created", 5),
    ("article.read", 4),
    ("video.watched", 2),
    ("video.completed", 1.5),
    ("invite.accepted", 1.5),
    ("receipt.scanned", 1),
)

# The default programme as docs/loyalty.md states it, written out again (not read from zanloop).
TIERS = (
    ("normal", 0, Fraction(1)),
    ("silver", 2_000, Fraction(6, 5)),
    ("gold", 10_000, Fraction(3, 2)),
)
# trigger -> (points, daily cap per member or None, minimum ``value`` or 0)
FLAT = {
    "share.created": (5, 1, 0),
    "comment.created": (2, 5, 0),
    "like.created": (2, 5, 0),
    "article.read": (15, 3, 100),
    "video.watched": (10, 3, 30),
    "video.completed": (20, 3, 0),
    "store.checkin": (5, 1, 0),
}
INVITE_POINTS = 20
BIG_PAYMENT_FEN, BIG_PAYMENT_BONUS = 10_000, 50
STREAK_DAYS, STREAK_POINTS = 7, 200
ACHIEVEMENT = frozenset(
    {"payment.succeeded", "share.created", "comment.created", "article.read", "video.completed"}
)
ACHIEVEMENT_POINTS = 500


@dataclass(frozen=True)
class LoyaltySizes:
    # Members enrolled (a third with a birthday in the stream's window) before any event.
    members: int
    # Users who are not members yet: each enrols with their first event.
    newcomers: int
    batch_size: int
    # Timed batches per pass, after one untimed warm-up batch of the same size.
    batches: int
    sqlite_passes: int
    postgres_passes: int
    reads: int
    read_warmup: int

    @property
    def events(self) -> int:
        return (self.batches + 1) * self.batch_size


@dataclass(frozen=True)
class Workload:
    now: datetime
    members: list[str]
    birthdays: dict[str, str]
    newcomers: list[str]
    # Index 0 is the warm-up batch. Receipt scans carry no code yet: see ``with_codes``.
    batches: list[list[Incoming]]
    # Receipt scans: event id -> (nonce, store, amount).
    receipts: dict[str, tuple[str, str, int]]

    @property
    def events(self) -> list[Incoming]:
        return [e for batch in self.batches for e in batch]

    def with_codes(self, secret: str) -> list[list[Incoming]]:
        """The batches with every receipt code signed by this programme's secret."""

        def signed(e: Incoming) -> Incoming:
            spec = self.receipts.get(e.event_id)
            if spec is None:
                return e
            code = domain.sign_receipt(secret, domain.Receipt(*spec))
            return replace(e, code=code)

        return [[signed(e) for e in batch] for batch in self.batches]

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for e in self.events:
            counts[e.type] += 1
        return dict(counts)


def workload(sizes: LoyaltySizes, now: datetime, seed: int = SEED) -> Workload:
    rng = random.Random(seed)
    now = now.astimezone(UTC).replace(microsecond=0)
    members = [f"member-{i:05d}" for i in range(sizes.members)]
    newcomers = [f"newcomer-{i:05d}" for i in range(sizes.newcomers)]
    start, end = now - SPAN, now - timedelta(minutes=10)
    first_day = start.astimezone(ZONE).date()
    birthdays: dict[str, str] = {}
    for i, user in enumerate(members):
        if i % 3 == 0:
            day = first_day + timedelta(days=rng.randrange(SPAN.days))
            birthdays[user] = f"{day.month:02d}-{day.day:02d}"
        elif i % 3 == 1:
            day = date(2001, 1, 1) + timedelta(days=rng.randrange(365))
            birthdays[user] = f"{day.month:02d}-{day.day:02d}"
    users = members + newcomers
    rng.shuffle(users)
    cumulative = list(itertools.accumulate(1 / (rank + 10) for rank in range(len(users))))
    boundary = now - REFUND_WINDOW
    seconds = (end - start).total_seconds()
    times = []
    for _ in range(sizes.events):
        at = start + timedelta(seconds=rng.uniform(0, seconds))
        if abs(at - boundary) < WINDOW_MARGIN:
            at += 2 * WINDOW_MARGIN
        times.append(at.replace(microsecond=rng.randrange(1_000_000)))
    times.sort()
    kinds = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    receipts: dict[str, tuple[str, str, int]] = {}
    events: list[Incoming] = []
    picked = rng.choices(users, cum_weights=cumulative, k=len(times))
    for n, (at, user, kind) in enumerate(
        zip(times, picked, rng.choices(kinds, weights, k=len(times)), strict=True)
    ):
        event_id = f"ev-{n:07d}"
        e = Incoming(event_id=event_id, type=kind, user_id=user, occurred_at=at)
        if kind == "payment.succeeded":
            store = PARTNER_STORE if rng.random() < 0.10 else rng.choice(STORES)
            basket = tuple(sorted(rng.sample(CATEGORIES, rng.randint(1, 2))))
            e = replace(
                e,
                amount_fen=_amount(rng),
                store_id=store,
                categories=basket if rng.random() < 0.5 else (),
                order_id=f"order-{n:07d}" if rng.random() < 0.4 else None,
            )
        elif kind == "receipt.scanned":
            receipts[event_id] = (f"rcp-bench-{n:07d}", rng.choice(STORES), _amount(rng))
        elif kind == "article.read":
            e = replace(e, value=rng.choice((100, 100, 100, 60, 30)))
        elif kind == "video.watched":
            e = replace(e, value=rng.randint(5, 120))
        elif kind == "invite.accepted":
            friend = user
            while friend == user:
                friend = rng.choice(users)
            e = replace(e, counterparty_id=friend)
        elif kind in ("like.created", "share.created", "comment.created"):
            e = replace(e, store_id=rng.choice(STORES) if rng.random() < 0.3 else None)
        events.append(e)
    size = sizes.batch_size
    batches = [events[i : i + size] for i in range(0, len(events), size)]
    return Workload(now, members, birthdays, newcomers, batches, receipts)


def _amount(rng: random.Random) -> int:
    return max(100, min(500_000, int(rng.lognormvariate(math.log(6_000), 0.9))))


# The independent computation ----------------------------------------------------------------


@dataclass
class MemberState:
    birthday: str | None = None
    tier: int = 0
    qualifying: int = 0
    available: int = 0
    pending: int = 0
    actions: set[str] = field(default_factory=set)
    achieved: bool = False
    streak: int = 0
    last_checkin: date | None = None


@dataclass
class Expected:
    points: dict[str, int]
    members: dict[str, MemberState]
    lots: int
    issued: int
    tier_changes: int

    def balance(self, user: str) -> tuple[int, int, str]:
        m = self.members[user]
        return m.available, m.pending, TIERS[m.tier][0]


def _birthday(birthday: str | None, day: date) -> bool:
    if birthday is None:
        return False
    month, dom = int(birthday[:2]), int(birthday[3:])
    if (month, dom) == (2, 29) and not (
        day.year % 4 == 0 and (day.year % 100 or day.year % 400 == 0)
    ):
        dom = 28
    return (day.month, day.day) == (month, dom)


def expected(load: Workload) -> Expected:
    """What the default programme gives every event and member of ``load``, worked out here."""
    # Members enrolled beforehand, with their birthdays; newcomers join with their first event.
    members: defaultdict[str, MemberState] = defaultdict(
        MemberState, {u: MemberState(birthday=load.birthdays.get(u)) for u in load.members}
    )
    used: dict[tuple[str, str, date], int] = defaultdict(int)
    points_of: dict[str, int] = {}
    lots = issued = tier_changes = 0

    def grant(m: MemberState, points: int, pending: bool) -> None:
        nonlocal lots, issued
        lots += 1
        issued += points
        if pending:
            m.pending += points
        else:
            m.available += points

    def qualify(m: MemberState, points: int) -> None:
        nonlocal tier_changes
        m.qualifying += points
        reached = max(i for i, (_, threshold, _) in enumerate(TIERS) if m.qualifying >= threshold)
        if reached > m.tier:
            m.tier = reached
            tier_changes += 1

    for e in load.events:
        m = members[e.user_id]
        day = e.occurred_at.astimezone(ZONE).date()
        base: list[int] = []
        factor = TIERS[m.tier][2]
        counterparty = 0
        if e.type == "payment.succeeded":
            base.append(e.amount_fen // 100)
            if e.amount_fen >= BIG_PAYMENT_FEN:
                base.append(BIG_PAYMENT_BONUS)
            if _birthday(m.birthday, day):
                factor *= 2
            if e.store_id == PARTNER_STORE:
                factor *= 2
        elif e.type == "receipt.scanned":
            base.append(load.receipts[e.event_id][2] // 100)
        elif e.type == "invite.accepted":
            base.append(INVITE_POINTS)
            counterparty = INVITE_POINTS
        elif e.type in FLAT:
            points, cap, minimum = FLAT[e.type]
            if e.value >= minimum and used[(e.type, e.user_id, day)] < cap:
                used[(e.type, e.user_id, day)] += 1
                base.append(points)
        earned = sum(math.floor(b * factor) for b in base if b > 0)
        pending = e.order_id is not None and e.occurred_at + REFUND_WINDOW > load.now
        if earned:
            grant(m, earned, pending)
        points_of[e.event_id] = earned
        if counterparty and e.counterparty_id:
            other = members[e.counterparty_id]
            grant(other, counterparty, False)
            qualify(other, counterparty)
        # Each task reward is a lot of its own, available at once.
        rewards: list[int] = []
        if e.type in ACHIEVEMENT and not m.achieved:
            m.actions.add(e.type)
            if m.actions == ACHIEVEMENT:
                m.achieved = True
                rewards.append(ACHIEVEMENT_POINTS)
        if e.type == "store.checkin" and (m.last_checkin is None or day > m.last_checkin):
            consecutive = m.streak > 0 and m.last_checkin == day - timedelta(days=1)
            m.streak = m.streak + 1 if consecutive else 1
            m.last_checkin = day
            if m.streak == STREAK_DAYS:
                m.streak = 0
                rewards.append(STREAK_POINTS)
        for reward in rewards:
            grant(m, reward, False)
        qualify(m, earned + sum(rewards))
    return Expected(points_of, dict(members), lots, issued, tier_changes)
