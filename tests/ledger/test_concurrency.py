"""Two transactions posting the same transfer id at once, on PostgreSQL (SQLite admits one
writer at a time, so the race cannot happen there).

Posting looks the ids up before inserting them, so the second transaction does not see the
first one's uncommitted transfer; its insert then waits for the first to commit and fails on
the unique constraint. The posting must roll back to its savepoint and run once more, finding
the transfer posted: a replay, or a conflict if the content differs, never a second posting
and never a 500."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.conftest import is_postgres
from tests.ledger.helpers import BANK, Books
from zanloop.errors import DuplicateConflict
from zanloop.kit.money import Asset
from zanloop.ledger import repository, service
from zanloop.ledger.domain import TransferRequest, two_party

pytestmark = pytest.mark.skipif(not is_postgres(), reason="needs concurrent writers")


@contextmanager
def _open_transaction(books: Books) -> Iterator[Session]:
    """A write transaction the test commits when it chooses."""
    session = books.db.new_session()
    try:
        session.begin()
        yield session
    finally:
        session.close()


def _wait_until_blocked(books: Books, timeout: float = 10.0) -> None:
    """Until some other connection of this database waits for a lock."""
    deadline = time.monotonic() + timeout
    with books.db.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the second posting never waited for the first")


def _count_lookups(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often each thread looked transfer ids up (twice means: retried)."""
    calls: dict[str, int] = {}
    lookup = repository.find_transfers

    def counting(*args: object, **kwargs: object) -> object:
        name = threading.current_thread().name
        calls[name] = calls.get(name, 0) + 1
        return lookup(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(repository, "find_transfers", counting)
    return calls


def _race(
    books: Books, first: TransferRequest, second: TransferRequest
) -> tuple[service.Posted, Future[service.Posted]]:
    """Post ``first`` and leave it uncommitted; post ``second`` from another thread; commit
    ``first`` once the other one waits for it."""

    def post_second() -> service.Posted:
        with books.db.session() as session:
            return service.post(session, books.tenant_id, second)

    with (
        _open_transaction(books) as session,
        ThreadPoolExecutor(1, thread_name_prefix="second") as pool,
    ):
        posted = service.post(session, books.tenant_id, first)
        racing = pool.submit(post_second)
        _wait_until_blocked(books)
        session.commit()
        racing.exception(timeout=30)
    return posted, racing


def _posted_once(books: Books, transfer_id: str) -> int:
    with books.db.read_session() as session:
        return len(repository.find_transfers(session, books.tenant_id, [transfer_id]))


def test_a_transfer_id_posted_twice_at_once_posts_once_and_replays(
    books: Books, monkeypatch: pytest.MonkeyPatch
) -> None:
    books.fund("alice", 100)
    lookups = _count_lookups(monkeypatch)
    request = two_party("pay-1", Asset.CNY, "alice", "bob", 30)

    posted, racing = _race(books, request, request)

    again = racing.result()
    assert (posted.replayed, again.replayed) == (False, True)
    assert again.transfer == posted.transfer
    assert lookups["second_0"] == 2
    assert books.balance("alice").balance == 70
    assert books.balance("bob").balance == 30
    assert books.entries_sum("bob") == 30


def test_the_same_id_with_other_content_at_once_is_a_conflict(
    books: Books, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other accounts, so the second posting is not held up by account locks: it waits on the
    transfer id itself, in the unique index."""
    books.fund("alice", 100)
    books.fund("carol", 100)
    lookups = _count_lookups(monkeypatch)

    _, racing = _race(
        books,
        two_party("pay-1", Asset.CNY, "alice", "bob", 30),
        two_party("pay-1", Asset.CNY, "carol", "dave", 30),
    )

    assert isinstance(racing.exception(), DuplicateConflict)
    assert lookups["second_0"] == 2
    assert _posted_once(books, "pay-1") == 1
    assert (books.balance("carol").balance, books.balance("dave").balance) == (100, 0)
    assert books.balance("bob").balance == 30


def test_batches_racing_on_some_ids_post_each_id_once(books: Books) -> None:
    """Two batches sharing half their ids: every id posts once, each batch replays what the
    other posted first, and the books still balance."""
    books.open_bank()
    shared = [two_party(f"s{i}", Asset.CNY, BANK, f"u{i}", 1) for i in range(50)]
    ours = [two_party(f"a{i}", Asset.CNY, BANK, f"u{i}", 1) for i in range(50)]
    theirs = [two_party(f"b{i}", Asset.CNY, BANK, f"u{i}", 1) for i in range(50)]
    start = threading.Barrier(2)

    def post(batch: list[TransferRequest]) -> list[service.Posted]:
        start.wait()
        with books.db.session() as session:
            return service.post_many(session, books.tenant_id, batch)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(post, [shared + ours, theirs + shared[::-1]]))

    replays = sum(p.replayed for batch in results for p in batch)
    assert replays == len(shared)
    assert books.balance(BANK).balance == -150
    assert all(books.balance(f"u{i}").balance == 3 for i in range(50))
    assert books.entries_sum(BANK) == -150
