"""The scheduled group scan (job ``fraud.scan``): every tenant's last ``fraud_scan_days`` days,
scanned by the worker where there is anything to read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fraud.conftest import FARM, Shop, Visit, members_of
from zanloop.db import Database
from zanloop.fraud import service
from zanloop.jobs import service as jobs
from zanloop.jobs.worker import Worker


def scans(shop: Shop) -> list[dict[str, Any]]:
    response = shop.client.get("/v1/fraud/scans", headers=shop.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def run_job(db: Database, worker: Worker) -> None:
    with db.session() as session:
        jobs.enqueue(session, "fraud.scan", {})
    worker.drain()


def test_the_job_scans_each_tenant_with_recent_activity(
    ringed: Shop, make_shop: Callable[..., Shop], db: Database, worker: Worker
) -> None:
    world = ringed.world
    assert world is not None
    quiet = make_shop("No activity")
    old = make_shop("Activity long ago")
    old.send([Visit("ann", "shop-1", datetime.now(UTC) - timedelta(days=45))])
    devices = make_shop("Only risk decisions")
    devices.farm(FARM)

    run_job(db, worker)

    assert scans(quiet) == []
    assert scans(old) == []
    (scan,) = scans(ringed)
    assert (scan["source"], scan["requested_by"], scan["status"]) == ("database", "system", "DONE")
    assert scan["stats"]["interactions"] == len(world.visits)
    until, since = datetime.fromisoformat(scan["until"]), datetime.fromisoformat(scan["since"])
    assert until - since == timedelta(days=worker.settings.fraud_scan_days) == timedelta(days=30)
    assert abs(until - datetime.now(UTC)) < timedelta(minutes=5)
    for kind in ("dense_block", "lockstep"):
        assert members_of(ringed.ring_finding(scan, kind)) == set(world.ring_users)
    (device_scan,) = scans(devices)
    assert device_scan["stats"]["sightings"] == len(FARM)
    assert [f["kind"] for f in devices.findings()] == ["shared_device"]

    run_job(db, worker)

    latest = scans(ringed)
    assert len(latest) == 2
    assert (latest[0]["stats"]["findings"], latest[0]["stats"]["repeated"]) == (0, 2)
    assert len(ringed.findings()) == 2
    assert scans(quiet) == []


def test_the_job_is_scheduled_every_six_hours(db: Database, worker: Worker, shop: Shop) -> None:
    periodic = {p.kind: p.every_seconds for p in jobs.periodic_jobs()}
    assert periodic["fraud.scan"] == 6 * 3600
    shop.farm(FARM)

    worker.schedule_periodic()
    worker.drain()

    assert len(scans(shop)) == 1
    assert [f["kind"] for f in shop.findings()] == ["shared_device"]


def test_no_lookback_means_no_scan(db: Database, shop: Shop) -> None:
    shop.farm(FARM)

    with db.session() as session:
        assert service.scan_due(session, 0) == []
        assert service.scan_due(session, -1) == []

    assert scans(shop) == []


def test_the_lookback_decides_what_is_read(db: Database, shop: Shop) -> None:
    now = datetime.now(UTC)
    shop.send(
        [
            Visit("ann", "shop-1", now - timedelta(days=3)),
            Visit("bob", "shop-1", now - timedelta(days=10)),
        ]
    )

    with db.session() as session:
        short = service.scan_due(session, 5, now=now)
        long = service.scan_due(session, 30, now=now)
        assert [s.stats["interactions"] for s in short] == [1]
        assert [s.stats["interactions"] for s in long] == [2]
        assert [s.tenant_id for s in long] == [shop.tenant.id]

    assert len(scans(shop)) == 2
