"""Group fraud scans and their findings.

A scan reads a tenant's interactions (or a file), runs ``domain.detect`` and stores each group
as a finding with all its members; a group already reported with the same accounts is not
stored again. Findings never act by themselves: ``actions`` is the queue an analyst works
through, and nothing happens to an account until an action is approved.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.orm import Session

from zanloop import events
from zanloop.errors import InvalidState, NotFound, Unprocessable
from zanloop.fraud import domain, repository, sources
from zanloop.fraud.domain import Group, Kind, ScanParams, Sightings
from zanloop.fraud.graph import Interactions
from zanloop.fraud.tables import FraudFinding, FraudScan
from zanloop.kit.clock import as_utc, utcnow
from zanloop.kit.ids import new_id
from zanloop.risk import service as risk
from zanloop.tenancy import service as tenancy

log = structlog.get_logger(__name__)

MAX_RANGE = timedelta(days=92)
SYSTEM = "system"


def check_range(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    since, until = as_utc(since), as_utc(until)
    if not since < until:
        raise Unprocessable("until must be after since", field="until")
    if until - since > MAX_RANGE:
        raise Unprocessable("a scan covers at most 92 days", field="since")
    return since, until


def scan_database(
    session: Session,
    tenant_id: str,
    since: datetime,
    until: datetime,
    actor: str,
    params: ScanParams | None = None,
    progress: domain.Progress | None = None,
) -> FraudScan:
    """Scan the tenant's own interactions in ``[since, until)`` and store what is found."""
    since, until = check_range(since, until)
    tenancy.get_tenant(session, tenant_id)
    if progress:
        progress("reading interactions")
    graph, sightings = sources.from_database(session, tenant_id, since, until)
    return scan_graph(
        session, tenant_id, graph, sightings, "database", since, until, actor, params, progress
    )


def scan_file(
    session: Session,
    tenant_id: str,
    path: Path,
    since: datetime | None,
    until: datetime | None,
    actor: str,
    params: ScanParams | None = None,
    progress: domain.Progress | None = None,
) -> FraudScan:
    """Scan a CSV or Parquet file and store the findings under the tenant."""
    tenancy.get_tenant(session, tenant_id)
    if progress:
        progress("reading file")
    graph, sightings = sources.read_file(path, since, until)
    first, last = _span(graph, sightings)
    return scan_graph(
        session,
        tenant_id,
        graph,
        sightings,
        f"file:{path.name}",
        as_utc(since) if since else first,
        as_utc(until) if until else last + timedelta(seconds=1),
        actor,
        params,
        progress,
    )


def _span(graph: Interactions, sightings: Sightings) -> tuple[datetime, datetime]:
    times = [*graph.at.tolist(), *sightings.at]
    if not times:
        now = utcnow()
        return now, now
    return domain.utc(min(times)), domain.utc(max(times))


def scan_graph(
    session: Session,
    tenant_id: str,
    graph: Interactions,
    sightings: Sightings,
    source: str,
    since: datetime,
    until: datetime,
    actor: str,
    params: ScanParams | None = None,
    progress: domain.Progress | None = None,
) -> FraudScan:
    params = params or ScanParams()
    started = time.perf_counter()
    groups = domain.detect(graph, sightings, params, progress)
    seconds = time.perf_counter() - started
    scan = FraudScan(
        id=new_id("fsc"),
        tenant_id=tenant_id,
        source=source[:300],
        since=since,
        until=until,
        status="DONE",
        params=domain.describe(params),
        requested_by=actor,
        started_at=utcnow(),
    )
    repository.add(session, scan)
    if progress:
        progress("storing findings")
    stored, repeated = store_findings(session, scan, groups)
    scan.stats = {
        "interactions": graph.n_edges,
        "users": graph.n_users,
        "targets": graph.n_targets,
        "sightings": len(sightings.user),
        "groups": {k.value: sum(1 for g in groups if g.kind is k) for k in Kind},
        "findings": stored,
        "repeated": repeated,
        "seconds": round(seconds, 3),
    }
    scan.finished_at = utcnow()
    session.flush()
    log.info("fraud scan", scan_id=scan.id, tenant_id=tenant_id, **scan.stats)
    events.publish(
        session,
        events.Event(
            "fraud.scan.completed",
            tenant_id,
            {"scan_id": scan.id, "findings": stored, "source": scan.source},
        ),
    )
    return scan


def fingerprint(group: Group) -> str:
    users = "\n".join(sorted(m.id for m in group.users))
    return hashlib.sha256(f"{group.kind.value}\n{users}".encode()).hexdigest()


