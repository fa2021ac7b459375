from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.orm import Session

from zanloop.coupons import checkout, schemas, service
from zanloop.coupons.domain import CouponKind, CouponStatus, TemplateStatus, effective_status, ratio
from zanloop.coupons.tables import Coupon, CouponTemplate
from zanloop.http.deps import ReadSession, SettingsDep, require
from zanloop.http.problems import PROBLEM_RESPONSES
from zanloop.http.writes import Writer, writer
from zanloop.kit.clock import utcnow
from zanloop.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, cursor_key, split_page
from zanloop.ledger.schemas import NO_NUL
from zanloop.payments.schemas import PayParams
from zanloop.tenancy.domain import Principal, Scope

router = APIRouter(tags=["coupons"], responses=PROBLEM_RESPONSES)
Reader = Annotated[Principal, Depends(require(Scope.MERCHANT, Scope.ANALYST, Scope.APP))]
Analyst = Annotated[Principal, Depends(require(Scope.MERCHANT, Scope.ANALYST))]
Merchant = Annotated[Writer, Depends(writer(require(Scope.MERCHANT), key_required=False))]
Claimer = Annotated[Writer, Depends(writer(require(Scope.APP, Scope.MERCHANT), key_required=False))]
Buyer = Annotated[Writer, Depends(writer(require(Scope.APP, Scope.MERCHANT), key_required=True))]
ObjectId = Annotated[str, Path(pattern=NO_NUL, max_length=40)]
UserId = Annotated[str, Path(pattern=NO_NUL, max_length=190)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _template(template: CouponTemplate, figures: service.TemplateFigures) -> schemas.Template:
    return schemas.Template(
        id=template.id,
        name=template.name,
        kind=CouponKind(template.kind),
        amount_fen=template.amount_fen,
        percent_off=template.percent_off,
        max_discount_fen=template.max_discount_fen,
        threshold_fen=template.threshold_fen,
        valid_days=template.valid_days,
        valid_from=template.valid_from,
        valid_until=template.valid_until,
        per_user_limit=template.per_user_limit,
        stock=template.stock,
        budget_fen=template.budget_fen,
        stores=template.stores,
        categories=template.categories,
        status=TemplateStatus(template.status),
        issued=figures.issued,
        redeemed=figures.redeemed,
        stock_left=figures.stock_left,
        budget_left=figures.budget_left,
        created_at=template.created_at,
        updated_at=template.updated_at,
    )


def _templates(
    session: Session, tenant_id: str, rows: list[CouponTemplate]
) -> list[schemas.Template]:
    figures = service.template_figures(session, tenant_id, rows)
    return [_template(t, figures[t.id]) for t in rows]


def _coupon(coupon: Coupon, template: CouponTemplate) -> schemas.Coupon:
    return schemas.Coupon(
        id=coupon.id,
        template_id=coupon.template_id,
        user_id=coupon.user_id,
        request_no=coupon.request_no,
        status=effective_status(CouponStatus(coupon.status), coupon.expires_at, utcnow()),
        source=coupon.source,
        face_fen=coupon.face_fen,
        terms=schemas.CouponTerms(
            name=template.name,
            kind=CouponKind(template.kind),
            amount_fen=template.amount_fen,
            percent_off=template.percent_off,
            max_discount_fen=template.max_discount_fen,
            threshold_fen=template.threshold_fen,
            stores=template.stores,
            categories=template.categories,
        ),
        issued_at=coupon.issued_at,
        valid_from=coupon.valid_from,
        expires_at=coupon.expires_at,
        order_id=coupon.order_id,
        list_fen=coupon.list_fen,
        discount_fen=coupon.discount_fen,
        redeemed_at=coupon.redeemed_at,
        revoked_at=coupon.revoked_at,
        revoke_reason=coupon.revoke_reason,
    )


def _coupons(session: Session, tenant_id: str, rows: list[Coupon]) -> list[schemas.Coupon]:
    templates = service.templates_of(session, tenant_id, rows)
    return [_coupon(c, templates[c.template_id]) for c in rows]


def _one_coupon(session: Session, tenant_id: str, coupon: Coupon) -> schemas.Coupon:
    return _coupons(session, tenant_id, [coupon])[0]


# Templates -----------------------------------------------------------------------------------


@router.post(
    "/v1/coupon-templates",
    response_model=schemas.Template,
    status_code=201,
    summary="Create a coupon template: fixed or percentage, validity, limits, stock, budget",
)
def create_template(body: schemas.TemplateCreate, write: Merchant) -> Response:
    def work(session: Session) -> schemas.Template:
        template = service.create_template(session, write.tenant_id, body)
        return _templates(session, write.tenant_id, [template])[0]

    return write(work, status_code=201)


@router.get(
    "/v1/coupon-templates",
    response_model=Page[schemas.Template],
    summary="Coupon templates, newest first, with live counters",
)
def list_templates(
    session: ReadSession,
    principal: Reader,
    status: TemplateStatus | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Template]:
    rows = service.list_templates(
        session, principal.tenant_id, status, cursor_key(cursor, str), limit + 1
    )
    page, next_cursor = split_page(rows, limit, lambda t: t.id)
    return Page(data=_templates(session, principal.tenant_id, page), next_cursor=next_cursor)


@router.get(
    "/v1/coupon-templates/{template_id}",
    response_model=schemas.Template,
    summary="A coupon template: issued, redeemed, stock and budget left",
)
def get_template(
    template_id: ObjectId, session: ReadSession, principal: Reader
) -> schemas.Template:
    template = service.get_template(session, principal.tenant_id, template_id)
    return _templates(session, principal.tenant_id, [template])[0]


@router.patch(
    "/v1/coupon-templates/{template_id}",
    response_model=schemas.Template,
    summary="Pause or resume, change limits, stock, budget or validity for later issues",
)
def update_template(
    template_id: ObjectId, body: schemas.TemplateUpdate, write: Merchant
) -> Response:
    changes = body.model_dump(exclude_unset=True)

    def work(session: Session) -> schemas.Template:
        template = service.update_template(session, write.tenant_id, template_id, changes)
        return _templates(session, write.tenant_id, [template])[0]

    return write(work)


# Issue and claim -----------------------------------------------------------------------------


def _issue(write: Writer, issue: Callable[[Session], service.IssuedCoupon]) -> Response:
    """201 with the coupon; 200 with the same coupon when the request number issued it before
    (and the same again when an Idempotency-Key replays either answer)."""
    created = True

    def work(session: Session) -> schemas.Coupon:
        nonlocal created
        issued = issue(session)
        created = issued.created
        return _one_coupon(session, write.tenant_id, issued.coupon)

    return write(work, status_code=lambda: 201 if created else 200)


_ISSUE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": schemas.Coupon, "description": "Issued before with this request_no"},
}


