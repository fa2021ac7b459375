from __future__ import annotations

import re
import threading
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from zanloop.config import Settings
from zanloop.db import Database
from zanloop.errors import NotificationRejected
from zanloop.http.deps import ReadSession, SettingsDep, require
from zanloop.http.problems import PROBLEM_RESPONSES
from zanloop.http.writes import Writer, writer
from zanloop.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, cursor_key, split_page
from zanloop.ops import metrics
from zanloop.payments import notifications, schemas, service
from zanloop.payments.batching import NotificationBatcher
from zanloop.payments.notifications import VerifiedNotification
from zanloop.payments.tables import PaymentOrder, PaymentProviderConfig
from zanloop.tenancy.domain import Principal, Scope

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1/payments", tags=["payments"], responses=PROBLEM_RESPONSES)
Merchant = Annotated[Principal, Depends(require(Scope.MERCHANT, Scope.APP, Scope.ANALYST))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]
MoneyWriter = Annotated[
    Writer, Depends(writer(require(Scope.MERCHANT, Scope.APP), key_required=True))
]
MerchantWriter = Annotated[Writer, Depends(writer(require(Scope.MERCHANT), key_required=False))]
AdminWriter = Annotated[Writer, Depends(writer(require(Scope.ADMIN), key_required=False))]


def _created(order: PaymentOrder, pay_params: dict[str, str]) -> schemas.PaymentOrderCreated:
    base = schemas.PaymentOrder.model_validate(order)
    return schemas.PaymentOrderCreated(
        **base.model_dump(),
        pay_params=schemas.PayParams(**pay_params),
        disclosure=schemas.PaymentDisclosure(
            what=order.description,
            amount_fen=order.amount_fen,
            currency=order.currency,
            expires_at=order.expires_at,
            refund_terms="Refunds go back to the original WeChat Pay account; "
            "partial refunds allowed.",
        ),
    )


@router.post(
    "/orders",
    response_model=schemas.PaymentOrderCreated,
    status_code=201,
    summary="Create a payment order",
    description="Places the order with the provider and returns the parameters the buyer's app "
    "passes to `wx.requestPayment`. The order succeeds only when the provider says so.",
)
def create_order(
    body: schemas.PaymentOrderCreate, write: MoneyWriter, settings: SettingsDep
) -> Response:
    def work(session: Session) -> schemas.PaymentOrderCreated:
        created = service.create_order(session, settings, write.tenant_id, body)
        return _created(created.order, created.pay_params)

    return write(work, status_code=201)


