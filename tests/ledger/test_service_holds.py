"""Holds through the ledger service: reserve, post (wholly or partly), void."""

from __future__ import annotations

import pytest

from tests.ledger.helpers import Books
from zanloop.errors import (
    DuplicateConflict,
    InsufficientFunds,
    InvalidState,
    NotFound,
    Unprocessable,
)
from zanloop.ledger.domain import HoldStatus


def _balances(books: Books, *owners: str) -> dict[str, int]:
    return {owner: books.balance(owner).balance for owner in owners}


def test_a_hold_reserves_money_without_moving_it(books: Books) -> None:
    books.fund("alice", 100)

    hold, replayed = books.hold("h1", "alice", "shop", 70)

    alice, shop = books.balance("alice"), books.balance("shop")
    assert (hold.status, replayed) == (HoldStatus.PENDING.value, False)
    assert (alice.balance, alice.pending_out, alice.available) == (100, 70, 30)
    assert (shop.balance, shop.pending_in, shop.available) == (0, 70, 0)


def test_held_money_cannot_be_spent(books: Books) -> None:
    books.fund("alice", 100)
    books.hold("h1", "alice", "shop", 70)

    with pytest.raises(InsufficientFunds):
        books.transfer("t1", "alice", "bob", 31)
    with pytest.raises(InsufficientFunds):
        books.hold("h2", "alice", "shop", 31)

    assert books.balance("alice").available == 30


@pytest.mark.parametrize(
    ("post_amount", "posted"), [pytest.param(None, 70, id="all"), pytest.param(25, 25, id="part")]
)
def test_posting_a_hold_moves_the_posted_amount_and_releases_the_rest(
    books: Books, post_amount: int | None, posted: int
) -> None:
    books.fund("alice", 100)
    books.hold("h1", "alice", "shop", 70)

    hold = books.post_hold("h1", post_amount)

    alice, shop = books.balance("alice"), books.balance("shop")
    assert (hold.status, hold.posted_amount) == (HoldStatus.POSTED.value, posted)
    assert (alice.balance, alice.pending_out, alice.available) == (100 - posted, 0, 100 - posted)
    assert (shop.balance, shop.pending_in) == (posted, 0)
    assert books.entries_sum("shop") == posted


def test_voiding_a_hold_releases_everything(books: Books) -> None:
    books.fund("alice", 100)
    books.hold("h1", "alice", "shop", 70)

    hold = books.void_hold("h1")

    alice = books.balance("alice")
    assert hold.status == HoldStatus.VOIDED.value
    assert (alice.balance, alice.pending_out, alice.available) == (100, 0, 100)
    assert books.balance("shop").pending_in == 0


def test_posting_twice_posts_once(books: Books) -> None:
    books.fund("alice", 100)
    books.hold("h1", "alice", "shop", 70)

    books.post_hold("h1", 20)
    again = books.post_hold("h1")

    assert (again.status, again.posted_amount) == (HoldStatus.POSTED.value, 20)
    assert _balances(books, "alice", "shop") == {"alice": 80, "shop": 20}


def test_voiding_twice_is_harmless(books: Books) -> None:
    books.fund("alice", 100)
    books.hold("h1", "alice", "shop", 70)

    books.void_hold("h1")
    again = books.void_hold("h1")

    assert again.status == HoldStatus.VOIDED.value
    assert books.balance("alice").pending_out == 0


@pytest.mark.parametrize(
    ("settle", "then"),
    [
        pytest.param("void", "post", id="post-after-void"),
        pytest.param("post", "void", id="void-after-post"),
    ],
)
def test_a_settled_hold_cannot_be_settled_the_other_way(
    books: Books, settle: str, then: str
) -> None:
    books.fund("alice", 100)
    books.hold("h1", "alice", "shop", 70)
    getattr(books, f"{settle}_hold")("h1")
    before = _balances(books, "alice", "shop")

    with pytest.raises(InvalidState):
        getattr(books, f"{then}_hold")("h1")

    assert _balances(books, "alice", "shop") == before
    assert books.balance("alice").pending_out == 0


def test_posting_more_than_held_is_refused(books: Books) -> None:
    books.fund("alice", 100)
    books.hold("h1", "alice", "shop", 70)

    with pytest.raises(Unprocessable):
        books.post_hold("h1", 71)

    assert books.balance("alice").pending_out == 70


def test_a_hold_id_places_once(books: Books) -> None:
    books.fund("alice", 100)
    books.hold("h1", "alice", "shop", 70)

    _, replayed = books.hold("h1", "alice", "shop", 70)
    with pytest.raises(DuplicateConflict):
        books.hold("h1", "alice", "shop", 10)

    assert replayed
    assert books.balance("alice").pending_out == 70


@pytest.mark.parametrize(
    ("hold_id", "from_owner", "to_owner", "amount"),
    [
        pytest.param("h1", "alice", "alice", 10, id="to-self"),
        pytest.param("h1", "alice", "shop", 0, id="zero"),
        pytest.param("h" * 196, "alice", "shop", 10, id="hold-id-too-long"),
    ],
)
def test_invalid_holds_are_refused(
    books: Books, hold_id: str, from_owner: str, to_owner: str, amount: int
) -> None:
    books.fund("alice", 100)

    with pytest.raises(Unprocessable):
        books.hold(hold_id, from_owner, to_owner, amount)


def test_the_longest_hold_id_posts(books: Books) -> None:
    books.fund("alice", 100)
    books.hold("h" * 195, "alice", "shop", 10)

    books.post_hold("h" * 195)

    assert books.balance("shop").balance == 10


def test_an_unknown_hold_is_not_found(books: Books) -> None:
    with pytest.raises(NotFound):
        books.post_hold("nope")
    with pytest.raises(NotFound):
        books.void_hold("nope")
