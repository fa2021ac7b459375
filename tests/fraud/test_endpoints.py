"""The /v1/fraud contract: validation that names the field and changes nothing, scopes, tenant
isolation, idempotent retries, paging and filters, and the state rules of findings and
actions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fraud.conftest import FARM, SINCE, Shop, Visit, members_of, problem_fields
from zanloop.tenancy.domain import Scope

Farmed = tuple[Shop, dict[str, Any]]


def post(shop: Shop, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    return shop.client.post(url, json=body, headers=headers or shop.headers)


def get(shop: Shop, url: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    given = {k: v for k, v in params.items() if v is not None}
    return shop.client.get(url, params=given, headers=headers or shop.headers)


# Scans -------------------------------------------------------------------------------------


BAD_SCANS: dict[str, tuple[dict[str, Any], str]] = {
    "until-equals-since": ({"until": SINCE.isoformat()}, "until"),
    "until-before-since": ({"until": (SINCE - timedelta(hours=1)).isoformat()}, "until"),
    "since-without-offset": ({"since": "2026-11-01T00:00:00"}, "since"),
    "until-not-a-time": ({"until": "tomorrow"}, "until"),
    "no-kinds": ({"kinds": []}, "kinds"),
    "unknown-kind": ({"kinds": ["dense_block", "likes"]}, "kinds.1"),
    "group-of-one": ({"min_users": 1}, "min_users"),
    "no-blocks": ({"max_blocks": 0}, "max_blocks"),
    "too-many-blocks": ({"max_blocks": 51}, "max_blocks"),
    "burst-too-short": ({"burst_seconds": 59}, "burst_seconds"),
    "burst-too-long": ({"burst_seconds": 86_401}, "burst_seconds"),
    "unknown-field": ({"tenant_id": "ten_other"}, "tenant_id"),
}


def test_a_bad_scan_request_names_the_field_and_stores_nothing(shop: Shop) -> None:
    shop.farm(FARM)
    before = shop.counts()

    for case, (body, field) in BAD_SCANS.items():
        response = shop.scan_response(**body)

        assert response.status_code == 422, (case, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in problem_fields(response), (case, response.text)
    assert shop.counts() == before


def test_a_scan_covers_at_most_92_days(shop: Shop) -> None:
    until = datetime(2026, 11, 20, tzinfo=UTC)

    too_long = shop.scan_response(
        since=(until - timedelta(days=92, seconds=1)).isoformat(), until=until.isoformat()
    )
    longest = shop.scan_response(
        since=(until - timedelta(days=92)).isoformat(), until=until.isoformat()
    )

    assert too_long.status_code == 422, too_long.text
    assert problem_fields(too_long) in (["since"], ["until"])
    assert "92 days" in too_long.json()["detail"]
    assert longest.status_code == 201, longest.text
    assert shop.counts()["fraud_scans"] == 1


def test_a_retried_scan_with_its_idempotency_key_is_the_same_scan(shop: Shop) -> None:
    shop.farm(FARM)
    body = {
        "since": SINCE.isoformat(),
        "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        "kinds": ["shared_device"],
    }
    headers = shop.tenant.write_headers("scan-once")

    first = post(shop, "/v1/fraud/scans", body, headers)
    retry = post(shop, "/v1/fraud/scans", body, headers)
    changed = post(shop, "/v1/fraud/scans", {**body, "min_users": 3}, headers)

    assert first.status_code == retry.status_code == 201, first.text
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert changed.status_code == 422, changed.text
    assert shop.counts()["fraud_scans"] == 1
    assert shop.counts()["fraud_findings"] == 1


def test_scans_and_findings_page_newest_first(shop: Shop) -> None:
    for i in range(3):  # three phones, each shared by three accounts
        shop.farm([f"p{i}-a", f"p{i}-b", f"p{i}-c"], device=f"phone-{i}")
    scans = [shop.scan(kinds=["shared_device"])["id"] for _ in range(2)]

    page = get(shop, "/v1/fraud/scans", limit=1).json()
    assert [s["id"] for s in page["data"]] == [scans[1]]
    rest = get(shop, "/v1/fraud/scans", limit=1, cursor=page["next_cursor"]).json()
    assert [s["id"] for s in rest["data"]] == [scans[0]]

    seen: list[str] = []
    cursor = None
    while True:
        page = get(shop, "/v1/fraud/findings", limit=2, cursor=cursor).json()
        seen += [f["id"] for f in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 3
    assert seen == sorted(seen, reverse=True)


def test_bad_finding_filters_name_the_field(shop: Shop) -> None:
    cases: dict[str, Any] = {
        "kind": "likes",
        "status": "open",
        "limit": 0,
        "user_id": "a\x00b",
        "scan_id": "x" * 201,
    }
    for field, value in cases.items():
        response = shop.client.get(
            "/v1/fraud/findings", params={field: value}, headers=shop.headers
        )

        assert response.status_code == 422, (field, response.text)
        assert field in problem_fields(response)


def test_unknown_ids_are_not_found(shop: Shop) -> None:
    for url in ("/v1/fraud/scans/fsc_nope", "/v1/fraud/findings/ffd_nope", "/v1/fraud/actions/x"):
        assert get(shop, url).status_code == 404, url
    for url in (
        "/v1/fraud/findings/ffd_nope/dismiss",
        "/v1/fraud/actions/fac_nope/approve",
        "/v1/fraud/actions/fac_nope/reject",
    ):
        assert post(shop, url).status_code == 404, url
    assert post(shop, "/v1/fraud/findings/ffd_nope/actions", {"action": "hold"}).status_code == 404
    assert shop.counts()["risk_audit"] == 0


# Scopes ------------------------------------------------------------------------------------


def test_an_analyst_scans_and_acts_a_merchant_only_reads(farmed: Farmed) -> None:
    shop, finding = farmed
    analyst, merchant = shop.key(Scope.ANALYST), shop.key(Scope.MERCHANT)

    read = get(shop, "/v1/fraud/findings", merchant)
    assert read.status_code == 200
    assert len(read.json()["data"]) == 1
    assert get(shop, f"/v1/fraud/findings/{finding['id']}", merchant).status_code == 200
    before = shop.counts()
    scan_body = {"since": SINCE.isoformat(), "until": datetime.now(UTC).isoformat()}
    for url, body in (
        ("/v1/fraud/scans", scan_body),
        (f"/v1/fraud/findings/{finding['id']}/actions", {"action": "block"}),
        (f"/v1/fraud/findings/{finding['id']}/dismiss", None),
    ):
        refused = post(shop, url, body, merchant)
        assert refused.status_code == 403, (url, refused.text)
        assert "analyst" in refused.json()["detail"]
    assert shop.counts() == before

    action = post(shop, f"/v1/fraud/findings/{finding['id']}/actions", {"action": "block"}, analyst)
    assert action.status_code == 201, action.text
    approving = post(shop, f"/v1/fraud/actions/{action.json()['id']}/approve", None, merchant)
    assert approving.status_code == 403
    approved = post(shop, f"/v1/fraud/actions/{action.json()['id']}/approve", None, analyst)
    assert approved.status_code == 200, approved.text
    assert post(shop, "/v1/fraud/scans", scan_body, analyst).status_code == 201


@pytest.mark.parametrize("scope", [Scope.CREATOR, Scope.APP])
def test_keys_without_the_analyst_or_merchant_scope_see_nothing(
    farmed: Farmed, scope: Scope
) -> None:
    shop, finding = farmed
    headers = shop.key(scope, creator_id="creator-1" if scope is Scope.CREATOR else None)
    before = shop.counts()

    for url in (
        "/v1/fraud/scans",
        "/v1/fraud/findings",
        f"/v1/fraud/findings/{finding['id']}",
        "/v1/fraud/actions",
    ):
        assert get(shop, url, headers).status_code == 403, url
    body = {"since": SINCE.isoformat(), "until": (SINCE + timedelta(days=1)).isoformat()}
    scan = post(shop, "/v1/fraud/scans", body, headers)
    assert scan.status_code == 403
    assert shop.counts() == before


def test_no_key_is_unauthorised(shop: Shop) -> None:
    assert shop.client.get("/v1/fraud/findings").status_code == 401
    assert shop.client.post("/v1/fraud/scans", json={}).status_code == 401


# Tenant isolation --------------------------------------------------------------------------


def test_another_tenant_cannot_see_or_touch_a_scan_finding_or_action(
    farmed: Farmed, make_shop: Callable[..., Shop]
) -> None:
    shop, finding = farmed
    shop.send([Visit("farm-0", "kiosk-1", SINCE + timedelta(days=1))])
    action = shop.propose(finding["id"], "hold")
    before = shop.counts()
    other = make_shop("Another merchant")
    # The same account ids in the other shop, on a phone of their own.
    other.farm(FARM, device="phone-elsewhere")

    for url in (
        f"/v1/fraud/scans/{finding['scan_id']}",
        f"/v1/fraud/findings/{finding['id']}",
        f"/v1/fraud/actions/{action['id']}",
    ):
        assert get(other, url).status_code == 404, url
    for url, body in (
        (f"/v1/fraud/findings/{finding['id']}/dismiss", None),
        (f"/v1/fraud/findings/{finding['id']}/actions", {"action": "block"}),
        (f"/v1/fraud/actions/{action['id']}/approve", None),
        (f"/v1/fraud/actions/{action['id']}/reject", None),
    ):
        assert post(other, url, body).status_code == 404, url
    assert other.findings() == []
    assert other.findings(scan_id=finding["scan_id"]) == []
    assert other.findings(user_id="farm-0") == []
    assert other.actions(status="ALL") == []
    assert get(other, "/v1/fraud/scans").json()["data"] == []

    theirs = other.scan()

    assert theirs["stats"]["interactions"] == 0
    assert theirs["stats"]["sightings"] == len(FARM)
    (own,) = other.findings()
    assert own["evidence"]["shared"] == [{"value": "phone-elsewhere", "accounts": 4}]
    assert shop.counts() == before
    assert shop.decide("farm-0")["verdict"] == "ALLOW"
    assert [a["status"] for a in shop.actions()] == ["PENDING"]


# Actions -----------------------------------------------------------------------------------


BAD_PROPOSALS: dict[str, tuple[dict[str, Any], str]] = {
    "not-members": ({"action": "hold", "user_ids": ["farm-0", "ring-99"]}, "user_ids"),
    "no-users": ({"action": "hold", "user_ids": []}, "user_ids"),
    "unknown-action": ({"action": "freeze"}, "action"),
    "no-action": ({}, "action"),
    "expired": ({"action": "block", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    "naive": ({"action": "block", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
    "revoke-does-not-expire": (
        {"action": "revoke", "expires_at": "2030-01-01T00:00:00Z"},
        "expires_at",
    ),
    "long-note": ({"action": "hold", "note": "x" * 1001}, "note"),
    "nul-note": ({"action": "hold", "note": "a\x00b"}, "note"),
    "unknown-field": ({"action": "hold", "reason": "x"}, "reason"),
}


def test_a_bad_proposal_names_the_field_and_changes_nothing(farmed: Farmed) -> None:
    shop, finding = farmed
    before = shop.counts()

    for case, (body, field) in BAD_PROPOSALS.items():
        response = shop.propose_response(finding["id"], **body)

        assert response.status_code == 422, (case, response.text)
        assert field in problem_fields(response), (case, response.text)
    assert shop.counts() == before
    assert shop.actions(status="ALL") == []


def test_the_unknown_accounts_are_named(farmed: Farmed) -> None:
    shop, finding = farmed

    response = shop.propose_response(finding["id"], action="block", user_ids=["ghost", "farm-1"])

    assert response.status_code == 422
    assert "ghost" in response.json()["detail"]
    assert "farm-1" not in response.json()["detail"]


def test_an_action_resolves_once(farmed: Farmed) -> None:
    shop, finding = farmed
    approved = shop.propose(finding["id"], "block", user_ids=["farm-0"])
    rejected = shop.propose(finding["id"], "hold", user_ids=["farm-1"])
    shop.resolve(approved["id"], "approve")
    shop.resolve(rejected["id"], "reject")
    before = shop.counts()

    late_reject = shop.resolve_response(approved["id"], "reject")
    late_approve = shop.resolve_response(rejected["id"], "approve")
    bad_body = shop.resolve_response(approved["id"], "approve", verdict="yes")

    assert late_reject.status_code == late_approve.status_code == 409, late_reject.text
    assert bad_body.status_code == 422
    assert "verdict" in problem_fields(bad_body)
    assert shop.counts() == before
    assert shop.resolve(approved["id"], "approve")["status"] == "APPROVED"
    assert shop.resolve(rejected["id"], "reject")["status"] == "REJECTED"
    assert shop.counts() == before
    assert shop.decide("farm-1")["verdict"] == "ALLOW"


def test_the_actions_queue_filters_by_status_and_finding(farmed: Farmed) -> None:
    shop, finding = farmed
    first = shop.propose(finding["id"], "hold", user_ids=["farm-0"])
    second = shop.propose(finding["id"], "block", user_ids=["farm-1"])
    shop.resolve(first["id"], "approve")

    assert [a["id"] for a in shop.actions()] == [second["id"]]
    assert [a["id"] for a in shop.actions(status="APPROVED")] == [first["id"]]
    assert [a["id"] for a in shop.actions(status="ALL")] == [second["id"], first["id"]]
    assert shop.actions(status="ALL", finding_id="ffd_other") == []
    assert len(shop.actions(status="ALL", finding_id=finding["id"])) == 2
    assert get(shop, "/v1/fraud/actions", status="DONE").status_code == 422
    one = get(shop, f"/v1/fraud/actions/{first['id']}").json()
    assert (one["status"], one["user_ids"], one["finding_id"]) == (
        "APPROVED",
        ["farm-0"],
        finding["id"],
    )


def test_a_finding_shows_all_its_members_and_its_action_history_is_audited(
    farmed: Farmed,
) -> None:
    shop, finding = farmed
    assert members_of(finding) == set(FARM)
    assert finding["target_members"] == []

    action = shop.propose(finding["id"], "hold", note="phone farm")
    shop.resolve(action["id"], "approve", note="seen in the shop")

    audit = {a["action"]: a for a in shop.audit()}
    proposed, approved = audit["fraud.action.proposed"], audit["fraud.action.approved"]
    assert (proposed["subject_type"], proposed["subject_id"]) == ("fraud_action", action["id"])
    assert proposed["detail"] == {
        "finding_id": finding["id"],
        "action": "hold",
        "users": 4,
        "note": "phone farm",
    }
    assert approved["detail"]["list_entries"] == 4
    assert approved["detail"]["note"] == "seen in the shop"
    assert shop.finding(finding["id"])["status"] == "ACTIONED"
    # An actioned finding is not dismissed afterwards.
    dismissed = post(shop, f"/v1/fraud/findings/{finding['id']}/dismiss")
    assert dismissed.status_code == 409, dismissed.text
