"""What parts (1) SQLite and (2) PostgreSQL of ``zanloop bench loyalty`` share: the seeded
template database, one pass of ``loyalty.service.ingest_events`` batch by batch (timed), the
pass checked against the independent computation (``loyalty_workload.expected``), and a part's
figures and checks in the report. The method: ``zanloop.bench.loyalty``.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, insert, select

from zanloop.bench.loyalty_ceiling import BatchRows, Capture, Ceiling
from zanloop.bench.loyalty_workload import (
    PARTNER_STORE,
    WARMUP_BATCH,
    Expected,
    LoyaltySizes,
    Workload,
)
from zanloop.bench.report import Report, ms
from zanloop.db import Database
from zanloop.kit.clock import utcnow
from zanloop.kit.money import Asset
from zanloop.ledger import service as ledger
from zanloop.ledger.tables import LedgerAccount, LedgerEntry
from zanloop.loyalty import service
from zanloop.loyalty.domain import ISSUER, available_owner, pending_owner
from zanloop.loyalty.ingest import Incoming
from zanloop.loyalty.tables import LoyaltyEvent, LoyaltyLot, LoyaltyMember, LoyaltyTierChange
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import TenantKind

SEED_SECTION = "seed"


# Setup ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    tenant_id: str
    api_key: str
    secret: str
    seconds: float


def seed(db: Database, load: Workload) -> Seeded:
    """The tenant, its programme with the default rules and tasks on, and the members."""
    started = time.perf_counter()
    now = utcnow()
    with db.session() as session:
        tenant, issued = tenancy.create_tenant(session, "bench loyalty", TenantKind.MERCHANT)
        service.install_defaults(session, tenant.id, activate=True, partner_stores=[PARTNER_STORE])
        programme = service.programme(session, tenant.id)
        first_tier = service.settings(session, tenant.id).first_tier
        session.execute(
            insert(LoyaltyMember),
            [
                {
                    "tenant_id": tenant.id,
                    "user_id": user,
                    "tier": first_tier,
                    "base_tier": first_tier,
                    "birthday": load.birthdays.get(user),
                    "owed_points": 0,
                    "tier_changed_at": now,
                    "created_at": now,
                }
                for user in load.members
            ],
        )
        secret = programme.receipt_secret
    return Seeded(tenant.id, issued.plaintext, secret, time.perf_counter() - started)


# One pass of ingest --------------------------------------------------------------------------


@dataclass
class Pass:
    batch_seconds: list[float]
    cpu_seconds: float
    events: int
    statuses: Counter[str]
    outcome_points: dict[str, int]

    @property
    def seconds(self) -> float:
        return sum(self.batch_seconds)

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def ingest_pass(
    db: Database, tenant_id: str, batches: list[list[Incoming]], capture: Capture | None
) -> Pass:
    batch_seconds: list[float] = []
    cpu = 0.0
    statuses: Counter[str] = Counter()
    points: dict[str, int] = {}
    for index, batch in enumerate(batches):
        c0, t0 = time.process_time(), time.perf_counter()
        with db.session() as session:
            result = service.ingest_events(session, tenant_id, batch)
        seconds, cpu_used = time.perf_counter() - t0, time.process_time() - c0
        if index != WARMUP_BATCH:
            batch_seconds.append(seconds)
            cpu += cpu_used
        for outcome in result.outcomes:
            statuses[outcome.status] += 1
            points[outcome.event_id] = outcome.points
        if capture is not None:
            capture.batch()
    timed = sum(len(b) for i, b in enumerate(batches) if i != WARMUP_BATCH)
    return Pass(batch_seconds, cpu, timed, statuses, points)


# Checks --------------------------------------------------------------------------------------


def stored_key(load: Workload, event_id: str) -> str:
    """A receipt scan is stored under its code's nonce, not the sender's id."""
    receipt = load.receipts.get(event_id)
    return f"receipt:{receipt[0]}" if receipt is not None else event_id


def check_pass(
    db: Database, tenant_id: str, load: Workload, model: Expected, result: Pass
) -> list[str]:
    """What differs from the independent computation (empty: nothing)."""
    problems: list[str] = []
    total = sum(len(b) for b in load.batches)
    if result.statuses != Counter({"applied": total}):
        problems.append(f"outcomes {dict(result.statuses)}")
    wrong = [e for e, p in model.points.items() if result.outcome_points.get(e) != p]
    if wrong:
        problems.append(f"{len(wrong)} outcomes' points differ, first {wrong[0]}")
    with db.read_session() as session:
        stored = {
            key: (status, points)
            for key, status, points in session.execute(
                select(LoyaltyEvent.event_id, LoyaltyEvent.status, LoyaltyEvent.points).where(
                    LoyaltyEvent.tenant_id == tenant_id
                )
            )
        }
        users = sorted(model.members)
        tiers = dict(
            session.execute(
                select(LoyaltyMember.user_id, LoyaltyMember.tier).where(
                    LoyaltyMember.tenant_id == tenant_id
                )
            ).all()
        )
        owners = [available_owner(u) for u in users] + [pending_owner(u) for u in users]
        balances = ledger.balances(session, tenant_id, owners, Asset.POINTS)
        issuer = ledger.balance(session, tenant_id, ISSUER, Asset.POINTS).balance
        lots, lot_points = session.execute(
            select(func.count(), func.coalesce(func.sum(LoyaltyLot.points), 0)).where(
                LoyaltyLot.tenant_id == tenant_id
            )
        ).one()
        tier_changes = session.scalar(
            select(func.count()).where(LoyaltyTierChange.tenant_id == tenant_id)
        )
        accounts = session.execute(
            select(LedgerAccount.id, LedgerAccount.balance).where(
                LedgerAccount.tenant_id == tenant_id, LedgerAccount.asset == Asset.POINTS.value
            )
        ).all()
        entry_sums = dict(
            session.execute(
                select(LedgerEntry.account_id, func.sum(LedgerEntry.amount))
                .where(LedgerEntry.tenant_id == tenant_id)
                .group_by(LedgerEntry.account_id)
            ).all()
        )
    expected_stored = {stored_key(load, e): ("APPLIED", p) for e, p in model.points.items()}
    if stored != expected_stored:
        differ = [k for k, v in expected_stored.items() if stored.get(k) != v]
        problems.append(
            f"{len(stored):,} events stored, {len(differ)} differ from the independent "
            f"computation" + (f", first {differ[0]}: {stored.get(differ[0])}" if differ else "")
        )
    members_wrong = [
        u
        for u in users
        if (
            balances[available_owner(u)].balance,
            balances[pending_owner(u)].balance,
            tiers.get(u),
        )
        != model.balance(u)
    ]
    if members_wrong or len(tiers) != len(users):
        u = members_wrong[0] if members_wrong else "-"
        problems.append(
            f"{len(members_wrong)} of {len(users):,} members' balances or tiers differ "
            f"({len(tiers):,} members stored), first {u}"
        )
    if (lots, lot_points, -issuer) != (model.lots, model.issued, model.issued):
        problems.append(
            f"lots {lots:,} of {lot_points:,} points, issuer {issuer:,}; expected "
            f"{model.lots:,} of {model.issued:,}"
        )
    if tier_changes != model.tier_changes:
        problems.append(f"{tier_changes} tier changes, expected {model.tier_changes}")
    if sum(b for _, b in accounts) != 0:
        problems.append(f"POINTS balances sum to {sum(b for _, b in accounts)}")
    if any(entry_sums.get(a, 0) != b for a, b in accounts):
        problems.append("an account's balance differs from the sum of its entries")
    return problems


# Reporting a part ----------------------------------------------------------------------------


def _short(table: str) -> str:
    return table.removeprefix("loyalty_").removeprefix("ledger_").replace("_", " ")


def _rows_per_batch(captured: list[BatchRows], which: str) -> tuple[float, str]:
    """Mean rows per timed batch: in all, and per table (largest first)."""
    timed = [b for i, b in enumerate(captured) if i != WARMUP_BATCH]
    totals: Counter[str] = Counter()
    for b in timed:
        for table, rows in getattr(b, which).items():
            totals[table] += len(rows)
    n = max(1, len(timed))
    detail = ", ".join(f"{_short(t)} {count / n:,.0f}" for t, count in totals.most_common())
    return sum(totals.values()) / n, detail or "none"


def report_part(
    report: Report,
    section: str,
    engine: str,
    driver: str,
    target: int,
    passes: list[Pass],
    ceilings: list[Ceiling],
    captured: list[BatchRows],
    sizes: LoyaltySizes,
) -> None:
    rates = sorted(p.per_second for p in passes)
    median = statistics.median(rates)
    batch = f"{sizes.batch_size:,}"
    report.add(
        section,
        f"ingest_events on {engine}: events/s, median of {len(passes)} pass(es)",
        f"{median:,.0f}/s",
        f">= {target:,}/s",
        median >= target,
    )
    if len(rates) > 1:
        report.add(section, "  passes (slowest-fastest)", f"{rates[0]:,.0f}-{rates[-1]:,.0f}/s")
    all_batches = [s for p in passes for s in p.batch_seconds]
    report.add(
        section,
        f"  median ms per {batch}-event batch (1 commit)",
        ms(statistics.median(all_batches)),
    )
    cpu = statistics.median(p.cpu_seconds / p.events for p in passes)
    report.add(
        section,
        "  bench process CPU per event (one-core ceiling)",
        f"{cpu * 1e6:,.0f} us ({1 / cpu:,.0f}/s)" if cpu > 0 else "n/a",
    )
    if ceilings:
        raw_rates = sorted(c.per_second for c in ceilings)
        raw_median = statistics.median(raw_rates)
        report.add(
            section,
            f"raw {driver} executemany, same rows: events/s",
            f"{raw_median:,.0f}/s",
        )
        raw_batches = [s for c in ceilings for s in c.batch_seconds]
        report.add(
            section,
            f"  median ms per {batch}-event batch (1 commit)",
            ms(statistics.median(raw_batches)),
        )
        report.add(
            section, "ingest / raw ceiling", f"{median / raw_median:.2f}" if raw_median else "n/a"
        )
    if captured:
        inserted, inserted_detail = _rows_per_batch(captured, "inserted")
        updated, updated_detail = _rows_per_batch(captured, "updated")
        report.add(
            section, "rows inserted / updated per batch (mean)", f"{inserted:,.0f} / {updated:,.0f}"
        )
        body = (
            f"rows per {batch}-event batch, read back from the first pass: "
            f"inserted {inserted_detail}; updated {updated_detail}"
        )
        earlier = next((n for n in report.notes if n.endswith(body)), None)
        report.notes.append(
            f"{section} {body}"
            if earlier is None
            else f"{section} rows per batch: the same as {earlier.split()[0]}"
        )


def check_part(
    report: Report,
    section: str,
    engine: str,
    problems: list[str],
    uncovered: list[str],
    ceiling_problems: list[str],
    model: Expected,
) -> None:
    report.check(
        f"{section} {engine}: every event applied; points, balances, tiers, lots == the "
        "independent computation; POINTS sum to 0, each account == its entries",
        not problems,
        "; ".join(problems[:3])
        if problems
        else f"{len(model.points):,} events, {len(model.members):,} members, "
        f"{model.lots:,} lots, {model.tier_changes:,} tier changes",
    )
    report.check(
        f"{section} raw ceiling covers every table the ingest wrote",
        not uncovered,
        "; ".join(uncovered[:3]),
    )
    report.check(
        f"{section} raw ceiling ends with the same rows per table and account balances",
        not ceiling_problems,
        "; ".join(ceiling_problems[:3]),
    )
