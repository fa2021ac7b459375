"""Every query of the ledger."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from zanloop.db import dialect_insert, is_postgres
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.ledger.tables import LedgerAccount, LedgerEntry, LedgerHold, LedgerTransfer


def ensure_accounts(
    session: Session, tenant_id: str, asset: str, owners: dict[str, bool]
) -> None:
    """Open the accounts that do not exist yet (``owners``: owner → overdraft allowed)."""
    now = utcnow()
    rows = [
        {
            "id": new_id("acc"),
            "tenant_id": tenant_id,
            "owner": owner,
            "asset": asset,
            "balance": 0,
            "pending_out": 0,
            "pending_in": 0,
            "overdraft_allowed": overdraft,
            "created_at": now,
        }
        for owner, overdraft in owners.items()
    ]
    if rows:
        session.execute(
            dialect_insert(session, LedgerAccount).on_conflict_do_nothing(
                index_elements=["tenant_id", "owner", "asset"]
            ),
            rows,
        )


def lock_accounts(
    session: Session, tenant_id: str, asset: str, owners: Iterable[str]
) -> list[LedgerAccount]:
    """Accounts by owner, row-locked in id order on PostgreSQL (SQLite writers hold the
    database lock already), so concurrent postings to one account serialise without deadlock."""
    stmt = (
        select(LedgerAccount)
        .where(
            LedgerAccount.tenant_id == tenant_id,
            LedgerAccount.asset == asset,
            LedgerAccount.owner.in_(sorted(set(owners))),
        )
        .order_by(LedgerAccount.id)
        .execution_options(populate_existing=True)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


def insert_new_transfers(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert transfers, skipping ids that exist; returns the transfer_ids actually inserted."""
    if not rows:
        return set()
    stmt = (
        dialect_insert(session, LedgerTransfer)
        .on_conflict_do_nothing(index_elements=["tenant_id", "transfer_id"])
        .returning(LedgerTransfer.transfer_id)
    )
    inserted: set[str] = set()
    # RETURNING with executemany is not portable; one multi-row VALUES per chunk is.
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        inserted.update(session.scalars(stmt.values(chunk)).all())
    return inserted


def insert_entries(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        # Core insert (no ORM bookkeeping): entries are written in bulk and never loaded back.
        session.execute(insert(cast(Table, LedgerEntry.__table__)), rows)


def set_balances(session: Session, balances: dict[str, int]) -> None:
    if balances:
        session.execute(
            update(LedgerAccount),
            [{"id": account_id, "balance": value} for account_id, value in balances.items()],
        )


def get_transfers(session: Session, tenant_id: str, transfer_ids: Sequence[str]) -> list[LedgerTransfer]:
    return list(
        session.scalars(
            select(LedgerTransfer).where(
                LedgerTransfer.tenant_id == tenant_id,
                LedgerTransfer.transfer_id.in_(transfer_ids),
            )
        )
    )


def get_transfer(session: Session, tenant_id: str, transfer_id: str) -> LedgerTransfer | None:
    return session.scalar(
        select(LedgerTransfer).where(
            LedgerTransfer.tenant_id == tenant_id, LedgerTransfer.transfer_id == transfer_id
        )
    )


def get_transfer_by_pk(session: Session, tenant_id: str, transfer_pk: str) -> LedgerTransfer | None:
    return session.scalar(
        select(LedgerTransfer).where(
            LedgerTransfer.tenant_id == tenant_id, LedgerTransfer.id == transfer_pk
        )
    )


def transfer_legs(session: Session, transfer_pk: str) -> list[tuple[str, int]]:
    return [
        (owner, amount)
        for owner, amount in session.execute(
            select(LedgerAccount.owner, LedgerEntry.amount)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerEntry.transfer_pk == transfer_pk)
            .order_by(LedgerEntry.id)
        )
    ]


def add_reversed(session: Session, transfer_pk: str, amount: int) -> bool:
    """Count ``amount`` as reversed unless that would exceed what the transfer moved."""
    result = session.execute(
        update(LedgerTransfer)
        .where(
            LedgerTransfer.id == transfer_pk,
            LedgerTransfer.amount - LedgerTransfer.reversed_amount >= amount,
        )
        .values(reversed_amount=LedgerTransfer.reversed_amount + amount)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def get_account(session: Session, tenant_id: str, owner: str, asset: str) -> LedgerAccount | None:
    return session.scalar(
        select(LedgerAccount).where(
            LedgerAccount.tenant_id == tenant_id,
            LedgerAccount.owner == owner,
            LedgerAccount.asset == asset,
        )
    )


def list_accounts(
    session: Session, tenant_id: str, after_id: str | None, limit: int
) -> list[LedgerAccount]:
    stmt = select(LedgerAccount).where(LedgerAccount.tenant_id == tenant_id)
    if after_id is not None:
        stmt = stmt.where(LedgerAccount.id > after_id)
    return list(session.scalars(stmt.order_by(LedgerAccount.id).limit(limit)))


def list_entries(
    session: Session, account_id: str, before_id: int | None, limit: int
) -> list[tuple[LedgerEntry, str]]:
    stmt = (
        select(LedgerEntry, LedgerTransfer.transfer_id)
        .join(LedgerTransfer, LedgerTransfer.id == LedgerEntry.transfer_pk)
        .where(LedgerEntry.account_id == account_id)
    )
    if before_id is not None:
        stmt = stmt.where(LedgerEntry.id < before_id)
    return [(e, t) for e, t in session.execute(stmt.order_by(LedgerEntry.id.desc()).limit(limit))]


def sum_entries(session: Session, account_id: str) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                LedgerEntry.account_id == account_id
            )
        )
        or 0
    )


def insert_hold(session: Session, row: dict[str, Any]) -> bool:
    result = session.execute(
        dialect_insert(session, LedgerHold)
        .values(row)
        .on_conflict_do_nothing(index_elements=["tenant_id", "hold_id"])
        .returning(LedgerHold.id)
    )
    return result.first() is not None


def get_hold(session: Session, tenant_id: str, hold_id: str, *, lock: bool = False) -> LedgerHold | None:
    stmt = select(LedgerHold).where(LedgerHold.tenant_id == tenant_id, LedgerHold.hold_id == hold_id)
    if lock and is_postgres(session):
        stmt = stmt.with_for_update()
    return session.scalar(stmt.execution_options(populate_existing=True))


def resolve_hold(
    session: Session, hold_pk: str, status: str, posted_amount: int, transfer_pk: str | None
) -> bool:
    """Move a PENDING hold to its final state; False if someone else resolved it first."""
    result = session.execute(
        update(LedgerHold)
        .where(LedgerHold.id == hold_pk, LedgerHold.status == "PENDING")
        .values(
            status=status,
            posted_amount=posted_amount,
            transfer_pk=transfer_pk,
            resolved_at=utcnow(),
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def adjust_pending(session: Session, account_id: str, *, out_delta: int = 0, in_delta: int = 0) -> None:
    session.execute(
        update(LedgerAccount)
        .where(LedgerAccount.id == account_id)
        .values(
            pending_out=LedgerAccount.pending_out + out_delta,
            pending_in=LedgerAccount.pending_in + in_delta,
        )
    )


def account_by_id(session: Session, account_id: str) -> LedgerAccount | None:
    return session.get(LedgerAccount, account_id)
