"""How the programme's point movements become ledger transfers.

A batch moves points for many members at once; each movement is a balanced group of legs, and
groups are packed into transfers of at most ``MAX_LEGS`` legs, so a thousand members cost a few
dozen transfers rather than a thousand, and every transfer still balances on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from zanloop.kit.ids import new_id
from zanloop.kit.money import Asset
from zanloop.ledger.domain import MAX_LEGS, Leg, TransferRequest


def from_counter(
    kind: str, counter: str, amounts: Mapping[str, int], description: str, *, overdraft: bool
) -> tuple[list[TransferRequest], dict[str, str]]:
    """``counter`` pays each owner its amount (negative: the owner pays the counter). Returns
    the transfers and, per owner, the id of the transfer that moved its points."""
    owners = sorted(o for o, a in amounts.items() if a)
    stamp = new_id(kind)
    requests: list[TransferRequest] = []
    transfer_of: dict[str, str] = {}
    width = MAX_LEGS - 1
    for n, start in enumerate(range(0, len(owners), width)):
        chunk = owners[start : start + width]
        transfer_id = f"loyalty:{kind}:{stamp}:{n}"
        legs = [Leg(o, amounts[o]) for o in chunk]
        total = sum(amounts[o] for o in chunk)
        if total:
            legs.insert(0, Leg(counter, -total, overdraft_allowed=overdraft))
        requests.append(
            TransferRequest(
                transfer_id=transfer_id,
                asset=Asset.POINTS,
                legs=tuple(legs),
                description=description,
            )
        )
        transfer_of.update((o, transfer_id) for o in chunk)
    return requests, transfer_of


def pairs(
    kind: str, moves: Iterable[tuple[str, str, int]], description: str
) -> list[TransferRequest]:
    """Each (from, to, amount) as two legs, packed into as few transfers as the leg limit
    allows (maturing pending points: pending account -> available account, per member)."""
    net: dict[tuple[str, str], int] = {}
    for source, target, amount in moves:
        if amount:
            net[(source, target)] = net.get((source, target), 0) + amount
    stamp = new_id(kind)
    requests: list[TransferRequest] = []
    items = sorted(net.items())
    per = MAX_LEGS // 2
    for n, start in enumerate(range(0, len(items), per)):
        legs: list[Leg] = []
        for (source, target), amount in items[start : start + per]:
            legs += [Leg(source, -amount), Leg(target, amount)]
        requests.append(
            TransferRequest(
                transfer_id=f"loyalty:{kind}:{stamp}:{n}",
                asset=Asset.POINTS,
                legs=tuple(legs),
                description=description,
            )
        )
    return requests
