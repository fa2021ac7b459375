"""Group fraud detection as an analyst sees it: a scan over the shop's own member events finds
the ring (and nothing in an honest shop), remembers what it reported, and the actions taken on
a finding do to the accounts exactly what they say - only once approved."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.fraud.conftest import (
    BURST_END,
    BURST_START,
    EARLY_FEN,
    RING_FEN,
    Shop,
    Visit,
    make_world,
    members_of,
    store_ids,
    targets_of,
)

Farmed = tuple[Shop, dict[str, Any]]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


# Scans -------------------------------------------------------------------------------------


def test_a_scan_finds_the_ring_and_only_the_ring(ringed: Shop) -> None:
    world = ringed.world
    assert world is not None

    scan = ringed.scan()

    assert scan["status"] == "DONE"
    assert scan["source"] == "database"
    stats = scan["stats"]
    assert stats["interactions"] == len(world.visits) == 150 * 8 + 10 * 10 + 10
    assert (stats["users"], stats["targets"]) == (160, 30)
    assert stats["groups"]["dense_block"] == stats["groups"]["lockstep"] == 1
    assert (stats["findings"], stats["repeated"]) == (2, 0)
    assert ringed.client.get(f"/v1/fraud/scans/{scan['id']}", headers=ringed.headers).json() == (
        scan
    )
    for kind in ("dense_block", "lockstep"):
        finding = ringed.ring_finding(scan, kind)
        assert members_of(finding) == set(world.ring_users), kind
        assert targets_of(finding) == store_ids(world.ring_stores), kind
        assert (finding["users"], finding["targets"]) == (10, 10)
        assert finding["score"] > 0
        assert finding["evidence"]["why"]
        assert finding["status"] == "OPEN"
        assert finding["scan_id"] == scan["id"]
        start, end = when(finding["window_start"]), when(finding["window_end"])
        assert BURST_START <= start < end <= BURST_END, kind
    # Each account visited each of the 10 kiosks once, in the burst.
    dense = ringed.ring_finding(scan, "dense_block")
    assert {m["hits"] for m in dense["members"]} == {10}
    assert {m["hits"] for m in dense["target_members"]} == {10}
    assert dense["evidence"]["edges"] == 100
    # Lockstep counts the hits inside the burst's core (95% of its interactions).
    lockstep = ringed.ring_finding(scan, "lockstep")
    assert sum(m["hits"] for m in lockstep["members"]) >= 95
    assert {m["hits"] for m in lockstep["members"]} <= {9, 10}
    # ... and each of the burst's interactions once, though it sits in a cell of both grids.
    assert lockstep["evidence"]["interactions_in_burst"] == 100
    assert "100 interactions" in lockstep["evidence"]["why"]
    # Looked up by account, kind, status and scan.
    assert {f["kind"] for f in ringed.findings(user_id="ring-07")} == {"dense_block", "lockstep"}
    assert ringed.findings(user_id="member-007") == []
    assert ringed.findings(user_id="store:kiosk-1") == []  # a target, not an account
    assert [f["kind"] for f in ringed.findings(kind="lockstep")] == ["lockstep"]
    assert ringed.findings(kind="shared_device") == []
    assert len(ringed.findings(scan_id=scan["id"], status="OPEN")) == 2
    assert ringed.findings(status="DISMISSED") == []
    listed = ringed.client.get("/v1/fraud/scans", headers=ringed.headers).json()["data"]
    assert [s["id"] for s in listed] == [scan["id"]]


def test_an_honest_shop_has_no_group(shop: Shop) -> None:
    world = shop.populate(make_world(ring=False))

    scan = shop.scan()

    assert scan["stats"]["interactions"] == len(world.visits)
    assert scan["stats"]["findings"] == 0
    assert shop.findings() == []


def test_a_repeated_scan_does_not_report_the_same_group_again(ringed: Shop) -> None:
    first = ringed.scan()
    second = ringed.scan()

    assert (second["stats"]["findings"], second["stats"]["repeated"]) == (0, 2)
    assert ringed.findings(scan_id=second["id"]) == []
    assert {f["scan_id"] for f in ringed.findings()} == {first["id"]}
    # A group with an account more is another group.
    world = ringed.world
    assert world is not None
    ringed.send(
        Visit("ring-10", v.store, v.at, RING_FEN) for v in world.ring if v.user == "ring-00"
    )
    third = ringed.scan()
    assert (third["stats"]["findings"], third["stats"]["repeated"]) == (2, 0)
    for found in ringed.findings(scan_id=third["id"]):
        assert members_of(ringed.finding(found["id"])) == {*world.ring_users, "ring-10"}


def test_the_scan_settings_choose_the_detectors_the_smallest_group_and_the_range(
    ringed: Shop,
) -> None:
    only_lockstep = ringed.scan(kinds=["lockstep"], burst_seconds=7200, max_blocks=2)

    assert only_lockstep["params"]["kinds"] == ["lockstep"]
    assert only_lockstep["params"]["lockstep"]["burst_seconds"] == 7200
    assert only_lockstep["params"]["blocks"]["max_blocks"] == 2
    assert only_lockstep["stats"]["groups"]["dense_block"] == 0
    assert [f["kind"] for f in ringed.findings()] == ["lockstep"]

    bigger_than_the_ring = ringed.scan(min_users=11)
    assert bigger_than_the_ring["stats"]["findings"] == 0
    assert bigger_than_the_ring["params"]["blocks"]["min_users"] == 11

    # Only the range asked for is read.
    world = ringed.world
    assert world is not None
    before_the_burst = ringed.scan(until=BURST_START.isoformat())
    earlier = [v for v in world.visits if v.at < BURST_START]
    assert 0 < len(earlier) < len(world.visits) - len(world.ring)
    assert before_the_burst["stats"]["interactions"] == len(earlier)
    assert before_the_burst["stats"]["findings"] == 0


def test_accounts_sharing_a_device_are_a_group(shop: Shop) -> None:
    farm = [f"farm-{i}" for i in range(4)]
    for user in farm:
        shop.decide(user, device_id="phone-farm-1", ip="203.0.113.9")
    for i in range(6):  # honest members, each on a phone of their own
        shop.decide(f"solo-{i}", device_id=f"phone-{i}", ip=f"198.51.100.{i + 1}")

    scan = shop.scan(kinds=["shared_device", "shared_ip"])

    assert scan["stats"]["sightings"] == 10
    assert scan["stats"]["interactions"] == 0
    (found,) = shop.findings(scan_id=scan["id"])
    finding = shop.finding(found["id"])
    assert finding["kind"] == "shared_device"
    assert members_of(finding) == set(farm)
    assert finding["evidence"]["shared"] == [{"value": "phone-farm-1", "accounts": 4}]
    assert finding["score"] == 4.0
    # Four accounts on one address on one day are too few for an address group.
    assert scan["stats"]["groups"]["shared_ip"] == 0


# Actions -----------------------------------------------------------------------------------


def verdicts(shop: Shop, users: list[str]) -> dict[str, str]:
    return {u: shop.decide(u)["verdict"] for u in users}


@pytest.fixture
def finding(ringed: Shop) -> dict[str, str]:
    return ringed.ring_finding(ringed.scan(), "dense_block")


def test_a_proposed_hold_waits_then_holds_exactly_the_members(
    ringed: Shop, finding: dict[str, str]
) -> None:
    ring, honest = ["ring-00", "ring-09"], ["member-000", "member-149"]

    action = ringed.propose(finding["id"], "hold", note="ring on the kiosks")

    assert (action["status"], action["action"]) == ("PENDING", "hold")
    assert sorted(action["user_ids"]) == sorted(ringed.world.ring_users)  # type: ignore[union-attr]
    assert action["expires_at"] is not None
    assert [a["id"] for a in ringed.actions()] == [action["id"]]
    assert verdicts(ringed, ring + honest) == dict.fromkeys(ring + honest, "ALLOW")
    assert ringed.finding(finding["id"])["status"] == "OPEN"

    approved = ringed.resolve(action["id"], "approve", note="confirmed")

    assert approved["status"] == "APPROVED"
    assert approved["resolution_note"] == "confirmed"
    assert approved["result"]["list"] == "review"
    assert len(approved["result"]["list_entries"]) == 10
    held = ringed.decide("ring-00")
    assert held["verdict"] == "REVIEW"
    assert "held_for_review" in {r["code"] for r in held["reasons"]}
    assert verdicts(ringed, ring[1:] + honest) == {
        "ring-09": "REVIEW",
        "member-000": "ALLOW",
        "member-149": "ALLOW",
    }
    assert ringed.finding(finding["id"])["status"] == "ACTIONED"
    assert ringed.actions() == []
    assert [a["status"] for a in ringed.actions(status="ALL")] == ["APPROVED"]
    # Approving again answers the same and does nothing more.
    assert ringed.resolve(action["id"], "approve") == approved
    audit = [a["action"] for a in ringed.audit()]
    assert audit.count("fraud.action.proposed") == audit.count("fraud.action.approved") == 1
    assert audit.count("list.added") == 10


def test_an_approved_block_blocks_the_named_accounts_only(farmed: Farmed) -> None:
    shop, finding = farmed
    action = shop.propose(finding["id"], "block", user_ids=["farm-1", "farm-2", "farm-1"])
    assert action["user_ids"] == ["farm-1", "farm-2"]
    assert shop.decide("farm-1")["verdict"] == "ALLOW"

    shop.resolve(action["id"], "approve")

    blocked = shop.decide("farm-1")
    assert blocked["verdict"] == "BLOCK"
    assert "blocklisted" in {r["code"] for r in blocked["reasons"]}
    assert verdicts(shop, ["farm-2", "farm-0", "someone"]) == {
        "farm-2": "BLOCK",
        "farm-0": "ALLOW",
        "someone": "ALLOW",
    }
    entries = shop.client.get(
        "/v1/risk/lists", params={"list": "block"}, headers=shop.headers
    ).json()["data"]
    assert sorted(e["value"] for e in entries) == ["farm-1", "farm-2"]
    assert all(finding["id"] in e["note"] for e in entries)


def test_a_hold_of_accounts_already_held_lists_them_once(farmed: Farmed) -> None:
    shop, finding = farmed
    first = shop.propose(finding["id"], "hold", user_ids=["farm-1"])
    shop.resolve(first["id"], "approve")
    second = shop.propose(finding["id"], "hold", user_ids=["farm-1", "farm-2"])

    result = shop.resolve(second["id"], "approve")["result"]

    assert result["already_listed"] == ["farm-1"]
    assert len(result["list_entries"]) == 1
    assert verdicts(shop, ["farm-1", "farm-2"]) == dict.fromkeys(["farm-1", "farm-2"], "REVIEW")


def revoke_and_check(ringed: Shop, finding: dict[str, str]) -> dict[str, object]:
    world = ringed.world
    assert world is not None
    honest = world.honest_users[:20]
    before_honest = ringed.balances(honest)
    ring_earned = len(world.ring_stores) * RING_FEN // 100
    early = EARLY_FEN // 100
    assert ringed.balances(world.ring_users) == dict.fromkeys(world.ring_users, early + ring_earned)
    action = ringed.propose(finding["id"], "revoke", note="fake visits")
    assert action["expires_at"] is None
    # Nothing is clawed back before approval.
    assert ringed.balance("ring-00") == early + ring_earned

    approved = ringed.resolve(action["id"], "approve")

    assert ringed.balances(world.ring_users) == dict.fromkeys(world.ring_users, early)
    assert ringed.balances(honest) == before_honest
    assert ringed.ledger_sum() == 0
    return dict(approved["result"])


def test_an_approved_revoke_claws_back_what_the_ring_earned(
    ringed: Shop, finding: dict[str, str]
) -> None:
    result = revoke_and_check(ringed, finding)

    assert len(result["events_reversed"]) == 10 * 10  # type: ignore[arg-type]
    assert result["rewards_reversed"] == []


def test_a_revoke_on_the_lockstep_finding_claws_back_the_whole_burst(ringed: Shop) -> None:
    finding = ringed.ring_finding(ringed.scan(), "lockstep")

    result = revoke_and_check(ringed, finding)

    assert len(result["events_reversed"]) == 10 * 10  # type: ignore[arg-type]


def test_a_rejected_action_does_nothing_and_cannot_be_approved(
    ringed: Shop, finding: dict[str, str]
) -> None:
    hold = ringed.propose(finding["id"], "hold")
    revoke = ringed.propose(finding["id"], "revoke")
    balance = ringed.balance("ring-00")
    assert {a["id"] for a in ringed.actions()} == {hold["id"], revoke["id"]}

    rejected = ringed.resolve(hold["id"], "reject", note="a tour group")
    ringed.resolve(revoke["id"], "reject")

    assert (rejected["status"], rejected["resolution_note"]) == ("REJECTED", "a tour group")
    assert rejected["result"] == {}
    assert ringed.decide("ring-00")["verdict"] == "ALLOW"
    assert ringed.balance("ring-00") == balance
    assert ringed.finding(finding["id"])["status"] == "OPEN"
    assert ringed.actions() == []
    assert ringed.resolve(hold["id"], "reject") == rejected
    late = ringed.resolve_response(hold["id"], "approve")
    assert late.status_code == 409, late.text
    assert ringed.decide("ring-00")["verdict"] == "ALLOW"
    audit = [a["action"] for a in ringed.audit()]
    assert audit.count("fraud.action.rejected") == 2
    assert "fraud.action.approved" not in audit


def test_a_dismissed_finding_takes_no_new_action(farmed: Farmed) -> None:
    shop, finding = farmed
    url = f"/v1/fraud/findings/{finding['id']}/dismiss"

    dismissed = shop.client.post(url, json={"note": "a family's phone"}, headers=shop.headers)
    again = shop.client.post(url, headers=shop.headers)

    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json()["status"] == "DISMISSED"
    assert again.status_code == 200
    assert again.json()["status"] == "DISMISSED"
    assert [f["id"] for f in shop.findings(status="DISMISSED")] == [finding["id"]]
    before = shop.counts()
    refused = shop.propose_response(finding["id"], action="block")
    assert refused.status_code == 409, refused.text
    assert shop.counts() == before
    assert shop.actions(status="ALL") == []
    assert shop.decide("farm-0")["verdict"] == "ALLOW"
    dismissals = [a for a in shop.audit() if a["action"] == "fraud.finding.dismissed"]
    assert [(a["subject_id"], a["detail"]["note"]) for a in dismissals] == [
        (finding["id"], "a family's phone")
    ]


def test_a_pending_action_on_a_finding_dismissed_since_is_not_carried_out(
    farmed: Farmed,
) -> None:
    shop, finding = farmed
    action = shop.propose(finding["id"], "block")
    dismissed = shop.client.post(
        f"/v1/fraud/findings/{finding['id']}/dismiss", headers=shop.headers
    )
    assert dismissed.status_code == 200, dismissed.text

    approved = shop.resolve_response(action["id"], "approve")

    assert shop.decide("farm-0")["verdict"] == "ALLOW"
    assert shop.finding(finding["id"])["status"] == "DISMISSED"
    assert approved.status_code == 409, approved.text


def test_every_step_is_published_as_an_event(ringed: Shop, make_shop: Callable[..., Shop]) -> None:
    hook = ringed.client.post(
        "/v1/webhooks/endpoints",
        json={"url": "https://example.com/hooks", "event_types": ["fraud.*"]},
        headers=ringed.headers,
    )
    assert hook.status_code == 201, hook.text

    scan = ringed.scan()
    dense = ringed.ring_finding(scan, "dense_block")
    lockstep = ringed.ring_finding(scan, "lockstep")
    approved = ringed.propose(dense["id"], "hold")
    ringed.resolve(approved["id"], "approve")
    rejected = ringed.propose(dense["id"], "block")
    ringed.resolve(rejected["id"], "reject")
    ringed.client.post(
        f"/v1/fraud/findings/{lockstep['id']}/dismiss", headers=ringed.headers
    ).raise_for_status()

    messages = ringed.client.get(
        "/v1/webhooks/messages", params={"limit": 100}, headers=ringed.headers
    ).json()["data"]
    names = sorted(m["event_type"] for m in messages)
    assert names == sorted(
        [
            "fraud.scan.completed",
            "fraud.finding.created",
            "fraud.finding.created",
            "fraud.action.proposed",
            "fraud.action.approved",
            "fraud.action.proposed",
            "fraud.action.rejected",
            "fraud.finding.dismissed",
        ]
    )
    payloads = {m["event_type"]: m["payload"]["data"] for m in messages}
    assert payloads["fraud.scan.completed"] == {
        "scan_id": scan["id"],
        "findings": 2,
        "source": "database",
    }
    assert payloads["fraud.action.approved"]["action_id"] == approved["id"]
    assert payloads["fraud.action.approved"]["users"] == 10
    assert payloads["fraud.finding.dismissed"] == {"finding_id": lockstep["id"]}
    # Another tenant hears nothing of it.
    other = make_shop("Other")
    assert other.client.get("/v1/webhooks/messages", headers=other.headers).json()["data"] == []
