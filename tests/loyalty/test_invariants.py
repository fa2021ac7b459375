"""Properties of the points ledger under random event sequences (hypothesis): whatever members
do, refund and replay,

- the POINTS ledger sums to zero;
- each member's ``user:<id>`` balance equals the remaining points of their available lots plus
  what is held, and ``user:<id>:pending`` the remaining points of their pending lots;
- a batch sent again changes nothing;
- the same events earn the same whether sent one by one or in batches of any size.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.conftest import TenantHandle
from tests.loyalty.conftest import Programme, event
from zanloop.db import Database

USERS = ["u0", "u1", "u2"]
NOW = datetime.now(UTC).replace(microsecond=0)
WINDOW_DAYS = 3


def _when(minutes_ago: int) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def _clear(minutes_ago: int) -> int:
    """Keep clear of the moment a refund window closes while the test runs: pending or not
    must not depend on which run sent the event."""
    closes = WINDOW_DAYS * 24 * 60
    return minutes_ago + 60 if abs(minutes_ago - closes) < 30 else minutes_ago


@st.composite
def an_event(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            [
                "pay",
                "pay_order",
                "share.created",
                "comment.created",
                "article.read",
                "video.completed",
                "store.checkin",
                "invite.accepted",
            ]
        )
    )
    fields: dict[str, Any] = {
        "user_id": draw(st.sampled_from(USERS)),
        "minutes_ago": draw(st.integers(min_value=1, max_value=6 * 24 * 60)),
    }
    if kind.startswith("pay"):
        fields["type"] = "payment.succeeded"
        fields["amount_fen"] = draw(st.integers(min_value=100, max_value=30000))
        fields["store_id"] = draw(st.sampled_from(["mall-2", "store-1"]))
        if kind == "pay_order":
            fields["order_id"] = "order"
    else:
        fields["type"] = kind
        if kind == "article.read":
            fields["value"] = draw(st.sampled_from([60, 100]))
        if kind == "invite.accepted":
            fields["counterparty_id"] = draw(st.sampled_from(["f0", "f1"]))
    return fields


# A step: a batch of events (in time order overall), then maybe reverse an earlier event,
# refund an earlier order, or send an earlier batch again.
steps = st.lists(
    st.tuples(
        st.lists(an_event(), min_size=1, max_size=6),
        st.sampled_from(["none", "none", "reverse", "refund", "replay"]),
        st.integers(min_value=0, max_value=10**6),
    ),
    min_size=1,
    max_size=5,
)


def _script(raw: list[tuple[list[dict[str, Any]], str, int]]) -> list[tuple[str, Any]]:
    """The steps as a script of sends and reversals, with ids and times fixed, events in
    time order."""
    flat = [e for batch, _, _ in raw for e in batch]
    times = sorted((_clear(e["minutes_ago"]) for e in flat), reverse=True)
    script: list[tuple[str, Any]] = []
    sent: list[list[dict[str, Any]]] = []
    n = 0
    for batch, action, pick in raw:
        events = []
        for fields in batch:
            fields = dict(fields)
            fields.pop("minutes_ago")
            eid = f"e{n}"
            if fields.get("order_id"):
                fields["order_id"] = f"order-{n}"
            events.append(
                event(
                    user=fields.pop("user_id"),
                    at=_when(times[n]),
                    event_id=eid,
                    type_=fields.pop("type"),
                    **fields,
                )
            )
            n += 1
        script.append(("send", events))
        sent.append(events)
        earlier = [e for b in sent for e in b]
        if action == "reverse":
            script.append(("reverse", earlier[pick % len(earlier)]["event_id"]))
        elif action == "refund":
            paid = [e for e in earlier if e.get("order_id")]
            if paid:
                target = paid[pick % len(paid)]
                refund = event(
                    "payment.refunded",
                    target["user_id"],
                    _when(times[n - 1]) + timedelta(seconds=1),
                    event_id=f"refund-{n}",
                    order_id=target["order_id"],
                )
                script.append(("send", [refund]))
        elif action == "replay":
            script.append(("replay", sent[pick % len(sent)]))
    return script


def _open(client: TestClient, make_tenant: Callable[..., TenantHandle], db: Database) -> Programme:
    p = Programme(client, make_tenant(), db)
    p.settings(
        refund_window_days=WINDOW_DAYS,
        expiry={"policy": "rolling", "months": 1, "notice_days": 3},
        tiers=[
            {"name": "normal", "threshold": 0, "multiplier": "1.0"},
            {"name": "silver", "threshold": 300, "multiplier": "1.2"},
            {"name": "gold", "threshold": 900, "multiplier": "1.5"},
        ],
    )
    response = client.post(
        "/v1/loyalty/defaults",
        json={"activate": True, "partner_stores": ["mall-2"]},
        headers=p.tenant.headers,
    )
    assert response.status_code == 201, response.text
    return p


def _state(p: Programme) -> dict[str, Any]:
    """Everything a member has, in terms that do not depend on the tenant's ids."""
    state: dict[str, Any] = {}
    for user in _members(p):
        lots = []
        for lot in p.lots(user):
            ref = lot["ref"]
            if ref.startswith("task:"):
                ref = "task:" + ref.rsplit(":", 1)[1]
            lots.append(
                (
                    ref,
                    lot["status"],
                    lot["points"],
                    lot["remaining"],
                    lot["clawed"],
                    lot["expired"],
                    lot["earned_at"],
                    lot["available_at"],
                    lot["expires_at"],
                )
            )
        balance = p.balance(user)
        tasks = sorted((t["name"], t["completed"]) for t in p.tasks(user))
        state[user] = (sorted(lots), balance, tasks)
    return state


