"""Take from a limit and give back: stock, budgets and per-user caps that hold under any
concurrency, because checking and counting are one statement.

A taker passes the limit each time (it lives with the coupon template or campaign that sets it),
so raising a limit takes effect at once. ``Taken`` records what was taken, so whoever undoes the
effect (a refund, a rollback of a failed multi-quota take) gives back exactly that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session

from zanloop.quotas import repository


@dataclass(frozen=True)
class Ask:
    scope: str
    key: str
    amount: int
    limit: int


@dataclass(frozen=True)
class Taken:
    scope: str
    key: str
    amount: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Taken:
        return cls(str(data["scope"]), str(data["key"]), int(data["amount"]))


def take_all(session: Session, tenant_id: str, asks: Sequence[Ask]) -> Ask | None:
    """Take every ask, or none: the first ask that does not fit is returned (and whatever was
    already taken is given back); None when all fit."""
    taken: list[Taken] = []
    for ask in asks:
        if ask.amount == 0:
            continue
        if not repository.take(session, tenant_id, ask.scope, ask.key, ask.amount, ask.limit):
            give_back(session, tenant_id, taken)
            return ask
        taken.append(Taken(ask.scope, ask.key, ask.amount))
    return None


def give_back(session: Session, tenant_id: str, taken: Iterable[Taken]) -> None:
    for t in taken:
        repository.give_back(session, tenant_id, t.scope, t.key, t.amount)


def used(session: Session, tenant_id: str, scope: str, keys: Iterable[str]) -> dict[str, int]:
    return repository.used(session, tenant_id, scope, keys)


class Tally:
    """Many limits checked and counted in memory for one batch: ``open`` locks the counters the
    batch may touch, ``fits`` and ``take`` work on the copy, ``save`` writes what changed. The
    counters stay locked until the batch commits, so concurrent batches still never overshoot."""

    def __init__(self, session: Session, tenant_id: str, keys: Iterable[tuple[str, str]]) -> None:
        self._session = session
        self._tenant_id = tenant_id
        self._used = repository.lock_many(session, tenant_id, keys)
        self._changed: set[tuple[str, str]] = set()

    def _count(self, pair: tuple[str, str]) -> int:
        if pair not in self._used:  # not foreseen by the batch: lock it now
            self._used.update(repository.lock_many(self._session, self._tenant_id, [pair]))
        return self._used[pair]

    def fits(self, ask: Ask) -> bool:
        return self._count((ask.scope, ask.key)) + ask.amount <= ask.limit

    def take(self, ask: Ask) -> Taken:
        pair = (ask.scope, ask.key)
        self._used[pair] = self._count(pair) + ask.amount
        self._changed.add(pair)
        return Taken(ask.scope, ask.key, ask.amount)

    def give_back(self, taken: Iterable[Taken]) -> None:
        for t in taken:
            pair = (t.scope, t.key)
            self._used[pair] = self._count(pair) - t.amount
            self._changed.add(pair)

    def save(self) -> None:
        repository.set_many(
            self._session, self._tenant_id, {p: self._used[p] for p in self._changed}
        )
        self._changed.clear()
