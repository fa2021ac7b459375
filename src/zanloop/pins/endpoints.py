from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from zanloop.db import Database
from zanloop.errors import Forbidden, NotFound
from zanloop.http.deps import DatabaseDep, ReadSession, SettingsDep, require
from zanloop.http.problems import PROBLEM_RESPONSES
from zanloop.http.writes import Writer, writer
from zanloop.kit.clock import utcnow
from zanloop.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, cursor_key, split_page
from zanloop.ledger.schemas import NO_NUL
from zanloop.payments.schemas import PaymentDisclosure, PayParams
from zanloop.pins import analytics, catalog, schemas, service, stream
from zanloop.pins.domain import ContentKind, PinMode, PinPolicy, PinStatus
from zanloop.pins.tables import Content, Creator, Pin
from zanloop.tenancy.domain import Principal, Scope

router = APIRouter(tags=["pins"], responses=PROBLEM_RESPONSES)
Reader = Annotated[Principal, Depends(require(*Scope))]
Platform = Annotated[Writer, Depends(writer(require(Scope.MERCHANT), key_required=False))]
Buyer = Annotated[Writer, Depends(writer(require(Scope.APP, Scope.MERCHANT), key_required=True))]
Moderator = Annotated[
    Writer, Depends(writer(require(Scope.CREATOR, Scope.MERCHANT), key_required=True))
]
CreatorReader = Annotated[Principal, Depends(require(Scope.CREATOR, Scope.MERCHANT, Scope.ANALYST))]
CreatorActor = Annotated[Principal, Depends(require(Scope.CREATOR, Scope.MERCHANT))]
CreatorWriter = Annotated[
    Writer, Depends(writer(require(Scope.CREATOR, Scope.MERCHANT), key_required=False))
]
ExternalId = Annotated[str, Path(pattern=NO_NUL, max_length=190)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _limited_to(principal: Principal) -> str | None:
    """The one creator a creator-only key sees; None for platform, app and analyst keys."""
    if principal.allows(Scope.MERCHANT, Scope.ANALYST, Scope.APP):
        return None
    return principal.creator_id or ""


def _check_creator(principal: Principal, creator_external_id: str, *, write: bool = False) -> None:
    """A creator-only key reads and acts for its own creator only. Otherwise, writes need a
    platform key (merchant), and reads are open to what the route's scopes admit."""
    limit = _limited_to(principal)
    if limit is not None:
        if limit != creator_external_id:
            raise Forbidden(f"this key does not act for creator {creator_external_id}")
    elif write and not principal.allows(Scope.MERCHANT):
        raise Forbidden(f"this key does not act for creator {creator_external_id}")


def _creator(creator: Creator) -> schemas.Creator:
    return schemas.Creator(
        id=creator.external_id,
        name=creator.name,
        programmes=creator.programmes,
        policy=creator.policy,
        created_at=creator.created_at,
    )


def _content(session: Session, content: Content) -> schemas.ContentOut:
    view = catalog.view_content(session, content)
    return schemas.ContentOut(
        id=content.external_id,
        creator_id=view.creator.external_id,
        kind=ContentKind(content.kind),
        title=content.title,
        pins_enabled=content.pins_enabled,
        completion_rate=content.completion_rate,
        engagement_rate=content.engagement_rate,
        quality_score=view.quality_score,
        accepts_pins=view.eligibility.accepts_pins,
        eligibility=view.eligibility.reason,
        terms=schemas.PinTerms(
            min_amount_fen=view.policy.min_amount_fen,
            mode=view.policy.mode,
            tiers=view.policy.tiers,
            slots=view.policy.slots,
        ),
        created_at=content.created_at,
    )


def _pin(session: Session, pin: Pin) -> schemas.Pin:
    payload = service.pin_payload(session, pin)
    return schemas.Pin(
        id=pin.id,
        content_id=payload["content_id"],
        creator_id=payload["creator_id"],
        buyer_id=pin.buyer_id,
        amount_fen=pin.amount_fen,
        creator_fen=pin.creator_fen,
        platform_fen=pin.platform_fen,
        message=pin.message,
        mode=PinMode(pin.mode),
        display_seconds=pin.display_seconds,
        status=PinStatus(pin.status),
        payment_order_id=pin.payment_order_id,
        decision_id=pin.decision_id,
        region=pin.region,
        created_at=pin.created_at,
        activated_at=pin.activated_at,
        expires_at=pin.expires_at,
        ended_at=pin.ended_at,
        end_reason=pin.end_reason,
        removed_by=pin.removed_by,
        refund_id=pin.refund_id,
        refunded_fen=pin.refunded_fen,
    )


def _page(session: Session, pins: list[Pin], limit: int) -> Page[schemas.Pin]:
    """``pins`` were fetched with ``limit + 1``: a next page exists only if there is more."""
    page, next_cursor = split_page(pins, limit, lambda p: p.id)
    return Page(data=[_pin(session, p) for p in page], next_cursor=next_cursor)


# Creators ------------------------------------------------------------------------------------


@router.put(
    "/v1/creators/{creator_id}",
    response_model=schemas.Creator,
    summary="Register or update a creator (your id)",
)
def put_creator(creator_id: ExternalId, body: schemas.CreatorUpsert, write: Platform) -> Response:
    return write(
        lambda session: _creator(
            catalog.upsert_creator(
                session,
                write.tenant_id,
                creator_id,
                body.name,
                [p.value for p in body.programmes],
                body.policy,
            )
        )
    )


@router.get("/v1/creators/{creator_id}", response_model=schemas.Creator, summary="A creator")
def get_creator(creator_id: ExternalId, session: ReadSession, principal: Reader) -> schemas.Creator:
    return _creator(catalog.get_creator(session, principal.tenant_id, creator_id))


@router.get(
    "/v1/creators/{creator_id}/pins",
    response_model=Page[schemas.Pin],
    summary="Pins a creator received, newest first",
)
def creator_pins(
    creator_id: ExternalId,
    session: ReadSession,
    principal: CreatorReader,
    status: PinStatus | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Pin]:
    _check_creator(principal, creator_id)
    pins = service.list_pins(
        session,
        principal.tenant_id,
        creator_external_id=creator_id,
        status=status,
        before_id=cursor_key(cursor, str),
        limit=limit + 1,
    )
    return _page(session, pins, limit)


@router.get(
    "/v1/creators/{creator_id}/analytics",
    response_model=schemas.CreatorAnalytics,
    summary="Totals, daily series, regions, spend bands and top supporters",
)
def creator_analytics(
    creator_id: ExternalId,
    session: ReadSession,
    principal: CreatorReader,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> schemas.CreatorAnalytics:
    _check_creator(principal, creator_id)
    creator = catalog.get_creator(session, principal.tenant_id, creator_id)
    until = until or utcnow() + timedelta(seconds=1)
    since = since or until - timedelta(days=30)
    f = analytics.creator_figures(session, principal.tenant_id, creator.id, since, until)
    return schemas.CreatorAnalytics(
        creator_id=creator_id,
        since=since,
        until=until,
        pins=f.pins,
        gross_fen=f.gross_fen,
        refunded_fen=f.refunded_fen,
        creator_earnings_fen=f.creator_earnings_fen,
        supporters=f.supporters,
        daily=[schemas.DayFigures(day=d, pins=n, amount_fen=a) for d, n, a in f.daily],
        regions=[schemas.Band(name=r, supporters=n, amount_fen=a) for r, n, a in f.regions],
        spend_bands=[schemas.Band(name=b, supporters=n, amount_fen=a) for b, n, a in f.spend_bands],
        top_supporters=[
            schemas.Supporter(buyer_id=b, pins=n, amount_fen=a) for b, n, a in f.top_supporters
        ],
    )


@router.post(
    "/v1/creators/{creator_id}/stream-tokens",
    response_model=schemas.StreamToken,
    status_code=201,
    summary="A token for the creator's live stream (valid 12 h)",
)
def stream_token(
    creator_id: ExternalId, principal: CreatorActor, db: DatabaseDep, settings: SettingsDep
) -> schemas.StreamToken:
    # Not an idempotent write: its answer (a secret) is never stored for a replay.
    _check_creator(principal, creator_id, write=True)
    with db.session() as session:
        creator = catalog.get_creator(session, principal.tenant_id, creator_id)
        token, expires_at = stream.issue_token(session, principal.tenant_id, creator.id)
    return schemas.StreamToken(
        token=token,
        expires_at=expires_at,
        url=f"{settings.base_url}/v1/creators/{creator_id}/stream?token={token}",
    )


@router.get(
    "/v1/creators/{creator_id}/stream",
    summary="Live notices of new pins (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def creator_stream(
    creator_id: ExternalId,
    request: Request,
    session: ReadSession,
    db: DatabaseDep,
    token: Annotated[str, Query(max_length=100, pattern=NO_NUL)],
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
) -> StreamingResponse:
    tenant_id, creator_pk = stream.check_token(session, token)
    creator = catalog.get_creator(session, tenant_id, creator_id)
    if creator.id != creator_pk:
        raise NotFound(f"creator {creator_id} not found")
    return StreamingResponse(
        stream.events(db, tenant_id, creator_pk, last_event_id, request.is_disconnected),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# Content -------------------------------------------------------------------------------------


@router.put(
    "/v1/contents/{content_id}",
    response_model=schemas.ContentOut,
    summary="Register or update a content item (your id)",
)
def put_content(content_id: ExternalId, body: schemas.ContentUpsert, write: Platform) -> Response:
    def work(session: Session) -> schemas.ContentOut:
        content = catalog.upsert_content(
            session,
            write.tenant_id,
            content_id,
            catalog.ContentFields(
                body.creator_id,
                body.kind.value,
                body.title,
                body.pins_enabled,
                body.completion_rate,
                body.engagement_rate,
            ),
        )
        return _content(session, content)

    return write(work)


@router.patch(
    "/v1/contents/{content_id}",
    response_model=schemas.ContentOut,
    summary="Update quality figures or switch paid pins on or off",
)
def patch_content(
    content_id: ExternalId, body: schemas.ContentUpdate, write: CreatorWriter, session: ReadSession
) -> Response:
    changes = body.model_dump(exclude_unset=True)
    # Checked before the write, so that a replayed Idempotency-Key cannot skip it.
    content = catalog.get_content(session, write.tenant_id, content_id)
    creator = catalog.view_content(session, content).creator.external_id
    _check_creator(write.principal, creator, write=True)
    if {"completion_rate", "engagement_rate"} & changes.keys() and not write.principal.allows(
        Scope.MERCHANT
    ):
        raise Forbidden("quality figures come from the platform, not from the creator")

    def work(session: Session) -> schemas.ContentOut:
        return _content(
            session, catalog.update_content(session, write.tenant_id, content_id, changes)
        )

    return write(work)


@router.get(
    "/v1/contents/{content_id}",
    response_model=schemas.ContentOut,
    summary="A content item and whether it accepts paid pins",
)
def get_content(
    content_id: ExternalId, session: ReadSession, principal: Reader
) -> schemas.ContentOut:
    return _content(session, catalog.get_content(session, principal.tenant_id, content_id))


# The JSON of each pinned list, kept while the service returns the very same list object.
_rendered: dict[tuple[str, str], tuple[service.PinnedList, bytes]] = {}


def _render(listed: service.PinnedList) -> bytes:
    def entries(items: list[service.PinnedEntry]) -> list[schemas.PinnedEntry]:
        return [
            schemas.PinnedEntry(
                pin_id=e.pin_id,
                buyer_id=e.buyer_id,
                amount_fen=e.amount_fen,
                message=e.message,
                pinned_at=e.activated_at,
                expires_at=e.expires_at,
            )
            for e in items
        ]

    return (
        schemas.PinnedList(
            content_id=listed.content_id,
            accepts_pins=listed.accepts_pins,
            slots=listed.slots,
            pinned=entries(listed.pinned),
            queued=entries(listed.queued),
        )
        .model_dump_json()
        .encode()
    )


@router.get(
    "/v1/contents/{content_id}/pins",
    response_model=schemas.PinnedList,
    summary="The pinned likes of a content item, in display order",
)
async def pinned_list(content_id: ExternalId, request: Request, principal: Reader) -> Response:
    # The hottest read: async, so that a cached list costs one stamp look-up in this thread
    # (SQLite is local) and no hand-off; building a list, or PostgreSQL, goes to a worker.
    db: Database = request.app.state.db
    tenant_id, now = principal.tenant_id, utcnow()
    if db.is_sqlite:
        listed = service.cached_pinned_list(db, tenant_id, content_id, now)
    else:
        listed = await run_in_threadpool(service.cached_pinned_list, db, tenant_id, content_id, now)
    if listed is None:
        listed = await run_in_threadpool(_build_list, db, tenant_id, content_id, now)
    body = cached_rendering(tenant_id, content_id, listed)
    if body is None:
        body = _render(listed)
        if len(_rendered) >= service.LIST_CACHE_SIZE:
            _rendered.clear()
        _rendered[(tenant_id, content_id)] = (listed, body)
    return Response(body, media_type="application/json")


def cached_rendering(tenant_id: str, content_id: str, listed: service.PinnedList) -> bytes | None:
    """The JSON rendered for this very list object, if it was rendered already."""
    rendered = _rendered.get((tenant_id, content_id))
    return rendered[1] if rendered is not None and rendered[0] is listed else None


def _build_list(db: Database, tenant_id: str, content_id: str, now: datetime) -> service.PinnedList:
    with db.read_session() as session:
        return service.pinned_list(session, tenant_id, content_id, now)


# Pins ----------------------------------------------------------------------------------------


@router.get("/v1/pins/policy", response_model=PinPolicy, summary="The pin policy")
def get_policy(session: ReadSession, principal: Reader) -> PinPolicy:
    return catalog.get_policy(session, principal.tenant_id)


@router.put("/v1/pins/policy", response_model=PinPolicy, summary="Set the pin policy")
def put_policy(body: PinPolicy, write: Platform) -> Response:
    return write(lambda session: catalog.set_policy(session, write.tenant_id, body))


@router.post(
    "/v1/pins",
    response_model=schemas.PinPurchase,
    status_code=201,
    summary="Buy a pinned like: a payment order, its parameters and the payment disclosure",
)
def buy_pin(body: schemas.PinCreate, write: Buyer, settings: SettingsDep) -> Response:
    def work(session: Session) -> schemas.PinPurchase:
        bought = service.purchase(
            session,
            settings,
            write.tenant_id,
            service.PurchaseRequest(
                content_external_id=body.content_id,
                buyer_id=body.buyer_id,
                amount_fen=body.amount_fen,
                message=body.message,
                device_id=body.device_id,
                ip=body.ip,
                region=body.region,
            ),
        )
        order = bought.order.order
        return schemas.PinPurchase(
            pin=_pin(session, bought.pin),
            payment=schemas.PinPayment(
                order_id=order.id,
                out_trade_no=order.out_trade_no,
                pay_params=PayParams(**bought.order.pay_params),
                expires_at=order.expires_at,
            ),
            disclosure=PaymentDisclosure(
                what=bought.disclosure_what,
                amount_fen=order.amount_fen,
                currency=order.currency,
                expires_at=order.expires_at,
                refund_terms=bought.disclosure_terms,
            ),
        )

    return write(work, status_code=201)


@router.get("/v1/pins", response_model=Page[schemas.Pin], summary="Pins, e.g. a buyer's history")
def list_pins(
    session: ReadSession,
    principal: Reader,
    buyer_id: Annotated[str | None, Query(pattern=NO_NUL, max_length=200)] = None,
    content_id: Annotated[str | None, Query(pattern=NO_NUL, max_length=200)] = None,
    status: PinStatus | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Pin]:
    pins = service.list_pins(
        session,
        principal.tenant_id,
        buyer_id=buyer_id,
        creator_external_id=_limited_to(principal),
        content_external_id=content_id,
        status=status,
        before_id=cursor_key(cursor, str),
        limit=limit + 1,
    )
    return _page(session, pins, limit)


@router.get("/v1/pins/{pin_id}", response_model=schemas.Pin, summary="A pin")
def get_pin(pin_id: ExternalId, session: ReadSession, principal: Reader) -> schemas.Pin:
    pin = _pin(session, service.get_pin(session, principal.tenant_id, pin_id))
    _check_creator(principal, pin.creator_id)
    return pin


@router.post(
    "/v1/pins/{pin_id}/remove",
    response_model=schemas.Pin,
    summary="Take a pin down; the creator's own removal is refunded, a violation is not",
)
def remove_pin(
    pin_id: ExternalId,
    write: Moderator,
    session: ReadSession,
    body: schemas.PinRemove | None = None,
) -> Response:
    body = body or schemas.PinRemove()
    by_creator = Scope.CREATOR in write.principal.scopes and not write.principal.allows(
        Scope.MERCHANT
    )
    # Checked before the write, so that a replayed Idempotency-Key cannot skip it.
    _check_creator(
        write.principal,
        _pin(session, service.get_pin(session, write.tenant_id, pin_id)).creator_id,
        write=True,
    )

    def work(session: Session) -> schemas.Pin:
        pin = service.remove(
            session,
            write.tenant_id,
            pin_id,
            by_creator=by_creator,
            violation=body.violation,
            reason=body.reason,
        )
        return _pin(session, pin)

    return write(work)
