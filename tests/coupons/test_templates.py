"""K1: templates through the API: the terms they take, the ones they refuse (naming the
field), what may change later, and their live counters."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.coupons.conftest import Shop
from zanloop.kit.clock import utcnow


def test_a_fixed_template_with_threshold_stock_and_budget(shop: Shop) -> None:
    template = shop.template(
        name="5 CNY off from 30 CNY",
        threshold_fen=3000,
        per_user_limit=1,
        stock=100,
        budget_fen=20_000,
        stores=["store-1"],
        categories=["coffee"],
    )

    assert template["id"].startswith("ctpl_")
    assert template["kind"] == "FIXED"
    assert (template["amount_fen"], template["threshold_fen"]) == (500, 3000)
    assert template["status"] == "ACTIVE"
    assert (template["issued"], template["redeemed"]) == (0, 0)
    assert (template["stock_left"], template["budget_left"]) == (100, 20_000)
    assert (template["stores"], template["categories"]) == (["store-1"], ["coffee"])
    assert shop.get_template(template["id"]) == template


def test_a_percentage_template_with_a_cap_and_an_end(shop: Shop) -> None:
    until = (utcnow() + timedelta(days=30)).isoformat()

    template = shop.template(
        kind="PERCENT",
        amount_fen=None,
        percent_off=20,
        max_discount_fen=1000,
        valid_days=None,
        valid_until=until,
        budget_fen=5000,
    )

    assert (template["percent_off"], template["max_discount_fen"]) == (20, 1000)
    assert template["valid_days"] is None
    assert template["valid_until"] is not None
    assert template["stock_left"] is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"amount_fen": 3000, "threshold_fen": 3000}, "amount_fen", id="amount>=thr"),
        pytest.param({"amount_fen": None}, "amount_fen", id="fixed-without-amount"),
        pytest.param({"amount_fen": 0}, "amount_fen", id="zero-amount"),
        pytest.param({"percent_off": 10}, "percent_off", id="fixed-with-percent"),
        pytest.param(
            {"kind": "PERCENT", "amount_fen": None}, "percent_off", id="percent-without-percent"
        ),
        pytest.param({"kind": "PERCENT", "amount_fen": None, "percent_off": 0}, "percent_off"),
        pytest.param({"kind": "PERCENT", "amount_fen": None, "percent_off": 100}, "percent_off"),
        pytest.param(
            {"kind": "PERCENT", "amount_fen": None, "percent_off": 10, "budget_fen": 10_000},
            "max_discount_fen",
            id="percent-budget-without-cap",
        ),
        pytest.param({"kind": "BOGO"}, "kind", id="unknown-kind"),
        pytest.param({"valid_days": None}, "valid_days", id="no-validity"),
        pytest.param({"valid_days": 0}, "valid_days", id="zero-days"),
        pytest.param({"valid_until": "2020-01-01T00:00:00Z"}, "valid_until", id="end-in-the-past"),
        pytest.param({"valid_until": "2030-01-01T00:00:00"}, "valid_until", id="naive-time"),
        pytest.param({"stock": 0}, "stock", id="zero-stock"),
        pytest.param({"budget_fen": -1}, "budget_fen", id="negative-budget"),
        pytest.param({"per_user_limit": 0}, "per_user_limit", id="zero-per-user"),
        pytest.param({"stores": [""]}, "stores.0", id="empty-store"),
        pytest.param({"name": ""}, "name", id="empty-name"),
        pytest.param({"colour": "red"}, "colour", id="unknown-field"),
    ],
)
def test_a_bad_template_is_refused_naming_the_field(
    shop: Shop, fields: dict[str, Any], field: str
) -> None:
    response = shop.create_template(**fields)

    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert shop.client.get("/v1/coupon-templates", headers=shop.tenant.headers).json()["data"] == []


def test_templates_are_listed_newest_first_by_cursor(shop: Shop) -> None:
    made = [shop.template(name=f"t{i}")["id"] for i in range(3)]
    shop.client.patch(
        f"/v1/coupon-templates/{made[0]}", json={"status": "PAUSED"}, headers=shop.tenant.headers
    ).raise_for_status()

    first = shop.client.get("/v1/coupon-templates?limit=2", headers=shop.tenant.headers).json()
    second = shop.client.get(
        f"/v1/coupon-templates?limit=2&cursor={first['next_cursor']}", headers=shop.tenant.headers
    ).json()
    paused = shop.client.get(
        "/v1/coupon-templates?status=PAUSED", headers=shop.tenant.headers
    ).json()

    assert [t["id"] for t in first["data"] + second["data"]] == made[::-1]
    assert second["next_cursor"] is None
    assert [t["id"] for t in paused["data"]] == [made[0]]


def test_pausing_stops_issues_and_resuming_restarts_them(shop: Shop) -> None:
    template = shop.template()

    def patch(body: dict[str, Any]) -> dict[str, Any]:
        response = shop.client.patch(
            f"/v1/coupon-templates/{template['id']}", json=body, headers=shop.tenant.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    assert patch({"status": "PAUSED"})["status"] == "PAUSED"
    refused = shop.issue(template["id"], "u1")
    assert patch({"status": "ACTIVE"})["status"] == "ACTIVE"
    issued = shop.issue(template["id"], "u1")

    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:zanloop:problem:coupon-unavailable"
    assert refused.json()["reason"] == "paused"
    assert issued.status_code == 201


def test_limits_and_validity_change_for_later_issues(shop: Shop) -> None:
    template = shop.template(stock=1, valid_days=7)
    first = shop.issued(template["id"], "u1")
    assert shop.issue(template["id"], "u2").json()["reason"] == "stock"

    response = shop.client.patch(
        f"/v1/coupon-templates/{template['id']}",
        json={"stock": 2, "valid_days": 1, "name": "Renamed"},
        headers=shop.tenant.headers,
    )
    second = shop.issued(template["id"], "u2")

    assert response.status_code == 200, response.text
    assert response.json()["stock_left"] == 1
    assert response.json()["name"] == "Renamed"
    assert shop.get_template(template["id"])["stock_left"] == 0
    # the coupon issued before keeps its 7 days; the new one gets 1
    assert shop.coupon(first["id"])["expires_at"] == first["expires_at"]
    assert second["terms"]["name"] == "Renamed"
    lasts = datetime.fromisoformat(second["expires_at"]) - datetime.fromisoformat(
        second["issued_at"]
    )
    assert lasts == timedelta(days=1)


@pytest.mark.parametrize(
    ("template_fields", "body", "field"),
    [
        pytest.param({}, {"valid_days": None}, "valid_days", id="no-validity-left"),
        pytest.param({}, {"valid_until": "2020-01-01T00:00:00Z"}, "valid_until", id="past-end"),
        pytest.param(
            {"kind": "PERCENT", "amount_fen": None, "percent_off": 10},
            {"budget_fen": 1000},
            "max_discount_fen",
            id="budget-without-cap",
        ),
        pytest.param({}, {"status": None}, "status", id="null-status"),
        pytest.param({}, {"status": "DELETED"}, "status", id="unknown-status"),
        pytest.param({}, {"amount_fen": 100}, "amount_fen", id="terms-stay"),
    ],
)
def test_a_bad_change_is_refused_naming_the_field(
    shop: Shop, template_fields: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    template = shop.template(**template_fields)

    response = shop.client.patch(
        f"/v1/coupon-templates/{template['id']}", json=body, headers=shop.tenant.headers
    )

    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert shop.get_template(template["id"]) == template


def test_counters_follow_issues_and_redemptions(shop: Shop) -> None:
    template = shop.template(stock=10, budget_fen=5000)
    coupons = [shop.issued(template["id"], f"u{i}") for i in range(3)]
    shop.pay(shop.checked_out("u0", 2000, coupons[0]["id"]))

    figures = shop.get_template(template["id"])

    assert (figures["issued"], figures["redeemed"]) == (3, 1)
    assert (figures["stock_left"], figures["budget_left"]) == (7, 3500)


def test_only_merchant_keys_manage_templates_and_analysts_read_them(shop: Shop) -> None:
    template = shop.template()
    app, analyst = shop.key("app"), shop.key("analyst")

    created_by_app = shop.client.post(
        "/v1/coupon-templates", json={"name": "x", "kind": "FIXED", "amount_fen": 1}, headers=app
    )
    patched_by_analyst = shop.client.patch(
        f"/v1/coupon-templates/{template['id']}", json={"status": "PAUSED"}, headers=analyst
    )
    read_by_analyst = shop.client.get(f"/v1/coupon-templates/{template['id']}", headers=analyst)

    assert created_by_app.status_code == 403
    assert patched_by_analyst.status_code == 403
    assert read_by_analyst.status_code == 200
