"""Group commit of provider notifications (zanloop.payments.batching): notifications settled
together in one transaction, each in a savepoint of its own. A rejected or failing one changes
nothing and gets its own answer; the others settle; nobody hears an outcome before the commit
that holds it. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from tests.conftest import TenantHandle
from tests.payments.conftest import (
    Notification,
    Totals,
    WeChatPay,
    at_once,
    order_of,
    totals,
)
from zanloop.config import Settings
from zanloop.db import Database
from zanloop.errors import NotificationRejected
from zanloop.payments import notifications
from zanloop.payments.batching import NotificationBatcher, settle_batch
from zanloop.payments.notifications import VerifiedNotification

Order = dict[str, Any]
Balance = Callable[..., int]


def verified(
    db: Database, settings: Settings, wechat: WeChatPay, notification: Notification
) -> VerifiedNotification:
    with db.read_session() as session:
        return notifications.verify(
            session, settings, wechat.tenant_id, notification.headers, notification.body
        )


def paid(wechat: WeChatPay, order: Order, **changes: Any) -> Notification:
    """WeChat's TRANSACTION.SUCCESS notification for ``order``, with resource fields changed."""
    fields = {"out_trade_no": order["out_trade_no"], "total_fen": order["amount_fen"], **changes}
    resource = wechat.transaction(fields.pop("out_trade_no"), fields.pop("total_fen"), **fields)
    return wechat.notification(resource)


@pytest.fixture
def batcher(db: Database) -> NotificationBatcher:
    return NotificationBatcher(db, idle_seconds=0.2)


class CommitGate:
    """Holds each commit on the write engine until ``open()``; counts them."""

    def __init__(self) -> None:
        self.committing = threading.Event()
        self.opened = threading.Event()
        self.commits = 0

    def __call__(self, conn: Any) -> None:
        self.commits += 1
        self.committing.set()
        assert self.opened.wait(10), "the test never opened the gate"

    def open(self) -> None:
        self.opened.set()


@contextmanager
def commits_held(db: Database) -> Iterator[CommitGate]:
    gate = CommitGate()
    event.listen(db.engine, "commit", gate)
    try:
        yield gate
    finally:
        gate.open()
        event.remove(db.engine, "commit", gate)


# settle_batch: one transaction, a savepoint each ------------------------------------------------


def test_a_batch_settles_the_valid_ones_and_refuses_each_of_the_others_alone(
    db: Database,
    settings: Settings,
    wechat: WeChatPay,
    tenant: TenantHandle,
    client: TestClient,
    create_order: Callable[..., Order],
    balance: Balance,
) -> None:
    a, b = create_order(tenant, 990), create_order(tenant, 500)
    ok_a = paid(wechat, a)
    batch = [
        verified(db, settings, wechat, ok_a),
        verified(db, settings, wechat, paid(wechat, b, total_fen=1)),
        verified(db, settings, wechat, paid(wechat, b, out_trade_no="NOSUCHORDER1")),
        verified(db, settings, wechat, paid(wechat, b)),
        verified(db, settings, wechat, ok_a),
    ]

    outcomes = settle_batch(db, batch)

    assert outcomes[0] == "applied"
    assert isinstance(outcomes[1], NotificationRejected)
    assert outcomes[1].status_code == 400
    assert isinstance(outcomes[2], NotificationRejected)
    assert outcomes[2].status_code == 404
    assert outcomes[3:] == ["applied", "duplicate"]
    assert order_of(client, tenant, a["id"])["status"] == "SUCCESS"
    assert order_of(client, tenant, b["id"])["status"] == "SUCCESS"
    assert balance(tenant, "merchant") == 990 + 500
    # The refused ones left no de-duplication record: WeChat may send them again.
    assert totals(db) == Totals(ledger_transfers=2, ledger_entries=4, notifications=2)


def test_a_database_error_in_one_notification_loses_none_of_the_others(
    db: Database,
    settings: Settings,
    wechat: WeChatPay,
    tenant: TenantHandle,
    client: TestClient,
    create_order: Callable[..., Order],
    balance: Balance,
) -> None:
    a, b = create_order(tenant, 300), create_order(tenant, 400)
    good_a = verified(db, settings, wechat, paid(wechat, a))
    # Its de-duplication record names a tenant that does not exist: a foreign-key violation.
    broken = dataclasses.replace(good_a, tenant_id="tnt_gone", notification_id="n-broken")
    good_b = verified(db, settings, wechat, paid(wechat, b))

    outcomes = settle_batch(db, [good_a, broken, good_b])

    assert outcomes[0] == outcomes[2] == "applied"
    assert isinstance(outcomes[1], IntegrityError)
    assert order_of(client, tenant, a["id"])["status"] == "SUCCESS"
    assert order_of(client, tenant, b["id"])["status"] == "SUCCESS"
    assert balance(tenant, "merchant") == 700
    assert totals(db) == Totals(ledger_transfers=2, ledger_entries=4, notifications=2)


# NotificationBatcher: the writer thread -------------------------------------------------------


