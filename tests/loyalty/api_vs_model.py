"""The loyalty API read as the model (tests/loyalty/model.py) sees it, and the two compared:
each batch's outcomes and balances, the whole ledger, and every member's lots, account, tasks
and tier history field by field. Used by the month (month.py, test_a_month.py) as it goes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from tests.loyalty.conftest import Programme
from tests.loyalty.model import Model
from tests.loyalty.model_lots import AVAILABLE, PENDING, REVERSED
from zanloop.loyalty import redemption, service


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
