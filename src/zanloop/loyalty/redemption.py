"""Redemption (L5): a catalogue priced in points; a redemption holds the points (taken from the
soonest-expiring lots), then is confirmed (the points are spent, a coupon is issued) or
cancelled (the points go back to the lots they came from)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zanloop import events
from zanloop.coupons import service as coupons
from zanloop.errors import (
    DuplicateConflict,
    InsufficientFunds,
    InvalidState,
    NotFound,
    RedemptionRefused,
    Unprocessable,
)
from zanloop.kit.clock import as_utc, utcnow
from zanloop.kit.ids import new_id
from zanloop.kit.money import Asset
from zanloop.ledger import service as ledger
from zanloop.loyalty import domain, lots_repository, repository, service
from zanloop.loyalty.domain import REDEEMED, RedemptionStatus, RuleStatus, available_owner
from zanloop.loyalty.tables import CatalogueItem, Redemption
from zanloop.quotas import service as quotas
from zanloop.quotas.service import Ask, Taken

ITEM_KINDS = ("COUPON", "GOODS")


# Catalogue -----------------------------------------------------------------------------------


def create_item(
    session: Session,
    tenant_id: str,
    *,
    name: str,
    kind: str,
    price_points: int,
    coupon_template_id: str | None,
    stock: int | None,
    per_user_limit: int | None,
    status: RuleStatus,
) -> CatalogueItem:
    if kind == "COUPON":
        if coupon_template_id is None:
            raise Unprocessable(
                "a coupon item names its coupon template", field="coupon_template_id"
            )
        try:
            coupons.face_value_fen(session, tenant_id, coupon_template_id)
        except NotFound as exc:
            raise Unprocessable(str(exc), field="coupon_template_id") from exc
    elif coupon_template_id is not None:
        raise Unprocessable("only a COUPON item has a coupon template", field="coupon_template_id")
    now = utcnow()
    item = CatalogueItem(
        id=new_id("itm"),
        tenant_id=tenant_id,
        name=name,
        kind=kind,
        price_points=price_points,
        coupon_template_id=coupon_template_id,
        stock=stock,
        per_user_limit=per_user_limit,
        status=status.value,
        created_at=now,
        updated_at=now,
    )
    repository.add(session, item)
    return item


def get_item(session: Session, tenant_id: str, item_id: str) -> CatalogueItem:
    item = lots_repository.get_item(session, tenant_id, item_id)
    if item is None:
        raise NotFound(f"catalogue item {item_id} not found")
    return item


def update_item(
    session: Session, tenant_id: str, item_id: str, changes: dict[str, Any]
) -> CatalogueItem:
    item = get_item(session, tenant_id, item_id)
    for key in ("name", "price_points", "stock", "per_user_limit"):
        if key in changes:
            setattr(item, key, changes[key])
    if "status" in changes and changes["status"] is not None:
        item.status = RuleStatus(changes["status"]).value
    item.updated_at = utcnow()
    session.flush()
    return item


def list_items(session: Session, tenant_id: str, active_only: bool) -> list[CatalogueItem]:
    return lots_repository.list_items(
        session, tenant_id, RuleStatus.ACTIVE.value if active_only else None
    )


# Redemptions ---------------------------------------------------------------------------------


def _hold_id(redemption_id: str) -> str:
    return f"loyalty:redeem:{redemption_id}"


def redeem(
    session: Session,
    tenant_id: str,
    *,
    user_id: str,
    item_id: str,
    quantity: int,
    request_no: str,
    confirm: bool,
    now: datetime | None = None,
) -> tuple[Redemption, bool]:
    """Hold the points for ``quantity`` of the item (and confirm at once if asked); the same
    ``request_no`` answers with the first redemption. Returns (redemption, created)."""
    now = now or utcnow()
    member = service.get_member(session, tenant_id, user_id)
    # The member first: copies of one request sent at once queue here, and the later ones
    # find the first's redemption below.
    repository.lock_members(session, tenant_id, [user_id])
    existing = _replay(session, tenant_id, request_no, user_id, item_id, quantity)
    if existing is not None:
        return existing, False
    item = get_item(session, tenant_id, item_id)
    if item.status != RuleStatus.ACTIVE.value:
        raise RedemptionRefused(f"catalogue item {item_id} is paused")
    # Points past their expiry are never spent, even if the expiry job has not run yet.
    service.expire_due(session, now, tenant_id=tenant_id, user_id=user_id)
    points = item.price_points * quantity
    asks = []
    if item.stock is not None:
        asks.append(Ask("loyalty.stock", item.id, quantity, item.stock))
    if item.per_user_limit is not None:
        asks.append(Ask("loyalty.item.user", f"{item.id}:{user_id}", quantity, item.per_user_limit))
    refused = quotas.take_all(session, tenant_id, asks)
    if refused is not None:
        what = (
            "out of stock" if refused.scope == "loyalty.stock" else "the member's limit is reached"
        )
        raise RedemptionRefused(f"catalogue item {item_id}: {what}")
    spendable = lots_repository.spendable_lots(session, tenant_id, user_id)
    plan = domain.allocate(
        [
            domain.Spendable(
                lot.id,
                lot.remaining,
                as_utc(lot.expires_at) if lot.expires_at else None,
                as_utc(lot.earned_at),
            )
            for lot in spendable
        ],
        points,
    )
    if plan is None:
        have = sum(lot.remaining for lot in spendable)
        raise InsufficientFunds(f"the member has {have} points available, {points} needed")
    for lot in spendable:
        lot.remaining -= plan.get(lot.id, 0)
    conf = service.settings(session, tenant_id)
    redemption = Redemption(
        id=new_id("rdm"),
        tenant_id=tenant_id,
        request_no=request_no,
        user_id=user_id,
        item_id=item.id,
        quantity=quantity,
        points=points,
        status=RedemptionStatus.HELD.value,
        allocations=plan,
        detail={"taken": [Taken(a.scope, a.key, a.amount).to_json() for a in asks]},
        expires_at=now + timedelta(minutes=conf.hold_minutes),
        created_at=now,
    )
    try:
        with session.begin_nested():
            repository.add(session, redemption)
    except IntegrityError:
        # Another member's redemption took this request_no meanwhile (PostgreSQL).
        raise DuplicateConflict(
            f"request_no {request_no} was used for another redemption"
        ) from None
    ledger.place_hold(
        session,
        tenant_id,
        _hold_id(redemption.id),
        Asset.POINTS,
        available_owner(member.user_id),
        REDEEMED,
        points,
        description=f"redeem {quantity} x {item.name}"[:500],
    )
    _publish(session, "loyalty.redemption.held", redemption)
    if confirm:
        confirm_redemption(session, tenant_id, redemption.id)
    return redemption, True


def _replay(
    session: Session, tenant_id: str, request_no: str, user_id: str, item_id: str, quantity: int
) -> Redemption | None:
    existing = lots_repository.redemption_by_request(session, tenant_id, request_no)
    if existing is not None and (existing.user_id, existing.item_id, existing.quantity) != (
        user_id,
        item_id,
        quantity,
    ):
        raise DuplicateConflict(f"request_no {request_no} was used for another redemption")
    return existing


def get_redemption(
    session: Session, tenant_id: str, redemption_id: str, *, lock: bool = False
) -> Redemption:
    found = lots_repository.get_redemption(session, tenant_id, redemption_id, lock=lock)
    if found is None:
        raise NotFound(f"redemption {redemption_id} not found")
    return found


def confirm_redemption(session: Session, tenant_id: str, redemption_id: str) -> Redemption:
    """Spend the held points; a coupon item issues its coupons to the member's wallet."""
    redemption = get_redemption(session, tenant_id, redemption_id, lock=True)
    if redemption.status == RedemptionStatus.CONFIRMED.value:
        return redemption
    if redemption.status != RedemptionStatus.HELD.value:
        raise InvalidState(f"redemption {redemption_id} is {redemption.status}")
    item = get_item(session, tenant_id, redemption.item_id)
    issued = []
    if item.kind == "COUPON" and item.coupon_template_id is not None:
        for n in range(redemption.quantity):
            coupon = coupons.issue(
                session,
                tenant_id,
                item.coupon_template_id,
                redemption.user_id,
                f"{redemption.id}:{n}",
                source=f"loyalty:{redemption.id}",
            )
            issued.append(coupon.coupon.id)
    ledger.post_hold(session, tenant_id, _hold_id(redemption.id))
    redemption.status = RedemptionStatus.CONFIRMED.value
    redemption.detail = {**redemption.detail, "coupon_ids": issued}
    redemption.resolved_at = utcnow()
    session.flush()
    _publish(session, "loyalty.redemption.confirmed", redemption)
    return redemption


