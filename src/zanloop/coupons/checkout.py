"""Using a coupon at checkout, in two steps. The checkout locks the coupon (a guarded UPDATE:
of concurrent checkouts with one coupon exactly one wins) and opens the payment order for the
list price less the discount. The payment's outcome, heard in the payment's own transaction,
settles it: paid → REDEEMED; closed or failed → AVAILABLE again; fully refunded → AVAILABLE
again. A partial refund keeps the coupon REDEEMED: the order stands, and so does its discount.

Every checkout's payment order carries ``user_id``, ``store_id``, ``categories``,
``coupon_id``, ``list_fen`` and ``discount_fen`` in its metadata; other areas (campaigns) read
them from payment events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.orm import Session

from zanloop.config import Settings
from zanloop.coupons import domain, repository, service
from zanloop.coupons.domain import CouponStatus, Refusal
from zanloop.coupons.tables import Coupon
from zanloop.errors import DuplicateConflict
from zanloop.kit.clock import utcnow
from zanloop.payments import service as payments
from zanloop.payments.schemas import PaymentOrderCreate

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CheckoutRequest:
    user_id: str
    payer_openid: str
    list_fen: int
    description: str
    store_id: str | None = None
    categories: Sequence[str] = ()
    coupon_id: str | None = None
    out_trade_no: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckedOut:
    order: payments.CreatedOrder
    list_fen: int
    discount_fen: int
    coupon: Coupon | None


def checkout(
    session: Session, settings: Settings, tenant_id: str, request: CheckoutRequest
) -> CheckedOut:
    """Open the payment order of a purchase, with the coupon (if any) taken off the price.

    The coupon is locked to the order until the payment settles. A coupon that cannot be used
    raises ``CouponUnavailable`` (its ``reason`` says why) and nothing is written."""
    now = utcnow()
    coupon: Coupon | None = None
    discount_fen = 0
    if request.coupon_id is not None:
        coupon = service.get_coupon(session, tenant_id, request.coupon_id)
        terms = service.terms_of(service.get_template(session, tenant_id, coupon.template_id))
        refusal = domain.use_refusal(
            domain.Holding(
                coupon.user_id, CouponStatus(coupon.status), coupon.valid_from, coupon.expires_at
            ),
            terms,
            domain.Basket(request.user_id, request.list_fen, request.store_id, request.categories),
            now,
        )
        if refusal is not None:
            raise service.unavailable(refusal)
        discount_fen = domain.discount(terms, request.list_fen)
        if not repository.move(
            session,
            tenant_id,
            coupon.id,
            [CouponStatus.AVAILABLE.value],
            Coupon.expires_at > now,
            status=CouponStatus.LOCKED.value,
            list_fen=request.list_fen,
            discount_fen=discount_fen,
            updated_at=now,
        ):
            # Another checkout took it between our read and our update.
            raise service.unavailable(Refusal.NOT_AVAILABLE)
    created = payments.create_order(
        session,
        settings,
        tenant_id,
        PaymentOrderCreate(
            amount_fen=request.list_fen - discount_fen,
            description=request.description,
            payer_openid=request.payer_openid,
            out_trade_no=request.out_trade_no,
            metadata={
                **request.metadata,
                "user_id": request.user_id,
                "store_id": request.store_id,
                "categories": list(request.categories),
                "coupon_id": coupon.id if coupon else None,
                "list_fen": request.list_fen,
                "discount_fen": discount_fen,
            },
        ),
    )
    if created.replayed:
        raise DuplicateConflict(
            f"out_trade_no {created.order.out_trade_no} is already used by another order "
            "(to repeat a checkout, send its Idempotency-Key again)"
        )
    if coupon is not None:
        repository.move(
            session,
            tenant_id,
            coupon.id,
            [CouponStatus.LOCKED.value],
            order_id=created.order.id,
        )
        session.refresh(coupon)
    return CheckedOut(created, request.list_fen, discount_fen, coupon)


# Payment outcomes (called by the listeners, inside the payment's transaction) ----------------


def on_paid(session: Session, tenant_id: str, order_id: str, metadata: dict[str, Any]) -> None:
    """The checkout's payment succeeded: its coupon is used."""
    now = utcnow()
    coupon_id = str(metadata["coupon_id"])
    if repository.redeem_locked(session, tenant_id, order_id, now):
        _published(session, tenant_id, coupon_id, "coupon.redeemed")
        return
    # Paid after the order was closed or failed (the buyer's money moved after all), so the
    # coupon was released: it is used on this order unless another order took it meanwhile.
    if repository.move(
        session,
        tenant_id,
        coupon_id,
        [CouponStatus.AVAILABLE.value, CouponStatus.EXPIRED.value],
        Coupon.order_id == order_id,
        status=CouponStatus.REDEEMED.value,
        redeemed_at=now,
        list_fen=int(metadata["list_fen"]),
        discount_fen=int(metadata["discount_fen"]),
        updated_at=now,
    ):
        _published(session, tenant_id, coupon_id, "coupon.redeemed")
        return
    coupon = repository.get_coupon(session, tenant_id, coupon_id)
    if coupon is not None and coupon.order_id not in (None, order_id):
        log.warning(
            "coupon discounted two paid orders",
            coupon_id=coupon_id,
            order_id=order_id,
            other_order_id=coupon.order_id,
        )


def on_unpaid(session: Session, tenant_id: str, order_id: str, coupon_id: str) -> None:
    """The checkout's payment was closed or failed: its coupon is free again (or expired).
    ``order_id`` stays on the coupon, so that a payment completing late still finds it."""
    if repository.move_by_order(
        session,
        tenant_id,
        order_id,
        CouponStatus.LOCKED.value,
        utcnow(),
        {"list_fen": None, "discount_fen": None},
    ):
        _published(session, tenant_id, coupon_id, "coupon.released")


def on_refunded(
    session: Session,
    tenant_id: str,
    order_id: str,
    coupon_id: str,
    amount_fen: int,
    refunded_fen: int,
) -> None:
    """A full refund gives the coupon back (AVAILABLE, or EXPIRED if past its expiry); a
    partial refund keeps it REDEEMED, as the order still stands."""
    if refunded_fen < amount_fen:
        return
    if repository.move_by_order(
        session,
        tenant_id,
        order_id,
        CouponStatus.REDEEMED.value,
        utcnow(),
        {"order_id": None, "redeemed_at": None, "list_fen": None, "discount_fen": None},
    ):
        _published(session, tenant_id, coupon_id, "coupon.restored")


def _published(session: Session, tenant_id: str, coupon_id: str, name: str) -> None:
    """Publish the coupon as the guarded UPDATE just left it (read back: a set-based UPDATE
    does not refresh loaded objects)."""
    coupon = repository.get_coupon(session, tenant_id, coupon_id)
    if coupon is not None:
        session.refresh(coupon)
        service.publish(session, name, coupon)
