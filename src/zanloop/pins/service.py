"""Pin workflows: creators and content, the pin policy, purchase, going live on the verified
payment, moderation, expiry, and the pinned list.

Money: a pin's payment lands in ``pins:sales``; when it goes live the creator's share moves to
``creator:<id>`` and the platform's fee to ``platform:pins`` (two transfers). A refund reverses
both in proportion, so the three accounts always add up to what buyers kept paid. A pin held by
risk control reserves the creator's share as a ledger hold until an analyst decides.

Every change to a content item's pins locks the content row first: concurrent purchases and
removals on one item queue up behind each other and the display order is never half-updated.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.bindings import service as bindings
from zanloop.config import Settings
from zanloop.db import Database
from zanloop.errors import ContentNotEligible, Forbidden, InvalidState, NotFound
from zanloop.jobs import service as jobs
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.kit.money import Asset
from zanloop.ledger import service as ledger
from zanloop.ledger.domain import TransferRequest, hold_transfer_id, two_party
from zanloop.payments import service as payments
from zanloop.payments.schemas import PaymentOrderCreate, RefundCreate
from zanloop.pins import catalog, domain, repository
from zanloop.pins.domain import PinStatus
from zanloop.pins.tables import Pin, PinNotice
from zanloop.risk import reviews as risk_reviews
from zanloop.risk import service as risk
from zanloop.risk.domain import Signal, Verdict

SALES = "pins:sales"
PLATFORM = "platform:pins"
PIN_KIND = "pin"


def creator_owner(external_id: str) -> str:
    """The ledger owner of a creator's earnings: your id for the creator, prefixed."""
    return f"creator:{external_id}"


def _earnings_owner(session: Session, pin: Pin) -> str:
    creator = repository.creator_by_id(session, pin.creator_id)
    assert creator is not None
    return creator_owner(creator.external_id)


# Purchase ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurchaseRequest:
    content_external_id: str
    buyer_id: str
    amount_fen: int
    message: str = ""
    device_id: str | None = None
    ip: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Purchase:
    pin: Pin
    order: payments.CreatedOrder
    disclosure_what: str
    disclosure_terms: str


def purchase(
    session: Session, settings: Settings, tenant_id: str, request: PurchaseRequest
) -> Purchase:
    """Request a pin: check the content and the payer, ask risk control, open the payment."""
    content = catalog.get_content(session, tenant_id, request.content_external_id)
    view = catalog.view_content(session, content)
    if not view.eligibility.accepts_pins:
        raise ContentNotEligible(view.eligibility.reason)
    policy = view.policy
    tier = domain.tier_for(policy, request.amount_fen)
    domain.check_message(tier, request.message)
    payer = bindings.require_payer(session, tenant_id, request.buyer_id)
    pin_id = new_id("pin")
    now = utcnow()
    decision = risk.decide(
        session,
        tenant_id,
        Signal(
            action="pin.purchase",
            user_id=request.buyer_id,
            at=now,
            amount_fen=request.amount_fen,
            device_id=request.device_id,
            ip=request.ip,
            payment_account=payer.openid,
            payer_verified=payer.real_name_verified,
            context={"content_id": content.external_id, "creator_id": view.creator.external_id},
        ),
        reference=pin_id,
    )
    if decision.verdict == Verdict.BLOCK.value:
        risk.require_allowed(decision)  # raises; the decision stays in the log
    seconds = domain.display_seconds(policy, tier)
    what = f"A pinned like on “{content.title}” by {view.creator.name}" + (
        f", shown for {seconds // 60} min" if seconds else ""
    )
    order = payments.create_order(
        session,
        settings,
        tenant_id,
        PaymentOrderCreate(
            amount_fen=request.amount_fen,
            description=what[:127],
            payer_openid=payer.openid,
            payee=SALES,
            expire_minutes=30,
            metadata={"kind": PIN_KIND, "pin_id": pin_id},
        ),
    )
    creator_fen, platform_fen = domain.split(request.amount_fen, policy.creator_share_percent)
    pin = Pin(
        id=pin_id,
        tenant_id=tenant_id,
        content_id=content.id,
        creator_id=content.creator_id,
        buyer_id=request.buyer_id,
        openid=payer.openid,
        amount_fen=request.amount_fen,
        creator_fen=creator_fen,
        platform_fen=platform_fen,
        message=request.message,
        mode=policy.mode.value,
        display_seconds=seconds,
        status=PinStatus.PENDING.value,
        payment_order_id=order.order.id,
        decision_id=decision.id,
        region=request.region,
        # The terms the buyer is shown now hold for this pin, whatever the policy says later.
        refund_on_creator_removal=policy.refund_on_creator_removal,
        created_at=now,
    )
    repository.add(session, pin)
    return Purchase(
        pin,
        order,
        what,
        domain.disclosure_terms(policy, tier, policy.refund_on_creator_removal),
    )


