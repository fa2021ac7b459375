"""The month of tests/loyalty/test_a_month.py: ``Month`` generates five weeks of events for
thirty-odd members (with the stories the month must contain whatever the seed) and drives the
API and the model through them together, day by day, with refunds, reversals, tier evaluations
and the jobs in between, comparing every answer as it comes (api_vs_model.py).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.loyalty.api_vs_model import compare_ledger, compare_outcomes, run_moving_jobs
from tests.loyalty.conftest import Programme, event
from tests.loyalty.model import Model
from tests.loyalty.model_lots import PENDING

ZONE = "America/New_York"  # the programme's days (and a DST change inside the month)
RULES_ZONE = ZONE  # the seed rules count their days in the programme's zone
DAYS = 36
PARTNER = "mall-2"


@dataclass
class Profile:
    user: str
    activity: float
    regular: bool
    scale: float
    partner: float


@dataclass
class Month:
    """Generates the month and drives the API and the model through it together."""

    p: Programme
    model: Model
    rng: random.Random
    now: datetime
    start: datetime
    streak_id: str
    achievement_id: str
    codes: list[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    forced: dict[str, list[Callable[[], None]]] = field(default_factory=dict)
    sent_batches: list[list[dict[str, Any]]] = field(default_factory=list)
    friends: int = 0
    jobs_at: datetime | None = None
    done: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    protected: set[str] = field(default_factory=set)

    # Generation ------------------------------------------------------------------------------

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=DAYS)

    def local(self, day: date, hour: float, zone: str = ZONE) -> datetime:
        moment = datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)) + timedelta(hours=hour)
        return moment.astimezone(UTC) + timedelta(microseconds=self.rng.randrange(10**6))

    def add(self, type_: str, user: str, when: datetime, eid: str | None = None, **kw: Any) -> str:
        if not self.start <= when < self.end:
            return ""
        ev = event(type_, user, when, event_id=eid, **kw)
        self.events.append(ev)
        return str(ev["event_id"])

    def pay(self, user: str, when: datetime, amount: int, **kw: Any) -> str:
        window = when + timedelta(days=3)
        if kw.get("order_id") and abs(window - datetime.now(UTC)) < timedelta(minutes=10):
            return ""  # too close to call whether it is still pending when it arrives
        return self.add("payment.succeeded", user, when, amount_fen=amount, **kw)

    def amount(self, profile: Profile) -> int:
        return max(150, int(self.rng.lognormvariate(math.log(4000 * profile.scale), 0.8)))

    def generate(self, profiles: list[Profile], birthdays: dict[str, date]) -> None:
        rng = self.rng
        zone = ZoneInfo(ZONE)
        first = self.start.astimezone(zone).date()
        last = self.end.astimezone(zone).date()
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        for prof in profiles:
            u = prof.user
            for day in days:
                if rng.random() < (0.93 if prof.regular else 0.12):
                    self.add("store.checkin", u, self.local(day, rng.uniform(7, 21)))
                if rng.random() >= prof.activity:
                    continue
                for _ in range(rng.randint(1, 3)):
                    self.activity(prof, day)
            if u in birthdays:
                bd = birthdays[u]
                self.pay(
                    u,
                    self.local(bd, rng.uniform(14, 22), RULES_ZONE),
                    self.amount(prof),
                    store_id=rng.choice([PARTNER, "store-1"]),
                )
        self.settle_birthdays(birthdays)

    def settle_birthdays(self, birthdays: dict[str, date]) -> None:
        """No payment on a birthday in one zone but not the other: the product takes the
        programme's (test_the_birthday_is_a_day_in_the_rules_timezone)."""

        def on(e: dict[str, Any], zone: str) -> bool:
            day = datetime.fromisoformat(e["occurred_at"]).astimezone(ZoneInfo(zone)).date()
            return day == birthdays[e["user_id"]]

        self.events = [
            e
            for e in self.events
            if e["type"] != "payment.succeeded"
            or e["user_id"] not in birthdays
            or on(e, ZONE) == on(e, RULES_ZONE)
        ]

    def activity(self, prof: Profile, day: date) -> None:
        rng = self.rng
        u = prof.user
        when = self.local(day, rng.uniform(6, 23.5))
        kind = rng.choices(
            ["pay", "share", "comment", "like", "read", "watch", "complete", "invite"],
            [30, 15, 10, 12, 10, 9, 6, 2],
        )[0]
        later = [when + timedelta(minutes=rng.uniform(1, 40)) for _ in range(6)]
        if kind == "pay":
            store = PARTNER if rng.random() < prof.partner else f"store-{rng.randint(1, 9)}"
            eid = f"pay-{u}-{len(self.events)}"
            order = f"ord-{eid}" if rng.random() < 0.6 else None
            self.pay(u, when, self.amount(prof), eid=eid, store_id=store, order_id=order)
        elif kind == "share":
            for t in later[: rng.choice([1, 1, 2])]:
                self.add("share.created", u, t)
        elif kind in ("comment", "like"):
            for t in later[: rng.randint(1, 6)]:
                self.add(f"{kind}.created", u, t)
        elif kind == "read":
            for t in later[: rng.randint(1, 4)]:
                self.add("article.read", u, t, value=rng.choice([100, 100, 100, 60, 95]))
        elif kind == "watch":
            for t in later[: rng.randint(1, 4)]:
                self.add("video.watched", u, t, value=rng.randint(5, 120))
        elif kind == "complete":
            for t in later[: rng.randint(1, 4)]:
                self.add("video.completed", u, t)
        else:
            self.friends += 1
            self.add("invite.accepted", u, when, counterparty_id=f"friend-{self.friends}")

    def scenarios(self) -> None:
        """Members whose story the month must contain whatever the seed."""
        self.protected |= {"dabbler", "lapsed", "cap", "inviter", "pender"}
        # Tries everything once, then the only payment is refunded: the achievement goes. The
        # same a month ago, when the points have expired since.
        for who, d in (
            ("lapsed", self.start + timedelta(days=1, hours=3)),
            ("dabbler", self.start + timedelta(days=12, hours=3)),
        ):
            self.pay(who, d, 2300, order_id=f"{who}-order")
            self.add("share.created", who, d + timedelta(days=1))
            self.add("comment.created", who, d + timedelta(days=1, hours=1))
            self.add("article.read", who, d + timedelta(days=2), value=100)
            self.add("video.completed", who, d + timedelta(days=3))
            self.add("payment.refunded", who, d + timedelta(days=7), order_id=f"{who}-order")
        d = self.start + timedelta(days=12, hours=5)
        # Two shares on one day (the second over the cap), the first reversed, a third earns.
        share_day = (self.start + timedelta(days=12)).astimezone(ZoneInfo(RULES_ZONE)).date()
        s1 = self.add("share.created", "cap", self.local(share_day, 9, RULES_ZONE))
        s2 = self.add("share.created", "cap", self.local(share_day, 10, RULES_ZONE))
        self.add("share.created", "cap", self.local(share_day, 11, RULES_ZONE))
        self.forced[s2] = [lambda: self.reverse(s1)]
        # An invitation reversed: both sides' points go.
        inv = self.add(
            "invite.accepted", "inviter", d + timedelta(days=5), counterparty_id="friend-0"
        )
        self.forced[inv] = [lambda: self.reverse(inv)]
        # A payment still pending when it arrives, refunded inside the window.
        self.pay("pender", self.now - timedelta(days=2, hours=12), 8800, order_id="pend-1")
        self.add(
            "payment.refunded",
            "pender",
            self.now - timedelta(days=2, hours=6),
            order_id="pend-1",
        )
        # Newcomers in the last days try everything once, their payment still refundable: the
        # reward stays pending with it; one of them is refunded, and the reward goes.
        for who in ("newcomer", "returner"):
            self.protected.add(who)
            t = self.now - timedelta(days=2, hours=21)
            order = f"{who}-order"
            self.pay(who, t, 4200, order_id=order)
            self.add("share.created", who, t + timedelta(hours=1))
            self.add("comment.created", who, t + timedelta(hours=2))
            self.add("article.read", who, t + timedelta(hours=3), value=100)
            self.add("video.completed", who, t + timedelta(hours=4))
            if who == "returner":
                self.add("payment.refunded", who, t + timedelta(hours=9), order_id=order)
        # Receipt codes: one scanned twice by its member (a duplicate), then by another
        # member (rejected); the rest once.
        a, *rest = self.codes
        self.add("receipt.scanned", "scanner", d + timedelta(days=2), code=a)
        self.add("receipt.scanned", "scanner", d + timedelta(days=3), code=a)
        self.add("receipt.scanned", "dabbler", d + timedelta(days=4), code=a)
        for i, code in enumerate(rest):
            self.add("receipt.scanned", f"m{i:02d}", d + timedelta(days=6 + i), code=code)

    # Driving ---------------------------------------------------------------------------------

    def send(self, chunk: list[dict[str, Any]]) -> None:
        expected = self.model.ingest(chunk, datetime.now(UTC))
        answer = self.p.send(*chunk)
        compare_outcomes(expected, answer, self.model, chunk)
        if len(chunk) > 4:
            self.sent_batches.append(chunk)

    def reverse(self, event_id: str) -> None:
        clawed, owed = self.model.reverse(event_id, datetime.now(UTC))
        answer = self.p.reverse(event_id)
        user = self.model.events[event_id].user
        assert answer["clawed"] == clawed, (event_id, answer)
        assert answer["owed"] == owed, (event_id, answer)
        assert answer["tier"] == self.model.member(user).tier, (event_id, answer)
        assert answer["balance"] == self.model.balance(user), (event_id, answer)
        self.done["reversals"] += 1

    def refund_event(self, event_id: str, when: datetime) -> None:
        ev = self.model.events[event_id]
        refund = event("payment.refunded", ev.user, when, order_id=ev.order_id)
        self.send([refund])
        self.done["refund events"] += 1

    def refund(self, event_id: str, when: datetime) -> None:
        """A refund at the till: the event reversed, or a payment.refunded event."""
        if self.model.events[event_id].order_id and self.rng.random() < 0.5:
            self.refund_event(event_id, when)
        else:
            self.reverse(event_id)

    def refundable(self, event_id: str) -> bool:
        """Reversible without touching points that have expired (or soon will)."""
        ev = self.model.events.get(event_id)
        if ev is None or ev.status != "applied" or ev.reversed or ev.user in self.protected:
            return False
        if ev.type == "payment.refunded":
            return False
        lots = [x for x in self.model.user_lots(ev.user) if x.event_id == event_id]
        soon = datetime.now(UTC) + timedelta(hours=1)
        return all(x.expired == 0 and x.expires_at and x.expires_at > soon for x in lots)

    def random_refund(self, when: datetime) -> None:
        candidates = [
            e.event_id
            for e in self.model.events.values()
            if e.at > when - timedelta(days=6) and self.refundable(e.event_id)
        ]
        if not candidates:
            return
        payments = [c for c in candidates if self.model.events[c].type == "payment.succeeded"]
        pool = payments if payments and self.rng.random() < 0.75 else candidates
        self.refund(self.rng.choice(pool), when)

    def trial(self, event_id: str) -> Model:
        ev = self.model.events[event_id]
        trial = self.model.fork([ev.user, *([ev.counterparty] if ev.counterparty else [])])
        trial.reverse(event_id, datetime.now(UTC))
        return trial

    def undo_an_upgrade(self, when: datetime) -> None:
        """Refund the payment that lifted a member a tier, so they fall back."""
        for m in sorted(self.model.members.values(), key=lambda m: m.user):
            eid = m.upgraded_by.get(m.tier)
            if m.tier == m.base or eid is None or not self.refundable(eid):
                continue
            if self.model.events[eid].type != "payment.succeeded":
                continue
            trial = self.trial(eid)
            if trial.conf.index(trial.member(m.user).tier) < self.model.conf.index(m.tier):
                self.refund(eid, when)
                self.done["upgrade undone"] += 1
                return

    def break_a_streak(self) -> None:
        """Reverse a check-in inside a completed streak: the streak and its reward go."""
        for m in sorted(self.model.members.values(), key=lambda m: m.user):
            if not m.rewarded.get(self.streak_id):
                continue
            checkins = [
                e.event_id
                for e in self.model.events_of[m.user]
                if e.type == "store.checkin" and self.refundable(e.event_id)
            ]
            for eid in checkins[-9:-4]:
                trial = self.trial(eid)
                if (
                    trial.stats.rewards_clawed[self.streak_id]
                    > self.model.stats.rewards_clawed[self.streak_id]
                ):
                    self.reverse(eid)
                    self.done["streak broken"] += 1
                    return

    def refund_held_by_evaluation(self, when: datetime) -> None:
        """A refund after an evaluation confirmed the tier: the member keeps it."""
        for m in sorted(self.model.members.values(), key=lambda m: m.user):
            if m.tier != m.base or m.tier == self.model.conf.tiers[0].name:
                continue
            for e in self.model.events_of[m.user]:
                if e.type != "payment.succeeded" or not self.refundable(e.event_id):
                    continue
                trial = self.trial(e.event_id)
                if (
                    trial.stats.refunds_held_by_evaluation
                    > self.model.stats.refunds_held_by_evaluation
                    and trial.member(m.user).tier == m.tier
                ):
                    self.refund(e.event_id, when)
                    self.done["refund held by evaluation"] += 1
                    return

    def jobs(self, until: datetime, notify: bool = True) -> None:
        """Run the jobs one second either side of every expiry, maturity and hold's end up
        to ``until`` (checking the ledger each time), then at ``until``; with the expiry
        notices only at ``until`` (and only if ``notify``), as they move no points."""
        since = self.jobs_at or self.start
        marks = sorted(
            {
                t
                for lot in self.model.lots
                if lot.remaining
                for t in (lot.expires_at, lot.available_at if lot.status == PENDING else None)
                if t is not None and since < t <= until
            }
            | {
                h.expires_at
                for h in self.model.holds.values()
                if h.status == "HELD" and since < h.expires_at <= until
            }
        )
        for mark in marks:
            for moment in (mark - timedelta(seconds=1), mark + timedelta(seconds=1)):
                if moment > until:
                    continue
                run_moving_jobs(self.p, moment)
                self.model.run_jobs(moment)
                compare_ledger(self.p, self.model, f"after the jobs at {moment}")
        if notify:
            self.p.run_jobs(until)
        else:
            run_moving_jobs(self.p, until)
        self.model.run_jobs(until)
        compare_ledger(self.p, self.model, f"after the jobs at {until}")
        self.jobs_at = until

    def day(self, k: int, todays: list[dict[str, Any]]) -> None:
        rng = self.rng
        queue = sorted(todays, key=lambda e: (e["occurred_at"], e["event_id"]))
        if k == 0:
            # Late and early events are refused, and change nothing.
            real = datetime.now(UTC)
            queue[:0] = [
                event("share.created", "m00", real - timedelta(days=91)),
                event("share.created", "m00", real + timedelta(hours=1)),
            ]
        while queue:
            size = rng.choice([1, 1, 2, 5, 13, 40, 120, 400])
            chunk = queue[:size]
            for i, e in enumerate(chunk):
                if e["event_id"] in self.forced:
                    chunk = chunk[: i + 1]
                    break
            del queue[: len(chunk)]
            self.send(chunk)
            for e in chunk:
                for action in self.forced.pop(e["event_id"], []):
                    action()
            if rng.random() < 0.12:
                self.random_refund(datetime.fromisoformat(chunk[-1]["occurred_at"]))
        end = self.start + timedelta(days=k + 1)
        last = end - timedelta(minutes=1)
        if k >= 5 and self.done["upgrade undone"] < 2:
            self.undo_an_upgrade(last)
        if k >= 8 and self.done["streak broken"] < 2:
            self.break_a_streak()
        if k in (17, 27):
            self.p.evaluate_tiers(end)
            self.model.evaluate(end)
        if k >= 19 and not self.done["refund held by evaluation"]:
            self.refund_held_by_evaluation(last)
        if k == 20:
            # A batch sent again is all duplicates and changes nothing.
            before = self.p.ledger()
            clean = [
                b
                for b in self.sent_batches
                if all(
                    e["event_id"] in self.model.events
                    and self.model.events[e["event_id"]].status == "applied"
                    for e in b
                )
            ]
            self.send(clean[len(clean) // 3])
            assert self.p.ledger() == before
        self.jobs(end, notify=k % 7 == 6)