@router.get(
    "/orders",
    response_model=Page[schemas.PaymentOrder],
    summary="List payment orders, newest first",
)
def list_orders(
    session: ReadSession,
    principal: Merchant,
    status: str | None = None,
    out_trade_no: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[schemas.PaymentOrder]:
    if out_trade_no is not None:
        order = service.find_order(session, principal.tenant_id, out_trade_no)
        return Page(data=[schemas.PaymentOrder.model_validate(order)])
    rows = service.list_orders(
        session, principal.tenant_id, cursor_key(cursor, str), limit + 1, status
    )
    orders, next_cursor = split_page(rows, limit, lambda o: o.id)
    return Page(
        data=[schemas.PaymentOrder.model_validate(o) for o in orders], next_cursor=next_cursor
    )


@router.get("/orders/{order_id}", response_model=schemas.PaymentOrder, summary="A payment order")
def get_order(order_id: str, session: ReadSession, principal: Merchant) -> schemas.PaymentOrder:
    return schemas.PaymentOrder.model_validate(
        service.get_order(session, principal.tenant_id, order_id)
    )


@router.post(
    "/orders/{order_id}/close", response_model=schemas.PaymentOrder, summary="Close an unpaid order"
)
def close_order(order_id: str, write: MerchantWriter, settings: SettingsDep) -> Response:
    return write(
        lambda session: schemas.PaymentOrder.model_validate(
            service.close_order(session, settings, write.tenant_id, order_id)
        )
    )


@router.post(
    "/orders/{order_id}/sync",
    response_model=schemas.PaymentOrder,
    summary="Query the provider and settle on its answer",
)
def sync_order(order_id: str, write: MerchantWriter, settings: SettingsDep) -> Response:
    return write(
        lambda session: schemas.PaymentOrder.model_validate(
            service.sync_order(session, settings, write.tenant_id, order_id)
        )
    )


@router.post(
    "/orders/{order_id}/refunds",
    response_model=schemas.Refund,
    status_code=201,
    summary="Refund a paid order, wholly or partly",
)
def create_refund(
    order_id: str,
    write: Annotated[Writer, Depends(writer(require(Scope.MERCHANT), key_required=True))],
    settings: SettingsDep,
    body: schemas.RefundCreate | None = None,
) -> Response:
    data = body or schemas.RefundCreate()
    return write(
        lambda session: schemas.Refund.model_validate(
            service.request_refund(session, settings, write.tenant_id, order_id, data)
        ),
        status_code=201,
    )


@router.get(
    "/orders/{order_id}/refunds", response_model=list[schemas.Refund], summary="Refunds of an order"
)
def list_refunds(order_id: str, session: ReadSession, principal: Merchant) -> list[schemas.Refund]:
    return [
        schemas.Refund.model_validate(r)
        for r in service.list_refunds(session, principal.tenant_id, order_id)
    ]


@router.get("/refunds/{refund_id}", response_model=schemas.Refund, summary="A refund")
def get_refund(refund_id: str, session: ReadSession, principal: Merchant) -> schemas.Refund:
    return schemas.Refund.model_validate(
        service.get_refund(session, principal.tenant_id, refund_id)
    )


def _config(
    config: PaymentProviderConfig, settings: Settings, tenant_id: str
) -> schemas.ProviderConfig:
    return schemas.ProviderConfig(
        provider=config.provider,
        mchid=config.mchid,
        appid=config.appid,
        merchant_serial_no=config.merchant_serial_no,
        platform_public_key_id=config.platform_public_key_id,
        platform_public_key_pem=config.platform_public_key_pem,
        notify_url=service.notify_url(settings, tenant_id),
        updated_at=config.updated_at,
    )


@router.get(
    "/provider",
    response_model=schemas.ProviderConfig,
    summary="The tenant's payment provider (no secrets)",
)
def get_provider(
    session: ReadSession, principal: Admin, settings: SettingsDep
) -> schemas.ProviderConfig:
    return _config(service.get_config(session, principal.tenant_id), settings, principal.tenant_id)


@router.put(
    "/provider",
    response_model=schemas.ProviderConfig,
    summary="Configure real WeChat Pay credentials",
)
def put_provider(
    body: schemas.ProviderConfigUpdate, write: AdminWriter, settings: SettingsDep
) -> Response:
    return write(
        lambda session: _config(
            service.configure(session, write.tenant_id, body), settings, write.tenant_id
        )
    )


_TENANT_ID = re.compile(r"[A-Za-z0-9_]{1,40}")


@router.post(
    "/notify/{tenant_id}",
    status_code=204,
    tags=["provider callbacks"],
    summary="WeChat Pay v3 notification receiver",
    description="Called by the provider, not by you. Verifies the signature and timestamp, "
    "decrypts the resource, de-duplicates and settles. Answers 204, or 4xx/5xx with "
    '`{"code": "FAIL", "message": ...}` so that the provider retries.',
    responses={400: {"description": "Rejected"}, 401: {"description": "Signature not verified"}},
)
async def notify(tenant_id: str, request: Request) -> Response:
    # Not as dependencies: FastAPI runs plain-function dependencies in the thread pool, two
    # thread hops per notification for two attribute reads.
    if not _TENANT_ID.fullmatch(tenant_id):
        return JSONResponse({"code": "FAIL", "message": "unknown merchant"}, status_code=404)
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    body = await request.body()
    headers = dict(request.headers)
    try:
        if db.is_sqlite:
            # One writer at a time: verified in the thread pool, then settled together with
            # whatever else is waiting (see payments.batching).
            verified = await run_in_threadpool(
                _verify_notification, db, settings, tenant_id, headers, body
            )
            outcome = await _notification_batcher(request.app, db).settle(verified)
        else:
            # PostgreSQL takes concurrent writers (and groups their commits itself).
            outcome = await run_in_threadpool(
                _handle_notification, db, settings, tenant_id, headers, body
            )
    except NotificationRejected as exc:
        metrics.NOTIFICATIONS.labels(outcome="rejected").inc()
        log.warning(
            "notification rejected", tenant_id=tenant_id, reason=exc.message, status=exc.status_code
        )
        return JSONResponse({"code": "FAIL", "message": exc.message}, status_code=exc.status_code)
    except Exception:
        metrics.NOTIFICATIONS.labels(outcome="error").inc()
        log.exception("notification failed", tenant_id=tenant_id)
        return JSONResponse(
            {"code": "FAIL", "message": "internal error; retry later"}, status_code=500
        )
    metrics.NOTIFICATIONS.labels(outcome=outcome).inc()
    return Response(status_code=204)


def _verify_notification(
    db: Database, settings: Settings, tenant_id: str, headers: dict[str, str], body: bytes
) -> VerifiedNotification:
    with db.read_session() as session:
        return notifications.verify(session, settings, tenant_id, headers, body)


def _handle_notification(
    db: Database, settings: Settings, tenant_id: str, headers: dict[str, str], body: bytes
) -> str:
    """One notification, verified, then settled in a transaction of its own."""
    verified = _verify_notification(db, settings, tenant_id, headers, body)
    with db.session() as session:
        return notifications.settle(session, verified)


_batcher_lock = threading.Lock()


def _notification_batcher(app: FastAPI, db: Database) -> NotificationBatcher:
    """The app's notification writer (one per app, made on first use)."""
    batcher: NotificationBatcher | None = getattr(app.state, "notification_batcher", None)
    if batcher is None:
        with _batcher_lock:
            batcher = getattr(app.state, "notification_batcher", None)
            if batcher is None:
                batcher = app.state.notification_batcher = NotificationBatcher(db)
    return batcher