def store_findings(session: Session, scan: FraudScan, groups: Sequence[Group]) -> tuple[int, int]:
    """Store each group not already reported with exactly the same accounts."""
    stored = repeated = 0
    made: dict[int, FraudFinding] = {}
    for index, group in enumerate(groups):
        finding_id = new_id("ffd")
        row = {
            "id": finding_id,
            "tenant_id": scan.tenant_id,
            "scan_id": scan.id,
            "kind": group.kind.value,
            "fingerprint": fingerprint(group),
            "score": group.score,
            "users": len(group.users),
            "targets": len(group.targets),
            "window_start": group.start,
            "window_end": group.end,
            "evidence": group.evidence,
            "status": "OPEN",
            "created_at": utcnow(),
        }
        # The unique fingerprint decides, so two scans at once still report a group once.
        if not repository.add_finding(session, row):
            repeated += 1
            continue
        finding = repository.get_finding(session, scan.tenant_id, finding_id)
        assert finding is not None
        made[index] = finding
        repository.add_members(
            session,
            [
                {
                    "finding_id": finding.id,
                    "role": role,
                    "member_id": m.id,
                    "tenant_id": scan.tenant_id,
                    "hits": m.hits,
                    "expected": m.expected,
                }
                for role, members in (("user", group.users), ("target", group.targets))
                for m in members
            ],
        )
        stored += 1
        events.publish(
            session,
            events.Event(
                "fraud.finding.created",
                scan.tenant_id,
                {
                    "finding_id": finding.id,
                    "scan_id": scan.id,
                    "kind": finding.kind,
                    "score": finding.score,
                    "users": finding.users,
                    "targets": finding.targets,
                },
            ),
        )
    for index, links in enumerate(domain.related(groups)):
        if index in made and (known := [(made[j], n) for j, n in links if j in made]):
            finding = made[index]
            finding.evidence = {
                **finding.evidence,
                "related": [
                    {"finding_id": f.id, "kind": f.kind, "shared_accounts": n} for f, n in known
                ],
            }
    session.flush()
    return stored, repeated


def scan_due(session: Session, days: int, now: datetime | None = None) -> list[FraudScan]:
    """The scheduled scan: every tenant's last ``days`` days, where there is anything to read."""
    if days <= 0:
        return []
    now = now or utcnow()
    scans = []
    for tenant in tenancy.list_tenants(session):
        with session.begin_nested():
            graph, sightings = sources.from_database(
                session, tenant.id, now - timedelta(days=days), now
            )
            if graph.n_edges == 0 and not sightings.user:
                continue
            scans.append(
                scan_graph(
                    session,
                    tenant.id,
                    graph,
                    sightings,
                    "database",
                    now - timedelta(days=days),
                    now,
                    SYSTEM,
                )
            )
    return scans


# Reading -------------------------------------------------------------------------------------


def get_scan(session: Session, tenant_id: str, scan_id: str) -> FraudScan:
    scan = repository.get_scan(session, tenant_id, scan_id)
    if scan is None:
        raise NotFound(f"scan {scan_id} not found")
    return scan


def list_scans(
    session: Session, tenant_id: str, after_id: str | None, limit: int
) -> Sequence[FraudScan]:
    return repository.list_scans(session, tenant_id, after_id, limit)


def get_finding(session: Session, tenant_id: str, finding_id: str) -> FraudFinding:
    finding = repository.get_finding(session, tenant_id, finding_id)
    if finding is None:
        raise NotFound(f"finding {finding_id} not found")
    return finding


def list_findings(session: Session, tenant_id: str, **filters: Any) -> Sequence[FraudFinding]:
    return repository.list_findings(session, tenant_id, **filters)


def finding_members(
    session: Session, finding_id: str
) -> tuple[list[domain.Member], list[domain.Member]]:
    def of(role: str) -> list[domain.Member]:
        return [
            domain.Member(m.member_id, m.hits, m.expected)
            for m in repository.members(session, finding_id, role)
        ]

    return of("user"), of("target")


def dismiss(
    session: Session, tenant_id: str, finding_id: str, actor: str, note: str
) -> FraudFinding:
    finding = repository.get_finding(session, tenant_id, finding_id, lock=True)
    if finding is None:
        raise NotFound(f"finding {finding_id} not found")
    if finding.status == "DISMISSED":
        return finding
    if finding.status != "OPEN":
        raise InvalidState(f"finding {finding_id} is {finding.status}")
    finding.status = "DISMISSED"
    session.flush()
    risk.audit(
        session, tenant_id, actor, "fraud.finding.dismissed", "finding", finding_id, {"note": note}
    )
    events.publish(
        session,
        events.Event("fraud.finding.dismissed", tenant_id, {"finding_id": finding_id}),
    )
    return finding