def get_pin(session: Session, tenant_id: str, pin_id: str) -> Pin:
    pin = repository.get_pin(session, tenant_id, pin_id)
    if pin is None:
        raise NotFound(f"pin {pin_id} not found")
    return pin


def list_pins(
    session: Session,
    tenant_id: str,
    *,
    buyer_id: str | None = None,
    creator_external_id: str | None = None,
    content_external_id: str | None = None,
    status: PinStatus | None = None,
    before_id: str | None = None,
    limit: int = 50,
) -> list[Pin]:
    creator_id = (
        catalog.get_creator(session, tenant_id, creator_external_id).id
        if creator_external_id
        else None
    )
    content_id = (
        catalog.get_content(session, tenant_id, content_external_id).id
        if content_external_id
        else None
    )
    return repository.list_pins(
        session,
        tenant_id,
        buyer_id=buyer_id,
        creator_id=creator_id,
        content_id=content_id,
        status=status.value if status else None,
        before_id=before_id,
        limit=limit,
    )


# Payment outcomes (called by the listeners, inside the payment's transaction) ----------------


def on_paid(session: Session, order_id: str) -> None:
    pin = repository.pin_by_order(session, order_id)
    if pin is None:
        return
    content = repository.content_by_id(session, pin.content_id, lock=True)
    assert content is not None
    session.refresh(pin)
    if pin.status != PinStatus.PENDING.value:
        if pin.status == PinStatus.CANCELLED.value:
            # A payment that failed, then succeeded after all: the pin is over, so the money
            # goes back rather than staying in pins:sales with nothing to show for it.
            _queue_refund(session, pin)
        return
    if not catalog.view_content(session, content).eligibility.accepts_pins:
        repository.move(
            session,
            pin.id,
            [PinStatus.PENDING],
            status=PinStatus.CANCELLED.value,
            ended_at=utcnow(),
            end_reason="the content stopped accepting pins before the payment completed",
        )
        _queue_refund(session, pin)
        return
    decision = risk.get_decision(session, pin.tenant_id, pin.decision_id)
    if decision.verdict == Verdict.REVIEW.value:
        risk_reviews.hold_for_review(
            session,
            decision,
            risk_reviews.HoldSpec(
                Asset.CNY,
                SALES,
                _earnings_owner(session, pin),
                pin.creator_fen,
                f"pinned like {pin.id}: creator share, held for review",
            ),
        )
        repository.move(session, pin.id, [PinStatus.PENDING], status=PinStatus.IN_REVIEW.value)
        _notice(session, pin, "pin.in_review")
        return
    _post_earning(session, pin)
    _go_live(session, pin, [PinStatus.PENDING])


def on_payment_failed(session: Session, order_id: str) -> None:
    pin = repository.pin_by_order(session, order_id)
    if pin is None:
        return
    repository.move(
        session,
        pin.id,
        [PinStatus.PENDING],
        status=PinStatus.CANCELLED.value,
        ended_at=utcnow(),
        end_reason="the payment did not complete",
    )


def on_refund_failed(session: Session, order_id: str) -> None:
    """The provider refused a pin's refund: try again with a new refund number."""
    pin = repository.pin_by_order(session, order_id)
    if pin is not None:
        _queue_refund(session, pin)


def on_review_resolved(session: Session, tenant_id: str, decision_id: str, approved: bool) -> None:
    pin = repository.pin_by_decision(session, tenant_id, decision_id)
    if pin is None:
        return
    repository.content_by_id(session, pin.content_id, lock=True)
    session.refresh(pin)
    if pin.status != PinStatus.IN_REVIEW.value:
        return
    if approved:
        _post_fee(session, pin)
        _go_live(session, pin, [PinStatus.IN_REVIEW])
        return
    repository.move(
        session,
        pin.id,
        [PinStatus.IN_REVIEW],
        status=PinStatus.REMOVED.value,
        ended_at=utcnow(),
        end_reason="rejected by risk review",
        removed_by="risk",
    )
    _queue_refund(session, pin)


