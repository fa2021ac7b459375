"""A shop whose members' loyalty events (each naming a store) are the interactions a fraud scan
reads, with a ring of accounts that all visit the same stores within one hour, and helpers that
drive /v1/fraud, /v1/risk and /v1/loyalty as an analyst would."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from tests.conftest import TenantHandle
from zanloop.db import Database
from zanloop.fraud.tables import FraudAction, FraudFinding, FraudFindingMember, FraudScan
from zanloop.ledger.tables import LedgerAccount
from zanloop.loyalty.tables import LoyaltyEvent
from zanloop.risk.tables import RiskAudit, RiskListEntry
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import Scope

_events = itertools.count()

# Midnight UTC today: the honest traffic runs 08:00-18:00 on the three days before, the ring's
# burst at 21:00-21:50 two days ago, the ring's own earlier shopping a week ago. All past.
BASE = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
BURST_START = BASE - timedelta(days=2) + timedelta(hours=21)
BURST_END = BURST_START + timedelta(minutes=50)
SINCE = BASE - timedelta(days=10)
UNTIL = BASE + timedelta(days=1)
RING_FEN = 1000  # 10 points a visit under the default programme (1 point a yuan)
EARLY_FEN = 2300  # 23 points: each ring account's honest purchase a week before the burst


@dataclass(frozen=True)
class Visit:
    user: str
    store: str
    at: datetime
    amount_fen: int = 500


@dataclass(frozen=True)
class World:
    """Honest members spread over many stores and three days; optionally a ring."""

    honest: tuple[Visit, ...]
    ring: tuple[Visit, ...]
    ring_users: tuple[str, ...]
    ring_stores: tuple[str, ...]
    early: tuple[Visit, ...]

    @property
    def visits(self) -> list[Visit]:
        return [*self.early, *self.honest, *self.ring]

    @property
    def honest_users(self) -> list[str]:
        return sorted({v.user for v in self.honest})


def make_world(
    seed: int = 7,
    *,
    ring: bool = True,
    prefix: str = "",
    honest_users: int = 150,
    stores: int = 20,
    per_user: int = 8,
    ring_size: int = 10,
    ring_stores: int = 10,
) -> World:
    rng = random.Random(seed)
    names = [f"{prefix}shop-{i:02d}" for i in range(stores)]
    honest = []
    for u in range(honest_users):
        for store in rng.sample(names, per_user):
            day = BASE - timedelta(days=rng.randint(1, 3))
            at = day + timedelta(hours=8, seconds=rng.randrange(10 * 3600))
            honest.append(Visit(f"{prefix}member-{u:03d}", store, at, rng.randrange(100, 5000)))
    users = tuple(f"{prefix}ring-{u:02d}" for u in range(ring_size)) if ring else ()
    targets = tuple(f"{prefix}kiosk-{s}" for s in range(ring_stores)) if ring else ()
    burst = [
        Visit(user, store, BURST_START + timedelta(seconds=rng.randrange(3000)), RING_FEN)
        for user in users
        for store in targets
    ]
    early = [
        Visit(user, names[i % stores], BASE - timedelta(days=7, hours=-12), EARLY_FEN)
        for i, user in enumerate(users)
    ]
    return World(tuple(honest), tuple(burst), users, targets, tuple(early))


def loyalty_event(visit: Visit) -> dict[str, Any]:
    return {
        "event_id": f"ev-{next(_events)}",
        "type": "payment.succeeded",
        "user_id": visit.user,
        "occurred_at": visit.at.isoformat(),
        "amount_fen": visit.amount_fen,
        "store_id": visit.store,
    }


@dataclass
class Shop:
    """One tenant, driven through the HTTP API."""

    client: TestClient
    tenant: TenantHandle
    db: Database
    world: World | None = None
    _programme: bool = field(default=False)

    @property
    def headers(self) -> dict[str, str]:
        return self.tenant.headers

    # Loyalty ---------------------------------------------------------------------------------

    def programme(self) -> None:
        if self._programme:
            return
        response = self.client.post(
            "/v1/loyalty/defaults", json={"activate": True}, headers=self.headers
        )
        assert response.status_code == 201, response.text
        self._programme = True

    def send(self, visits: Iterable[Visit]) -> None:
        self.programme()
        events = [loyalty_event(v) for v in sorted(visits, key=lambda v: v.at)]
        for chunk in range(0, len(events), 2000):
            response = self.client.post(
                "/v1/loyalty/events/batch",
                json={"events": events[chunk : chunk + 2000]},
                headers=self.headers,
            )
            assert response.status_code == 200, response.text
            statuses = {e["status"] for e in response.json()["events"]}
            assert statuses == {"applied"}, statuses

    def populate(self, world: World) -> World:
        self.world = world
        self.send(world.visits)
        return world

    def balance(self, user: str) -> int:
        response = self.client.get(f"/v1/loyalty/members/{user}/balance", headers=self.headers)
        assert response.status_code == 200, response.text
        return int(response.json()["available"])

    def balances(self, users: Iterable[str]) -> dict[str, int]:
        return {u: self.balance(u) for u in users}

    def ledger_sum(self) -> int:
        with self.db.session() as session:
            total = session.scalar(
                select(func.coalesce(func.sum(LedgerAccount.balance), 0)).where(
                    LedgerAccount.tenant_id == self.tenant.id, LedgerAccount.asset == "POINTS"
                )
            )
        return int(total or 0)

    # Risk ------------------------------------------------------------------------------------

    def decide(self, user: str, action: str = "checkin", **body: Any) -> dict[str, Any]:
        response = self.client.post(
            "/v1/risk/decisions",
            json={"action": action, "user_id": user, **body},
            headers=self.tenant.write_headers(),
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def farm(self, users: Sequence[str], device: str = "phone-farm-1") -> None:
        """Risk decisions for ``users`` on one device: a shared_device group for a scan."""
        for user in users:
            self.decide(user, device_id=device)

    def key(self, *scopes: Scope, creator_id: str | None = None) -> dict[str, str]:
        """Headers for a new key of this tenant with only ``scopes``."""
        with self.db.session() as session:
            issued = tenancy.create_key(
                session, self.tenant.id, "fraud-test", list(scopes), creator_id
            )
        return {"Authorization": f"Bearer {issued.plaintext}"}

    def audit(self) -> list[dict[str, Any]]:
        response = self.client.get("/v1/risk/audit", params={"limit": 200}, headers=self.headers)
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    # Fraud -----------------------------------------------------------------------------------

    def scan_response(self, **body: Any) -> Any:
        payload = {"since": SINCE.isoformat(), "until": UNTIL.isoformat(), **body}
        return self.client.post("/v1/fraud/scans", json=payload, headers=self.headers)

    def scan(self, **body: Any) -> dict[str, Any]:
        body.setdefault("min_users", 5)
        response = self.scan_response(**body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def findings(self, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get(
            "/v1/fraud/findings", params={"limit": 200, **params}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    def finding(self, finding_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/fraud/findings/{finding_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def ring_finding(self, scan: dict[str, Any], kind: str = "lockstep") -> dict[str, Any]:
        found = [f for f in self.findings(scan_id=scan["id"]) if f["kind"] == kind]
        assert len(found) == 1, found
        return self.finding(found[0]["id"])

    def propose_response(self, finding_id: str, **body: Any) -> Any:
        return self.client.post(
            f"/v1/fraud/findings/{finding_id}/actions", json=body, headers=self.headers
        )

    def propose(self, finding_id: str, action: str, **body: Any) -> dict[str, Any]:
        response = self.propose_response(finding_id, action=action, **body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def resolve_response(self, action_id: str, step: str, **body: Any) -> Any:
        return self.client.post(
            f"/v1/fraud/actions/{action_id}/{step}", json=body or None, headers=self.headers
        )

    def resolve(self, action_id: str, step: str, **body: Any) -> dict[str, Any]:
        response = self.resolve_response(action_id, step, **body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def actions(self, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get("/v1/fraud/actions", params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    def counts(self) -> dict[str, int]:
        """Rows of every table a fraud write (or its approval) may touch, for this tenant."""
        tables: Sequence[Any] = (
            FraudScan,
            FraudFinding,
            FraudFindingMember,
            FraudAction,
            RiskListEntry,
            RiskAudit,
        )
        with self.db.session() as session:
            found = {
                t.__tablename__: int(
                    session.scalar(
                        select(func.count()).select_from(t).where(t.tenant_id == self.tenant.id)
                    )
                    or 0
                )
                for t in tables
            }
            found["reversed_events"] = int(
                session.scalar(
                    select(func.count())
                    .select_from(LoyaltyEvent)
                    .where(
                        LoyaltyEvent.tenant_id == self.tenant.id,
                        LoyaltyEvent.status == "REVERSED",
                    )
                )
                or 0
            )
        return found


def problem_fields(response: Any) -> list[str]:
    return [e.get("field") for e in response.json().get("errors", [])]


def members_of(finding: dict[str, Any]) -> set[str]:
    return {m["id"] for m in finding["members"]}


def targets_of(finding: dict[str, Any]) -> set[str]:
    return {m["id"] for m in finding["target_members"]}


def store_ids(stores: Iterable[str]) -> set[str]:
    return {f"store:{s}" for s in stores}


@pytest.fixture
def make_shop(
    client: TestClient, db: Database, make_tenant: Callable[..., TenantHandle]
) -> Callable[..., Shop]:
    def make(name: str = "Fraud shop") -> Shop:
        return Shop(client, make_tenant(name), db)

    return make


@pytest.fixture
def shop(make_shop: Callable[..., Shop]) -> Shop:
    return make_shop()


FARM = ("farm-0", "farm-1", "farm-2", "farm-3")


@pytest.fixture
def farmed(shop: Shop) -> tuple[Shop, dict[str, Any]]:
    """A shop with one cheap finding: four accounts on one phone (no loyalty events)."""
    shop.farm(FARM)
    scan = shop.scan(kinds=["shared_device"])
    (found,) = shop.findings(scan_id=scan["id"])
    return shop, shop.finding(found["id"])


@pytest.fixture
def ringed(shop: Shop) -> Shop:
    """A shop with honest members and a ring, already ingested."""
    shop.populate(make_world())
    return shop
