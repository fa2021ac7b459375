"""Coupon workflows: templates, issue and claim, revoke, expiry and figures (using a coupon at
checkout is in ``checkout.py``).

Limits are counted in ``quotas``: every issue takes one of the template's stock, its face value
of the budget and one of the user's allowance in one all-or-nothing step, and a revocation
gives exactly that back. The counts are kept even for a limit that is not set, so a limit set
later holds at once.

Other areas call ``issue``, ``revoke``, ``face_value_fen`` and ``stats`` in-process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.coupons import domain, repository
from zanloop.coupons.domain import CouponKind, CouponStatus, Refusal, TemplateStatus
from zanloop.coupons.schemas import TemplateCreate
from zanloop.coupons.tables import Coupon, CouponTemplate
from zanloop.errors import CouponUnavailable, DuplicateConflict, NotFound
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.quotas import service as quotas
from zanloop.quotas.service import Ask, Taken

STOCK = "coupon.stock"
BUDGET = "coupon.budget"
PER_USER = "coupon.user"
_REFUSAL_OF_SCOPE = {STOCK: Refusal.STOCK, BUDGET: Refusal.BUDGET, PER_USER: Refusal.PER_USER_LIMIT}


def unavailable(refusal: Refusal) -> CouponUnavailable:
    """The 409 for a coupon that cannot be issued or used; ``reason`` says why."""
    error = CouponUnavailable(domain.REFUSAL_TEXT[refusal])
    error.extensions = {"reason": refusal.value}
    return error


def terms_of(template: CouponTemplate) -> domain.Terms:
    return domain.Terms(
        kind=CouponKind(template.kind),
        amount_fen=template.amount_fen,
        percent_off=template.percent_off,
        max_discount_fen=template.max_discount_fen,
        threshold_fen=template.threshold_fen,
        stores=tuple(template.stores),
        categories=tuple(template.categories),
    )


def _validity(template: CouponTemplate) -> domain.Validity:
    return domain.Validity(template.valid_days, template.valid_from, template.valid_until)


# Templates -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateFigures:
    issued: int = 0
    redeemed: int = 0
    stock_left: int | None = None
    budget_left: int | None = None


def create_template(session: Session, tenant_id: str, data: TemplateCreate) -> CouponTemplate:
    now = utcnow()
    terms = domain.Terms(
        kind=data.kind,
        amount_fen=data.amount_fen,
        percent_off=data.percent_off,
        max_discount_fen=data.max_discount_fen,
        threshold_fen=data.threshold_fen,
    )
    domain.check_terms(terms, data.budget_fen)
    domain.check_validity(domain.Validity(data.valid_days, data.valid_from, data.valid_until), now)
    template = CouponTemplate(
        id=new_id("ctpl"),
        tenant_id=tenant_id,
        status=TemplateStatus.ACTIVE.value,
        created_at=now,
        updated_at=now,
        **{**data.model_dump(), "kind": data.kind.value},
    )
    repository.add_template(session, template)
    return template


def get_template(session: Session, tenant_id: str, template_id: str) -> CouponTemplate:
    template = repository.get_template(session, tenant_id, template_id)
    if template is None:
        raise NotFound(f"coupon template {template_id} not found")
    return template


def list_templates(
    session: Session,
    tenant_id: str,
    status: TemplateStatus | None,
    before_id: str | None,
    limit: int,
) -> list[CouponTemplate]:
    return repository.list_templates(
        session, tenant_id, status.value if status else None, before_id, limit
    )


def update_template(
    session: Session, tenant_id: str, template_id: str, changes: dict[str, Any]
) -> CouponTemplate:
    """Change limits, status or validity for later issues; the terms stay as issued."""
    template = get_template(session, tenant_id, template_id)
    now = utcnow()
    domain.check_terms(terms_of(template), changes.get("budget_fen", template.budget_fen))
    domain.check_validity(
        domain.Validity(
            changes.get("valid_days", template.valid_days),
            template.valid_from,
            changes.get("valid_until", template.valid_until),
        ),
        now,
        # An end already past is refused only when it is the one being set.
        check_end="valid_until" in changes,
    )
    values = {k: v.value if isinstance(v, TemplateStatus) else v for k, v in changes.items()}
    repository.update_template(session, template.id, {**values, "updated_at": now})
    session.refresh(template)
    return template


def template_figures(
    session: Session, tenant_id: str, templates: Sequence[CouponTemplate]
) -> dict[str, TemplateFigures]:
    """Live counters of each template: issued, redeemed, stock and budget left."""
    ids = [t.id for t in templates]
    counts = repository.counts_by_template(session, tenant_id, ids)
    stock_used = quotas.used(session, tenant_id, STOCK, ids)
    budget_used = quotas.used(session, tenant_id, BUDGET, ids)
    figures = {}
    for t in templates:
        issued, redeemed = counts.get(t.id, (0, 0))
        figures[t.id] = TemplateFigures(
            issued=issued,
            redeemed=redeemed,
            stock_left=None if t.stock is None else max(0, t.stock - stock_used.get(t.id, 0)),
            budget_left=(
                None if t.budget_fen is None else max(0, t.budget_fen - budget_used.get(t.id, 0))
            ),
        )
    return figures


def face_value_fen(session: Session, tenant_id: str, template_id: str) -> int:
    """What one issue from the template reserves of its budget: a FIXED coupon's amount, a
    PERCENT coupon's max_discount_fen (0 without one)."""
    return domain.face_value(terms_of(get_template(session, tenant_id, template_id)))


