from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from zanloop.db import bulk_update, dialect_insert, insert_unless_exists, is_postgres
from zanloop.kit.clock import utcnow
from zanloop.quotas.tables import QuotaCounter


def take(session: Session, tenant_id: str, scope: str, key: str, amount: int, limit: int) -> bool:
    """One conditional UPDATE: on PostgreSQL the row lock makes concurrent takers queue and
    re-check ``used + amount <= limit`` against the committed value, so a limit never overshoots
    whatever the concurrency; SQLite has one writer at a time anyway."""
    insert_unless_exists(
        session,
        QuotaCounter,
        {"tenant_id": tenant_id, "scope": scope, "key": key, "used": 0, "updated_at": utcnow()},
        ["tenant_id", "scope", "key"],
    )
    result = session.execute(
        update(QuotaCounter)
        .where(
            QuotaCounter.tenant_id == tenant_id,
            QuotaCounter.scope == scope,
            QuotaCounter.key == key,
            QuotaCounter.used + amount <= limit,
        )
        .values(used=QuotaCounter.used + amount, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def give_back(session: Session, tenant_id: str, scope: str, key: str, amount: int) -> None:
    session.execute(
        update(QuotaCounter)
        .where(
            QuotaCounter.tenant_id == tenant_id,
            QuotaCounter.scope == scope,
            QuotaCounter.key == key,
        )
        .values(used=QuotaCounter.used - amount, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def used(session: Session, tenant_id: str, scope: str, keys: Iterable[str]) -> dict[str, int]:
    rows = session.execute(
        select(QuotaCounter.key, QuotaCounter.used).where(
            QuotaCounter.tenant_id == tenant_id,
            QuotaCounter.scope == scope,
            QuotaCounter.key.in_(list(keys)),
        )
    )
    return {key: int(value) for key, value in rows}


def lock_many(
    session: Session, tenant_id: str, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Counters of many (scope, key) pairs, opened at 0 where missing and locked in key order
    on PostgreSQL, for a batch that checks and counts in memory and then ``set_many``.

    PostgreSQL: every row is inserted-if-missing first, then all are locked in one ordered
    pass, so two batches never hold locks out of order. SQLite has one writer at a time: the
    existing rows are read and only the missing ones inserted."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    postgres = is_postgres(session)
    found = {} if postgres else _counts(session, tenant_id, wanted, lock=False)
    missing = [pair for pair in wanted if pair not in found]
    if missing:
        now = utcnow()
        session.execute(
            dialect_insert(session, QuotaCounter.__table__).on_conflict_do_nothing(
                index_elements=["tenant_id", "scope", "key"]
            ),
            [
                {"tenant_id": tenant_id, "scope": s, "key": k, "used": 0, "updated_at": now}
                for s, k in missing
            ],
        )
        found.update((pair, 0) for pair in missing)
    if postgres:
        found = _counts(session, tenant_id, wanted, lock=True)
    return found


def _counts(
    session: Session, tenant_id: str, wanted: list[tuple[str, str]], *, lock: bool
) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    by_scope: dict[str, list[str]] = {}
    for scope, key in wanted:
        by_scope.setdefault(scope, []).append(key)
    for scope, names in sorted(by_scope.items()):
        for start in range(0, len(names), 900):
            stmt = (
                select(QuotaCounter.key, QuotaCounter.used)
                .where(
                    QuotaCounter.tenant_id == tenant_id,
                    QuotaCounter.scope == scope,
                    QuotaCounter.key.in_(names[start : start + 900]),
                )
                .order_by(QuotaCounter.key)
            )
            if lock:
                stmt = stmt.with_for_update()
            found.update(((scope, k), int(u)) for k, u in session.execute(stmt))
    return found


def set_many(session: Session, tenant_id: str, values: dict[tuple[str, str], int]) -> None:
    now = utcnow()
    bulk_update(
        session,
        QuotaCounter,
        ["tenant_id", "scope", "key"],
        [
            {"used": u, "updated_at": now, "tenant_id": tenant_id, "scope": s, "key": k}
            for (s, k), u in sorted(values.items())
        ],
    )
