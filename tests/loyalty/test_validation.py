"""Bad input (principle 5): settings, rules, tasks, events, catalogue items, redemptions and
members that are not valid get a 4xx problem-details answer naming the field, and nothing in
the database changes.

Each test sends a table of bad requests to one programme (an app per case would cost a second
each); a failure names its case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import TenantHandle
from tests.loyalty.conftest import Programme, event
from zanloop.db import Database
from zanloop.tables import metadata

YESTERDAY = datetime.now(UTC) - timedelta(days=1)
PER_YUAN = {
    "trigger": "payment.succeeded",
    "effects": [{"type": "earn_per_yuan", "points_per_yuan": "1"}],
}


class Bad(NamedTuple):
    id: str
    body: Any
    field: str
    message: str = ""


def snapshot(db: Database) -> dict[str, Any]:
    """Every table's row count, and the programme's settings and rules version."""
    with db.engine.connect() as conn:
        counts: dict[str, Any] = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }
        programmes = metadata.tables["loyalty_programmes"]
        counts["programmes"] = sorted(
            (str(row.settings), row.rules_version)
            for row in conn.execute(select(programmes.c.settings, programmes.c.rules_version))
        )
    return counts


@pytest.fixture
def opened(programme: Programme) -> Programme:
    """A programme with settings, a rule, a task and a member, so there is something to keep."""
    programme.settings(refund_window_days=3)
    programme.rule(PER_YUAN)
    programme.task({"type": "streak", "trigger": "store.checkin", "days": 3, "points": 10})
    programme.send(event("payment.succeeded", "ann", YESTERDAY, amount_fen=1000))
    return programme


def refused(
    p: Programme, method: str, url: str, body: Any, status: int = 422, case: str = ""
) -> list[dict[str, str]]:
    """Send a bad request; check it is refused as problem details and nothing changed."""
    before = snapshot(p.db)
    response = p.client.request(method, url, json=body, headers=p.tenant.headers)
    assert response.status_code == status, (case, response.text)
    assert response.headers["content-type"] == "application/problem+json", case
    problem = response.json()
    assert problem["status"] == status, case
    assert snapshot(p.db) == before, case
    return list(problem.get("errors", []))


def check_each(p: Programme, method: str, url: str, cases: list[Bad], wrap: Any = None) -> None:
    """Every case is refused, and one of its errors names the field (with the message)."""
    for case in cases:
        body = wrap(case.body) if wrap else case.body
        errors = refused(p, method, url, body, case=case.id)
        named = [e["message"] for e in errors if e["field"] == case.field]
        assert named, (case.id, errors)
        assert any(case.message in m for m in named), (case.id, named)


def fields(errors: list[dict[str, str]]) -> list[str]:
    return [e["field"] for e in errors]


# Settings, rules, tasks ----------------------------------------------------------------------

NORMAL = {"name": "normal", "threshold": 0, "multiplier": "1.0"}
SILVER = {"name": "silver", "threshold": 100, "multiplier": "1.2"}


def test_bad_settings_are_refused_naming_the_field(opened: Programme) -> None:
    before = opened.client.get("/v1/loyalty/programme", headers=opened.tenant.headers).json()

    check_each(
        opened,
        "PUT",
        "/v1/loyalty/programme",
        [
            Bad("not-rising", {"tiers": [NORMAL, {**SILVER, "threshold": 0}]}, "tiers", "rise"),
            Bad("first-not-0", {"tiers": [{**NORMAL, "threshold": 5}, SILVER]}, "tiers", "be 0"),
            Bad("same-name", {"tiers": [NORMAL, {**SILVER, "name": "normal"}]}, "tiers", "differ"),
            Bad("name", {"tiers": [NORMAL, {**SILVER, "name": "Silver!"}]}, "tiers.1.name"),
            Bad("zone", {"timezone": "Asia/Atlantis"}, "timezone", "unknown time zone"),
            Bad("window", {"refund_window_days": 91}, "refund_window_days", "less than"),
            Bad("expiry", {"expiry": {"policy": "monthly"}}, "expiry.policy", "rolling"),
            Bad("months", {"expiry": {"months": 0}}, "expiry.months", "greater than"),
            Bad("downgrade", {"downgrade": "two_steps"}, "downgrade", "one_step"),
            Bad("basis", {"tier_basis": "likes"}, "tier_basis", "spend"),
            Bad("unknown-field", {"colour": "red"}, "colour", "not permitted"),
        ],
    )

    after = opened.client.get("/v1/loyalty/programme", headers=opened.tenant.headers).json()
    assert after == before


PROMPT = {"type": "prompt_like", "slogan": "Liked it?"}


def test_bad_rules_are_refused_naming_the_field(opened: Programme) -> None:
    yuan = PER_YUAN["effects"]
    check_each(
        opened,
        "POST",
        "/v1/loyalty/rules",
        [
            Bad(
                "prompt-like",
                {**PER_YUAN, "effects": [*yuan, PROMPT]},
                "rule.effects.1",
                "prompt_like is not a points effect",
            ),
            Bad(
                "issue-coupon",
                {
                    "trigger": "like.created",
                    "effects": [{"type": "issue_coupon", "template_id": "tpl_1"}],
                },
                "rule.effects.0",
                "issue_coupon is not a points effect",
            ),
            Bad(
                "progress-tier",
                {
                    "trigger": "like.created",
                    "effects": [{"type": "progress_tier", "goal": 3, "tier": "silver"}],
                },
                "rule.effects.0",
                "progress_tier is not a points effect",
            ),
            Bad("no-effects", {**PER_YUAN, "effects": []}, "rule.effects", "at least 1"),
            Bad("zone", {**PER_YUAN, "timezone": "Nowhere/Land"}, "rule.timezone", "unknown"),
            Bad(
                "cap",
                {**PER_YUAN, "caps": {"per_user_per_day": 0}},
                "rule.caps.per_user_per_day",
                "greater than or equal to 1",
            ),
            Bad("trigger", {**PER_YUAN, "trigger": "Payment"}, "rule.trigger", "pattern"),
            Bad(
                "shrinking",
                {
                    "trigger": "share.created",
                    "effects": [{"type": "multiply_points", "factor": "0.5"}],
                },
                "rule.effects.0.multiply_points.factor",
                "greater than or equal to 1",
            ),
        ],
        wrap=lambda rule: {"name": "bad", "rule": rule},
    )


def test_a_rule_cannot_be_changed_into_a_campaign_rule(opened: Programme) -> None:
    [rule] = opened.client.get("/v1/loyalty/rules", headers=opened.tenant.headers).json()

    errors = refused(
        opened,
        "PATCH",
        f"/v1/loyalty/rules/{rule['id']}",
        {"rule": {**PER_YUAN, "effects": [PROMPT]}},
    )

    assert fields(errors) == ["rule.effects.0"]
    again = opened.client.get(f"/v1/loyalty/rules/{rule['id']}", headers=opened.tenant.headers)
    assert again.json() == rule


def test_bad_tasks_are_refused_naming_the_field(opened: Programme) -> None:
    checkin = {"type": "streak", "trigger": "store.checkin", "days": 7, "points": 10}
    check_each(
        opened,
        "POST",
        "/v1/loyalty/tasks",
        [
            Bad("one-day-streak", {**checkin, "days": 1}, "task.streak.days"),
            Bad("no-points", {**checkin, "points": 0}, "task.streak.points"),
            Bad("too-much-grace", {**checkin, "grace_days": 8}, "task.streak.grace_days"),
            Bad(
                "same-action-twice",
                {"type": "achievement", "actions": ["share.created"] * 2, "points": 5},
                "task.achievement.actions",
                "actions must differ",
            ),
            Bad(
                "no-actions",
                {"type": "achievement", "actions": [], "points": 5},
                "task.achievement.actions",
            ),
            Bad(
                "ends-before-it-starts",
                {
                    "type": "count",
                    "trigger": "payment.succeeded",
                    "goal": 3,
                    "points": 100,
                    "start": "2026-06-02T00:00:00+08:00",
                    "end": "2026-06-01T00:00:00+08:00",
                },
                "task.count",
                "start must be before end",
            ),
            Bad("unknown-type", {"type": "lottery", "points": 5}, "task"),
        ],
        wrap=lambda task: {"name": "bad", "task": task},
    )


def test_defaults_need_both_ends_of_the_double_points_window(opened: Programme) -> None:
    body = {"activate": True, "double_points_from": "2026-06-01T00:00:00+08:00"}

    errors = refused(opened, "POST", "/v1/loyalty/defaults", body)

    assert "double_points_to" in errors[0]["message"]


# Events --------------------------------------------------------------------------------------

BAD_EVENTS = [
    Bad(
        "no-time-zone",
        event("payment.succeeded", "bob", YESTERDAY.replace(tzinfo=None), amount_fen=100),
        "occurred_at",
        "timezone",
    ),
    Bad("negative", event("payment.succeeded", "bob", YESTERDAY, amount_fen=-1), "amount_fen"),
    Bad("type", event("Payment.Succeeded", "bob", YESTERDAY), "type", "pattern"),
    Bad("no-user", event("share.created", "", YESTERDAY), "user_id"),
    Bad("unknown-field", event("share.created", "bob", YESTERDAY, points=5), "points"),
    Bad("code-too-short", event("receipt.scanned", "bob", YESTERDAY, code="short"), "code"),
]


def test_a_bad_event_is_refused_naming_the_field(opened: Programme) -> None:
    check_each(opened, "POST", "/v1/loyalty/events", BAD_EVENTS)


def test_one_bad_event_refuses_the_whole_batch(opened: Programme) -> None:
    good = event("payment.succeeded", "bob", YESTERDAY, amount_fen=5000)
    in_batch = [case._replace(field=f"events.1.{case.field}") for case in BAD_EVENTS]

    check_each(
        opened, "POST", "/v1/loyalty/events/batch", in_batch, wrap=lambda e: {"events": [good, e]}
    )

    missing = opened.client.get("/v1/loyalty/members/bob", headers=opened.tenant.headers)
    assert missing.status_code == 404


INCOMPLETE_EVENTS = [
    Bad("receipt-no-code", event("receipt.scanned", "bob", YESTERDAY), "code", "code"),
    Bad(
        "invites-self",
        event("invite.accepted", "bob", YESTERDAY, counterparty_id="bob"),
        "counterparty_id",
        "another user",
    ),
    Bad("refund-no-order", event("payment.refunded", "bob", YESTERDAY), "order_id", "order_id"),
]


def test_an_incomplete_event_is_refused_naming_the_missing_field(opened: Programme) -> None:
    check_each(opened, "POST", "/v1/loyalty/events", INCOMPLETE_EVENTS)
    in_batch = [case._replace(field=f"events.0.{case.field}") for case in INCOMPLETE_EVENTS]
    check_each(opened, "POST", "/v1/loyalty/events/batch", in_batch, wrap=lambda e: {"events": [e]})


def test_a_batch_of_no_events_or_more_than_5000_is_refused(opened: Programme) -> None:
    one = event("share.created", "bob", YESTERDAY)
    many = [{**one, "event_id": f"e{i}"} for i in range(5001)]

    check_each(
        opened,
        "POST",
        "/v1/loyalty/events/batch",
        [
            Bad("empty", {"events": []}, "events", "at least 1"),
            Bad("missing", {}, "events", "required"),
            Bad("too-many", {"events": many}, "events", "at most 5000"),
        ],
    )


# Catalogue, redemptions, members, receipts ---------------------------------------------------


def test_bad_catalogue_items_are_refused_naming_the_field(opened: Programme) -> None:
    check_each(
        opened,
        "POST",
        "/v1/loyalty/catalogue",
        [
            Bad("coupon-without-template", {"kind": "COUPON"}, "coupon_template_id"),
            Bad(
                "unknown-template",
                {"kind": "COUPON", "coupon_template_id": "tpl_missing"},
                "coupon_template_id",
                "not found",
            ),
            Bad("goods-with-template", {"coupon_template_id": "tpl_1"}, "coupon_template_id"),
            Bad("free", {"price_points": 0}, "price_points"),
            Bad("kind", {"kind": "SERVICE"}, "kind"),
            Bad("negative-stock", {"stock": -1}, "stock"),
            Bad("no-limit", {"per_user_limit": 0}, "per_user_limit"),
        ],
        wrap=lambda item: {"name": "Mug", "kind": "GOODS", "price_points": 100, **item},
    )


def test_bad_redemptions_are_refused(opened: Programme) -> None:
    item = opened.item(price_points=1)

    def redeem(body: dict[str, Any]) -> dict[str, Any]:
        return {"user_id": "ann", "item_id": item["id"], "request_no": "r-1", **body}

    check_each(
        opened,
        "POST",
        "/v1/loyalty/redemptions",
        [
            Bad("no-quantity", {"quantity": 0}, "quantity"),
            Bad("no-request-number", {"request_no": ""}, "request_no"),
            Bad("no-user", {"user_id": ""}, "user_id"),
        ],
        wrap=redeem,
    )
    unknown = refused(
        opened, "POST", "/v1/loyalty/redemptions", redeem({"item_id": "itm_missing"}), 404
    )
    stranger = refused(opened, "POST", "/v1/loyalty/redemptions", redeem({"user_id": "zed"}), 404)

    assert unknown == stranger == []
    assert opened.balance("ann")["held"] == 0


def test_a_bad_birthday_or_receipt_code_request_is_refused(opened: Programme) -> None:
    for birthday in ("13-01", "04-32", "0417", "4-17"):
        errors = refused(
            opened, "PUT", "/v1/loyalty/members/ann", {"birthday": birthday}, case=birthday
        )
        assert fields(errors) == ["birthday"], birthday

    check_each(
        opened,
        "POST",
        "/v1/loyalty/receipt-codes",
        [
            Bad("separator", {"store_id": "mall|2", "amount_fen": 100}, "store_id"),
            Bad("nothing-paid", {"store_id": "mall-2", "amount_fen": 0}, "amount_fen"),
        ],
    )


def test_an_unknown_member_is_a_404(client: TestClient, tenant: TenantHandle) -> None:
    response = client.get("/v1/loyalty/members/nobody", headers=tenant.headers)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "member nobody not found"
