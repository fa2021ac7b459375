"""Scans and actions running at the same time, on PostgreSQL: a group is reported once, and an
action is carried out once."""

from __future__ import annotations

import pytest

from tests.conftest import at_once, is_postgres
from tests.fraud.conftest import SINCE, UNTIL, Shop
from zanloop.fraud import actions, service

pytestmark = pytest.mark.skipif(not is_postgres(), reason="real concurrency: PostgreSQL")


def test_scans_at_the_same_time_report_each_group_once(ringed: Shop) -> None:
    def scan(_: int) -> dict[str, int]:
        with ringed.db.session() as session:
            done = service.scan_database(session, ringed.tenant.id, SINCE, UNTIL, "test")
            return {k: done.stats[k] for k in ("findings", "repeated")}

    outcomes = at_once(4, scan)

    # Every scan saw the same groups; between them they stored each exactly once.
    assert len({o["findings"] + o["repeated"] for o in outcomes}) == 1
    total = outcomes[0]["findings"] + outcomes[0]["repeated"]
    assert total >= 1
    assert sum(o["findings"] for o in outcomes) == total
    assert len(ringed.findings()) == total


def test_an_action_approved_twice_at_once_is_carried_out_once(ringed: Shop) -> None:
    ringed.scan()
    finding_id = ringed.findings()[0]["id"]
    with ringed.db.session() as session:
        action = actions.propose(session, ringed.tenant.id, finding_id, "block", "analyst")
        action_id = action.id

    def approve(_: int) -> list[str]:
        with ringed.db.session() as session:
            done = actions.approve(session, ringed.tenant.id, action_id, "analyst")
            return list(done.result["list_entries"])

    entries = at_once(4, approve)

    # Each call answers the one approval; the accounts are listed once.
    assert all(e == entries[0] for e in entries)
    listed = ringed.client.get(
        "/v1/risk/lists", params={"list": "block", "limit": 200}, headers=ringed.headers
    ).json()["data"]
    assert len(listed) == len(entries[0])