def cancel_redemption(
    session: Session,
    tenant_id: str,
    redemption_id: str,
    status: RedemptionStatus = RedemptionStatus.CANCELLED,
) -> Redemption:
    """Release the hold: the points go back to the lots they came from (a lot that expired
    meanwhile expires them on the next run; one reversed meanwhile: ``service.put_back``), and
    the item's stock and limit are given back."""
    redemption = get_redemption(session, tenant_id, redemption_id, lock=True)
    if redemption.status in (RedemptionStatus.CANCELLED.value, RedemptionStatus.EXPIRED.value):
        return redemption
    if redemption.status != RedemptionStatus.HELD.value:
        raise InvalidState(f"redemption {redemption_id} is {redemption.status}")
    member = repository.lock_members(session, tenant_id, [redemption.user_id])[0]
    ledger.void_hold(session, tenant_id, _hold_id(redemption.id))
    for lot in lots_repository.lots_by_id(session, tenant_id, redemption.allocations.keys()):
        service.put_back(
            session,
            tenant_id,
            member,
            lot,
            int(redemption.allocations[lot.id]),
            _hold_id(redemption.id),
        )
    quotas.give_back(
        session, tenant_id, [Taken.from_json(t) for t in redemption.detail.get("taken", [])]
    )
    redemption.status = status.value
    redemption.resolved_at = utcnow()
    session.flush()
    _publish(session, f"loyalty.redemption.{status.value.lower()}", redemption)
    return redemption


def cancel_stale(session: Session, now: datetime | None = None, limit: int = 500) -> int:
    stale = lots_repository.stale_holds(session, now or utcnow(), limit)
    for tenant_id, redemption_id in stale:
        cancel_redemption(session, tenant_id, redemption_id, RedemptionStatus.EXPIRED)
    return len(stale)


def member_redemptions(
    session: Session, tenant_id: str, user_id: str, before: str | None, limit: int
) -> list[Redemption]:
    return lots_repository.member_redemptions(session, tenant_id, user_id, before, limit)


def _publish(session: Session, name: str, redemption: Redemption) -> None:
    events.publish(
        session,
        events.Event(
            name,
            redemption.tenant_id,
            {
                "redemption_id": redemption.id,
                "user_id": redemption.user_id,
                "item_id": redemption.item_id,
                "points": redemption.points,
                "status": redemption.status,
            },
        ),
    )