def on_refunded(session: Session, order_id: str, refund_id: str) -> None:
    """Reverse the pin's earning and fee so that, together, they give back exactly what was
    refunded so far; a full refund ends the pin."""
    pin = repository.pin_by_order(session, order_id)
    if pin is None:
        return
    # The content row first, as everywhere: concurrent changes of one item queue up alike.
    repository.content_by_id(session, pin.content_id, lock=True)
    session.refresh(pin)
    order = payments.get_order(session, pin.tenant_id, order_id)
    fully = order.refunded_fen >= pin.amount_fen
    if pin.status == PinStatus.IN_REVIEW.value:
        review = risk_reviews.review_of_decision(session, pin.tenant_id, pin.decision_id)
        if review is not None and review.status == risk_reviews.PENDING:
            risk_reviews.reject(
                session, pin.tenant_id, review.id, risk.SYSTEM, "the payment was refunded"
            )
    else:
        _reverse_split(session, pin, refund_id, order.refunded_fen)
    repository.move(
        session,
        pin.id,
        [s for s in PinStatus],
        refunded_fen=order.refunded_fen,
        refund_id=refund_id,
    )
    if fully:
        repository.move(
            session,
            pin.id,
            [s for s in PinStatus if s is not PinStatus.REFUNDED],
            status=PinStatus.REFUNDED.value,
            ended_at=pin.ended_at or utcnow(),
        )
        repository.bump_version(session, pin.content_id)
        session.refresh(pin)
        _notice(session, pin, "pin.refunded")


def _queue_refund(session: Session, pin: Pin) -> None:
    """Refund what is left of the pin's payment, after this transaction commits: the provider
    is never called while a content row is locked, and a failed refund is tried again."""
    jobs.enqueue(
        session,
        "pins.refund",
        {"tenant_id": pin.tenant_id, "pin_id": pin.id},
        tenant_id=pin.tenant_id,
    )


def _earning_transfer_id(pin: Pin) -> str:
    return f"pin-earning:{pin.id}"


def _fee_transfer_id(pin: Pin) -> str:
    return f"pin-fee:{pin.id}"


def _post_earning(session: Session, pin: Pin) -> None:
    """The creator's share and the platform's fee, posted together."""
    transfers = [_fee(pin)] if pin.platform_fen else []
    if pin.creator_fen:
        transfers.append(
            two_party(
                _earning_transfer_id(pin),
                Asset.CNY,
                SALES,
                _earnings_owner(session, pin),
                pin.creator_fen,
                description=f"pinned like {pin.id}: creator share",
            )
        )
    ledger.post_many(session, pin.tenant_id, transfers)


def _post_fee(session: Session, pin: Pin) -> None:
    if pin.platform_fen:
        ledger.post(session, pin.tenant_id, _fee(pin))


def _fee(pin: Pin) -> TransferRequest:
    return two_party(
        _fee_transfer_id(pin),
        Asset.CNY,
        SALES,
        PLATFORM,
        pin.platform_fen,
        description=f"pinned like {pin.id}: platform fee",
    )


def _reverse_split(session: Session, pin: Pin, refund_id: str, refunded_total: int) -> None:
    """Bring the reversals of the fee and the earning to their share of ``refunded_total``:
    the fee's share rounds down and the earning takes the rest, so the two always add up to
    exactly what was refunded, however the refunds were cut."""
    earning_id = _earning_transfer_id(pin)
    if _was_reviewed(session, pin):
        earning_id = hold_transfer_id(risk_reviews.hold_id_for(pin.decision_id))
    fee_target = refunded_total * pin.platform_fen // pin.amount_fen
    targets = [
        (_fee_transfer_id(pin), fee_target),
        (earning_id, refunded_total - fee_target),
    ]
    for transfer_id, target in targets:
        try:
            transfer = ledger.get_transfer(session, pin.tenant_id, transfer_id)
        except NotFound:
            continue  # nothing was posted (a zero share)
        amount = min(target, transfer.amount) - transfer.reversed_amount
        if amount > 0:
            ledger.reverse(
                session,
                pin.tenant_id,
                transfer_id,
                f"{transfer_id}:refund:{refund_id}",
                amount,
                description=f"refund {refund_id} of pinned like {pin.id}",
            )


