from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.orm import Session

from zanloop.http.deps import ReadSession, require
from zanloop.http.problems import PROBLEM_RESPONSES
from zanloop.http.writes import Writer, writer
from zanloop.kit.clock import utcnow
from zanloop.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, cursor_key, split_page
from zanloop.ledger.schemas import NO_NUL
from zanloop.loyalty import domain, economics, ingest, redemption, schemas, service
from zanloop.loyalty.domain import LotStatus
from zanloop.loyalty.tables import (
    CatalogueItem,
    LoyaltyLot,
    LoyaltyRule,
    LoyaltyTask,
    Redemption,
)
from zanloop.tenancy.domain import Principal, Scope

router = APIRouter(tags=["loyalty"], responses=PROBLEM_RESPONSES)
Merchant = Annotated[Writer, Depends(writer(require(Scope.MERCHANT), key_required=False))]
AppWriter = Annotated[
    Writer, Depends(writer(require(Scope.APP, Scope.MERCHANT), key_required=False))
]
Reader = Annotated[Principal, Depends(require(Scope.MERCHANT, Scope.ANALYST))]
AppReader = Annotated[Principal, Depends(require(Scope.APP, Scope.MERCHANT, Scope.ANALYST))]
Id = Annotated[str, Path(pattern=NO_NUL, max_length=40)]
UserId = Annotated[str, Path(pattern=NO_NUL, max_length=200)]
EventId = Annotated[str, Path(pattern=NO_NUL, max_length=120)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _rule(r: LoyaltyRule) -> schemas.PointsRule:
    return schemas.PointsRule(
        id=r.id,
        name=r.name,
        status=domain.RuleStatus(r.status),
        rule=r.document,
        version=r.version,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def _task(t: LoyaltyTask) -> schemas.Task:
    return schemas.Task(
        id=t.id,
        name=t.name,
        status=domain.RuleStatus(t.status),
        task=t.document,
        created_at=t.created_at,
        updated_at=t.updated_at,
    )


def _balance(b: ingest.MemberBalance) -> schemas.Balance:
    return schemas.Balance(
        user_id=b.user_id, available=b.available, pending=b.pending, held=b.held, tier=b.tier
    )


def _programme(session: Session, tenant_id: str) -> schemas.Programme:
    row = service.programme(session, tenant_id)
    conf = domain.Settings.model_validate(row.settings)
    return schemas.Programme(
        settings=conf,
        rules_version=row.rules_version,
        expiry_rule=domain.expiry_rule(conf),
        updated_at=row.updated_at,
    )


def _programme_or_default(session: Session, tenant_id: str) -> schemas.Programme:
    row = service.find_programme(session, tenant_id)
    if row is None:  # not opened yet: what it would open with
        conf = domain.Settings()
        return schemas.Programme(
            settings=conf,
            rules_version=0,
            expiry_rule=domain.expiry_rule(conf),
            updated_at=utcnow(),
        )
    return _programme(session, tenant_id)


def _lot(lot: LoyaltyLot) -> schemas.Lot:
    return schemas.Lot(
        id=lot.id,
        ref=lot.ref,
        status=LotStatus(lot.status),
        points=lot.points,
        remaining=lot.remaining,
        expired=lot.expired,
        clawed=lot.clawed,
        earned_at=lot.earned_at,
        available_at=lot.available_at,
        expires_at=lot.expires_at,
        detail=lot.detail,
    )


def _item(i: CatalogueItem) -> schemas.Item:
    return schemas.Item(
        id=i.id,
        name=i.name,
        kind=i.kind,
        price_points=i.price_points,
        coupon_template_id=i.coupon_template_id,
        stock=i.stock,
        per_user_limit=i.per_user_limit,
        status=domain.RuleStatus(i.status),
    )


def _redemption(session: Session, r: Redemption, with_balance: bool = False) -> schemas.Redemption:
    return schemas.Redemption(
        id=r.id,
        request_no=r.request_no,
        user_id=r.user_id,
        item_id=r.item_id,
        quantity=r.quantity,
        points=r.points,
        status=domain.RedemptionStatus(r.status),
        allocations={k: int(v) for k, v in r.allocations.items()},
        coupon_ids=list(r.detail.get("coupon_ids", [])),
        expires_at=r.expires_at,
        created_at=r.created_at,
        resolved_at=r.resolved_at,
        balance=_balance(service.balance(session, r.tenant_id, r.user_id))
        if with_balance
        else None,
    )


# Programme, rules, tasks ---------------------------------------------------------------------


@router.get(
    "/v1/loyalty/programme",
    response_model=schemas.Programme,
    summary="The points programme's settings and its expiry rule in words",
)
def get_programme(session: ReadSession, principal: AppReader) -> schemas.Programme:
    return _programme_or_default(session, principal.tenant_id)


@router.put(
    "/v1/loyalty/programme",
    response_model=schemas.Programme,
    summary="Set the programme: point value, refund window, expiry, tiers, downgrades",
)
def put_programme(body: domain.Settings, write: Merchant) -> Response:
    def work(session: Session) -> schemas.Programme:
        service.put_settings(session, write.tenant_id, body.model_dump(mode="json"))
        return _programme(session, write.tenant_id)

    return write(work)


@router.post(
    "/v1/loyalty/defaults",
    response_model=schemas.Defaults,
    status_code=201,
    summary="Install the seed article's earning rules and tasks (paused unless activated)",
)
def install_defaults(body: schemas.DefaultsIn, write: Merchant) -> Response:
    window = (
        (body.double_points_from, body.double_points_to)
        if body.double_points_from and body.double_points_to
        else None
    )

    def work(session: Session) -> schemas.Defaults:
        rules, tasks = service.install_defaults(
            session,
            write.tenant_id,
            activate=body.activate,
            partner_stores=body.partner_stores,
            double_points=window,
        )
        return schemas.Defaults(rules=[_rule(r) for r in rules], tasks=[_task(t) for t in tasks])

    return write(work, status_code=201)


@router.post(
    "/v1/loyalty/rules",
    response_model=schemas.PointsRule,
    status_code=201,
    summary="Add an earning rule (trigger, conditions, points effects, caps, budget)",
)
def create_rule(body: schemas.RuleCreate, write: Merchant) -> Response:
    return write(
        lambda session: _rule(
            service.create_rule(
                session, write.tenant_id, body.name, body.rule.model_dump(mode="json"), body.status
            )
        ),
        status_code=201,
    )


@router.get("/v1/loyalty/rules", response_model=list[schemas.PointsRule], summary="Earning rules")
def list_rules(session: ReadSession, principal: Reader) -> list[schemas.PointsRule]:
    return [_rule(r) for r in service.list_rules(session, principal.tenant_id)]


@router.get(
    "/v1/loyalty/rules/{rule_id}", response_model=schemas.PointsRule, summary="An earning rule"
)
def get_rule(rule_id: Id, session: ReadSession, principal: Reader) -> schemas.PointsRule:
    return _rule(service.get_rule(session, principal.tenant_id, rule_id))


@router.patch(
    "/v1/loyalty/rules/{rule_id}",
    response_model=schemas.PointsRule,
    summary="Rename, change, pause or resume an earning rule",
)
def update_rule(rule_id: Id, body: schemas.RuleUpdate, write: Merchant) -> Response:
    return write(
        lambda session: _rule(
            service.update_rule(
                session,
                write.tenant_id,
                rule_id,
                name=body.name,
                raw=body.rule.model_dump(mode="json") if body.rule else None,
                status=body.status,
            )
        )
    )


@router.post(
    "/v1/loyalty/tasks",
    response_model=schemas.Task,
    status_code=201,
    summary="Add a task: a streak, an achievement or a limited-time count",
)
def create_task(body: schemas.TaskCreate, write: Merchant) -> Response:
    return write(
        lambda session: _task(
            service.create_task(
                session, write.tenant_id, body.name, body.task.model_dump(mode="json"), body.status
            )
        ),
        status_code=201,
    )


@router.get("/v1/loyalty/tasks", response_model=list[schemas.Task], summary="Tasks")
def list_tasks(session: ReadSession, principal: AppReader) -> list[schemas.Task]:
    return [_task(t) for t in service.list_tasks(session, principal.tenant_id)]


@router.patch(
    "/v1/loyalty/tasks/{task_id}",
    response_model=schemas.Task,
    summary="Rename, pause or resume a task",
)
def update_task(task_id: Id, body: schemas.TaskUpdate, write: Merchant) -> Response:
    return write(
        lambda session: _task(
            service.update_task(
                session, write.tenant_id, task_id, name=body.name, status=body.status
            )
        )
    )


# Events --------------------------------------------------------------------------------------


def _incoming(e: schemas.EventIn) -> ingest.Incoming:
    return ingest.Incoming(
        event_id=e.event_id,
        type=e.type,
        user_id=e.user_id,
        occurred_at=e.occurred_at.astimezone(UTC),
        amount_fen=e.amount_fen,
        store_id=e.store_id,
        categories=tuple(e.categories),
        order_id=e.order_id,
        value=e.value,
        counterparty_id=e.counterparty_id,
        code=e.code,
    )


def _ingested(result: ingest.Result) -> schemas.IngestResult:
    return schemas.IngestResult(
        events=[schemas.Outcome.model_validate(asdict(o)) for o in result.outcomes],
        balances=[_balance(b) for _, b in sorted(result.balances.items())],
    )


@router.post(
    "/v1/loyalty/events",
    response_model=schemas.IngestResult,
    summary="Ingest one event; the answer carries the member's new balance",
)
def ingest_event(body: schemas.EventIn, write: Merchant) -> Response:
    return write(
        lambda session: _ingested(
            service.ingest_events(session, write.tenant_id, [_incoming(body)])
        )
    )


@router.post(
    "/v1/loyalty/events/batch",
    response_model=schemas.IngestResult,
    summary="Ingest up to 5,000 events in one transaction, each idempotent by event_id",
)
def ingest_batch(body: schemas.BatchIn, write: Merchant) -> Response:
    return write(
        lambda session: _ingested(
            service.ingest_events(session, write.tenant_id, [_incoming(e) for e in body.events])
        )
    )


@router.post(
    "/v1/loyalty/events/{event_id}/reverse",
    response_model=schemas.ReversalOut,
    summary="Reverse an event (a refund at the till): claw back its points, tier and tasks",
)
def reverse_event(event_id: EventId, body: schemas.ReverseIn, write: Merchant) -> Response:
    def work(session: Session) -> schemas.ReversalOut:
        r = service.reverse_event(session, write.tenant_id, event_id, body.reason)
        event = service.get_event(session, write.tenant_id, event_id)
        return schemas.ReversalOut(
            event_id=r.event_id,
            clawed=r.clawed,
            owed=r.owed,
            tier=r.tier,
            balance=_balance(service.balance(session, write.tenant_id, event.user_id)),
        )

    return write(work)


@router.post(
    "/v1/loyalty/receipt-codes",
    response_model=schemas.ReceiptOut,
    status_code=201,
    summary="A one-time code for a paper receipt's QR (scanned as receipt.scanned)",
)
def receipt_code(body: schemas.ReceiptIn, write: Merchant) -> Response:
    return write(
        lambda session: schemas.ReceiptOut(
            code=service.receipt_code(session, write.tenant_id, body.store_id, body.amount_fen)
        ),
        status_code=201,
    )


# Members -------------------------------------------------------------------------------------


@router.put(
    "/v1/loyalty/members/{user_id}",
    response_model=schemas.Member,
    summary="Enrol a member or update their birthday",
)
def put_member(user_id: UserId, body: schemas.MemberIn, write: Merchant) -> Response:
    def work(session: Session) -> schemas.Member:
        m = service.put_member(session, write.tenant_id, user_id, body.birthday)
        return schemas.Member(
            user_id=m.user_id,
            tier=m.tier,
            birthday=m.birthday,
            owed_points=m.owed_points,
            created_at=m.created_at,
        )

    return write(work)


@router.get(
    "/v1/loyalty/members/{user_id}",
    response_model=schemas.Account,
    summary="A member's balances, next expiry, the expiry rule and tier progress",
)
def get_account(user_id: UserId, session: ReadSession, principal: AppReader) -> schemas.Account:
    return schemas.Account.model_validate(
        asdict(service.account(session, principal.tenant_id, user_id))
    )


@router.get(
    "/v1/loyalty/members/{user_id}/balance",
    response_model=schemas.Balance,
    summary="A member's balances (available, pending, held) and tier",
)
def get_balance(user_id: UserId, session: ReadSession, principal: AppReader) -> schemas.Balance:
    return _balance(service.balance(session, principal.tenant_id, user_id))


@router.get(
    "/v1/loyalty/members/{user_id}/lots",
    response_model=Page[schemas.Lot],
    summary="A member's lots: what each grant was, what is left, when it expires",
)
def member_lots(
    user_id: UserId,
    session: ReadSession,
    principal: AppReader,
    status: LotStatus | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Lot]:
    rows = service.lots(
        session, principal.tenant_id, user_id, status, cursor_key(cursor, str), limit + 1
    )
    page, next_cursor = split_page(rows, limit, lambda x: x.id)
    return Page(data=[_lot(x) for x in page], next_cursor=next_cursor)


@router.get(
    "/v1/loyalty/members/{user_id}/tasks",
    response_model=list[schemas.TaskProgress],
    summary="A member's progress on each task",
)
def member_tasks(
    user_id: UserId, session: ReadSession, principal: AppReader
) -> list[schemas.TaskProgress]:
    return [
        schemas.TaskProgress.model_validate(asdict(v))
        for v in service.task_progress(session, principal.tenant_id, user_id)
    ]


@router.get(
    "/v1/loyalty/members/{user_id}/tier-history",
    response_model=list[schemas.TierChange],
    summary="A member's tier changes, newest first",
)
def tier_history(
    user_id: UserId, session: ReadSession, principal: AppReader, limit: Limit = DEFAULT_LIMIT
) -> list[schemas.TierChange]:
    return [
        schemas.TierChange(
            from_tier=c.from_tier,
            to_tier=c.to_tier,
            reason=c.reason,
            qualifying=c.qualifying,
            at=c.at,
        )
        for c in service.tier_history(session, principal.tenant_id, user_id, limit)
    ]


@router.get(
    "/v1/loyalty/members/{user_id}/redemptions",
    response_model=list[schemas.Redemption],
    summary="A member's redemptions, newest first",
)
def member_redemptions(
    user_id: UserId, session: ReadSession, principal: AppReader, limit: Limit = DEFAULT_LIMIT
) -> list[schemas.Redemption]:
    return [
        _redemption(session, r)
        for r in redemption.member_redemptions(session, principal.tenant_id, user_id, None, limit)
    ]


@router.post(
    "/v1/loyalty/tiers/evaluate",
    status_code=204,
    summary="Re-evaluate every member's tier now (the scheduled job does this daily)",
)
def evaluate_tiers(write: Merchant) -> Response:
    def work(session: Session) -> None:
        service.evaluate_tiers(session, tenant_id=write.tenant_id)

    return write(work, status_code=204)


# Catalogue and redemptions -------------------------------------------------------------------


@router.post(
    "/v1/loyalty/catalogue",
    response_model=schemas.Item,
    status_code=201,
    summary="Add a catalogue item priced in points (a coupon template, or goods)",
)
def create_item(body: schemas.ItemIn, write: Merchant) -> Response:
    return write(
        lambda session: _item(
            redemption.create_item(
                session,
                write.tenant_id,
                name=body.name,
                kind=body.kind,
                price_points=body.price_points,
                coupon_template_id=body.coupon_template_id,
                stock=body.stock,
                per_user_limit=body.per_user_limit,
                status=body.status,
            )
        ),
        status_code=201,
    )


@router.get("/v1/loyalty/catalogue", response_model=list[schemas.Item], summary="The catalogue")
def list_items(
    session: ReadSession, principal: AppReader, active_only: bool = True
) -> list[schemas.Item]:
    return [_item(i) for i in redemption.list_items(session, principal.tenant_id, active_only)]


@router.patch(
    "/v1/loyalty/catalogue/{item_id}",
    response_model=schemas.Item,
    summary="Change an item's price, stock or limit, or pause it",
)
def update_item(item_id: Id, body: schemas.ItemUpdate, write: Merchant) -> Response:
    return write(
        lambda session: _item(
            redemption.update_item(
                session, write.tenant_id, item_id, body.model_dump(exclude_unset=True)
            )
        )
    )


@router.post(
    "/v1/loyalty/redemptions",
    response_model=schemas.Redemption,
    status_code=201,
    summary="Redeem: hold the points (soonest-expiring first), or confirm at once",
)
def redeem(body: schemas.RedeemIn, write: AppWriter) -> Response:
    created = False

    def work(session: Session) -> schemas.Redemption:
        nonlocal created
        r, created = redemption.redeem(
            session,
            write.tenant_id,
            user_id=body.user_id,
            item_id=body.item_id,
            quantity=body.quantity,
            request_no=body.request_no,
            confirm=body.confirm,
        )
        return _redemption(session, r, with_balance=True)

    return write(work, status_code=lambda: 201 if created else 200)


@router.get(
    "/v1/loyalty/redemptions/{redemption_id}",
    response_model=schemas.Redemption,
    summary="A redemption",
)
def get_redemption(
    redemption_id: Id, session: ReadSession, principal: AppReader
) -> schemas.Redemption:
    return _redemption(
        session, redemption.get_redemption(session, principal.tenant_id, redemption_id)
    )


@router.post(
    "/v1/loyalty/redemptions/{redemption_id}/confirm",
    response_model=schemas.Redemption,
    summary="Confirm a held redemption: the points are spent, coupons issued",
)
def confirm(redemption_id: Id, write: AppWriter) -> Response:
    return write(
        lambda session: _redemption(
            session, redemption.confirm_redemption(session, write.tenant_id, redemption_id), True
        )
    )


@router.post(
    "/v1/loyalty/redemptions/{redemption_id}/cancel",
    response_model=schemas.Redemption,
    summary="Cancel a held redemption: the points return to their lots",
)
def cancel(redemption_id: Id, write: AppWriter) -> Response:
    return write(
        lambda session: _redemption(
            session, redemption.cancel_redemption(session, write.tenant_id, redemption_id), True
        )
    )


# Economics -----------------------------------------------------------------------------------


@router.get(
    "/v1/loyalty/economics",
    response_model=schemas.Economics,
    summary="Point value, liability, breakage, issuance cost per member per month, budgets",
)
def get_economics(
    session: ReadSession,
    principal: Reader,
    since: datetime | None = None,
    until: datetime | None = None,
) -> schemas.Economics:
    until = until or utcnow()
    since = since or until - timedelta(days=365)
    e = economics.economics(session, principal.tenant_id, since, until)
    return schemas.Economics.model_validate(asdict(e))