# Issue ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCoupon:
    coupon: Coupon
    # False: the request number had issued this coupon already.
    created: bool


def _asks(template: CouponTemplate, user_id: str, face_fen: int) -> list[Ask]:
    def limit(value: int | None) -> int:
        return domain.UNLIMITED if value is None else value

    return [
        Ask(STOCK, template.id, 1, limit(template.stock)),
        Ask(BUDGET, template.id, face_fen, limit(template.budget_fen)),
        Ask(PER_USER, f"{template.id}:{user_id}", 1, limit(template.per_user_limit)),
    ]


def _taken(asks: Sequence[Ask]) -> list[Taken]:
    return [Taken(a.scope, a.key, a.amount) for a in asks if a.amount]


def _issued_before(
    session: Session, tenant_id: str, template_id: str, user_id: str, request_no: str
) -> IssuedCoupon | None:
    coupon = repository.coupon_by_request(session, tenant_id, template_id, request_no)
    if coupon is None:
        return None
    if coupon.user_id != user_id:
        raise DuplicateConflict(
            f"request_no {request_no} already issued a coupon of this template to another user"
        )
    return IssuedCoupon(coupon, created=False)


def issue(
    session: Session,
    tenant_id: str,
    template_id: str,
    user_id: str,
    request_no: str,
    source: str = "api",
) -> IssuedCoupon:
    """Issue one coupon of the template to the user's wallet, once per request number.

    Raises ``NotFound`` (no such template), ``DuplicateConflict`` (the request number issued
    to another user) or ``CouponUnavailable`` (paused, ended, stock, budget or the user's
    limit spent; its ``reason`` says which), having written nothing."""
    template = get_template(session, tenant_id, template_id)
    before = _issued_before(session, tenant_id, template.id, user_id, request_no)
    if before is not None:
        return before
    now = utcnow()
    refusal = domain.issue_refusal(TemplateStatus(template.status), template.valid_until, now)
    if refusal is not None:
        raise unavailable(refusal)
    face_fen = domain.face_value(terms_of(template))
    asks = _asks(template, user_id, face_fen)
    missed = quotas.take_all(session, tenant_id, asks)
    if missed is not None:
        raise unavailable(_REFUSAL_OF_SCOPE[missed.scope])
    valid_from, expires_at = domain.coupon_window(_validity(template), now)
    coupon_id = new_id("cpn")
    row = {
        "id": coupon_id,
        "tenant_id": tenant_id,
        "template_id": template.id,
        "user_id": user_id,
        "request_no": request_no,
        "status": CouponStatus.AVAILABLE.value,
        "source": source,
        "face_fen": face_fen,
        "issued_at": now,
        "valid_from": valid_from,
        "expires_at": expires_at,
        "updated_at": now,
    }
    if not repository.insert_coupon(session, row):
        # The same request number won a race with us: give back what we took, answer its coupon.
        quotas.give_back(session, tenant_id, _taken(asks))
        raced = _issued_before(session, tenant_id, template.id, user_id, request_no)
        assert raced is not None
        return raced
    coupon = repository.get_coupon(session, tenant_id, coupon_id)
    assert coupon is not None
    publish(session, "coupon.issued", coupon)
    return IssuedCoupon(coupon, created=True)


