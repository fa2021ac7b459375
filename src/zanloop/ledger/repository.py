"""Every query of the ledger.

Posting (find the transfer ids that exist, lock the accounts, write transfers, entries and
balances) is the hot path: a batch of 1,000 transfers is one statement or ``executemany`` per
step, sent with ``exec_driver_sql`` so that no per-row work happens in SQLAlchemy.

- SQLite: ``executemany`` and ``IN (?, ...)``. Datetime and JSON values are bound and read with
  SQLAlchemy's own processors for those columns, so rows are stored and read back exactly as
  SQLAlchemy itself stores and reads them.
- PostgreSQL: ``INSERT ... SELECT FROM unnest(arrays)``, one statement whatever the batch size,
  the arrays in psycopg's binary format (``%b``: far cheaper for the client than text).

Everything else goes through SQLAlchemy as usual.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from zanloop.db import dialect_insert, insert_unless_exists, is_postgres
from zanloop.kit.clock import as_utc, utcnow
from zanloop.kit.ids import new_id
from zanloop.ledger.domain import AccountState, PlannedEntry, Transfer
from zanloop.ledger.tables import LedgerAccount, LedgerEntry, LedgerHold, LedgerTransfer

_TRANSFERS = cast(Table, LedgerTransfer.__table__)
_ENTRIES = cast(Table, LedgerEntry.__table__)
# In the order of ``Transfer``'s fields.
_TRANSFER_COLUMNS = (
    LedgerTransfer.id,
    LedgerTransfer.tenant_id,
    LedgerTransfer.transfer_id,
    LedgerTransfer.asset,
    LedgerTransfer.amount,
    LedgerTransfer.reversed_amount,
    LedgerTransfer.kind,
    LedgerTransfer.reverses_id,
    LedgerTransfer.fingerprint,
    LedgerTransfer.description,
    LedgerTransfer.metadata_,
    LedgerTransfer.created_at,
)
# The same, by name, for SQL written out.
_TRANSFER_NAMES = (
    "id, tenant_id, transfer_id, asset, amount, reversed_amount, kind, reverses_id,"
    " fingerprint, description, metadata, created_at"
)
_ENTRY_NAMES = "tenant_id, transfer_pk, account_id, amount, balance_after, created_at"
# Values per SQLite ``IN (...)``: far below its limit on bound parameters.
_IN_CHUNK = 1_000


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _binder(session: Session, table: Table, column: str) -> Callable[[Any], Any]:
    """SQLAlchemy's own bind processing of ``table.column`` on this connection's dialect."""
    dialect = session.get_bind().dialect
    process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else _same


def _reader(session: Session, table: Table, column: str) -> Callable[[Any], Any]:
    """SQLAlchemy's own result processing of ``table.column`` on this connection's dialect."""
    dialect = session.get_bind().dialect
    process = table.c[column].type.dialect_impl(dialect).result_processor(dialect, None)
    return process if process is not None else _same


def _same(value: Any) -> Any:
    return value


def _stamp(session: Session, table: Table, value: datetime) -> Any:
    """``value`` as ``table.created_at`` is bound: on SQLite the text SQLAlchemy writes."""
    if is_postgres(session):
        return as_utc(value)
    return _binder(session, table, "created_at")(value)


# Accounts ---------------------------------------------------------------------------------


def ensure_accounts(
    session: Session, tenant_id: str, asset: str, owners: dict[str, bool]
) -> dict[str, AccountState]:
    """Open the accounts that do not exist yet (``owners``: owner → overdraft allowed); returns
    the ones this call opened, by owner (not those another transaction opened first)."""
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
            "overdraft_allowed": owners[owner],
            "created_at": now,
        }
        # In one order for every writer, so concurrent openings wait on each other, not in a
        # circle.
        for owner in sorted(owners)
    ]
    if not rows:
        return {}
    opened = session.execute(
        dialect_insert(session, LedgerAccount)
        .on_conflict_do_nothing(index_elements=["tenant_id", "owner", "asset"])
        .returning(LedgerAccount.id, LedgerAccount.owner),
        rows,
    )
    return {
        owner: AccountState(account_id, owner, 0, 0, owners[owner]) for account_id, owner in opened
    }


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


def lock_account_states(
    session: Session, tenant_id: str, asset: str, owners: Collection[str]
) -> dict[str, AccountState]:
    """What posting needs of the existing accounts among ``owners``, by owner; locked as by
    ``lock_accounts`` (on PostgreSQL in one query, so all in id order)."""
    connection = session.connection()
    rows: list[Any] = []
    if is_postgres(session):
        rows += connection.exec_driver_sql(
            "SELECT id, owner, balance, pending_out, overdraft_allowed FROM ledger_accounts"
            " WHERE tenant_id = %s AND asset = %s AND owner = ANY(%b::varchar[])"
            " ORDER BY id FOR UPDATE",
            (tenant_id, asset, sorted(owners)),
        ).all()
    else:
        for chunk in _chunks(sorted(owners)):
            rows += connection.exec_driver_sql(
                "SELECT id, owner, balance, pending_out, overdraft_allowed FROM ledger_accounts"
                f" WHERE tenant_id = ? AND asset = ? AND owner IN ({_marks(len(chunk))})",
                (tenant_id, asset, *chunk),
            ).all()
    return {
        owner: AccountState(account_id, owner, balance, pending_out, bool(overdraft))
        for account_id, owner, balance, pending_out, overdraft in rows
    }


def set_balances(session: Session, balances: dict[str, int]) -> None:
    """Write account balances (account id → balance); ORM objects of those accounts in the
    session are expired so that they read the new balance."""
    if not balances:
        return
    connection = session.connection()
    if is_postgres(session):
        connection.exec_driver_sql(
            "UPDATE ledger_accounts AS a SET balance = v.balance"
            " FROM unnest(%b::varchar[], %b::bigint[]) AS v(id, balance) WHERE a.id = v.id",
            (list(balances), list(balances.values())),
        )
    else:
        connection.exec_driver_sql(
            "UPDATE ledger_accounts SET balance = ? WHERE id = ?",
            [(balance, account_id) for account_id, balance in balances.items()],
        )
    identity_map = session.identity_map
    for key in list(identity_map.keys()):
        if key[0] is LedgerAccount and key[1][0] in balances:
            session.expire(identity_map[key], ["balance"])


# Transfers --------------------------------------------------------------------------------


def find_transfers(session: Session, tenant_id: str, transfer_ids: Sequence[str]) -> list[Transfer]:
    """The transfers among ``transfer_ids`` that exist."""
    if not transfer_ids:
        return []
    connection = session.connection()
    rows: list[Any] = []
    if is_postgres(session):
        # One unique-index probe per id, whatever the statistics say. With ``transfer_id =
        # ANY(...)`` the planner may scan all of the tenant's transfers instead, and does on a
        # young table (20 batches into the benchmark, the lookup took 120 ms). ``LIMIT 1``
        # keeps the lateral subquery from being flattened into a join it could hash.
        rows += connection.exec_driver_sql(
            f"SELECT t.* FROM unnest(%b::varchar[]) AS wanted(transfer_id)"
            f" CROSS JOIN LATERAL (SELECT {_TRANSFER_NAMES} FROM ledger_transfers"
            " WHERE tenant_id = %s AND transfer_id = wanted.transfer_id LIMIT 1) AS t",
            (list(transfer_ids), tenant_id),
        ).all()
    else:
        for chunk in _chunks(transfer_ids):
            rows += connection.exec_driver_sql(
                f"SELECT {_TRANSFER_NAMES} FROM ledger_transfers"
                f" WHERE tenant_id = ? AND transfer_id IN ({_marks(len(chunk))})",
                (tenant_id, *chunk),
            ).all()
    if not rows:
        return []
    metadata = _reader(session, _TRANSFERS, "metadata")
    created_at = _reader(session, _TRANSFERS, "created_at")
    return [Transfer._make((*row[:10], metadata(row[10]), created_at(row[11]))) for row in rows]


def insert_transfers(
    session: Session, tenant_id: str, created_at: datetime, transfers: Sequence[Transfer]
) -> None:
    """Insert new transfers of ``tenant_id`` made at ``created_at``, in the order given. A
    transfer id that exists already (on PostgreSQL: committed by a concurrent transaction since
    it was looked up) raises IntegrityError."""
    if not transfers:
        return
    stamp = _stamp(session, _TRANSFERS, created_at)
    connection = session.connection()
    if is_postgres(session):
        connection.exec_driver_sql(
            f"INSERT INTO ledger_transfers ({_TRANSFER_NAMES})"
            " SELECT id, %s, transfer_id, asset, amount, reversed_amount, kind, reverses_id,"
            " fingerprint, description, metadata::json, %s"
            " FROM unnest(%b::varchar[], %b::varchar[], %b::varchar[], %b::bigint[],"
            " %b::bigint[], %b::varchar[], %b::varchar[], %b::varchar[], %b::varchar[],"
            " %b::text[]) WITH ORDINALITY AS t(id, transfer_id, asset, amount,"
            " reversed_amount, kind, reverses_id, fingerprint, description, metadata, n)"
            " ORDER BY n",
            (
                tenant_id,
                stamp,
                [t.id for t in transfers],
                [t.transfer_id for t in transfers],
                [t.asset for t in transfers],
                [t.amount for t in transfers],
                [t.reversed_amount for t in transfers],
                [t.kind for t in transfers],
                [t.reverses_id for t in transfers],
                [t.fingerprint for t in transfers],
                [t.description for t in transfers],
                # The json column keeps this text as is: what SQLAlchemy's JSON type sends.
                [json.dumps(t.metadata) if t.metadata else "{}" for t in transfers],
            ),
        )
        return
    dump = _binder(session, _TRANSFERS, "metadata")
    empty = dump({})
    connection.exec_driver_sql(
        f"INSERT INTO ledger_transfers ({_TRANSFER_NAMES})"
        f" VALUES ({', '.join('?' * len(_TRANSFER_COLUMNS))})",
        [
            (
                t.id,
                tenant_id,
                t.transfer_id,
                t.asset,
                t.amount,
                t.reversed_amount,
                t.kind,
                t.reverses_id,
                t.fingerprint,
                t.description,
                dump(t.metadata) if t.metadata else empty,
                stamp,
            )
            for t in transfers
        ],
    )


def insert_entries(
    session: Session,
    tenant_id: str,
    created_at: datetime,
    transfer_pks: Sequence[str],
    planned: Sequence[PlannedEntry],
) -> None:
    """Append the planned entries in order (ids ascending); ``transfer_pks[i]`` is the primary
    key of the transfer that ``transfer_index`` ``i`` names."""
    if not planned:
        return
    stamp = _stamp(session, _ENTRIES, created_at)
    connection = session.connection()
    if is_postgres(session):
        connection.exec_driver_sql(
            f"INSERT INTO ledger_entries ({_ENTRY_NAMES})"
            " SELECT %s, transfer_pk, account_id, amount, balance_after, %s"
            " FROM unnest(%b::varchar[], %b::varchar[], %b::bigint[], %b::bigint[])"
            " WITH ORDINALITY AS e(transfer_pk, account_id, amount, balance_after, n)"
            " ORDER BY n",
            (
                tenant_id,
                stamp,
                [transfer_pks[p.transfer_index] for p in planned],
                [p.account_id for p in planned],
                [p.amount for p in planned],
                [p.balance_after for p in planned],
            ),
        )
        return
    connection.exec_driver_sql(
        f"INSERT INTO ledger_entries ({_ENTRY_NAMES}) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (tenant_id, transfer_pks[index], account_id, amount, balance_after, stamp)
            for index, account_id, amount, balance_after in planned
        ],
    )


def get_transfer(session: Session, tenant_id: str, transfer_id: str) -> Transfer | None:
    row = session.execute(
        select(*_TRANSFER_COLUMNS).where(
            LedgerTransfer.tenant_id == tenant_id, LedgerTransfer.transfer_id == transfer_id
        )
    ).first()
    return None if row is None else Transfer(*row)


def get_transfer_by_pk(session: Session, tenant_id: str, transfer_pk: str) -> Transfer | None:
    row = session.execute(
        select(*_TRANSFER_COLUMNS).where(
            LedgerTransfer.tenant_id == tenant_id, LedgerTransfer.id == transfer_pk
        )
    ).first()
    return None if row is None else Transfer(*row)


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
    return insert_unless_exists(session, LedgerHold, row, ["tenant_id", "hold_id"])


def get_hold(
    session: Session, tenant_id: str, hold_id: str, *, lock: bool = False
) -> LedgerHold | None:
    stmt = select(LedgerHold).where(
        LedgerHold.tenant_id == tenant_id, LedgerHold.hold_id == hold_id
    )
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


def adjust_pending(
    session: Session, account_id: str, *, out_delta: int = 0, in_delta: int = 0
) -> None:
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


def expired_holds(session: Session, now: datetime, limit: int) -> list[tuple[str, str]]:
    rows = session.execute(
        select(LedgerHold.tenant_id, LedgerHold.hold_id)
        .where(
            LedgerHold.status == "PENDING",
            LedgerHold.expires_at.is_not(None),
            LedgerHold.expires_at <= now,
        )
        .order_by(LedgerHold.expires_at)
        .limit(limit)
    )
    return [(tenant_id, hold_id) for tenant_id, hold_id in rows]


def account_balances(
    session: Session, tenant_id: str, asset: str, owners: Collection[str]
) -> dict[str, tuple[int, int, int]]:
    """(balance, pending_out, pending_in) of each existing account among ``owners``. On
    PostgreSQL one ``= ANY(array)`` query: a long ``IN`` list is planned far more slowly."""
    if is_postgres(session):
        listed = session.connection().exec_driver_sql(
            "SELECT owner, balance, pending_out, pending_in FROM ledger_accounts"
            " WHERE tenant_id = %s AND asset = %s AND owner = ANY(%b::varchar[])",
            (tenant_id, asset, sorted(owners)),
        )
        return {o: (int(b), int(po), int(pi)) for o, b, po, pi in listed}
    found: dict[str, tuple[int, int, int]] = {}
    for chunk in _chunks(sorted(owners)):
        rows = session.execute(
            select(
                LedgerAccount.owner,
                LedgerAccount.balance,
                LedgerAccount.pending_out,
                LedgerAccount.pending_in,
            ).where(
                LedgerAccount.tenant_id == tenant_id,
                LedgerAccount.asset == asset,
                LedgerAccount.owner.in_(chunk),
            )
        )
        found.update((o, (int(b), int(po), int(pi))) for o, b, po, pi in rows)
    return found