@router.post(
    "/v1/coupons",
    response_model=schemas.Coupon,
    status_code=201,
    responses=_ISSUE_RESPONSES,
    summary="Issue a coupon to a user's wallet (idempotent by request_no)",
    description="Takes one of the template's stock, its face value of the budget and one of the "
    "user's allowance, all or none: 409 `coupon-unavailable` says which ran out (`reason`: "
    "`stock`, `budget`, `per_user_limit`, `paused` or `ended`).",
)
def issue_coupon(body: schemas.CouponIssue, write: Merchant) -> Response:
    return _issue(
        write,
        lambda session: service.issue(
            session, write.tenant_id, body.template_id, body.user_id, body.request_no
        ),
    )


@router.post(
    "/v1/coupon-templates/{template_id}/claim",
    response_model=schemas.Coupon,
    status_code=201,
    responses=_ISSUE_RESPONSES,
    summary="A user claims a coupon of the template (idempotent by request_no)",
)
def claim_coupon(template_id: ObjectId, body: schemas.CouponClaim, write: Claimer) -> Response:
    return _issue(
        write,
        lambda session: service.issue(
            session, write.tenant_id, template_id, body.user_id, body.request_no, source="claim"
        ),
    )


# Wallets and coupons -------------------------------------------------------------------------


