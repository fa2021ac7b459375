"""The risk API's contract: validation, scopes, idempotency, policy and lists, the decision
log, explanations, and tenant isolation."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.testclient import TestClient

from tests.conftest import TenantHandle
from tests.risk.helpers import codes, decide, pin
from zanloop.db import Database
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import Scope

STRICT_PROMPTS = {
    "review_score": 80,
    "rules": [
        {
            "id": "one-prompt",
            "type": "velocity",
            "actions": ["like.prompt"],
            "window": "1d",
            "max_count": 1,
        }
    ],
}


def _count(client: TestClient, tenant: TenantHandle, **params: Any) -> int:
    return len(
        client.get("/v1/risk/decisions", params=params, headers=tenant.headers).json()["data"]
    )


def test_bad_input_is_a_problem_naming_the_field_and_logs_nothing(
    client: TestClient, tenant: TenantHandle
) -> None:
    cases = {
        "ip": {"action": "pin.purchase", "user_id": "u", "ip": "300.1.1.1"},
        "action": {"action": "Pin Purchase!", "user_id": "u"},
        "amount_fen": {"action": "pin.purchase", "user_id": "u", "amount_fen": -1},
        "hold.amount": {
            "action": "reward.grant",
            "user_id": "u",
            "hold": {"asset": "POINTS", "from_owner": "m", "to_owner": "u", "amount": 0},
        },
    }
    for field, body in cases.items():
        response = client.post("/v1/risk/decisions", json=body, headers=tenant.write_headers())
        assert response.status_code == 422, field
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in response.json()["errors"]]
    missing_key = client.post(
        "/v1/risk/decisions", json={"action": "checkin", "user_id": "u"}, headers=tenant.headers
    )
    assert missing_key.status_code == 400
    assert _count(client, tenant) == 0


def test_a_retried_request_returns_the_same_decision_and_counts_once(
    client: TestClient, tenant: TenantHandle
) -> None:
    client.put("/v1/risk/policy", json=STRICT_PROMPTS, headers=tenant.headers).raise_for_status()
    body = {"action": "like.prompt", "user_id": "olga"}
    headers = tenant.write_headers("prompt-olga-1")

    first = client.post("/v1/risk/decisions", json=body, headers=headers)
    retry = client.post("/v1/risk/decisions", json=body, headers=headers)
    by_reference = [decide(client, tenant, **body, reference="prompt-for-pay-9") for _ in range(2)]

    assert first.json() == retry.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert first.json()["verdict"] == "ALLOW"
    # the one allowed prompt was used by the first request only once; a new one is blocked
    assert by_reference[0]["id"] == by_reference[1]["id"]
    assert by_reference[0]["verdict"] == "BLOCK"
    assert _count(client, tenant) == 2


def test_policy_can_be_replaced_in_json_or_yaml_and_reset(
    client: TestClient, tenant: TenantHandle
) -> None:
    default = client.get("/v1/risk/policy", headers=tenant.headers).json()
    assert (default["is_default"], default["version"]) == (True, 0)
    assert len(default["document"]["rules"]) == 15

    yaml_policy = """
review_score: 50
rules:
  - id: checkin-cap
    type: velocity
    actions: [checkin]
    subject: user
    window: 24h
    max_count: 2