def _members(p: Programme) -> list[str]:
    """The members enrolled so far (an event enrols its member and counterparty)."""
    out = []
    for user in [*USERS, "f0", "f1"]:
        response = p.client.get(f"/v1/loyalty/members/{user}/balance", headers=p.tenant.headers)
        assert response.status_code in (200, 404), response.text
        if response.status_code == 200:
            out.append(user)
    return out


def _check_ledger(p: Programme) -> None:
    ledger = p.ledger()
    assert sum(ledger.values()) == 0
    members = _members(p)
    assert {k.split(":")[1] for k in ledger if k.startswith("user:")} <= set(members)
    for user in members:
        lots = p.lots(user)
        held = p.balance(user)["held"]
        available = sum(x["remaining"] for x in lots if x["status"] == "AVAILABLE")
        pending = sum(x["remaining"] for x in lots if x["status"] == "PENDING")
        assert ledger.get(f"user:{user}", 0) == available + held, user
        assert ledger.get(f"user:{user}:pending", 0) == pending, user
        assert all(x["remaining"] == 0 for x in lots if x["status"] == "REVERSED"), user


def _run(p: Programme, script: list[tuple[str, Any]], one_by_one: bool) -> None:
    for op, arg in script:
        if op == "send":
            if one_by_one:
                for e in arg:
                    p.send(e)
            else:
                p.send(*arg)
        elif op == "reverse":
            p.reverse(arg)
        else:
            before = p.ledger()
            answer = p.send(*arg)
            assert {e["status"] for e in answer["events"]} <= {"duplicate", "rejected"}
            assert p.ledger() == before
        _check_ledger(p)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=steps)
def test_the_ledger_holds_and_batching_changes_nothing(
    client: TestClient,
    make_tenant: Callable[..., TenantHandle],
    db: Database,
    raw: list[tuple[list[dict[str, Any]], str, int]],
) -> None:
    script = _script(raw)
    # Given two programmes alike; when one gets the events in batches and the other one by
    # one, with the same reversals, refunds and replays between them
    batched = _open(client, make_tenant, db)
    _run(batched, script, one_by_one=False)
    single = _open(client, make_tenant, db)
    _run(single, script, one_by_one=True)
    # Then the ledger held at every step (checked in _run), and both end the same
    assert _state(batched) == _state(single)
