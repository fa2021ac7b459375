"""Acceptance: a month of a points programme, driven through the API as an integrator would,
checked against an independent calculation (tests/loyalty/model.py) written from
docs/loyalty.md.

Thirty-odd members (and the friends they invite) earn for five weeks ending two days ago, in
a New York programme (so a daylight-saving change falls inside the month): payments (some with
an order, so pending applies; some at the partner store, on a birthday or in the double-points
week), shares, comments, likes, reads, videos, invitations, receipt QR codes and store
check-ins.
The events go in as single calls and batches of every size, in time order; between them
payments are refunded (by reversing the event or by a ``payment.refunded`` event), among
them one that undoes a tier upgrade, one that breaks a completed check-in streak, one that
undoes an achievement and one the last scheduled evaluation holds up. The scheduled jobs run
at the end of every day and one second either side of every expiry, so a lot that expires a
second early or late is caught. After the month: redemptions (a refund of spent points leaves
a debt that the next earnings pay off), scheduled tier evaluations with a shorter window, and
the jobs run on until every point has matured and expired.

Every answer (each event's outcome, the balances it carries, each reversal) is compared with
the model as it comes; every day ends with the whole ledger compared; at the end of each phase
every member's balances, lots, tier, tier history and task progress are compared field by field,
and the ledger invariants are checked from the API alone.
"""

from __future__ import annotations

import math
import os
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.loyalty.conftest import Programme, event
from tests.loyalty.model import (
    AVAILABLE,
    PENDING,
    REVERSED,
    Achievement,
    Conf,
    Count,
    Model,
    Rule,
    Streak,
    Task,
    Tier,
    seed_rules,
)
from zanloop.loyalty import redemption, service

ZONE = "America/New_York"  # the programme's days (and a DST change inside the month)
RULES_ZONE = ZONE  # the seed rules count their days in the programme's zone
TIERS = (
    Tier("normal", 0, Decimal("1.0")),
    Tier("silver", 1500, Decimal("1.2")),
    Tier("gold", 4000, Decimal("1.5")),
)
DAYS = 36
MEMBERS = 30
PARTNER = "mall-2"
LIKE_BONUS = "Weekend like bonus"
COUNT_TASK = "Pay three times in the festival: 100"
ACHIEVEMENT = (
    "payment.succeeded",
    "share.created",
    "comment.created",
    "article.read",
    "video.completed",
)


# The API as the model sees it ----------------------------------------------------------------