def _was_reviewed(session: Session, pin: Pin) -> bool:
    return risk_reviews.review_of_decision(session, pin.tenant_id, pin.decision_id) is not None


def _go_live(session: Session, pin: Pin, sources: list[PinStatus]) -> None:
    now = utcnow()
    if not repository.move(
        session,
        pin.id,
        sources,
        status=PinStatus.ACTIVE.value,
        activated_at=now,
        expires_at=domain.expires_at(now, pin.display_seconds),
    ):
        return
    repository.bump_version(session, pin.content_id)
    session.refresh(pin)
    _notice(session, pin, "pin.activated")


def _notice(session: Session, pin: Pin, kind: str) -> None:
    """Tell the creator: the live stream (SSE) and a webhook."""
    payload = pin_payload(session, pin)
    repository.add(
        session,
        PinNotice(
            tenant_id=pin.tenant_id,
            creator_id=pin.creator_id,
            kind=kind,
            payload=payload,
            created_at=utcnow(),
        ),
    )
    events.publish(session, events.Event(kind, pin.tenant_id, payload))


def _iso(moment: datetime | None) -> str | None:
    # The API's own form for UTC times, as in every response body.
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def pin_payload(session: Session, pin: Pin) -> dict[str, Any]:
    content = repository.content_by_id(session, pin.content_id)
    creator = repository.creator_by_id(session, pin.creator_id)
    assert content is not None
    assert creator is not None
    return {
        "pin_id": pin.id,
        "status": pin.status,
        "content_id": content.external_id,
        "creator_id": creator.external_id,
        "buyer_id": pin.buyer_id,
        "amount_fen": pin.amount_fen,
        "message": pin.message,
        "activated_at": _iso(pin.activated_at),
        "expires_at": _iso(pin.expires_at),
    }


# Moderation ----------------------------------------------------------------------------------


def remove(
    session: Session,
    tenant_id: str,
    pin_id: str,
    *,
    by_creator: bool,
    violation: bool,
    reason: str,
) -> Pin:
    """Take a pin down (P8). The creator's own removal is refunded when the terms the buyer
    was shown said so; a platform removal is refunded unless it is for breaking the rules.
    The refund goes through the provider after commit; the ledger reverses when it succeeds."""
    if by_creator and violation:
        raise Forbidden("only the platform removes a pin for a violation")
    pin = get_pin(session, tenant_id, pin_id)
    repository.content_by_id(session, pin.content_id, lock=True)
    session.refresh(pin)
    if pin.status == PinStatus.REMOVED.value:
        return pin
    now = utcnow()
    if pin.status != PinStatus.ACTIVE.value or (pin.expires_at and pin.expires_at <= now):
        raise InvalidState(f"pin {pin_id} is not showing; only a live pin can be removed")
    refund = pin.refund_on_creator_removal if by_creator else not violation
    repository.move(
        session,
        pin.id,
        [PinStatus.ACTIVE],
        status=PinStatus.REMOVED.value,
        ended_at=now,
        end_reason=reason,
        removed_by="creator" if by_creator else "platform",
    )
    repository.bump_version(session, pin.content_id)
    if refund:
        _queue_refund(session, pin)
    session.refresh(pin)
    _notice(session, pin, "pin.removed")
    return pin


def refund_pin(session: Session, settings: Settings, tenant_id: str, pin_id: str) -> None:
    """Refund what is left of a pin's payment (the ``pins.refund`` job)."""
    pin = get_pin(session, tenant_id, pin_id)
    order = payments.get_order(session, tenant_id, pin.payment_order_id)
    if order.amount_fen - order.refund_reserved_fen <= 0:
        return  # refunded already (perhaps straight through the payments API)
    attempt = len(payments.list_refunds(session, tenant_id, order.id)) + 1
    payments.request_refund(
        session,
        settings,
        tenant_id,
        order.id,
        RefundCreate(
            out_refund_no=f"pin{pin.id.removeprefix('pin_')}r{attempt}",
            reason="pinned like",
        ),
    )


def expire_due(session: Session, now: datetime, limit: int = 500) -> int:
    """Timed pins whose display time is over (reads already hide them; this records it)."""
    expired = 0
    for pin in repository.due_to_expire(session, now, limit):
        repository.content_by_id(session, pin.content_id, lock=True)
        if repository.move(
            session,
            pin.id,
            [PinStatus.ACTIVE],
            status=PinStatus.EXPIRED.value,
            ended_at=pin.expires_at,
            end_reason="display time over",
        ):
            repository.bump_version(session, pin.content_id)
            expired += 1
    return expired


