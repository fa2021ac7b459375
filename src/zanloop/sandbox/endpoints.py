"""The buyer's side of the sandbox: pay or fail an order, watch notifications go out.

These routes stand in for the buyer's phone and WeChat's servers; they exist only while the
tenant's provider is the sandbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from zanloop.errors import InvalidState
from zanloop.http.deps import ReadSession, require
from zanloop.http.problems import PROBLEM_RESPONSES
from zanloop.http.writes import Writer, writer
from zanloop.payments import service as payments
from zanloop.sandbox import schemas, service
from zanloop.tenancy.domain import Principal, Scope

router = APIRouter(prefix="/v1/sandbox", tags=["sandbox"], responses=PROBLEM_RESPONSES)
Caller = Annotated[Principal, Depends(require(Scope.MERCHANT, Scope.APP))]
BuyerWriter = Annotated[
    Writer, Depends(writer(require(Scope.MERCHANT, Scope.APP), key_required=False))
]


def _sandbox_mchid(session: Session, tenant_id: str) -> str:
    config = payments.get_config(session, tenant_id)
    if config.provider != "sandbox":
        raise InvalidState("this tenant uses the real provider; the sandbox is off")
    return config.mchid


@router.post(
    "/orders/{out_trade_no}/pay",
    response_model=schemas.SandboxOrder,
    summary="Buyer pays the order (queues a signed TRANSACTION.SUCCESS notification)",
)
def pay(out_trade_no: str, write: BuyerWriter, body: schemas.SandboxPay | None = None) -> Response:
    def work(session: Session) -> schemas.SandboxOrder:
        mchid = _sandbox_mchid(session, write.tenant_id)
        return schemas.SandboxOrder(
            resource=service.pay(session, mchid, out_trade_no, body.payer_openid if body else None)
        )

    return write(work)


@router.post(
    "/orders/{out_trade_no}/fail",
    response_model=schemas.SandboxOrder,
    summary="Buyer's payment fails (PAYERROR; found by the order query)",
)
def fail(out_trade_no: str, write: BuyerWriter) -> Response:
    return write(
        lambda session: schemas.SandboxOrder(
            resource=service.fail(session, _sandbox_mchid(session, write.tenant_id), out_trade_no)
        )
    )


@router.get(
    "/orders/{out_trade_no}",
    response_model=schemas.SandboxOrder,
    summary="The sandbox's view of an order",
)
def get_order(out_trade_no: str, session: ReadSession, principal: Caller) -> schemas.SandboxOrder:
    data = service.query_order(session, _sandbox_mchid(session, principal.tenant_id), out_trade_no)
    if data is None:
        from zanloop.errors import NotFound

        raise NotFound(f"sandbox has no order {out_trade_no}")
    return schemas.SandboxOrder(resource=data)


@router.get(
    "/platform-key", response_model=schemas.PlatformKey, summary="The sandbox platform public key"
)
def platform_key(session: ReadSession, principal: Caller) -> schemas.PlatformKey:
    key_id, pem = service.platform_public_key(session)
    return schemas.PlatformKey(public_key_id=key_id, public_key_pem=pem)


@router.get(
    "/notifications",
    response_model=list[schemas.SandboxNotification],
    summary="Notifications the sandbox sent to this tenant, newest first",
)
def notifications(session: ReadSession, principal: Caller) -> list[schemas.SandboxNotification]:
    mchid = _sandbox_mchid(session, principal.tenant_id)
    return [
        schemas.SandboxNotification.model_validate(n)
        for n in service.list_notifications(session, mchid)
    ]
