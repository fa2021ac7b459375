"""Ledger workflows against the real database: transfers, batches, reversals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import event

from tests.ledger.helpers import BANK, Books
from zanloop.errors import (
    DuplicateConflict,
    InsufficientFunds,
    InvalidState,
    NotFound,
    Unprocessable,
)
from zanloop.kit.money import Asset
from zanloop.ledger import repository, service
from zanloop.ledger.domain import Leg, TransferRequest, two_party


def _balances(books: Books, *owners: str) -> dict[str, int]:
    return {owner: books.balance(owner).balance for owner in owners}


def _post_batch(books: Books, *requests: TransferRequest) -> list[service.Posted]:
    with books.db.session() as session:
        return service.post_many(session, books.tenant_id, list(requests))


def _transfer_exists(books: Books, transfer_id: str) -> bool:
    with books.db.read_session() as session:
        try:
            service.get_transfer(session, books.tenant_id, transfer_id)
        except NotFound:
            return False
    return True


# Transfers ----------------------------------------------------------------------------------


def test_a_transfer_moves_money_and_the_books_sum_to_zero(books: Books) -> None:
    books.fund("alice", 1000)

    books.transfer("t1", "alice", "bob", 300)

    assert _balances(books, BANK, "alice", "bob") == {BANK: -1000, "alice": 700, "bob": 300}
    for owner in (BANK, "alice", "bob"):
        assert books.entries_sum(owner) == books.balance(owner).balance


def test_a_multi_leg_transfer_splits_money(books: Books) -> None:
    books.fund("shop", 100)
    request = TransferRequest(
        "split", Asset.CNY, (Leg("shop", -100), Leg("creator", 90), Leg("platform", 10))
    )

    _post_batch(books, request)

    assert _balances(books, "shop", "creator", "platform") == {
        "shop": 0,
        "creator": 90,
        "platform": 10,
    }


def test_assets_are_separate_accounts(books: Books) -> None:
    books.fund("alice", 50, Asset.POINTS)

    assert books.balance("alice", Asset.POINTS).balance == 50
    assert books.balance("alice", Asset.CNY).balance == 0


def test_an_unknown_owner_has_a_zero_balance(books: Books) -> None:
    assert books.balance("nobody").balance == 0
    assert books.entries_sum("nobody") == 0


def test_the_same_transfer_id_posts_once(books: Books) -> None:
    books.fund("alice", 1000)

    first = books.transfer("t1", "alice", "bob", 300)
    again = books.transfer("t1", "alice", "bob", 300)

    assert (first.replayed, again.replayed) == (False, True)
    assert again.transfer.id == first.transfer.id
    assert _balances(books, "alice", "bob") == {"alice": 700, "bob": 300}


@pytest.mark.parametrize(
    ("from_owner", "to_owner", "amount"),
    [
        pytest.param("alice", "bob", 301, id="other-amount"),
        pytest.param("alice", "carol", 300, id="other-recipient"),
        pytest.param("bob", "alice", 300, id="other-direction"),
    ],
)
def test_the_same_transfer_id_with_other_content_is_a_conflict(
    books: Books, from_owner: str, to_owner: str, amount: int
) -> None:
    books.fund("alice", 1000)
    books.fund("bob", 1000)
    books.transfer("t1", "alice", "bob", 300)

    with pytest.raises(DuplicateConflict):
        books.transfer("t1", from_owner, to_owner, amount)

    assert _balances(books, "alice", "bob", "carol") == {"alice": 700, "bob": 1300, "carol": 0}


def test_overdraft_is_refused_and_nothing_changes(books: Books) -> None:
    books.fund("alice", 100)

    with pytest.raises(InsufficientFunds):
        books.transfer("t1", "alice", "bob", 101)

    assert _balances(books, "alice", "bob") == {"alice": 100, "bob": 0}
    assert not _transfer_exists(books, "t1")


def test_transfer_ids_are_per_tenant(make_books: Callable[[], Books]) -> None:
    ours, theirs = make_books(), make_books()
    ours.fund("alice", 100)
    theirs.fund("alice", 100)

    ours.transfer("same-id", "alice", "bob", 10)
    posted = theirs.transfer("same-id", "alice", "bob", 20)

    assert not posted.replayed
    assert ours.balance("bob").balance == 10
    assert theirs.balance("bob").balance == 20


def test_a_refused_posting_leaves_the_callers_transaction_usable(books: Books) -> None:
    books.fund("alice", 100)

    with books.db.session() as session:
        service.post(session, books.tenant_id, two_party("ok", Asset.CNY, "alice", "bob", 60))
        with pytest.raises(InsufficientFunds):
            service.post(session, books.tenant_id, two_party("no", Asset.CNY, "alice", "bob", 60))

    assert _balances(books, "alice", "bob") == {"alice": 40, "bob": 60}


# Batches ------------------------------------------------------------------------------------


def test_a_batch_posts_in_order(books: Books) -> None:
    books.open_bank()

    posted = _post_batch(
        books,
        two_party("b1", Asset.CNY, BANK, "alice", 100),
        two_party("b2", Asset.CNY, "alice", "bob", 100),
        two_party("b3", Asset.POINTS, "bob", "carol", 5, from_overdraft=True),
    )

    assert [p.replayed for p in posted] == [False, False, False]
    assert _balances(books, "alice", "bob") == {"alice": 0, "bob": 100}
    assert books.balance("carol", Asset.POINTS).balance == 5


def test_one_insufficient_transfer_fails_the_whole_batch(books: Books) -> None:
    books.fund("alice", 100)

    with pytest.raises(InsufficientFunds):
        _post_batch(
            books,
            two_party("b1", Asset.CNY, "alice", "bob", 60),
            two_party("b2", Asset.CNY, "alice", "carol", 60),
        )

    assert _balances(books, "alice", "bob", "carol") == {"alice": 100, "bob": 0, "carol": 0}
    assert not _transfer_exists(books, "b1")
    assert books.entries_sum("bob") == 0


def test_a_batch_with_a_conflicting_replay_posts_nothing(books: Books) -> None:
    books.fund("alice", 100)
    books.transfer("t1", "alice", "bob", 10)

    with pytest.raises(DuplicateConflict):
        _post_batch(
            books,
            two_party("new", Asset.CNY, "alice", "bob", 10),
            two_party("t1", Asset.CNY, "alice", "bob", 99),
        )

    assert _balances(books, "alice", "bob") == {"alice": 90, "bob": 10}
    assert not _transfer_exists(books, "new")


def test_a_batch_replays_what_was_posted_and_posts_the_rest(books: Books) -> None:
    books.fund("alice", 100)
    books.transfer("t1", "alice", "bob", 10)

    posted = _post_batch(
        books,
        two_party("t1", Asset.CNY, "alice", "bob", 10),
        two_party("t2", Asset.CNY, "alice", "bob", 20),
    )

    assert [p.replayed for p in posted] == [True, False]
    assert books.balance("bob").balance == 30


def test_a_batch_may_not_repeat_a_transfer_id(books: Books) -> None:
    books.fund("alice", 100)
    transfer = two_party("dup", Asset.CNY, "alice", "bob", 10)

    with pytest.raises(Unprocessable):
        _post_batch(books, transfer, transfer)

    assert books.balance("bob").balance == 0


# Reversals ----------------------------------------------------------------------------------


def test_a_full_reversal_undoes_the_transfer(books: Books) -> None:
    books.fund("alice", 100)
    books.transfer("t1", "alice", "bob", 60)

    posted = books.reverse("t1", "r1")

    assert posted.transfer.amount == 60
    assert _balances(books, "alice", "bob") == {"alice": 100, "bob": 0}


def test_partial_reversals_add_up_to_the_original(books: Books) -> None:
    books.fund("alice", 100)
    books.transfer("t1", "alice", "bob", 60)

    books.reverse("t1", "r1", 20)
    rest = books.reverse("t1", "r2")

    assert rest.transfer.amount == 40
    assert _balances(books, "alice", "bob") == {"alice": 100, "bob": 0}
    with pytest.raises(InvalidState):
        books.reverse("t1", "r3")


def test_a_reversal_never_exceeds_the_original(books: Books) -> None:
    books.fund("alice", 100)
    books.transfer("t1", "alice", "bob", 60)
    books.reverse("t1", "r1", 50)

    with pytest.raises(Unprocessable):
        books.reverse("t1", "r2", 11)

    assert _balances(books, "alice", "bob") == {"alice": 90, "bob": 10}


def test_a_reversal_id_posts_once(books: Books) -> None:
    books.fund("alice", 100)
    books.transfer("t1", "alice", "bob", 60)

    first = books.reverse("t1", "r1", 20)
    again = books.reverse("t1", "r1", 20)
    omitted = books.reverse("t1", "r1")

    assert (first.replayed, again.replayed, omitted.replayed) == (False, True, True)
    assert _balances(books, "alice", "bob") == {"alice": 60, "bob": 40}


@pytest.mark.parametrize(
    ("reversal_id", "amount"),
    [
        pytest.param("r1", 30, id="same-reversal-other-amount"),
        pytest.param("t2", 10, id="id-of-an-ordinary-transfer"),
    ],
)
def test_a_reused_reversal_id_with_other_content_is_a_conflict(
    books: Books, reversal_id: str, amount: int
) -> None:
    books.fund("alice", 100)
    books.transfer("t1", "alice", "bob", 60)
    books.transfer("t2", "alice", "bob", 10)
    books.reverse("t1", "r1", 20)

    with pytest.raises(DuplicateConflict):
        books.reverse("t1", reversal_id, amount)

    assert _balances(books, "alice", "bob") == {"alice": 50, "bob": 50}


def test_a_reversal_needs_the_money_to_still_be_there(books: Books) -> None:
    books.fund("alice", 100)
    books.transfer("t1", "alice", "bob", 60)
    books.transfer("t2", "bob", "carol", 50)

    with pytest.raises(InsufficientFunds):
        books.reverse("t1", "r1")

    assert _balances(books, "alice", "bob") == {"alice": 40, "bob": 10}


def test_a_long_transfer_id_can_be_reversed(books: Books) -> None:
    long_id = "order-" + "x" * 194
    books.fund("alice", 100)
    books.transfer(long_id, "alice", "bob", 60)

    books.reverse(long_id, "r1", 10)
    again = books.reverse(long_id, "r1", 10)

    assert again.replayed
    assert _balances(books, "alice", "bob") == {"alice": 50, "bob": 50}


def test_a_multi_leg_transfer_reverses_only_whole(books: Books) -> None:
    books.fund("shop", 100)
    _post_batch(
        books, TransferRequest("s", Asset.CNY, (Leg("shop", -100), Leg("a", 90), Leg("b", 10)))
    )

    with pytest.raises(Unprocessable):
        books.reverse("s", "r1", 50)
    books.reverse("s", "r2")

    assert _balances(books, "shop", "a", "b") == {"shop": 100, "a": 0, "b": 0}


def test_reversing_an_unknown_transfer_is_not_found(books: Books) -> None:
    with pytest.raises(NotFound):
        books.reverse("nope", "r1")


def test_reversals_are_per_tenant(make_books: Callable[[], Books]) -> None:
    ours, theirs = make_books(), make_books()
    ours.fund("alice", 100)
    ours.transfer("t1", "alice", "bob", 60)

    with pytest.raises(NotFound):
        theirs.reverse("t1", "r1")

    assert ours.balance("bob").balance == 60


# What posting writes ------------------------------------------------------------------------


def test_a_replay_returns_the_transfer_as_it_was_posted(books: Books) -> None:
    books.open_bank()
    request = TransferRequest(
        "meta",
        Asset.CNY,
        (Leg(BANK, -5), Leg("alice", 5)),
        description="with metadata",
        metadata={"order": "o-1", "n": [1, 2], "name": "café"},
    )
    first = _post_batch(books, request)[0]

    again = _post_batch(books, request)[0]

    assert again.replayed
    assert again.transfer == first.transfer
    assert again.transfer.created_at.utcoffset() == timedelta(0)


def test_posted_rows_read_back_through_sqlalchemy_as_posted(books: Books) -> None:
    """Transfers are written at the driver level; SQLAlchemy must read them as its own."""
    books.open_bank()
    books.open_bank(Asset.POINTS)
    posted = _post_batch(
        books,
        TransferRequest("plain", Asset.CNY, (Leg(BANK, -3), Leg("alice", 3))),
        TransferRequest(
            "rich", Asset.POINTS, (Leg(BANK, -4), Leg("bob", 4)), "d", {"k": ["v", None]}
        ),
    )

    with books.db.read_session() as session:
        for p in posted:
            assert service.get_transfer(session, books.tenant_id, p.transfer.transfer_id) == (
                p.transfer
            )
        entries = service.entries(session, books.tenant_id, "bob", Asset.POINTS, None, 10)
        assert [(e.amount, e.balance_after, t) for e, t in entries] == [(4, 4, "rich")]
        assert entries[0][0].created_at == posted[1].transfer.created_at


def test_a_batch_larger_than_one_query_posts_and_replays(books: Books) -> None:
    """Over 1,000 transfer ids and owners: the lookups go in several queries on SQLite."""
    books.open_bank()
    requests = [two_party(f"many-{i}", Asset.CNY, BANK, f"owner-{i}", 1) for i in range(1_200)]

    first = _post_batch(books, *requests)
    again = _post_batch(books, *requests)

    assert not any(p.replayed for p in first)
    assert all(p.replayed for p in again)
    assert [p.transfer.id for p in again] == [p.transfer.id for p in first]
    assert books.balance(BANK).balance == -1_200
    assert books.balance("owner-1199").balance == 1


def test_posting_refreshes_accounts_already_loaded_in_the_session(books: Books) -> None:
    with books.db.session() as session:
        bank = service.open_account(session, books.tenant_id, BANK, Asset.CNY, True)
        service.post(session, books.tenant_id, two_party("t1", Asset.CNY, BANK, "alice", 7))

        assert bank.balance == -7


def test_a_database_error_while_writing_leaves_the_callers_transaction_usable(
    books: Books, monkeypatch: pytest.MonkeyPatch
) -> None:
    books.fund("alice", 100)

    def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    with books.db.session() as session:
        service.post(session, books.tenant_id, two_party("ok", Asset.CNY, "alice", "bob", 10))
        with monkeypatch.context() as patch:
            patch.setattr(repository, "insert_entries", broken)
            with pytest.raises(RuntimeError):
                service.post(
                    session, books.tenant_id, two_party("lost", Asset.CNY, "alice", "bob", 20)
                )

    assert _balances(books, "alice", "bob") == {"alice": 90, "bob": 10}
    assert _transfer_exists(books, "ok")
    assert not _transfer_exists(books, "lost")


def _statements_of(books: Books, action: Callable[[], object]) -> list[str]:
    """The first word of each statement ``action`` sends, from its savepoint on."""
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.split()[0])

    event.listen(books.db.engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(books.db.engine, "before_cursor_execute", record)
    return statements[statements.index("SAVEPOINT") :]


def test_a_single_post_to_existing_accounts_takes_seven_statements(books: Books) -> None:
    """The path every payment takes: savepoint, look up the id, lock the accounts, insert the
    transfer, insert the entries, update the balances, release."""
    books.fund("alice", 100)
    books.transfer("t1", "alice", "bob", 10)

    statements = _statements_of(books, lambda: books.transfer("t2", "alice", "bob", 10))

    assert statements == ["SAVEPOINT", "SELECT", "SELECT", "INSERT", "INSERT", "UPDATE", "RELEASE"]


def test_a_post_to_a_new_account_opens_it_with_one_more_statement(books: Books) -> None:
    books.fund("alice", 100)

    statements = _statements_of(books, lambda: books.transfer("t1", "alice", "newcomer", 10))

    assert statements == [
        "SAVEPOINT",
        "SELECT",
        "SELECT",
        "INSERT",  # the new account, locked as it is opened
        "INSERT",
        "INSERT",
        "UPDATE",
        "RELEASE",
    ]
    assert books.balance("newcomer").balance == 10
