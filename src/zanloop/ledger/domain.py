"""Ledger rules: pure arithmetic, no I/O.

Every transfer is a set of legs whose amounts sum to zero: money leaves the accounts with negative
legs and arrives at those with positive legs. An account's balance is the sum of its entries.
An account without overdraft may not go below what it has promised to holds:
``balance - pending_out >= 0``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from json.encoder import encode_basestring_ascii as _json_str
from typing import Any, NamedTuple

from zanloop.errors import InsufficientFunds, InvalidState, Unprocessable
from zanloop.kit.money import Asset

MAX_LEGS = 32
# Per leg: far above any real payment, far below BIGINT even summed over a transfer's legs.
MAX_AMOUNT = 10**15
MAX_TRANSFER_ID = 200
HOLD_POST_PREFIX = "hold:"
# A posted hold becomes the transfer ``hold:<hold_id>``, which must fit a transfer id.
MAX_HOLD_ID = MAX_TRANSFER_ID - len(HOLD_POST_PREFIX)


class TransferKind(StrEnum):
    TRANSFER = "transfer"
    HOLD_POST = "hold_post"
    REVERSAL = "reversal"


class HoldStatus(StrEnum):
    PENDING = "PENDING"
    POSTED = "POSTED"
    VOIDED = "VOIDED"


@dataclass(frozen=True)
class Leg:
    owner: str
    amount: int
    # Only consulted when this leg opens the account.
    overdraft_allowed: bool = False


@dataclass(frozen=True)
class TransferRequest:
    transfer_id: str
    asset: Asset
    legs: tuple[Leg, ...]
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: TransferKind = TransferKind.TRANSFER
    reverses_id: str | None = None

    @property
    def amount(self) -> int:
        return sum(leg.amount for leg in self.legs if leg.amount > 0)

    def fingerprint(self) -> str:
        """Same id, same fingerprint: a replay. Same id, other fingerprint: a conflict.

        The SHA-256 of ``json.dumps({"asset", "kind", "legs": sorted (owner, amount) pairs,
        "reverses"}, sort_keys=True)``, the form stored with every transfer so far; written out
        by hand because it runs once per posted transfer (a test holds it to ``json.dumps``).
        """
        pairs = sorted([(leg.owner, leg.amount) for leg in self.legs])
        legs = ", ".join([f"[{_json_str(owner)}, {int(amount)}]" for owner, amount in pairs])
        reverses = "null" if self.reverses_id is None else _json_str(self.reverses_id)
        body = (
            f'{{"asset": {_json_str(self.asset.value)}, "kind": {_json_str(self.kind.value)}, '
            f'"legs": [{legs}], "reverses": {reverses}}}'
        )
        return hashlib.sha256(body.encode()).hexdigest()


class Transfer(NamedTuple):
    """A posted transfer, as the ledger hands it back (a named tuple: a batch makes one per
    transfer, and these cost a fifth of a frozen dataclass)."""

    id: str
    tenant_id: str
    transfer_id: str
    asset: str
    # Sum of the positive legs: what the transfer moved.
    amount: int
    reversed_amount: int
    kind: str
    # The primary key (``id``) of the transfer this one reverses.
    reverses_id: str | None
    fingerprint: str
    description: str
    metadata: dict[str, Any]
    created_at: datetime


def two_party(
    transfer_id: str,
    asset: Asset,
    from_owner: str,
    to_owner: str,
    amount: int,
    *,
    from_overdraft: bool = False,
    **kwargs: Any,
) -> TransferRequest:
    return TransferRequest(
        transfer_id=transfer_id,
        asset=asset,
        legs=(Leg(from_owner, -amount, from_overdraft), Leg(to_owner, amount)),
        **kwargs,
    )


def validate(request: TransferRequest) -> None:
    if not 1 <= len(request.transfer_id) <= MAX_TRANSFER_ID:
        raise Unprocessable(
            f"transfer_id must be 1 to {MAX_TRANSFER_ID} characters", field="transfer_id"
        )
    if not 2 <= len(request.legs) <= MAX_LEGS:
        raise Unprocessable(f"a transfer needs 2 to {MAX_LEGS} legs", field="legs")
    for i, leg in enumerate(request.legs):
        if leg.amount == 0:
            raise Unprocessable("a leg must move a non-zero amount", field=f"legs[{i}].amount")
        if abs(leg.amount) > MAX_AMOUNT:
            raise Unprocessable(f"a leg moves at most {MAX_AMOUNT}", field=f"legs[{i}].amount")
        if not leg.owner:
            raise Unprocessable("a leg needs an owner", field=f"legs[{i}].owner")
    if sum(leg.amount for leg in request.legs) != 0:
        raise Unprocessable("the legs of a transfer must sum to zero", field="legs")
    if len({leg.owner for leg in request.legs}) != len(request.legs):
        raise Unprocessable("each account may appear once in a transfer", field="legs")


def net_by_owner(legs: Iterable[Leg]) -> dict[str, int]:
    net: dict[str, int] = {}
    for leg in legs:
        net[leg.owner] = net.get(leg.owner, 0) + leg.amount
    return net


@dataclass(slots=True)
class AccountState:
    """The mutable view of an account while a batch is applied."""

    account_id: str
    owner: str
    balance: int
    pending_out: int
    overdraft_allowed: bool

    @property
    def available(self) -> int:
        return self.balance - self.pending_out


class PlannedEntry(NamedTuple):
    transfer_index: int
    account_id: str
    amount: int
    balance_after: int


def plan_entries(
    transfers: Sequence[TransferRequest], accounts: dict[str, AccountState]
) -> list[PlannedEntry]:
    """Apply transfers in order to ``accounts`` (mutated) and return the entries to write.

    Raises InsufficientFunds if any account without overdraft would fall below its holds.
    """
    planned: list[PlannedEntry] = []
    for index, transfer in enumerate(transfers):
        for leg in transfer.legs:
            state = accounts[leg.owner]
            new_balance = state.balance + leg.amount
            if leg.amount < 0 and not state.overdraft_allowed and new_balance < state.pending_out:
                raise InsufficientFunds(
                    f"account {leg.owner} has {state.available} {transfer.asset.value} "
                    f"available, transfer {transfer.transfer_id} needs {-leg.amount}"
                )
            state.balance = new_balance
            planned.append(PlannedEntry(index, state.account_id, leg.amount, new_balance))
    return planned


def reversal_legs(original: Sequence[Leg], amount: int | None, gross: int) -> tuple[Leg, ...]:
    """Legs that undo ``original``: all of it, or ``amount`` of a two-party transfer."""
    if amount is None or amount == gross:
        return tuple(Leg(leg.owner, -leg.amount) for leg in original)
    if len(original) != 2:
        raise Unprocessable(
            "a partial reversal needs a two-party transfer; reverse it whole", field="amount"
        )
    sign = {leg.owner: (1 if leg.amount > 0 else -1) for leg in original}
    return tuple(Leg(owner, -s * amount) for owner, s in sign.items())


def check_reversible(gross: int, already_reversed: int, amount: int | None) -> int:
    """How much to reverse: ``amount``, or all that is left when it is None."""
    if amount is not None and amount <= 0:
        raise Unprocessable("amount must be positive", field="amount")
    if already_reversed >= gross:
        raise InvalidState("the transfer is already fully reversed")
    wanted = gross - already_reversed if amount is None else amount
    if already_reversed + wanted > gross:
        raise Unprocessable(
            f"only {gross - already_reversed} of {gross} can still be reversed", field="amount"
        )
    return wanted


def check_hold_postable(
    status: HoldStatus,
    hold_amount: int,
    post_amount: int | None,
    *,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> int:
    if status is not HoldStatus.PENDING:
        raise InvalidState(f"the hold is {status.value}, not PENDING")
    if expires_at is not None and now is not None and is_expired(expires_at, now):
        raise InvalidState(f"the hold expired at {expires_at.isoformat()}; it can only be voided")
    amount = hold_amount if post_amount is None else post_amount
    if not 0 < amount <= hold_amount:
        raise Unprocessable(f"post between 1 and {hold_amount}", field="amount")
    return amount


def is_expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


def hold_transfer_id(hold_id: str) -> str:
    return f"{HOLD_POST_PREFIX}{hold_id}"


# Holds whose id starts with this belong to a workflow (the risk review queue): only that
# workflow settles them, never the generic ledger API.
MANAGED_HOLD_PREFIX = "managed:"


def check_hold_not_managed(hold_id: str) -> None:
    if hold_id.startswith(MANAGED_HOLD_PREFIX):
        raise InvalidState(
            f"hold {hold_id} is settled by its own workflow (the risk review queue), "
            "not through the ledger API"
        )


def check_hold_id(hold_id: str) -> None:
    if not 1 <= len(hold_id) <= MAX_HOLD_ID:
        raise Unprocessable(f"hold_id must be 1 to {MAX_HOLD_ID} characters", field="hold_id")


def hold_fingerprint(asset: Asset, from_owner: str, to_owner: str, amount: int) -> str:
    body = f"{asset.value}|{from_owner}|{to_owner}|{amount}"
    return hashlib.sha256(body.encode()).hexdigest()
