from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.orm import Session

from zanloop.http.deps import ReadSession, require
from zanloop.http.problems import PROBLEM_RESPONSES
from zanloop.http.writes import Writer, writer
from zanloop.kit.money import Asset
from zanloop.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, cursor_key, split_page
from zanloop.ledger import domain, schemas, service
from zanloop.ledger.domain import Leg, Transfer, TransferRequest
from zanloop.ledger.tables import LedgerAccount, LedgerHold
from zanloop.tenancy.domain import Principal, Scope

router = APIRouter(prefix="/v1/ledger", tags=["ledger"], responses=PROBLEM_RESPONSES)
Reader = Annotated[Principal, Depends(require(*Scope))]
MoneyWriter = Annotated[Writer, Depends(writer(require(Scope.MERCHANT), key_required=True))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
# Ids and owners in the path: the same characters the bodies allow.
PathText = Annotated[str, Path(pattern=schemas.NO_NUL)]


def _unmanaged(hold_id: str) -> str:
    domain.check_hold_not_managed(hold_id)
    return hold_id


def _request(body: schemas.TransferCreate) -> TransferRequest:
    return TransferRequest(
        transfer_id=body.transfer_id,
        asset=body.asset,
        legs=tuple(Leg(leg.owner, leg.amount) for leg in body.legs),
        description=body.description,
        metadata=body.metadata,
    )


def _transfer(session: Session, transfer: Transfer, replayed: bool = False) -> schemas.Transfer:
    return schemas.Transfer(
        id=transfer.id,
        transfer_id=transfer.transfer_id,
        asset=Asset(transfer.asset),
        amount=transfer.amount,
        reversed_amount=transfer.reversed_amount,
        kind=transfer.kind,
        reverses_id=service.reversed_transfer_id(session, transfer),
        description=transfer.description,
        metadata=transfer.metadata,
        legs=[
            schemas.Leg(owner=leg.owner, amount=leg.amount)
            for leg in service.transfer_legs(session, transfer)
        ],
        created_at=transfer.created_at,
        replayed=replayed,
    )


def _account(account: LedgerAccount) -> schemas.Account:
    return schemas.Account(
        id=account.id,
        owner=account.owner,
        asset=Asset(account.asset),
        balance=account.balance,
        pending_out=account.pending_out,
        pending_in=account.pending_in,
        available=account.balance - account.pending_out,
        overdraft_allowed=account.overdraft_allowed,
        created_at=account.created_at,
    )


def _hold(session: Session, hold: LedgerHold) -> schemas.Hold:
    from_owner, to_owner = service.hold_owners(session, hold)
    return schemas.Hold(
        hold_id=hold.hold_id,
        asset=Asset(hold.asset),
        from_owner=from_owner,
        to_owner=to_owner,
        amount=hold.amount,
        posted_amount=hold.posted_amount,
        status=hold.status,
        expires_at=hold.expires_at,
        created_at=hold.created_at,
        resolved_at=hold.resolved_at,
    )


@router.post(
    "/transfers", response_model=schemas.Transfer, status_code=201, summary="Post a transfer"
)
def post_transfer(body: schemas.TransferCreate, write: MoneyWriter) -> Response:
    def work(session: Session) -> schemas.Transfer:
        posted = service.post(session, write.tenant_id, _request(body))
        return _transfer(session, posted.transfer, posted.replayed)

    return write(work, status_code=201)


@router.post(
    "/transfers/batch",
    response_model=list[schemas.Transfer],
    status_code=201,
    summary="Post up to 1,000 transfers atomically",
)
def post_batch(body: schemas.TransferBatchCreate, write: MoneyWriter) -> Response:
    def work(session: Session) -> list[schemas.Transfer]:
        posted = service.post_many(session, write.tenant_id, [_request(t) for t in body.transfers])
        return [_transfer(session, p.transfer, p.replayed) for p in posted]

    return write(work, status_code=201)  # type: ignore[arg-type]


@router.get(
    "/transfers/{transfer_id}", response_model=schemas.Transfer, summary="A transfer and its legs"
)
def get_transfer(
    transfer_id: PathText, session: ReadSession, principal: Reader
) -> schemas.Transfer:
    return _transfer(session, service.get_transfer(session, principal.tenant_id, transfer_id))


@router.post(
    "/transfers/{transfer_id}/reversals",
    response_model=schemas.Transfer,
    status_code=201,
    summary="Reverse a transfer, wholly or partly",
)
def reverse_transfer(
    transfer_id: PathText, body: schemas.ReversalCreate, write: MoneyWriter
) -> Response:
    def work(session: Session) -> schemas.Transfer:
        posted = service.reverse(
            session, write.tenant_id, transfer_id, body.reversal_id, body.amount, body.description
        )
        return _transfer(session, posted.transfer, posted.replayed)

    return write(work, status_code=201)


@router.post(
    "/accounts", response_model=schemas.Account, status_code=201, summary="Open an account"
)
def open_account(body: schemas.AccountCreate, write: MoneyWriter) -> Response:
    return write(
        lambda session: _account(
            service.open_account(
                session, write.tenant_id, body.owner, body.asset, body.overdraft_allowed
            )
        ),
        status_code=201,
    )


@router.get("/accounts", response_model=Page[schemas.Account], summary="List accounts")
def list_accounts(
    session: ReadSession, principal: Reader, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> Page[schemas.Account]:
    after = cursor_key(cursor, str)
    rows = service.list_accounts(session, principal.tenant_id, after, limit + 1)
    accounts, next_cursor = split_page(rows, limit, lambda a: a.id)
    return Page(data=[_account(a) for a in accounts], next_cursor=next_cursor)


@router.get(
    "/balances/{owner}", response_model=schemas.Balance, summary="Balance of an owner's account"
)
def get_balance(
    owner: PathText, session: ReadSession, principal: Reader, asset: Asset = Asset.CNY
) -> schemas.Balance:
    b = service.balance(session, principal.tenant_id, owner, asset)
    return schemas.Balance(
        owner=b.owner,
        asset=b.asset,
        balance=b.balance,
        pending_out=b.pending_out,
        pending_in=b.pending_in,
        available=b.available,
    )


@router.get(
    "/balances/{owner}/entries", response_model=Page[schemas.Entry], summary="Entries, newest first"
)
def list_entries(
    owner: PathText,
    session: ReadSession,
    principal: Reader,
    asset: Asset = Asset.CNY,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Entry]:
    before = cursor_key(cursor, int)
    rows = service.entries(session, principal.tenant_id, owner, asset, before, limit + 1)
    page, next_cursor = split_page(rows, limit, lambda row: row[0].id)
    data = [
        schemas.Entry(
            id=e.id,
            transfer_id=t,
            amount=e.amount,
            balance_after=e.balance_after,
            created_at=e.created_at,
        )
        for e, t in page
    ]
    return Page(data=data, next_cursor=next_cursor)


@router.post(
    "/holds",
    response_model=schemas.Hold,
    status_code=201,
    summary="Place a hold (pending transfer)",
)
def place_hold(body: schemas.HoldCreate, write: MoneyWriter) -> Response:
    def work(session: Session) -> schemas.Hold:
        domain.check_hold_not_managed(body.hold_id)
        hold, _ = service.place_hold(
            session,
            write.tenant_id,
            body.hold_id,
            body.asset,
            body.from_owner,
            body.to_owner,
            body.amount,
            expires_at=body.expires_at,
            description=body.description,
        )
        return _hold(session, hold)

    return write(work, status_code=201)


@router.get("/holds/{hold_id}", response_model=schemas.Hold, summary="A hold")
def get_hold(hold_id: PathText, session: ReadSession, principal: Reader) -> schemas.Hold:
    return _hold(session, service.get_hold(session, principal.tenant_id, hold_id))


@router.post("/holds/{hold_id}/post", response_model=schemas.Hold, summary="Post a hold")
def post_hold(
    hold_id: PathText, write: MoneyWriter, body: schemas.HoldPost | None = None
) -> Response:
    amount = body.amount if body else None
    return write(
        lambda session: _hold(
            session, service.post_hold(session, write.tenant_id, _unmanaged(hold_id), amount)
        )
    )


@router.post("/holds/{hold_id}/void", response_model=schemas.Hold, summary="Void a hold")
def void_hold(hold_id: PathText, write: MoneyWriter) -> Response:
    return write(
        lambda session: _hold(
            session, service.void_hold(session, write.tenant_id, _unmanaged(hold_id))
        )
    )