# The pinned list -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PinnedEntry:
    pin_id: str
    buyer_id: str
    amount_fen: int
    message: str
    activated_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class PinnedList:
    content_id: str
    accepts_pins: bool
    slots: int
    pinned: list[PinnedEntry]
    queued: list[PinnedEntry]
    # The first moment the list changes by itself (a timed pin ends): caches keep it until then.
    valid_until: datetime | None


# Pinned lists by (tenant, content), with the stamp they were built from: the hottest read
# costs one look-up while nothing changed. Bounded; the oldest entries go first.
LIST_CACHE_SIZE = 20_000
_list_cache: OrderedDict[tuple[str, str], tuple[tuple[Any, ...], PinnedList]] = OrderedDict()
_list_cache_lock = threading.Lock()


def cached_pinned_list(
    db: Database, tenant_id: str, content_external_id: str, now: datetime
) -> PinnedList | None:
    """The cached list, if it is still right: one stamp look-up on a plain connection (the
    hot path of the hottest read). None when the list must be built."""
    cached = _list_cache.get((tenant_id, content_external_id))
    if cached is None:
        return None
    if db.is_sqlite:
        stamp = repository.raw_stamp(db.sqlite_reader(), tenant_id, content_external_id)
    else:
        with db.read_engine.connect() as conn:
            stamp = repository.core_stamp(conn, tenant_id, content_external_id)
    listed = cached[1]
    if stamp != cached[0] or (listed.valid_until is not None and now >= listed.valid_until):
        return None
    return listed


def pinned_list(
    session: Session, tenant_id: str, content_external_id: str, now: datetime
) -> PinnedList:
    """The content's pinned likes in display order. Served from this process's cache while
    the content's pins, its creator and the tenant's policy are unchanged and no timed pin has
    run out; every process checks the stamp in the database, so none serves a stale list."""
    key = (tenant_id, content_external_id)
    stamp = repository.list_stamp(session, tenant_id, content_external_id)
    if stamp is None:
        raise NotFound(f"content {content_external_id} not found")
    cached = _list_cache.get(key)
    if cached is not None and cached[0] == stamp:
        listed = cached[1]
        if listed.valid_until is None or now < listed.valid_until:
            return listed
    listed = _build_pinned_list(session, tenant_id, content_external_id, now)
    with _list_cache_lock:
        _list_cache[key] = (stamp, listed)
        _list_cache.move_to_end(key)
        while len(_list_cache) > LIST_CACHE_SIZE:
            _list_cache.popitem(last=False)
    return listed


def _build_pinned_list(
    session: Session, tenant_id: str, content_external_id: str, now: datetime
) -> PinnedList:
    content = catalog.get_content(session, tenant_id, content_external_id)
    view = catalog.view_content(session, content)
    shown = view.policy.slots + view.policy.queue_limit
    rows = repository.showing_pins(session, content.id, now, shown)

    def entry(row: Any) -> PinnedEntry:
        return PinnedEntry(
            row.id, row.buyer_id, row.amount_fen, row.message, row.activated_at, row.expires_at
        )

    # The query orders for display: amount, then time (then id, for equal times).
    return PinnedList(
        content.external_id,
        view.eligibility.accepts_pins,
        view.policy.slots,
        [entry(r) for r in rows[: view.policy.slots]],
        [entry(r) for r in rows[view.policy.slots :]],
        repository.next_expiry(session, content.id, now),
    )


def notices_after(
    session: Session, tenant_id: str, creator_id: str, after_id: int, limit: int = 100
) -> list[PinNotice]:
    return repository.notices_after(session, tenant_id, creator_id, after_id, limit)


def last_notice_id(session: Session, tenant_id: str, creator_id: str) -> int:
    return repository.last_notice_id(session, tenant_id, creator_id)


def interactions(
    session: Session, tenant_id: str, since: datetime, until: datetime
) -> list[tuple[str, str, datetime]]:
    """Who pinned what, for group fraud detection: targets are ``content:<id>``."""
    return [
        (buyer, f"content:{content}", at)
        for buyer, content, at in repository.buyer_interactions(session, tenant_id, since, until)
    ]