@router.get(
    "/v1/users/{user_id}/coupons",
    response_model=Page[schemas.Coupon],
    summary="A user's wallet, newest first",
)
def user_wallet(
    user_id: UserId,
    session: ReadSession,
    principal: Reader,
    status: CouponStatus | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Coupon]:
    rows = service.wallet(
        session, principal.tenant_id, user_id, status, cursor_key(cursor, str), limit + 1
    )
    page, next_cursor = split_page(rows, limit, lambda c: c.id)
    return Page(data=_coupons(session, principal.tenant_id, page), next_cursor=next_cursor)


@router.get(
    "/v1/coupons/metrics",
    response_model=schemas.Metrics,
    summary="Issued, redeemed, redemption rate, discount given and spend driven (leverage)",
)
def metrics(
    session: ReadSession,
    principal: Analyst,
    template_id: Annotated[str | None, Query(pattern=NO_NUL, max_length=40)] = None,
) -> schemas.Metrics:
    s = service.stats(session, principal.tenant_id, template_id=template_id)
    return schemas.Metrics(
        template_id=template_id,
        issued=s.issued,
        redeemed=s.redeemed,
        expired=s.expired,
        revoked=s.revoked,
        redemption_rate=ratio(s.redeemed, s.issued),
        discount_fen=s.discount_fen,
        spend_fen=s.spend_fen,
        list_fen=s.list_fen,
        leverage=ratio(s.spend_fen, s.discount_fen),
    )


@router.get("/v1/coupons/{coupon_id}", response_model=schemas.Coupon, summary="A coupon")
def get_coupon(coupon_id: ObjectId, session: ReadSession, principal: Reader) -> schemas.Coupon:
    coupon = service.get_coupon(session, principal.tenant_id, coupon_id)
    return _one_coupon(session, principal.tenant_id, coupon)


@router.post(
    "/v1/coupons/{coupon_id}/revoke",
    response_model=schemas.Coupon,
    summary="Take back an unused coupon (its stock, budget and allowance are given back)",
    description="Only an AVAILABLE coupon is revoked; one in any other state comes back "
    "unchanged, so the answer's status says what became of it.",
)
def revoke_coupon(
    coupon_id: ObjectId, write: Merchant, body: schemas.CouponRevoke | None = None
) -> Response:
    reason = (body or schemas.CouponRevoke()).reason

    def work(session: Session) -> schemas.Coupon:
        coupon = service.revoke(session, write.tenant_id, coupon_id, reason)
        return _one_coupon(session, write.tenant_id, coupon)

    return write(work)


# Checkout ------------------------------------------------------------------------------------


@router.post(
    "/v1/checkouts",
    response_model=schemas.Checkout,
    status_code=201,
    summary="Open a purchase's payment order, with a coupon taken off the price",
    description="Without `coupon_id`, creates the order for `amount_fen`. With it, the coupon "
    "must be the user's, available, within its validity, and the order must meet its "
    "threshold, store and categories (else 409 `coupon-unavailable` with the `reason`, and "
    "nothing is written). The coupon is locked to the order: paid → REDEEMED; closed or "
    "failed → AVAILABLE again; fully refunded → AVAILABLE again.",
)
def create_checkout(body: schemas.CheckoutCreate, write: Buyer, settings: SettingsDep) -> Response:
    def work(session: Session) -> schemas.Checkout:
        done = checkout.checkout(
            session,
            settings,
            write.tenant_id,
            checkout.CheckoutRequest(
                user_id=body.user_id,
                payer_openid=body.payer_openid,
                list_fen=body.amount_fen,
                description=body.description,
                store_id=body.store_id,
                categories=tuple(body.categories),
                coupon_id=body.coupon_id,
                out_trade_no=body.out_trade_no,
                metadata=body.metadata,
            ),
        )
        order = done.order.order
        return schemas.Checkout(
            order=schemas.CheckoutOrder(
                id=order.id,
                out_trade_no=order.out_trade_no,
                status=order.status,
                amount_fen=order.amount_fen,
                currency=order.currency,
                expires_at=order.expires_at,
            ),
            list_fen=done.list_fen,
            discount_fen=done.discount_fen,
            coupon=None
            if done.coupon is None
            else _one_coupon(session, write.tenant_id, done.coupon),
            pay_params=PayParams(**done.order.pay_params),
        )

    return write(work, status_code=201)