def at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def api_lots(p: Programme, user: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        response = p.client.get(
            f"/v1/loyalty/members/{user}/lots", params=params, headers=p.tenant.headers
        )
        assert response.status_code == 200, response.text
        page = response.json()
        out.extend(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            return out


def lot_key(lot: dict[str, Any]) -> tuple[str, datetime, str]:
    return (lot["ref"], lot["earned_at"], lot["status"])


def api_lot_views_of(lots: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    views = []
    for lot in lots:
        ref = lot["ref"]
        if ref.startswith("event:receipt:"):
            ref = "event:receipt:*"  # a receipt's lot is named by the receipt, not the event
        views.append(
            {
                "ref": ref,
                "status": lot["status"],
                "points": lot["points"],
                "remaining": lot["remaining"],
                "expired": lot["expired"],
                "clawed": lot["clawed"],
                "earned_at": at(lot["earned_at"]),
                "available_at": at(lot["available_at"]),
                "expires_at": at(lot["expires_at"]),
            }
        )
    return views


def lot_seqs(p: Programme, model: Model, user: str) -> dict[str, int]:
    """The API's lot ids and the model's lots, matched."""
    ours = {lot_key(lot.view()): lot.seq for lot in model.user_lots(user)}
    lots = api_lots(p, user)
    views = api_lot_views_of(lots)
    return {lot["id"]: ours[lot_key(view)] for lot, view in zip(lots, views, strict=True)}


def history(p: Programme, user: str) -> list[tuple[str, str, str, int]]:
    response = p.client.get(
        f"/v1/loyalty/members/{user}/tier-history",
        params={"limit": 200},
        headers=p.tenant.headers,
    )
    assert response.status_code == 200, response.text
    return [(c["from_tier"], c["to_tier"], c["reason"], c["qualifying"]) for c in response.json()][
        ::-1
    ]


def today(model: Model) -> date:
    return datetime.now(UTC).astimezone(model.conf.zone).date()


def compare_members(p: Programme, model: Model, users: Iterable[str]) -> None:
    """Each member's lots, account, tasks and tier history against the model, field by field;
    and from the API alone, the ledger invariants: the POINTS accounts sum to zero, and each
    member's accounts equal their lots (available + held; pending)."""
    ledger = p.ledger()
    assert sum(ledger.values()) == 0
    for user in users:
        lots, held = compare_member(p, model, user)
        available = sum(x["remaining"] for x in lots if x["status"] == AVAILABLE)
        pending = sum(x["remaining"] for x in lots if x["status"] == PENDING)
        assert sum(x["remaining"] for x in lots if x["status"] == REVERSED) == 0, user
        assert ledger.get(f"user:{user}", 0) == available + held, user
        assert ledger.get(f"user:{user}:pending", 0) == pending, user
        for x in lots:
            assert 0 <= x["remaining"] + x["expired"] + x["clawed"] <= x["points"], x


def compare_member(p: Programme, model: Model, user: str) -> tuple[list[dict[str, Any]], int]:
    """Returns the member's lots and held points as the API has them."""
    now = datetime.now(UTC)
    expected_lots = sorted((lot.view() for lot in model.user_lots(user)), key=lot_key)
    lots = api_lots(p, user)
    got_lots = sorted(api_lot_views_of(lots), key=lot_key)
    if got_lots != expected_lots:
        only_api = [x for x in got_lots if x not in expected_lots]
        only_model = [x for x in expected_lots if x not in got_lots]
        raise AssertionError(f"lots of {user}: API only {only_api}, model only {only_model}")
    account = p.account(user)
    want = model.account(user, now)
    got = {k: account[k] for k in want}
    got["multiplier"] = Decimal(got["multiplier"])
    for k in ("pending_until", "next_expiry"):
        got[k] = at(got[k])
    assert got == want, f"account of {user}"
    tasks = {t["task_id"]: t for t in p.tasks(user)}
    for task_id, view in model.task_views(user, today(model)).items():
        got_task = {k: tasks[task_id][k] for k in view}
        assert got_task == view, f"task {tasks[task_id]['name']} of {user}"
    assert history(p, user) == model.member(user).history, f"tier history of {user}"
    return lots, int(account["held"])


def compare_ledger(p: Programme, model: Model, where: str) -> None:
    ledger = {k: v for k, v in p.ledger().items() if v}
    assert ledger == model.ledger(), f"ledger {where}"


def run_moving_jobs(p: Programme, at: datetime) -> None:
    """The jobs that move points (mature, expire, release holds) as of ``at``: Programme.run_jobs
    without the expiry notices, which take most of its time."""
    with p.db.session() as session:
        service.mature_due(session, at)
        service.expire_due(session, at)
        redemption.cancel_stale(session, at)


def compare_outcomes(
    model_out: list[Any], api: dict[str, Any], model: Model, sent: list[dict[str, Any]]
) -> None:
    got = {o["event_id"]: o for o in api["events"]}
    assert len(got) == len(sent)
    for e in model_out:
        o = got[e.event_id]
        assert o["status"] == e.status, (o, e)
        if e.status == "rejected":
            continue
        assert o["points"] == e.points, (o, e)
        if e.status == "applied":
            assert o["tier"] == e.tier, (o, e)
            if e.type != "payment.refunded":  # whether a refund is "pending" is not said
                assert o["pending"] == e.pending, (o, e)
    # "A batch answers with the balance of every member it names, replays included."
    named = {e["user_id"] for e in sent} | {e.get("counterparty_id") for e in sent} - {None}
    missing = named - {b["user_id"] for b in api["balances"]}
    assert not missing, [(e.event_id, e.status) for e in model_out if e.counterparty in missing]
    for b in api["balances"]:
        mine = [e for e in sent if b["user_id"] in (e["user_id"], e.get("counterparty_id"))]
        assert b == model.balance(b["user_id"]), (b, mine)


# The month -----------------------------------------------------------------------------------


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


def programme_settings(window: int = 365) -> dict[str, Any]:
    return {
        "timezone": ZONE,
        "refund_window_days": 3,
        "expiry": {"policy": "rolling", "months": 1, "notice_days": 3},
        "tiers": [
            {"name": t.name, "threshold": t.threshold, "multiplier": str(t.multiplier)}
            for t in TIERS
        ],
        "tier_basis": "points",
        "tier_window_days": window,
        "downgrade": "one_step",
    }


def open_programme(
    p: Programme, start: datetime
) -> tuple[Model, dict[str, str], tuple[datetime, datetime]]:
    """The programme, the defaults (with a partner store and a double-points week), a weekend
    like bonus with a budget, and a limited-time count task; the model of the same."""
    p.settings(**programme_settings())
    double = (start + timedelta(days=15, hours=1), start + timedelta(days=18, hours=1))
    response = p.client.post(
        "/v1/loyalty/defaults",
        json={
            "activate": True,
            "partner_stores": [PARTNER],
            "double_points_from": double[0].isoformat(),
            "double_points_to": double[1].isoformat(),
        },
        headers=p.tenant.headers,
    )
    assert response.status_code == 201, response.text
    installed = response.json()
    # The seed's rules are installed in the programme's zone: caps, birthdays, streaks and
    # expiry all count New York days.
    assert {r["rule"]["timezone"] for r in installed["rules"]} == {RULES_ZONE}
    rules = seed_rules([PARTNER], double, RULES_ZONE)
    assert sorted(r["name"] for r in installed["rules"]) == sorted(r.id for r in rules)
    rules.append(
        Rule(
            LIKE_BONUS,
            "like.created",
            ZONE,
            weekday_in=(6, 7),
            grant=3,
            per_user_total=3,
            max_rewards=25,
        )
    )
    p.rule(
        {
            "trigger": "like.created",
            "conditions": [{"type": "weekday_in", "days": [6, 7]}],
            "effects": [{"type": "grant_points", "points": 3}],
            "caps": {"per_user_total": 3},
            "budget": {"max_rewards": 25},
            "timezone": ZONE,
        },
        name=LIKE_BONUS,
    )
    tasks: dict[str, str] = {t["name"]: t["id"] for t in installed["tasks"]}
    streak = next(t for t in installed["tasks"] if t["task"]["type"] == "streak")
    assert (streak["task"]["trigger"], streak["task"]["days"], streak["task"]["points"]) == (
        "store.checkin",
        7,
        200,
    )
    festival = (start + timedelta(days=10, seconds=17), start + timedelta(days=20, seconds=17))
    count = p.task(
        {
            "type": "count",
            "trigger": "payment.succeeded",
            "goal": 3,
            "points": 100,
            "start": festival[0].isoformat(),
            "end": festival[1].isoformat(),
        },
        name=COUNT_TASK,
    )
    tasks[COUNT_TASK] = count["id"]
    model_tasks: list[Task] = [
        Streak(
            streak["id"],
            "store.checkin",
            7,
            200,
            grace_days=streak["task"]["grace_days"],
            repeat=streak["task"]["repeat"],
        ),
        Achievement(
            tasks["Try everything once: 500"],
            ACHIEVEMENT,
            500,
        ),
        Count(count["id"], "payment.succeeded", 3, 100, *festival),
    ]
    conf = Conf(ZONE, 3, 1, TIERS)
    return Model(conf, rules, model_tasks), tasks, double


# More seeds: ZANLOOP_MONTH_SEEDS=11,2026,90210 (each takes some ten seconds).
SEEDS = [int(s) for s in os.environ.get("ZANLOOP_MONTH_SEEDS", "11,2026").split(",")]


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed-{s}" for s in SEEDS])
def test_a_month_of_events_matches_an_independent_calculation(
    programme: Programme, seed: int
) -> None:
    p = programme
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=DAYS + 2)

    # Given a programme with the defaults, birthdays, and printed receipts
    model, tasks, _ = open_programme(p, start)
    codes = []
    for i in range(6):
        response = p.client.post(
            "/v1/loyalty/receipt-codes",
            json={"store_id": f"store-{i}", "amount_fen": 1000 + 1234 * i},
            headers=p.tenant.headers,
        )
        assert response.status_code == 201, response.text
        codes.append(response.json()["code"])
        model.receipt(codes[-1], f"store-{i}", 1000 + 1234 * i)
    profiles = [
        Profile(
            f"m{i:02d}",
            activity=rng.uniform(0.3, 0.95),
            regular=rng.random() < 0.35,
            scale=rng.choice([0.5, 1, 1, 2, 3]),
            partner=rng.uniform(0, 0.6),
        )
        for i in range(MEMBERS)
    ]
    zone = ZoneInfo(RULES_ZONE)
    birthdays: dict[str, date] = {}
    for prof in rng.sample(profiles, 10):
        day = (start + timedelta(days=rng.uniform(0.5, DAYS - 0.5))).astimezone(zone).date()
        birthdays[prof.user] = day
        response = p.client.put(
            f"/v1/loyalty/members/{prof.user}",
            json={"birthday": day.strftime("%m-%d")},
            headers=p.tenant.headers,
        )
        assert response.status_code == 200, response.text
        model.set_birthday(prof.user, day.strftime("%m-%d"))
    month = Month(
        p,
        model,
        rng,
        now,
        start,
        streak_id=tasks["Check in 7 days in a row: 200"],
        achievement_id=tasks["Try everything once: 500"],
        codes=codes,
    )
    month.generate(profiles, birthdays)
    month.scenarios()

    # When the month's events arrive, day by day, with refunds and the jobs in between
    by_day: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in month.events:
        k = (datetime.fromisoformat(e["occurred_at"]) - start) // timedelta(days=1)
        by_day[k].append(e)
    for k in range(DAYS):
        month.day(k, by_day[k])
    assert not month.forced

    # Then every member matches the model, and the ledger holds
    month.jobs(datetime.now(UTC))
    users = sorted(model.members)
    # A friend has one lot from an invitation: a few of them will do until the end.
    friends = [u for u in users if u.startswith("friend-")]
    sample = [u for u in users if u not in friends] + friends[::8]
    compare_members(p, model, sample)
    stats = model.stats
    assert month.done["upgrade undone"] >= 1
    assert month.done["streak broken"] >= 1
    assert month.done["refund held by evaluation"] >= 1
    assert month.done["refund events"] >= 1
    assert stats.rewards_clawed[month.achievement_id] >= 1
    assert stats.rewards_issued[month.streak_id] >= 3
    assert stats.rewards_issued[tasks[COUNT_TASK]] >= 1
    assert stats.pending_clawed > 0
    assert stats.expired_points > 0
    assert stats.expired_at_once > 0
    assert stats.pending_rewards >= 2
    assert stats.capped > 0
    assert stats.budget_refused > 0
    assert stats.duplicates >= 2
    assert stats.rejected >= 3
    assert sum(1 for m in model.members.values() if m.tier == "gold") >= 1
    for rule in (
        "Birthday: double points",
        "Partner merchants: double points",
        "Limited-time event: double points",
        "+50 for a payment of 100 CNY or more",
        "Receipt QR: 1 point a yuan",
        LIKE_BONUS,
    ):
        assert stats.applied[rule] >= 1, rule

    # When members redeem, and one is refunded a payment whose points they spent
    compare_members(p, model, redeem_and_owe(month))

    # When the scheduled evaluation runs, then again with a ten-day window
    evaluate(month, now + timedelta(hours=1))
    p.settings(**programme_settings(window=10))
    model.set_conf(replace(model.conf, tier_window_days=10))
    evaluate(month, now + timedelta(hours=2))
    evaluate(month, now + timedelta(hours=3))
    assert model.stats.evaluation_changes >= 1

    # Then the jobs run on until every point has matured and expired, each on its day
    last = max(lot.expires_at for lot in model.lots if lot.expires_at)
    month.jobs(last + timedelta(days=1))
    compare_members(p, model, sample)
    ledger = p.ledger()
    assert not any(v for k, v in ledger.items() if k.startswith("user:"))


def evaluate(month: Month, when: datetime) -> None:
    month.p.evaluate_tiers(when)
    month.model.evaluate(when)
    for user in sorted(month.model.members):
        assert month.p.balance(user)["tier"] == month.model.member(user).tier, user


def redeem_and_owe(month: Month) -> list[str]:
    """Returns the members it touched."""
    p, model, now = month.p, month.model, datetime.now(UTC)
    mug = p.item(name="Mug", price_points=150)
    bag = p.item(name="Bag", price_points=500, stock=2, per_user_limit=1)
    rich = sorted(
        (u for u in model.members if u.startswith("m")),
        key=lambda u: (-model.balance(u)["available"], u),
    )

    def redeem(user: str, item: dict[str, Any], confirm: bool = True) -> dict[str, Any]:
        response = p.redeem(user, item["id"], confirm=confirm)
        assert response.status_code == 201, response.text
        body = dict(response.json())
        expires = at(body["expires_at"])
        seqs = lot_seqs(p, model, user)
        chosen = {seqs[lot_id]: points for lot_id, points in body["allocations"].items()}
        assert model.redeem(body["id"], user, item["price_points"], now, confirm, expires, chosen)
        assert body["balance"] == model.balance(user), user
        return body

    for user in rich[:6]:
        redeem(user, mug)
    redeem(rich[0], bag)
    redeem(rich[1], bag)
    refused = p.redeem(rich[2], bag["id"], confirm=True)
    assert refused.status_code == 409, refused.text
    poor = next(u for u in sorted(model.members) if model.balance(u)["available"] < 150)
    short = p.redeem(poor, mug["id"], confirm=True)
    assert short.status_code == 409, short.text
    # A hold cancelled returns its points; a hold left alone is released by the job.
    held = redeem(rich[6], mug, confirm=False)
    assert p.balance(rich[6]) == model.balance(rich[6])
    response = p.client.post(
        f"/v1/loyalty/redemptions/{held['id']}/cancel", headers=p.tenant.headers
    )
    assert response.status_code == 200, response.text
    model.cancel(held["id"])
    assert response.json()["balance"] == model.balance(rich[6])
    redeem(rich[7], mug, confirm=False)
    # A member spends nearly all they have, then a payment of theirs is refunded: what was
    # spent is owed, and paid off from what they earn next and what matures.
    spender = next(
        u
        for u in sorted(rich[8:], key=lambda u: not model.balance(u)["pending"])
        if any(
            e.type == "payment.succeeded"
            and month.refundable(e.event_id)
            and any(x.status == AVAILABLE for x in model.user_lots(u) if x.event_id == e.event_id)
            for e in model.events_of[u]
        )
    )
    price = model.balance(spender)["available"] - 3
    redeem(spender, p.item(name="Everything", price_points=price))
    payment = next(
        e.event_id
        for e in reversed(model.events_of[spender])
        if e.type == "payment.succeeded"
        and month.refundable(e.event_id)
        and any(x.status == AVAILABLE for x in model.user_lots(spender) if x.event_id == e.event_id)
    )
    month.reverse(payment)
    assert model.member(spender).owed > 0
    month.send([event("payment.succeeded", spender, now - timedelta(hours=1), amount_fen=1000)])
    compare_ledger(p, model, "after the redemptions")
    return sorted({*rich[:8], poor, spender})


# Discrepancies the month found, each at its smallest (all but the last since fixed) ----------


def test_daily_cap_counts_days_in_the_rules_timezone(programme: Programme) -> None:
    # Given a New York programme with a share rule that counts Asia/Shanghai days
    p = programme
    p.settings(timezone=ZONE)
    p.rule(
        {
            "trigger": "share.created",
            "effects": [{"type": "grant_points", "points": 5}],
            "caps": {"per_user_per_day": 1},
            "timezone": "Asia/Shanghai",
        }
    )
    # When a member shares twice on one Shanghai day (08:00 and 20:00 there), which are two
    # New York days
    day = datetime.now(UTC).date() - timedelta(days=3)
    first = datetime.combine(day, time(0), tzinfo=UTC)
    second = first + timedelta(hours=12)
    answer = p.send(event("share.created", "u", first), event("share.created", "u", second))
    # Then the daily cap (1 a day, "a local day in the rule's timezone") rewards only the first
    assert [e["points"] for e in answer["events"]] == [5, 0]


def test_a_replayed_invitation_answers_with_both_balances(programme: Programme) -> None:
    # Given an invitation applied once
    p = programme
    p.client.post("/v1/loyalty/defaults", json={"activate": True}, headers=p.tenant.headers)
    invite = event(
        "invite.accepted", "u", datetime.now(UTC) - timedelta(hours=1), counterparty_id="f"
    )
    first = p.send(invite)
    assert {b["user_id"] for b in first["balances"]} == {"u", "f"}
    # When it is sent again
    replay = p.send(invite)
    # Then the answer carries "the balance of every member it names, replays included"
    assert replay["events"][0]["status"] == "duplicate"
    assert {b["user_id"] for b in replay["balances"]} == {"u", "f"}


def test_a_reward_waits_only_for_actions_nothing_else_secures(programme: Programme) -> None:
    # (The product once waited for a refundable payment after two earlier payments, but not
    # after three.)
    # Given members who pay none, two or three times without an order, then once with one
    # (still refundable twenty days ago), then complete the achievement
    p = programme
    p.settings(refund_window_days=3)
    p.client.post("/v1/loyalty/defaults", json={"activate": True}, headers=p.tenant.headers)
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
    for user, earlier in (("none", 0), ("two", 2), ("three", 3)):
        evs = [
            event("payment.succeeded", user, t + timedelta(minutes=i), amount_fen=1000)
            for i in range(earlier)
        ]
        evs += [
            event(
                "payment.succeeded", user, t + timedelta(hours=1), amount_fen=1000, order_id=user
            ),
            event("share.created", user, t + timedelta(hours=2)),
            event("comment.created", user, t + timedelta(hours=3)),
            event("article.read", user, t + timedelta(hours=4), value=100),
            event("video.completed", user, t + timedelta(hours=5)),
        ]
        for e in evs:
            p.send(e)
    # Then the reward waits for the payment's refund window only where that payment is the
    # only one: a payment that can no longer be refunded secures the action already
    available = {
        user: [at(x["available_at"]) for x in p.lots(user) if x["ref"].startswith("task:")]
        for user in ("none", "two", "three")
    }
    assert available == {
        "none": [t + timedelta(days=3, hours=1)],
        "two": [t + timedelta(hours=5)],
        "three": [t + timedelta(hours=5)],
    }


def test_a_task_reward_becomes_available_when_its_payment_does(programme: Programme) -> None:
    # Given a member who completes the achievement with a payment still refundable, paid at a
    # fraction of a second
    p = programme
    p.settings(refund_window_days=3)
    p.client.post("/v1/loyalty/defaults", json={"activate": True}, headers=p.tenant.headers)
    t = datetime.now(UTC).replace(microsecond=250000) - timedelta(days=2)
    p.send(
        event("payment.succeeded", "u", t, event_id="pay", amount_fen=1000, order_id="o"),
        event("share.created", "u", t + timedelta(seconds=1)),
        event("comment.created", "u", t + timedelta(seconds=2)),
        event("article.read", "u", t + timedelta(seconds=3), value=100),
        event("video.completed", "u", t + timedelta(seconds=4)),
    )
    # Then the reward becomes available when the payment's points do, not before
    lots = {lot["ref"]: lot for lot in p.lots("u")}
    reward = next(lot for ref, lot in lots.items() if ref.startswith("task:"))
    assert reward["status"] == "PENDING"
    assert at(reward["available_at"]) == at(lots["event:pay"]["available_at"])


def test_a_refund_events_outcome_has_the_tier_after_it(programme: Programme) -> None:
    # Given a member lifted to silver by a payment
    p = programme
    p.settings(tiers=[{"name": "normal", "threshold": 0}, {"name": "silver", "threshold": 100}])
    p.client.post("/v1/loyalty/defaults", json={"activate": True}, headers=p.tenant.headers)
    t = datetime.now(UTC) - timedelta(days=1)
    paid = p.send(event("payment.succeeded", "u", t, amount_fen=20000, order_id="o"))
    assert paid["events"][0]["tier"] == "silver"
    # When the payment is refunded by an event
    refunded = p.send(event("payment.refunded", "u", t + timedelta(hours=1), order_id="o"))
    # Then the member is back to normal, and the outcome says so as the balance does
    assert refunded["balances"][0]["tier"] == "normal"
    assert refunded["events"][0]["tier"] == "normal"


def test_reversing_twice_answers_with_the_members_tier(programme: Programme) -> None:
    # Given a payment reversed once
    p = programme
    p.client.post("/v1/loyalty/defaults", json={"activate": True}, headers=p.tenant.headers)
    p.send(event("payment.succeeded", "u", datetime.now(UTC), event_id="pay", amount_fen=900))
    first = p.reverse("pay")
    assert (first["clawed"], first["tier"]) == (9, "normal")
    # When it is reversed again
    again = p.reverse("pay")
    # Then nothing more is clawed, and the answer still names the member's tier
    assert (again["clawed"], again["owed"]) == (0, 0)
    assert again["tier"] == "normal"


def test_the_birthday_is_a_day_in_the_programmes_timezone(programme: Programme) -> None:
    # Given a New York programme, a birthday rule that counts Asia/Shanghai days, and a member
    # whose birthday is the New York day of a payment (the day after, in Shanghai)
    p = programme
    p.settings(timezone=ZONE)
    p.rule(
        {
            "trigger": "payment.succeeded",
            "effects": [{"type": "earn_per_yuan", "points_per_yuan": "1"}],
            "timezone": "Asia/Shanghai",
        }
    )
    p.rule(
        {
            "trigger": "payment.succeeded",
            "conditions": [{"type": "birthday"}],
            "effects": [{"type": "multiply_points", "factor": "2"}],
            "timezone": "Asia/Shanghai",
        }
    )
    paid = datetime.combine(
        datetime.now(UTC).date() - timedelta(days=3), time(2), tzinfo=UTC
    )  # 10:00 in Shanghai, 21:00 or 22:00 the day before in New York
    response = p.client.put(
        "/v1/loyalty/members/u",
        json={"birthday": paid.astimezone(ZoneInfo(ZONE)).strftime("%m-%d")},
        headers=p.tenant.headers,
    )
    assert response.status_code == 200, response.text
    # When they pay 50 CNY
    answer = p.send(event("payment.succeeded", "u", paid, amount_fen=5000))
    # Then the birthday rule doubles it: a member has one birthday, a day in the programme's zone
    assert answer["events"][0]["points"] == 100