"""
    put = client.put(
        "/v1/risk/policy",
        content=yaml_policy,
        headers={**tenant.headers, "Content-Type": "application/yaml"},
    )
    assert put.status_code == 200, put.text
    assert (put.json()["version"], put.json()["is_default"]) == (1, False)
    assert put.json()["document"]["rules"][0]["window"] == 86400

    checkins = [decide(client, tenant, action="checkin", user_id="pat") for _ in range(3)]
    assert [d["verdict"] for d in checkins] == ["ALLOW", "ALLOW", "BLOCK"]
    assert {d["policy_version"] for d in checkins} == {1}

    reset = client.delete("/v1/risk/policy", headers=tenant.headers)
    assert (reset.json()["version"], reset.json()["is_default"]) == (2, True)
    audit = client.get("/v1/risk/audit", headers=tenant.headers).json()["data"]
    assert [a["action"] for a in audit] == ["policy.reset", "policy.updated"]


def test_an_invalid_policy_is_refused_with_every_field_and_changes_nothing(
    client: TestClient, tenant: TenantHandle
) -> None:
    bad = {
        "rules": [
            {"id": "a", "type": "velocity", "window": "5q", "max_count": 1},
            {"id": "b", "type": "velocity", "window": "1m", "max_count": 1, "max_sum_fen": 9},
            {"id": "c", "type": "teleport"},
            {"id": "d", "type": "distinct_users", "subject": "user", "window": 60, "max_users": 2},
        ]
    }

    response = client.put("/v1/risk/policy", json=bad, headers=tenant.headers)
    checked = client.post("/v1/risk/policy/validate", json=bad, headers=tenant.headers)

    assert response.status_code == checked.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"rules.0.window", "rules.2", "rules.3.subject"}
    one_limit = client.put(
        "/v1/risk/policy", json={"rules": bad["rules"][1:2]}, headers=tenant.headers
    )
    assert [e["field"] for e in one_limit.json()["errors"]] == ["rules.0.max_count"]
    assert client.get("/v1/risk/policy", headers=tenant.headers).json()["version"] == 0
    not_yaml = client.put(
        "/v1/risk/policy",
        content="rules: [",
        headers={**tenant.headers, "Content-Type": "application/yaml"},
    )
    assert not_yaml.status_code == 422


def test_list_entries_are_idempotent_removable_and_may_expire(
    client: TestClient, tenant: TenantHandle
) -> None:
    entry = {"list": "block", "subject": "device", "value": "emulator-7", "note": "emulator"}
    first = client.post("/v1/risk/lists", json=entry, headers=tenant.headers)
    again = client.post("/v1/risk/lists", json=entry, headers=tenant.headers)
    changed = client.post("/v1/risk/lists", json={**entry, "note": "x"}, headers=tenant.headers)
    bad_ip = client.post(
        "/v1/risk/lists",
        json={"list": "block", "subject": "ip", "value": "10.0.0.999"},
        headers=tenant.headers,
    )
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert changed.status_code == 409
    assert bad_ip.status_code == 422
    assert bad_ip.json()["errors"][0]["field"] == "value"

    blocked = decide(client, tenant, **pin("quinn", "emulator-7", "10.5.0.1"))
    removed = client.delete(f"/v1/risk/lists/{first.json()['id']}", headers=tenant.headers)
    after = decide(client, tenant, **pin("quinn", "emulator-7", "10.5.0.1"))
    assert codes(blocked) == {"blocklisted"}
    assert removed.status_code == 204
    assert after["verdict"] == "ALLOW"

    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    in_the_past = client.post(
        "/v1/risk/lists",
        json={"list": "block", "subject": "user", "value": "quinn", "expires_at": past},
        headers=tenant.headers,
    )
    assert in_the_past.status_code == 422
    assert in_the_past.json()["errors"][0]["field"] == "expires_at"


def test_a_list_entry_stops_blocking_when_it_runs_out_and_can_be_renewed(
    client: TestClient, tenant: TenantHandle
) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    entry = client.post(
        "/v1/risk/lists",
        json={"list": "block", "subject": "user", "value": "ruth", "expires_at": soon},
        headers=tenant.headers,
    ).json()
    assert decide(client, tenant, **pin("ruth", "d-ruth", "10.5.1.1"))["verdict"] == "BLOCK"

    # when: its time has passed
    time.sleep(1.6)
    after = decide(client, tenant, **pin("ruth", "d-ruth", "10.5.1.1"))
    renewed = client.post(
        "/v1/risk/lists",
        json={"list": "block", "subject": "user", "value": "ruth", "note": "again"},
        headers=tenant.headers,
    )

    # then
    assert after["verdict"] == "ALLOW"
    assert renewed.status_code == 201
    assert renewed.json()["id"] == entry["id"]
    assert decide(client, tenant, **pin("ruth", "d-ruth", "10.5.1.1"))["verdict"] == "BLOCK"


def test_the_decision_log_filters_and_pages(client: TestClient, tenant: TenantHandle) -> None:
    for _ in range(7):
        decide(client, tenant, **pin("rita", "d-rita", "10.6.0.1"))
    decide(client, tenant, **pin("sam", "d-sam", "10.6.0.2"))

    blocked = client.get(
        "/v1/risk/decisions", params={"verdict": "BLOCK"}, headers=tenant.headers
    ).json()["data"]
    first = client.get(
        "/v1/risk/decisions", params={"user_id": "rita", "limit": 4}, headers=tenant.headers
    ).json()
    second = client.get(
        "/v1/risk/decisions",
        params={"user_id": "rita", "limit": 4, "cursor": first["next_cursor"]},
        headers=tenant.headers,
    ).json()

    assert [d["user_id"] for d in blocked] == ["rita", "rita"]
    ids = [d["id"] for d in first["data"] + second["data"]]
    assert len(ids) == len(set(ids)) == 7
    assert ids == sorted(ids, reverse=True)
    one = client.get(f"/v1/risk/decisions/{blocked[0]['id']}", headers=tenant.headers).json()
    assert one["reasons"][0]["message"] == "user rita would make 6 pin.purchase in 1m (limit 5)"


def test_explanations_say_why_a_user_was_blocked_or_held(
    client: TestClient, tenant: TenantHandle
) -> None:
    client.post(
        "/v1/risk/lists",
        json={"list": "block", "subject": "device", "value": "d-tom", "note": "rooted"},
        headers=tenant.headers,
    ).raise_for_status()
    decide(client, tenant, **pin("tom", "d-tom", "10.7.0.1"))
    clear = client.get(
        "/v1/risk/explanations", params={"user_id": "uma"}, headers=tenant.headers
    ).json()

    why = client.get(
        "/v1/risk/explanations",
        params={"user_id": "tom", "action": "pin.purchase"},
        headers=tenant.headers,
    ).json()

    assert why["status"] == "BLOCKED"
    assert why["listed"] == [
        {"list": "block", "subject": "device", "value": "d-tom", "note": "rooted"}
    ]
    assert why["summary"][0] == "device d-tom is on the block list"
    assert "device d-tom is on the block list (rooted) [blocklist]" in why["summary"][1]
    assert clear["status"] == "CLEAR"
    assert clear["summary"] == ["no decision stopped or held this user"]


def test_scopes_decide_who_may_decide_configure_and_read(
    client: TestClient, tenant: TenantHandle, db: Database
) -> None:
    with db.session() as session:
        app_key = tenancy.create_key(session, tenant.id, "app", [Scope.APP]).plaintext
        analyst_key = tenancy.create_key(session, tenant.id, "risk", [Scope.ANALYST]).plaintext
        creator_key = tenancy.create_key(
            session, tenant.id, "creator", [Scope.CREATOR], creator_id="c-1"
        ).plaintext
    app = TenantHandle(tenant.id, app_key)
    analyst = TenantHandle(tenant.id, analyst_key)
    creator = TenantHandle(tenant.id, creator_key)
    body = {"action": "checkin", "user_id": "vic"}

    assert (
        client.post("/v1/risk/decisions", json=body, headers=app.write_headers()).status_code == 201
    )
    assert (
        client.post("/v1/risk/decisions", json=body, headers=analyst.write_headers()).status_code
        == 403
    )
    assert client.get("/v1/risk/decisions", headers=analyst.headers).status_code == 200
    assert client.get("/v1/risk/decisions", headers=creator.headers).status_code == 403
    assert client.put("/v1/risk/policy", json={"rules": []}, headers=app.headers).status_code == 403
    assert (
        client.put("/v1/risk/policy", json={"rules": []}, headers=analyst.headers).status_code
        == 200
    )


def test_one_tenant_never_sees_or_shares_anothers_risk_data(
    client: TestClient, make_tenant: Callable[..., TenantHandle]
) -> None:
    a, b = make_tenant("A"), make_tenant("B")
    # tenant A's device farm and block list ...
    for i in range(4):
        decide(client, a, **pin(f"farm-{i}", "shared-device", "10.8.0.1"))
    client.post(
        "/v1/risk/lists",
        json={"list": "block", "subject": "user", "value": "wes"},
        headers=a.headers,
    ).raise_for_status()
    a_decision = client.get("/v1/risk/decisions", headers=a.headers).json()["data"][0]

    # ... mean nothing to tenant B
    b_first = decide(client, b, **pin("farm-9", "shared-device", "10.8.0.1"))
    b_wes = decide(client, b, **pin("wes", "d-wes", "10.8.0.2"))
    assert b_first["verdict"] == b_wes["verdict"] == "ALLOW"
    assert (
        client.get(f"/v1/risk/decisions/{a_decision['id']}", headers=b.headers).status_code == 404
    )
    assert client.get("/v1/risk/lists", headers=b.headers).json()["data"] == []
    assert [
        d["id"] for d in client.get("/v1/risk/decisions", headers=b.headers).json()["data"]
    ] == [
        b_wes["id"],
        b_first["id"],
    ]


def test_a_reference_reused_for_another_action_body_is_a_conflict(
    client: TestClient, tenant: TenantHandle
) -> None:
    first = decide(client, tenant, action="checkin", user_id="u1", reference="visit-1")
    other = client.post(
        "/v1/risk/decisions",
        json={"action": "checkin", "user_id": "mallory", "reference": "visit-1"},
        headers=tenant.write_headers(),
    )
    assert first["verdict"] == "ALLOW"
    assert other.status_code == 409


def test_text_that_cannot_be_stored_or_answered_is_refused(
    client: TestClient, tenant: TenantHandle
) -> None:
    for body in (
        '{"action": "checkin", "user_id": "u", "context": {"note": "\\ud800"}}',
        '{"action": "checkin", "user_id": "\\udfff"}',
        '{"action": "checkin", "user_id": "u", "context": {"ratio": NaN}}',
    ):
        response = client.post(
            "/v1/risk/decisions",
            content=body,
            headers={**tenant.write_headers(), "Content-Type": "application/json"},
        )
        assert response.status_code == 422, body
    assert client.get("/v1/risk/decisions", headers=tenant.headers).status_code == 200


def test_a_decision_says_how_many_rules_knew_the_action(
    client: TestClient, tenant: TenantHandle
) -> None:
    known = decide(client, tenant, **pin("sue", "d-sue", "10.9.9.9"))
    typo = decide(client, tenant, action="pin.purchse", user_id="sue", amount_fen=10**9)

    assert known["rules_evaluated"] == 7
    assert (typo["verdict"], typo["rules_evaluated"]) == ("ALLOW", 0)