def publish(session: Session, name: str, coupon: Coupon) -> None:
    """Offer a coupon's change to the tenant's webhooks (``coupon.issued``, ``.redeemed``,
    ``.released``, ``.restored``, ``.revoked``)."""
    events.publish(
        session,
        events.Event(
            name,
            coupon.tenant_id,
            {
                "coupon_id": coupon.id,
                "template_id": coupon.template_id,
                "user_id": coupon.user_id,
                "status": coupon.status,
                "source": coupon.source,
                "order_id": coupon.order_id,
                "discount_fen": coupon.discount_fen,
                "expires_at": coupon.expires_at.isoformat(),
            },
        ),
    )


def get_coupon(session: Session, tenant_id: str, coupon_id: str) -> Coupon:
    coupon = repository.get_coupon(session, tenant_id, coupon_id)
    if coupon is None:
        raise NotFound(f"coupon {coupon_id} not found")
    return coupon


def wallet(
    session: Session,
    tenant_id: str,
    user_id: str,
    status: CouponStatus | None,
    before_id: str | None,
    limit: int,
) -> list[Coupon]:
    return repository.wallet(
        session, tenant_id, user_id, status.value if status else None, utcnow(), before_id, limit
    )


def templates_of(
    session: Session, tenant_id: str, coupons: Sequence[Coupon]
) -> dict[str, CouponTemplate]:
    return repository.templates_by_id(session, tenant_id, {c.template_id for c in coupons})


def revoke(session: Session, tenant_id: str, coupon_id: str, reason: str) -> Coupon:
    """AVAILABLE → REVOKED, giving back its stock, budget and per-user allowance. A coupon in
    any other state comes back unchanged (the caller sees it was used, or is over)."""
    coupon = get_coupon(session, tenant_id, coupon_id)
    now = utcnow()
    if repository.move(
        session,
        tenant_id,
        coupon.id,
        [CouponStatus.AVAILABLE.value],
        status=CouponStatus.REVOKED.value,
        revoked_at=now,
        revoke_reason=reason[:120],
        updated_at=now,
    ):
        template = get_template(session, tenant_id, coupon.template_id)
        quotas.give_back(
            session, tenant_id, _taken(_asks(template, coupon.user_id, coupon.face_fen))
        )
        session.refresh(coupon)
        publish(session, "coupon.revoked", coupon)
        return coupon
    session.refresh(coupon)
    return coupon


def expire_due(session: Session, now: datetime) -> int:
    return repository.expire_due(session, now)


# Figures -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CouponStats:
    issued: int
    redeemed: int
    expired: int
    revoked: int
    # Discount given on redeemed coupons, what their orders paid, and their list prices.
    discount_fen: int
    spend_fen: int
    list_fen: int


def stats(
    session: Session,
    tenant_id: str,
    *,
    template_id: str | None = None,
    source_prefix: str | None = None,
) -> CouponStats:
    """Coupon figures of the tenant, of one template, or of the coupons whose source starts
    with ``source_prefix`` (a campaign's: ``campaign:<id>:``). Spend is what the redeeming
    orders paid when they were paid: later partial refunds are not taken off."""
    if template_id is not None:
        get_template(session, tenant_id, template_id)
    return CouponStats(
        *repository.figures(session, tenant_id, utcnow(), template_id, source_prefix)
    )