def test_nobody_hears_an_outcome_before_the_commit_that_holds_it(
    db: Database,
    settings: Settings,
    wechat: WeChatPay,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
    batcher: NotificationBatcher,
    balance: Balance,
) -> None:
    orders = [create_order(tenant, 100 + i) for i in range(8)]
    batch = [verified(db, settings, wechat, paid(wechat, order)) for order in orders]

    with commits_held(db) as gate:
        futures = [batcher.submit(notification) for notification in batch]
        assert gate.committing.wait(10)
        answered_before_commit = [f for f in futures if f.done()]
        gate.open()
        outcomes = [f.result(timeout=10) for f in futures]

    assert answered_before_commit == []
    assert outcomes == ["applied"] * 8
    # Those that arrived while the first commit was held were settled together in one more.
    assert gate.commits <= 2
    assert balance(tenant, "merchant") == sum(100 + i for i in range(8))


def test_when_the_commit_fails_every_caller_hears_it_and_nothing_is_stored(
    db: Database,
    settings: Settings,
    wechat: WeChatPay,
    tenant: TenantHandle,
    client: TestClient,
    create_order: Callable[..., Order],
    batcher: NotificationBatcher,
) -> None:
    orders = [create_order(tenant, 100 + i) for i in range(4)]
    batch = [verified(db, settings, wechat, paid(wechat, order)) for order in orders]

    def fail(conn: Any) -> None:
        raise OSError("disk full")

    event.listen(db.engine, "commit", fail)
    try:
        errors = [batcher.submit(n).exception(timeout=10) for n in batch]
    finally:
        event.remove(db.engine, "commit", fail)

    assert all(isinstance(error, OSError) for error in errors), errors
    assert totals(db) == Totals(ledger_transfers=0, ledger_entries=0, notifications=0)
    assert {order_of(client, tenant, o["id"])["status"] for o in orders} == {"NOTPAY"}
    # WeChat retries: nothing was recorded, so the same notifications now settle.
    assert [batcher.submit(n).result(timeout=10) for n in batch] == ["applied"] * 4


def test_a_caller_that_gave_up_before_its_batch_began_changes_nothing(
    db: Database,
    settings: Settings,
    wechat: WeChatPay,
    tenant: TenantHandle,
    client: TestClient,
    create_order: Callable[..., Order],
    batcher: NotificationBatcher,
) -> None:
    first, abandoned, last = (create_order(tenant, 100 + i) for i in range(3))
    batch = [verified(db, settings, wechat, paid(wechat, o)) for o in (first, abandoned, last)]

    with commits_held(db) as gate:
        settled_first = batcher.submit(batch[0])
        assert gate.committing.wait(10)
        given_up = batcher.submit(batch[1])
        cancelled = given_up.cancel()
        settled_last = batcher.submit(batch[2])
        gate.open()
        outcomes = [settled_first.result(timeout=10), settled_last.result(timeout=10)]

    assert cancelled
    assert outcomes == ["applied", "applied"]
    assert order_of(client, tenant, abandoned["id"])["status"] == "NOTPAY"
    assert totals(db).notifications == 2


def test_a_batcher_whose_writer_stopped_when_idle_still_settles(
    db: Database,
    settings: Settings,
    wechat: WeChatPay,
    tenant: TenantHandle,
    create_order: Callable[..., Order],
) -> None:
    batcher = NotificationBatcher(db, idle_seconds=0.01)
    a, b = create_order(tenant, 100), create_order(tenant, 200)

    first = batcher.submit(verified(db, settings, wechat, paid(wechat, a))).result(timeout=10)
    time.sleep(0.1)
    second = batcher.submit(verified(db, settings, wechat, paid(wechat, b))).result(timeout=10)

    assert first == second == "applied"


# Through HTTP ---------------------------------------------------------------------------------


def test_notifications_sent_at_once_each_get_their_own_answer(
    live_server: str,
    http: httpx.Client,
    db: Database,
    wechat: WeChatPay,
    tenant: TenantHandle,
    client: TestClient,
    create_order: Callable[..., Order],
    balance: Balance,
) -> None:
    """Valid and refused notifications arriving together (settled in shared batches on
    SQLite): each valid one settles, each refused one gets its own 4xx and changes nothing."""
    orders = [create_order(tenant, 100 * (i + 1)) for i in range(4)]
    sent: list[tuple[Notification, int]] = []
    for order in orders:
        sent += [
            (paid(wechat, order), 204),
            (paid(wechat, order, total_fen=1), 400),
            (paid(wechat, order, out_trade_no="NOSUCHORDER1"), 404),
            (paid(wechat, order, mchid="1900000109"), 400),
        ]
    url = live_server + wechat.notify_path

    responses = at_once(
        len(sent), lambda i: http.post(url, content=sent[i][0].body, headers=sent[i][0].headers)
    )

    assert [r.status_code for r in responses] == [expected for _, expected in sent]
    for response in responses:
        if response.status_code != 204:
            assert response.json()["code"] == "FAIL"
            assert response.json()["message"]
    assert {order_of(client, tenant, o["id"])["status"] for o in orders} == {"SUCCESS"}
    assert balance(tenant, "merchant") == 100 + 200 + 300 + 400
    assert totals(db) == Totals(ledger_transfers=4, ledger_entries=8, notifications=4)
