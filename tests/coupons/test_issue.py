"""K2: issue and claim into a wallet, once per request number; stock, budget and per-user
limits that hold under concurrency; revocation; the wallet; tenants kept apart."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx

from tests.conftest import at_once
from tests.coupons.conftest import Shop
from zanloop.kit.clock import utcnow


def test_issue_puts_a_coupon_in_the_wallet(shop: Shop) -> None:
    template = shop.template(valid_days=7)

    coupon = shop.issued(template["id"], "user-42", "r-1")

    assert coupon["id"].startswith("cpn_")
    assert (coupon["user_id"], coupon["request_no"], coupon["source"]) == ("user-42", "r-1", "api")
    assert coupon["status"] == "AVAILABLE"
    assert coupon["face_fen"] == 500
    assert coupon["terms"]["amount_fen"] == 500
    lasts = datetime.fromisoformat(coupon["expires_at"]) - datetime.fromisoformat(
        coupon["issued_at"]
    )
    assert lasts == timedelta(days=7)
    wallet = shop.client.get("/v1/users/user-42/coupons", headers=shop.tenant.headers).json()
    assert [c["id"] for c in wallet["data"]] == [coupon["id"]]


def test_a_coupon_never_outlives_its_template(shop: Shop) -> None:
    until = utcnow() + timedelta(days=2)
    template = shop.template(valid_days=30, valid_until=until.isoformat())

    coupon = shop.issued(template["id"], "u1")

    assert datetime.fromisoformat(coupon["expires_at"]) == until


def test_the_same_request_number_returns_the_same_coupon(shop: Shop) -> None:
    template = shop.template(stock=5)

    first = shop.issue(template["id"], "u1", "r-1")
    again = shop.issue(template["id"], "u1", "r-1")
    other_user = shop.issue(template["id"], "u2", "r-1")

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert other_user.status_code == 409
    assert other_user.json()["type"] == "urn:zanloop:problem:duplicate"
    assert shop.get_template(template["id"])["stock_left"] == 4


def test_an_idempotency_key_replays_the_status_its_first_answer_had(shop: Shop) -> None:
    template = shop.template(stock=5)
    body = {"template_id": template["id"], "user_id": "u1", "request_no": "r-k"}
    shop.issued(template["id"], "u1", "r-k")
    headers = shop.tenant.write_headers("issue-again")
    again = shop.client.post("/v1/coupons", json=body, headers=headers)
    replayed = shop.client.post("/v1/coupons", json=body, headers=headers)
    assert (again.status_code, replayed.status_code) == (200, 200)
    assert replayed.headers["Idempotent-Replayed"] == "true"


def test_a_request_number_is_per_template(shop: Shop) -> None:
    one, two = shop.template(), shop.template()

    a = shop.issued(one["id"], "u1", "r-1")
    b = shop.issued(two["id"], "u1", "r-1")

    assert a["id"] != b["id"]


def test_a_user_claims_with_an_app_key(shop: Shop) -> None:
    template = shop.template()
    app = shop.key("app")

    claimed = shop.client.post(
        f"/v1/coupon-templates/{template['id']}/claim",
        json={"user_id": "u1", "request_no": "claim-u1"},
        headers=app,
    )
    again = shop.client.post(
        f"/v1/coupon-templates/{template['id']}/claim",
        json={"user_id": "u1", "request_no": "claim-u1"},
        headers=app,
    )
    issued_by_app = shop.client.post(
        "/v1/coupons",
        json={"template_id": template["id"], "user_id": "u1", "request_no": "x"},
        headers=app,
    )

    assert claimed.status_code == 201, claimed.text
    assert claimed.json()["source"] == "claim"
    assert again.status_code == 200
    assert again.json()["id"] == claimed.json()["id"]
    assert issued_by_app.status_code == 403


def test_per_user_limit(shop: Shop) -> None:
    template = shop.template(per_user_limit=2)

    results = [shop.issue(template["id"], "u1").status_code for _ in range(3)]
    other = shop.issue(template["id"], "u2")
    refused = shop.issue(template["id"], "u1")

    assert results == [201, 201, 409]
    assert other.status_code == 201
    assert refused.json()["reason"] == "per_user_limit"


def test_budget_reserves_the_face_value_of_each_issue(shop: Shop) -> None:
    fixed = shop.template(amount_fen=500, budget_fen=1200)
    percent = shop.template(
        kind="PERCENT", amount_fen=None, percent_off=10, max_discount_fen=600, budget_fen=1200
    )

    fixed_results = [shop.issue(fixed["id"], f"u{i}").status_code for i in range(3)]
    percent_results = [shop.issue(percent["id"], f"u{i}").status_code for i in range(3)]
    refused = shop.issue(fixed["id"], "u9")

    assert fixed_results == [201, 201, 409]
    assert percent_results == [201, 201, 409]
    assert refused.json()["reason"] == "budget"
    assert shop.get_template(fixed["id"])["budget_left"] == 200
    assert shop.get_template(percent["id"])["budget_left"] == 0


def test_nothing_is_taken_when_one_limit_refuses(shop: Shop) -> None:
    # stock has room, the user's allowance does not: the stock taken first is given back
    template = shop.template(stock=10, per_user_limit=1)
    shop.issued(template["id"], "u1")

    refused = shop.issue(template["id"], "u1")

    assert refused.json()["reason"] == "per_user_limit"
    assert shop.get_template(template["id"])["stock_left"] == 9


def test_an_unknown_template_is_404(shop: Shop) -> None:
    assert shop.issue("ctpl_nope", "u1").status_code == 404


def test_stock_of_3_with_50_concurrent_issues_issues_exactly_3(
    shop: Shop, live_server: str, http: httpx.Client
) -> None:
    template = shop.template(stock=3)

    responses = at_once(
        50,
        lambda i: http.post(
            f"{live_server}/v1/coupons",
            json={"template_id": template["id"], "user_id": f"u{i}", "request_no": f"r{i}"},
            headers=shop.tenant.headers,
        ),
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 3, 409: 47}, [r.text for r in responses if r.status_code >= 500]
    assert {r.json()["reason"] for r in responses if r.status_code == 409} == {"stock"}
    figures = shop.get_template(template["id"])
    assert (figures["issued"], figures["stock_left"]) == (3, 0)


def test_concurrent_repeats_of_one_request_number_issue_once(
    shop: Shop, live_server: str, http: httpx.Client
) -> None:
    template = shop.template(stock=5)

    responses = at_once(
        10,
        lambda _: http.post(
            f"{live_server}/v1/coupons",
            json={"template_id": template["id"], "user_id": "u1", "request_no": "same"},
            headers=shop.tenant.headers,
        ),
    )

    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert shop.get_template(template["id"])["stock_left"] == 4


def test_revoking_an_unused_coupon_gives_its_limits_back(shop: Shop) -> None:
    template = shop.template(stock=1, budget_fen=500, per_user_limit=1)
    coupon = shop.issued(template["id"], "u1")

    revoked = shop.client.post(
        f"/v1/coupons/{coupon['id']}/revoke",
        json={"reason": "reward reversed"},
        headers=shop.tenant.headers,
    )
    again = shop.client.post(f"/v1/coupons/{coupon['id']}/revoke", headers=shop.tenant.headers)
    reissued = shop.issue(template["id"], "u1")

    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "REVOKED"
    assert revoked.json()["revoke_reason"] == "reward reversed"
    assert again.json()["status"] == "REVOKED"
    assert reissued.status_code == 201
    assert shop.checkout("u1", 1000, coupon["id"]).json()["reason"] == "not_available"


def test_a_used_coupon_is_not_revoked(shop: Shop) -> None:
    template = shop.template(stock=1)
    coupon = shop.issued(template["id"], "u1")
    shop.pay(shop.checked_out("u1", 1000, coupon["id"]))

    answer = shop.client.post(f"/v1/coupons/{coupon['id']}/revoke", headers=shop.tenant.headers)

    assert answer.json()["status"] == "REDEEMED"
    assert shop.get_template(template["id"])["stock_left"] == 0


def test_the_wallet_filters_by_status_and_pages(shop: Shop) -> None:
    template = shop.template()
    coupons = [shop.issued(template["id"], "u1") for _ in range(3)]
    shop.issued(template["id"], "someone-else")
    shop.pay(shop.checked_out("u1", 1000, coupons[0]["id"]))

    def wallet(query: str) -> dict[str, Any]:
        response = shop.client.get(f"/v1/users/u1/coupons{query}", headers=shop.tenant.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    available = wallet("?status=AVAILABLE")
    redeemed = wallet("?status=REDEEMED")
    page = wallet("?limit=2")
    rest = wallet(f"?limit=2&cursor={page['next_cursor']}")

    assert [c["id"] for c in available["data"]] == [coupons[2]["id"], coupons[1]["id"]]
    assert [c["id"] for c in redeemed["data"]] == [coupons[0]["id"]]
    assert [c["id"] for c in page["data"] + rest["data"]] == [c["id"] for c in coupons[::-1]]
    assert rest["next_cursor"] is None


def test_a_tenant_never_sees_another_tenants_coupons(
    shop: Shop, make_shop: Callable[[], Shop]
) -> None:
    other = make_shop()
    template = shop.template()
    coupon = shop.issued(template["id"], "u1")

    assert (
        other.client.get(f"/v1/coupons/{coupon['id']}", headers=other.tenant.headers).status_code
        == 404
    )
    assert (
        other.client.get(
            f"/v1/coupon-templates/{template['id']}", headers=other.tenant.headers
        ).status_code
        == 404
    )
    assert (
        other.client.patch(
            f"/v1/coupon-templates/{template['id']}",
            json={"status": "PAUSED"},
            headers=other.tenant.headers,
        ).status_code
        == 404
    )
    assert other.issue(template["id"], "u1").status_code == 404
    assert (
        other.client.post(
            f"/v1/coupons/{coupon['id']}/revoke", headers=other.tenant.headers
        ).status_code
        == 404
    )
    assert other.checkout("u1", 1000, coupon["id"]).status_code == 404
    assert (
        other.client.get("/v1/users/u1/coupons", headers=other.tenant.headers).json()["data"] == []
    )
    assert (
        other.client.get("/v1/coupon-templates", headers=other.tenant.headers).json()["data"] == []
    )
    assert (
        other.client.get("/v1/coupons/metrics", headers=other.tenant.headers).json()["issued"] == 0
    )
    assert shop.coupon(coupon["id"])["status"] == "AVAILABLE"
