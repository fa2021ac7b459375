"""Hypothesis: random transfers, batches, holds and reversals over a few owners, checked
against a simple model after every step.

Whatever happens, per asset the balances sum to zero, every balance equals the sum of its
entries, no account without overdraft has a negative ``available``, and a refused operation
changes nothing."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ledger.helpers import BANK, Books
from zanloop.errors import (
    DuplicateConflict,
    InsufficientFunds,
    InvalidState,
    Unprocessable,
    ZanloopError,
)
from zanloop.kit.money import Asset
from zanloop.ledger import service
from zanloop.ledger.domain import two_party

OWNERS = (BANK, "a", "b", "c")
ASSETS = (Asset.CNY, Asset.POINTS)
_ids = itertools.count()

owner_pairs = st.lists(st.sampled_from(OWNERS), min_size=2, max_size=2, unique=True)
amounts = st.integers(min_value=1, max_value=60)
maybe_amount = st.none() | amounts
index = st.integers(min_value=0, max_value=50)
assets = st.sampled_from(ASSETS)

operations = st.one_of(
    st.tuples(st.just("transfer"), owner_pairs, amounts, assets),
    st.tuples(
        st.just("batch"), st.lists(st.tuples(owner_pairs, amounts), min_size=1, max_size=4), assets
    ),
    st.tuples(st.just("hold"), owner_pairs, amounts, assets),
    st.tuples(st.just("post"), index, maybe_amount),
    st.tuples(st.just("void"), index),
    st.tuples(st.just("reverse"), index, maybe_amount),
    st.tuples(st.just("replay"), index, st.booleans()),
)


@dataclass
class Moved:
    transfer_id: str
    src: str
    dst: str
    amount: int
    asset: Asset
    reversed: int = 0
    plain: bool = True  # posted with two_party(), so a replay can send it again


@dataclass
class HoldModel:
    hold_id: str
    src: str
    dst: str
    amount: int
    asset: Asset
    status: str = "PENDING"
    posted: int = 0


@dataclass
class Model:
    balance: Counter[tuple[str, Asset]] = field(default_factory=Counter)
    pending_out: Counter[tuple[str, Asset]] = field(default_factory=Counter)
    pending_in: Counter[tuple[str, Asset]] = field(default_factory=Counter)
    moved: list[Moved] = field(default_factory=list)
    holds: list[HoldModel] = field(default_factory=list)

    def can_spend(self, owner: str, asset: Asset, amount: int) -> bool:
        key = (owner, asset)
        return owner == BANK or self.balance[key] - amount >= self.pending_out[key]

    def move(self, src: str, dst: str, amount: int, asset: Asset) -> None:
        self.balance[(src, asset)] -= amount
        self.balance[(dst, asset)] += amount


def _expect(error: type[ZanloopError] | None, action: Callable[[], Any]) -> Any:
    """Run ``action``; it must raise ``error`` (or succeed when None)."""
    if error is None:
        return action()
    with pytest.raises(error):
        action()
    return None


def _transfer(books: Books, model: Model, pairs: list[tuple[list[str], int]], asset: Asset) -> None:
    trial = Model(Counter(model.balance), model.pending_out)
    ok = True
    for (src, dst), amount in pairs:
        ok = ok and trial.can_spend(src, asset, amount)
        trial.move(src, dst, amount, asset)
    moves = [Moved(f"t{next(_ids)}", src, dst, amount, asset) for (src, dst), amount in pairs]
    requests = [two_party(m.transfer_id, asset, m.src, m.dst, m.amount) for m in moves]

    def post() -> list[service.Posted]:
        with books.db.session() as session:
            return service.post_many(session, books.tenant_id, requests)

    posted = _expect(None if ok else InsufficientFunds, post)
    if ok:
        assert not any(p.replayed for p in posted)
        model.balance = trial.balance
        model.moved.extend(moves)


def _hold(books: Books, model: Model, src: str, dst: str, amount: int, asset: Asset) -> None:
    hold = HoldModel(f"h{next(_ids)}", src, dst, amount, asset)
    ok = model.can_spend(src, asset, amount)
    _expect(
        None if ok else InsufficientFunds, lambda: books.hold(hold.hold_id, src, dst, amount, asset)
    )
    if ok:
        model.pending_out[(src, asset)] += amount
        model.pending_in[(dst, asset)] += amount
        model.holds.append(hold)


def _settle(books: Books, model: Model, hold: HoldModel, post: bool, amount: int | None) -> None:
    wanted = hold.amount if amount is None else amount
    if hold.status == ("POSTED" if post else "VOIDED"):
        error: type[ZanloopError] | None = None  # settling the same way again changes nothing
    elif hold.status != "PENDING":
        error = InvalidState
    elif post and wanted > hold.amount:
        error = Unprocessable
    else:
        error = None
        model.pending_out[(hold.src, hold.asset)] -= hold.amount
        model.pending_in[(hold.dst, hold.asset)] -= hold.amount
        hold.status = "POSTED" if post else "VOIDED"
        if post:
            hold.posted = wanted
            model.move(hold.src, hold.dst, wanted, hold.asset)
            model.moved.append(
                Moved(f"hold:{hold.hold_id}", hold.src, hold.dst, wanted, hold.asset, plain=False)
            )
    settled = _expect(
        error,
        lambda: books.post_hold(hold.hold_id, amount) if post else books.void_hold(hold.hold_id),
    )
    if settled is not None:
        assert (settled.status, settled.posted_amount) == (hold.status, hold.posted)


def _reverse(books: Books, model: Model, original: Moved, amount: int | None) -> None:
    left = original.amount - original.reversed
    wanted = left if amount is None else amount
    error: type[ZanloopError] | None = None
    if left == 0:
        error = InvalidState
    elif wanted > left:
        error = Unprocessable
    elif not model.can_spend(original.dst, original.asset, wanted):
        error = InsufficientFunds
    reversal = Moved(
        f"r{next(_ids)}", original.dst, original.src, wanted, original.asset, plain=False
    )
    _expect(error, lambda: books.reverse(original.transfer_id, reversal.transfer_id, amount))
    if error is None:
        original.reversed += wanted
        model.move(reversal.src, reversal.dst, wanted, reversal.asset)
        model.moved.append(reversal)


def _replay(books: Books, original: Moved, same: bool) -> None:
    amount = original.amount if same else original.amount + 1
    posted = _expect(
        None if same else DuplicateConflict,
        lambda: books.transfer(
            original.transfer_id, original.src, original.dst, amount, original.asset
        ),
    )
    if same:
        assert posted.replayed


def _apply(books: Books, model: Model, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "transfer":
        _transfer(books, model, [(op[1], op[2])], op[3])
    elif kind == "batch":
        _transfer(books, model, op[1], op[2])
    elif kind == "hold":
        _hold(books, model, op[1][0], op[1][1], op[2], op[3])
    elif kind in ("post", "void") and model.holds:
        hold = model.holds[op[1] % len(model.holds)]
        _settle(books, model, hold, kind == "post", op[2] if kind == "post" else None)
    elif kind == "reverse" and model.moved:
        _reverse(books, model, model.moved[op[1] % len(model.moved)], op[2])
    elif kind == "replay":
        plain = [m for m in model.moved if m.plain]
        if plain:
            _replay(books, plain[op[1] % len(plain)], op[2])


def _check_balances(books: Books, model: Model) -> None:
    totals: Counter[Asset] = Counter()
    seen: set[tuple[str, Asset]] = set()
    with books.db.read_session() as session:
        for account in service.list_accounts(session, books.tenant_id, None, 100):
            key = (account.owner, Asset(account.asset))
            seen.add(key)
            assert account.balance == model.balance[key], key
            assert account.pending_out == model.pending_out[key], key
            assert account.pending_in == model.pending_in[key], key
            if not account.overdraft_allowed:
                assert account.balance - account.pending_out >= 0, key
            totals[key[1]] += account.balance
    assert all(total == 0 for total in totals.values()), totals
    touched = {k for counter in (model.balance, model.pending_out) for k, v in counter.items() if v}
    assert touched <= seen


def _check_entries(books: Books) -> None:
    with books.db.read_session() as session:
        for asset in ASSETS:
            for owner in OWNERS:
                balance = service.balance(session, books.tenant_id, owner, asset).balance
                assert service.entries_sum(session, books.tenant_id, owner, asset) == balance


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operations, min_size=4, max_size=20))
def test_random_ledger_operations_keep_the_books_balanced(
    make_books: Callable[[], Books], ops: list[tuple[Any, ...]]
) -> None:
    books = make_books()  # a fresh tenant: its own accounts in the shared database
    model = Model()
    for asset in ASSETS:
        books.open_bank(asset)
        _transfer(books, model, [([BANK, owner], 100) for owner in OWNERS[1:]], asset)

    for op in ops:
        _apply(books, model, op)
        _check_balances(books, model)
    _check_entries(books)
