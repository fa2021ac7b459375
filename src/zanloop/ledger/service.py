"""Ledger workflows: post transfers (one or a batch), reverse them, place and settle holds.

Every function flushes inside a savepoint and never commits: a refused posting leaves the
caller's transaction as it was, and the caller commits at its edge.

Posting looks the transfer ids up first and inserts only the new ones. On PostgreSQL another
transaction may insert one of those ids in between; the insert then fails on the unique
constraint (after waiting for that transaction to commit), the savepoint is rolled back and
the posting runs once more, now finding the id posted: a replay or a conflict, never twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zanloop.errors import DuplicateConflict, NotFound, Unprocessable
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.kit.money import Asset
from zanloop.ledger import domain, repository
from zanloop.ledger.domain import (
    AccountState,
    HoldStatus,
    Leg,
    Transfer,
    TransferKind,
    TransferRequest,
)
from zanloop.ledger.tables import LedgerAccount, LedgerEntry, LedgerHold

T = TypeVar("T")


class Posted(NamedTuple):
    transfer: Transfer
    replayed: bool


def _in_savepoint(session: Session, work: Callable[[], T]) -> T:
    """Run ``work`` in a savepoint, and once more if it lost a race to insert a transfer id
    (IntegrityError; see the module docstring)."""
    try:
        with session.begin_nested():
            return work()
    except IntegrityError:
        with session.begin_nested():
            return work()


def post(session: Session, tenant_id: str, request: TransferRequest) -> Posted:
    return post_many(session, tenant_id, [request])[0]


def post_many(
    session: Session, tenant_id: str, requests: Sequence[TransferRequest]
) -> list[Posted]:
    """Post a batch atomically. A transfer id already posted with the same content is a replay
    (returned, not posted again); with other content it is a DuplicateConflict."""
    for request in requests:
        domain.validate(request)
    ids = {r.transfer_id for r in requests}
    if len(ids) != len(requests):
        raise Unprocessable("a batch may not repeat a transfer_id", field="transfers")
    return _in_savepoint(session, lambda: _post_many(session, tenant_id, requests))


def _post_many(
    session: Session, tenant_id: str, requests: Sequence[TransferRequest]
) -> list[Posted]:
    existing = {
        t.transfer_id: t
        for t in repository.find_transfers(session, tenant_id, [r.transfer_id for r in requests])
    }
    now = utcnow()
    results: list[Posted] = []
    # New transfers and their requests, side by side.
    fresh: list[Transfer] = []
    fresh_requests: list[TransferRequest] = []
    for r in requests:
        fingerprint = r.fingerprint()
        posted = existing.get(r.transfer_id)
        if posted is None:
            transfer = Transfer(
                new_id("trf"),
                tenant_id,
                r.transfer_id,
                r.asset.value,
                r.amount,
                0,
                r.kind.value,
                r.reverses_id,
                fingerprint,
                r.description,
                r.metadata,
                now,
            )
            fresh.append(transfer)
            fresh_requests.append(r)
            results.append(Posted(transfer, replayed=False))
        elif posted.fingerprint != fingerprint:
            raise DuplicateConflict(
                f"transfer_id {r.transfer_id} was already posted with different content"
            )
        else:
            results.append(Posted(posted, replayed=True))
    if fresh:
        _apply(session, tenant_id, fresh_requests, fresh, now)
    return results


def _apply(
    session: Session,
    tenant_id: str,
    requests: list[TransferRequest],
    transfers: list[Transfer],
    now: datetime,
) -> None:
    """Plan every entry first (so a refused batch writes nothing), then write the transfers,
    the entries and the balances with one statement (or executemany) each."""
    by_asset: dict[Asset, list[int]] = defaultdict(list)
    for index, r in enumerate(requests):
        by_asset[r.asset].append(index)
    plans: list[tuple[list[str], list[domain.PlannedEntry]]] = []
    balances: dict[str, int] = {}
    # Assets in one order, accounts in id order within each: concurrent postings lock alike.
    for asset in sorted(by_asset):
        indexes = by_asset[asset]
        batch = [requests[i] for i in indexes]
        states = _lock_accounts(session, tenant_id, asset, batch)
        plans.append(([transfers[i].id for i in indexes], domain.plan_entries(batch, states)))
        balances.update((s.account_id, s.balance) for s in states.values())
    # Ids in one order too: two batches inserting the same ids do not deadlock on PostgreSQL.
    repository.insert_transfers(session, tenant_id, now, sorted(transfers, key=_by_transfer_id))
    for transfer_pks, planned in plans:
        repository.insert_entries(session, tenant_id, now, transfer_pks, planned)
    repository.set_balances(session, balances)


def _by_transfer_id(transfer: Transfer) -> str:
    return transfer.transfer_id


def _lock_accounts(
    session: Session, tenant_id: str, asset: Asset, requests: list[TransferRequest]
) -> dict[str, AccountState]:
    """The accounts the requests touch, locked, opening the missing ones."""
    overdraft: dict[str, bool] = {}
    for r in requests:
        for leg in r.legs:
            overdraft[leg.owner] = overdraft.get(leg.owner, False) or leg.overdraft_allowed
    states = repository.lock_account_states(session, tenant_id, asset.value, overdraft)
    if len(states) < len(overdraft):
        missing = {o: allowed for o, allowed in overdraft.items() if o not in states}
        # Opened here means locked here (the rows are ours until commit).
        states.update(repository.ensure_accounts(session, tenant_id, asset.value, missing))
        if len(states) < len(overdraft):
            # Another transaction opened some of them since the lookup.
            states = repository.lock_account_states(session, tenant_id, asset.value, overdraft)
    return states


def reverse(
    session: Session,
    tenant_id: str,
    transfer_id: str,
    reversal_id: str,
    amount: int | None = None,
    description: str = "",
) -> Posted:
    """Undo all of a transfer, or part of a two-party one. Reversals add up and never exceed
    the original; the same reversal_id posts once."""
    return _in_savepoint(
        session,
        lambda: _reverse(session, tenant_id, transfer_id, reversal_id, amount, description),
    )


def _reverse(
    session: Session,
    tenant_id: str,
    transfer_id: str,
    reversal_id: str,
    amount: int | None,
    description: str,
) -> Posted:
    original = repository.get_transfer(session, tenant_id, transfer_id)
    if original is None:
        raise NotFound(f"transfer {transfer_id} not found")
    existing = repository.get_transfer(session, tenant_id, reversal_id)
    # reverses_id holds the original's primary key (transfer ids are longer than the column);
    # rows written before that held the transfer id itself.
    if existing is not None and existing.reverses_id in (original.id, original.transfer_id):
        if amount is not None and existing.amount != amount:
            raise DuplicateConflict(
                f"reversal_id {reversal_id} already reversed {existing.amount}, not {amount}"
            )
        return Posted(existing, replayed=True)
    wanted = domain.check_reversible(original.amount, original.reversed_amount, amount)
    legs = domain.reversal_legs(
        [Leg(o, a) for o, a in repository.transfer_legs(session, original.id)],
        wanted,
        original.amount,
    )
    request = TransferRequest(
        transfer_id=reversal_id,
        asset=Asset(original.asset),
        legs=legs,
        description=description or f"reversal of {transfer_id}",
        kind=TransferKind.REVERSAL,
        reverses_id=original.id,
    )
    domain.validate(request)
    posted = _post_many(session, tenant_id, [request])[0]
    if not posted.replayed and not repository.add_reversed(session, original.id, wanted):
        raise Unprocessable("the reversal exceeds what is left of the transfer", field="amount")
    return posted


@dataclass(frozen=True)
class Balance:
    owner: str
    asset: Asset
    balance: int
    pending_out: int
    pending_in: int

    @property
    def available(self) -> int:
        return self.balance - self.pending_out


def balance(session: Session, tenant_id: str, owner: str, asset: Asset) -> Balance:
    account = repository.get_account(session, tenant_id, owner, asset.value)
    if account is None:
        return Balance(owner, asset, 0, 0, 0)
    return _balance(account)


def balances(
    session: Session, tenant_id: str, owners: Collection[str], asset: Asset
) -> dict[str, Balance]:
    """The balances of many owners with one query (an owner without an account has 0)."""
    found = repository.account_balances(session, tenant_id, asset.value, owners)
    return {o: Balance(o, asset, *found.get(o, (0, 0, 0))) for o in owners}


def _balance(account: LedgerAccount) -> Balance:
    return Balance(
        account.owner,
        Asset(account.asset),
        account.balance,
        account.pending_out,
        account.pending_in,
    )


def open_account(
    session: Session, tenant_id: str, owner: str, asset: Asset, overdraft_allowed: bool = False
) -> LedgerAccount:
    """Open an account, or return the existing one if it was opened the same way."""
    repository.ensure_accounts(session, tenant_id, asset.value, {owner: overdraft_allowed})
    account = repository.get_account(session, tenant_id, owner, asset.value)
    assert account is not None
    if account.overdraft_allowed != overdraft_allowed:
        raise DuplicateConflict(
            f"the {asset.value} account of {owner} exists with "
            f"overdraft_allowed={str(account.overdraft_allowed).lower()}"
        )
    return account


def list_accounts(
    session: Session, tenant_id: str, after_id: str | None, limit: int
) -> list[LedgerAccount]:
    return repository.list_accounts(session, tenant_id, after_id, limit)


def entries(
    session: Session, tenant_id: str, owner: str, asset: Asset, before_id: int | None, limit: int
) -> list[tuple[LedgerEntry, str]]:
    account = repository.get_account(session, tenant_id, owner, asset.value)
    if account is None:
        raise NotFound(f"no {asset.value} account for owner {owner}")
    return repository.list_entries(session, account.id, before_id, limit)


def get_transfer(session: Session, tenant_id: str, transfer_id: str) -> Transfer:
    transfer = repository.get_transfer(session, tenant_id, transfer_id)
    if transfer is None:
        raise NotFound(f"transfer {transfer_id} not found")
    return transfer


def reversed_transfer_id(session: Session, transfer: Transfer) -> str | None:
    """The transfer id of what ``transfer`` reverses, if it is a reversal."""
    if transfer.reverses_id is None:
        return None
    original = repository.get_transfer_by_pk(session, transfer.tenant_id, transfer.reverses_id)
    return transfer.reverses_id if original is None else original.transfer_id


def transfer_legs(session: Session, transfer: Transfer) -> list[Leg]:
    return [Leg(o, a) for o, a in repository.transfer_legs(session, transfer.id)]


def entries_sum(session: Session, tenant_id: str, owner: str, asset: Asset) -> int:
    account = repository.get_account(session, tenant_id, owner, asset.value)
    return 0 if account is None else repository.sum_entries(session, account.id)


# Holds -------------------------------------------------------------------------------------


def place_hold(
    session: Session,
    tenant_id: str,
    hold_id: str,
    asset: Asset,
    from_owner: str,
    to_owner: str,
    amount: int,
    *,
    expires_at: datetime | None = None,
    description: str = "",
) -> tuple[LedgerHold, bool]:
    """Reserve ``amount`` of ``from_owner`` for ``to_owner``; returns (hold, replayed)."""
    domain.check_hold_id(hold_id)
    if not 0 < amount <= domain.MAX_AMOUNT:
        raise Unprocessable(f"amount must be 1 to {domain.MAX_AMOUNT}", field="amount")
    if from_owner == to_owner:
        raise Unprocessable("a hold moves between two different owners", field="to_owner")
    fingerprint = domain.hold_fingerprint(asset, from_owner, to_owner, amount)
    with session.begin_nested():
        repository.ensure_accounts(
            session, tenant_id, asset.value, {from_owner: False, to_owner: False}
        )
        accounts = {
            a.owner: a
            for a in repository.lock_accounts(
                session, tenant_id, asset.value, [from_owner, to_owner]
            )
        }
        source, target = accounts[from_owner], accounts[to_owner]
        inserted = repository.insert_hold(
            session,
            {
                "id": new_id("hold"),
                "tenant_id": tenant_id,
                "hold_id": hold_id,
                "asset": asset.value,
                "from_account_id": source.id,
                "to_account_id": target.id,
                "amount": amount,
                "posted_amount": 0,
                "status": HoldStatus.PENDING.value,
                "fingerprint": fingerprint,
                "description": description,
                "expires_at": expires_at,
                "created_at": utcnow(),
            },
        )
        hold = repository.get_hold(session, tenant_id, hold_id)
        assert hold is not None
        if not inserted:
            if hold.fingerprint != fingerprint:
                raise DuplicateConflict(f"hold_id {hold_id} was already used for another hold")
            return hold, True
        state = AccountState(
            source.id, source.owner, source.balance, source.pending_out, source.overdraft_allowed
        )
        domain.plan_entries(
            [domain.two_party(hold_id, asset, from_owner, to_owner, amount)],
            {from_owner: state, to_owner: AccountState(target.id, to_owner, 0, 0, True)},
        )
        repository.adjust_pending(session, source.id, out_delta=amount)
        repository.adjust_pending(session, target.id, in_delta=amount)
    return hold, False


def post_hold(
    session: Session, tenant_id: str, hold_id: str, amount: int | None = None
) -> LedgerHold:
    """Turn a hold into a posted transfer of ``amount`` (all of it by default); the rest is
    released. Posting an already posted hold returns it unchanged."""
    hold, changed = _in_savepoint(session, lambda: _post_hold(session, tenant_id, hold_id, amount))
    if changed:
        session.refresh(hold)
    return hold


def _post_hold(
    session: Session, tenant_id: str, hold_id: str, amount: int | None
) -> tuple[LedgerHold, bool]:
    hold = _locked_hold(session, tenant_id, hold_id)
    if hold.status == HoldStatus.POSTED.value:
        return hold, False
    to_post = domain.check_hold_postable(
        HoldStatus(hold.status), hold.amount, amount, expires_at=hold.expires_at, now=utcnow()
    )
    _release(session, hold)
    source = repository.account_by_id(session, hold.from_account_id)
    target = repository.account_by_id(session, hold.to_account_id)
    assert source is not None
    assert target is not None
    posted = _post_many(
        session,
        tenant_id,
        [
            domain.two_party(
                domain.hold_transfer_id(hold_id),
                Asset(hold.asset),
                source.owner,
                target.owner,
                to_post,
                kind=TransferKind.HOLD_POST,
                description=hold.description,
            )
        ],
    )[0]
    if not repository.resolve_hold(
        session, hold.id, HoldStatus.POSTED.value, to_post, posted.transfer.id
    ):
        raise Unprocessable("the hold was settled concurrently", field="hold_id")
    return hold, True


def void_hold(session: Session, tenant_id: str, hold_id: str) -> LedgerHold:
    with session.begin_nested():
        hold = _locked_hold(session, tenant_id, hold_id)
        if hold.status == HoldStatus.VOIDED.value:
            return hold
        if hold.status != HoldStatus.PENDING.value:
            domain.check_hold_postable(HoldStatus(hold.status), hold.amount, None)
        _release(session, hold)
        if not repository.resolve_hold(session, hold.id, HoldStatus.VOIDED.value, 0, None):
            raise Unprocessable("the hold was settled concurrently", field="hold_id")
    session.refresh(hold)
    return hold


def void_expired_holds(session: Session, limit: int = 500) -> int:
    """Release holds whose time ran out (the money goes back to the payer's available)."""
    expired = repository.expired_holds(session, utcnow(), limit)
    for tenant_id, hold_id in expired:
        void_hold(session, tenant_id, hold_id)
    return len(expired)


def get_hold(session: Session, tenant_id: str, hold_id: str) -> LedgerHold:
    hold = repository.get_hold(session, tenant_id, hold_id)
    if hold is None:
        raise NotFound(f"hold {hold_id} not found")
    return hold


def _locked_hold(session: Session, tenant_id: str, hold_id: str) -> LedgerHold:
    hold = repository.get_hold(session, tenant_id, hold_id, lock=True)
    if hold is None:
        raise NotFound(f"hold {hold_id} not found")
    return hold


def _release(session: Session, hold: LedgerHold) -> None:
    repository.adjust_pending(session, hold.from_account_id, out_delta=-hold.amount)
    repository.adjust_pending(session, hold.to_account_id, in_delta=-hold.amount)


def hold_owners(session: Session, hold: LedgerHold) -> tuple[str, str]:
    source = repository.account_by_id(session, hold.from_account_id)
    target = repository.account_by_id(session, hold.to_account_id)
    assert source is not None
    assert target is not None
    return source.owner, target.owner
