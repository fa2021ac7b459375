"""Group commit for provider notifications (used on SQLite).

SQLite admits one writer at a time and a durable commit costs an fsync, so settling each
notification in a transaction of its own caps throughput at one fsync per notification. Here one
writer thread settles them instead: notifications that arrive while a commit is in flight wait,
and are then settled together in one transaction with one fsync. Nothing waits on purpose: a
notification that finds the writer idle is settled at once, alone.

Each notification is settled inside a SAVEPOINT of its own, so one that is rejected (or fails)
rolls back alone and its caller hears why, while the others commit. Every caller hears its
outcome only after the commit that holds its change; if that commit fails, every caller of the
batch hears the error, and nothing of the batch was stored.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future

import structlog
from sqlalchemy.orm import Session

from zanloop.db import Database
from zanloop.payments import notifications
from zanloop.payments.notifications import VerifiedNotification

log = structlog.get_logger(__name__)

Outcome = str | Exception
_Pending = tuple[VerifiedNotification, Future[str]]


def settle_batch(db: Database, batch: Sequence[VerifiedNotification]) -> list[Outcome]:
    """Settle ``batch`` in one transaction, each notification in a savepoint of its own; returns
    each one's outcome or the exception that rolled it back (``NotificationRejected``, a
    database error, ...). Raises, having stored nothing, if the transaction itself fails."""
    with db.session() as session:
        return [_settle_one(session, notification) for notification in batch]


def _settle_one(session: Session, notification: VerifiedNotification) -> Outcome:
    try:
        with session.begin_nested():
            return notifications.settle(session, notification)
    except Exception as exc:
        return exc


class NotificationBatcher:
    """Queues verified notifications for one writer thread that settles them in batches of up
    to ``max_batch``. The thread starts on demand and ends after ``idle_seconds`` without work,
    so an idle batcher holds no thread."""

    def __init__(self, db: Database, *, max_batch: int = 32, idle_seconds: float = 2.0) -> None:
        self.db = db
        self.max_batch = max_batch
        self.idle_seconds = idle_seconds
        self._pending: deque[_Pending] = deque()
        self._wake = threading.Condition()
        self._writer: threading.Thread | None = None

    async def settle(self, notification: VerifiedNotification) -> str:
        """Settle ``notification``; returns its outcome once the commit holding it is done, or
        raises what rolled it back (``NotificationRejected``, a failed commit, ...)."""
        return await asyncio.wrap_future(self.submit(notification))

    def submit(self, notification: VerifiedNotification) -> Future[str]:
        future: Future[str] = Future()
        with self._wake:
            self._pending.append((notification, future))
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write, name="zanloop-notification-writer", daemon=True
                )
                self._writer.start()
            self._wake.notify()
        return future

    def _write(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._settle(batch)
            except Exception as exc:  # a bug here must neither strand callers nor the writer
                log.exception("notification writer failed")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)

    def _settle(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        try:
            outcomes = settle_batch(self.db, [notification for notification, _ in batch])
        except Exception as exc:  # BEGIN or COMMIT failed: every caller of the batch hears it
            log.warning("notification batch not committed", size=len(batch), error=str(exc))
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _next_batch(self) -> list[_Pending] | None:
        """Waits for work; None (the writer ends) after ``idle_seconds`` without any."""
        with self._wake:
            while not self._pending:
                if not self._wake.wait(self.idle_seconds) and not self._pending:
                    self._writer = None
                    return None
            size = min(self.max_batch, len(self._pending))
            taken = [self._pending.popleft() for _ in range(size)]
        # Callers that gave up (their request was cancelled) before we began are dropped.
        return [(n, future) for n, future in taken if future.set_running_or_notify_cancel()]
