from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import yaml
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from zanloop.errors import Forbidden, Unprocessable
from zanloop.http.deps import ReadSession, require
from zanloop.http.problems import PROBLEM_RESPONSES
from zanloop.http.writes import Writer, writer
from zanloop.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, cursor_key, split_page
from zanloop.ledger.schemas import NO_NUL
from zanloop.risk import explanations, policy, reviews, schemas, service
from zanloop.risk.domain import Signal, Subject, Verdict
from zanloop.risk.policy import ACTION_PATTERN
from zanloop.risk.tables import RiskDecision, RiskListEntry, RiskReview
from zanloop.tenancy.domain import Principal, Scope

T = TypeVar("T")
router = APIRouter(prefix="/v1/risk", tags=["risk"], responses=PROBLEM_RESPONSES)
Analyst = Annotated[Principal, Depends(require(Scope.ANALYST, Scope.MERCHANT))]
DecideWriter = Annotated[
    Writer,
    Depends(writer(require(Scope.MERCHANT, Scope.CREATOR, Scope.APP), key_required=True)),
]
ReviewWriter = Annotated[Writer, Depends(writer(require(Scope.ANALYST), key_required=True))]
ConfigWriter = Annotated[Writer, Depends(writer(require(Scope.ANALYST), key_required=False))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
PathId = Annotated[str, Path(pattern=NO_NUL, max_length=200)]
UserFilter = Annotated[str | None, Query(pattern=NO_NUL, max_length=200)]
ActionFilter = Annotated[str | None, Query(pattern=ACTION_PATTERN, max_length=64)]


def _decision(decision: RiskDecision, review: RiskReview | None = None) -> schemas.Decision:
    out = schemas.Decision.model_validate(decision)
    if review is not None:
        out.review = schemas.Review.model_validate(review)
    return out


def _entry(entry: RiskListEntry) -> schemas.ListEntry:
    return schemas.ListEntry(
        id=entry.id,
        list=entry.list_name,
        subject=Subject(entry.subject),
        value=entry.value,
        note=entry.note,
        expires_at=entry.expires_at,
        created_by=entry.created_by,
        created_at=entry.created_at,
    )


def _policy(view: service.PolicyView) -> schemas.Policy:
    return schemas.Policy(
        version=view.version,
        is_default=view.is_default,
        updated_at=view.updated_at,
        document=view.document,
    )


def _paged(rows: list[Any], limit: int, render: Callable[[Any], T]) -> Page[T]:
    """``rows`` were fetched with ``limit + 1``: a next page exists only if there is more."""
    page, next_cursor = split_page(rows, limit, lambda row: row.id)
    return Page(data=[render(row) for row in page], next_cursor=next_cursor)


# Decisions -----------------------------------------------------------------------------------


@router.post(
    "/decisions",
    response_model=schemas.Decision,
    status_code=201,
    summary="Decide on an action: ALLOW, REVIEW or BLOCK, with a score and reasons",
    description="Call before the action takes effect. With `hold` and a REVIEW verdict, the "
    "effect is reserved in the ledger and queued for an analyst (`review` in the answer).",
)
def decide(body: schemas.DecisionCreate, write: DecideWriter) -> Response:
    def work(session: Session) -> schemas.Decision:
        signal = Signal(
            action=body.action,
            user_id=body.user_id,
            at=service.now(),
            amount_fen=body.amount_fen,
            device_id=body.device_id,
            ip=str(body.ip) if body.ip is not None else None,
            payment_account=body.payment_account,
            payment_order_id=body.payment_order_id,
            account_created_at=body.account_created_at,
            payer_verified=body.payer_verified,
            context=body.context,
        )
        hold = body.hold
        if hold is not None and not write.principal.allows(Scope.MERCHANT):
            raise Forbidden("holding a ledger effect for review needs the merchant scope")
        decision, review = reviews.decide_with_hold(
            session,
            write.tenant_id,
            signal,
            reviews.HoldSpec(
                hold.asset, hold.from_owner, hold.to_owner, hold.amount, hold.description
            )
            if hold is not None
            else None,
            reference=body.reference,
            actor=write.principal.key_id,
        )
        return _decision(decision, review)

    return write(work, status_code=201)


@router.get("/decisions", response_model=Page[schemas.Decision], summary="The decision log")
def list_decisions(
    session: ReadSession,
    principal: Analyst,
    user_id: UserFilter = None,
    action: ActionFilter = None,
    verdict: Verdict | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Decision]:
    rows = service.list_decisions(
        session,
        principal.tenant_id,
        user_id=user_id,
        action=action,
        verdict=verdict,
        before_id=cursor_key(cursor, str),
        limit=limit + 1,
    )
    return _paged(rows, limit, _decision)


@router.get("/decisions/{decision_id}", response_model=schemas.Decision, summary="A decision")
def get_decision(decision_id: PathId, session: ReadSession, principal: Analyst) -> schemas.Decision:
    decision = service.get_decision(session, principal.tenant_id, decision_id)
    return _decision(decision, reviews.review_of(session, decision))


@router.get(
    "/explanations",
    response_model=schemas.Explanation,
    summary="Why was this user (or this action) blocked or held?",
)
def explain(
    session: ReadSession,
    principal: Analyst,
    user_id: Annotated[str, Query(min_length=1, pattern=NO_NUL, max_length=200)],
    action: ActionFilter = None,
) -> schemas.Explanation:
    found = explanations.explain(session, principal.tenant_id, user_id, action)
    return schemas.Explanation(
        user_id=found.user_id,
        action=found.action,
        status=found.status,
        summary=found.summary,
        listed=[
            schemas.ListHitOut(list=h.list_name, subject=h.subject, value=h.value, note=h.note)
            for h in found.listed
        ],
        open_reviews=[schemas.Review.model_validate(r) for r in found.open_reviews],
        decisions=[_decision(d) for d in found.decisions],
    )


# Policy --------------------------------------------------------------------------------------


@router.get("/policy", response_model=schemas.Policy, summary="The tenant's risk policy")
def get_policy(session: ReadSession, principal: Analyst) -> schemas.Policy:
    return _policy(service.get_policy(session, principal.tenant_id))


@router.get(
    "/policy/defaults", response_model=policy.PolicyDocument, summary="The built-in default policy"
)
def default_policy(principal: Analyst) -> policy.PolicyDocument:
    return policy.DEFAULT_DOCUMENT


async def _policy_body(request: Request) -> policy.PolicyDocument:
    raw = await request.body()
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type in ("application/yaml", "application/x-yaml", "text/yaml"):
        return policy.parse_yaml(raw.decode("utf-8", errors="replace"))
    if content_type != "application/json":
        raise Unprocessable("send the policy as application/json or application/yaml", field="body")
    try:
        data = yaml.safe_load(raw) if raw else None  # JSON is YAML; one parser for both
    except yaml.YAMLError:
        raise Unprocessable("the body is not valid JSON", field="body") from None
    return policy.parse(data)


PolicyBody = Annotated[policy.PolicyDocument, Depends(_policy_body)]
_POLICY_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PolicyDocument"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


@router.put(
    "/policy",
    response_model=schemas.Policy,
    summary="Replace the risk policy (JSON or YAML)",
    openapi_extra=_POLICY_BODY_DOC,
)
def put_policy(document: PolicyBody, write: ConfigWriter) -> Response:
    def work(session: Session) -> schemas.Policy:
        return _policy(
            service.set_policy(session, write.tenant_id, document, write.principal.key_id)
        )

    return write(work)


@router.post(
    "/policy/validate",
    response_model=policy.PolicyDocument,
    summary="Check a policy without saving it (JSON or YAML)",
    openapi_extra=_POLICY_BODY_DOC,
)
def validate_policy(document: PolicyBody, principal: Analyst) -> policy.PolicyDocument:
    return document


@router.delete("/policy", response_model=schemas.Policy, summary="Go back to the defaults")
def reset_policy(write: ConfigWriter) -> Response:
    def work(session: Session) -> schemas.Policy:
        return _policy(service.set_policy(session, write.tenant_id, None, write.principal.key_id))

    return write(work)


# Lists ---------------------------------------------------------------------------------------


@router.get(
    "/lists", response_model=Page[schemas.ListEntry], summary="Block, allow and review lists"
)
def list_entries(
    session: ReadSession,
    principal: Analyst,
    list: schemas.ListName | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.ListEntry]:
    rows = service.list_entries(
        session,
        principal.tenant_id,
        list.value if list else None,
        cursor_key(cursor, str),
        limit + 1,
    )
    return _paged(rows, limit, _entry)


@router.post(
    "/lists",
    response_model=schemas.ListEntry,
    status_code=201,
    summary="Put a user, device, IP (or CIDR range) or payment account on a list",
)
def add_entry(body: schemas.ListEntryCreate, write: ConfigWriter) -> Response:
    def work(session: Session) -> schemas.ListEntry:
        entry, _ = service.add_list_entry(
            session,
            write.tenant_id,
            list_name=body.list.value,
            subject=Subject(body.subject.value),
            value=body.value,
            note=body.note,
            expires_at=body.expires_at,
            actor=write.principal.key_id,
        )
        return _entry(entry)

    return write(work, status_code=201)


@router.delete("/lists/{entry_id}", status_code=204, summary="Take an entry off its list")
def remove_entry(entry_id: PathId, write: ConfigWriter) -> Response:
    def work(session: Session) -> None:
        service.remove_list_entry(session, write.tenant_id, entry_id, write.principal.key_id)

    return write(work, status_code=204)


# Reviews -------------------------------------------------------------------------------------


@router.get("/reviews", response_model=Page[schemas.Review], summary="The review queue")
def list_reviews(
    session: ReadSession,
    principal: Analyst,
    status: Annotated[str, Query(pattern="^(PENDING|APPROVED|REJECTED|ALL)$")] = "PENDING",
    user_id: UserFilter = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Review]:
    rows = reviews.list_reviews(
        session,
        principal.tenant_id,
        None if status == "ALL" else status,
        cursor_key(cursor, str),
        limit + 1,
        user_id,
    )
    return _paged(rows, limit, schemas.Review.model_validate)


@router.get("/reviews/{review_id}", response_model=schemas.Review, summary="A review")
def get_review(review_id: PathId, session: ReadSession, principal: Analyst) -> schemas.Review:
    return schemas.Review.model_validate(
        reviews.get_review(session, principal.tenant_id, review_id)
    )


@router.post(
    "/reviews/{review_id}/approve",
    response_model=schemas.Review,
    summary="Approve: the held effect posts, exactly the held amount",
)
def approve(
    review_id: PathId, write: ReviewWriter, body: schemas.ReviewResolve | None = None
) -> Response:
    def work(session: Session) -> schemas.Review:
        review = reviews.approve(
            session, write.tenant_id, review_id, write.principal.key_id, body.note if body else ""
        )
        return schemas.Review.model_validate(review)

    return write(work)


@router.post(
    "/reviews/{review_id}/reject",
    response_model=schemas.Review,
    summary="Reject: the hold is voided and every balance is as before",
)
def reject(
    review_id: PathId, write: ReviewWriter, body: schemas.ReviewResolve | None = None
) -> Response:
    def work(session: Session) -> schemas.Review:
        review = reviews.reject(
            session, write.tenant_id, review_id, write.principal.key_id, body.note if body else ""
        )
        return schemas.Review.model_validate(review)

    return write(work)


@router.get("/audit", response_model=Page[schemas.AuditEntry], summary="Who changed what")
def list_audit(
    session: ReadSession,
    principal: Analyst,
    subject_id: UserFilter = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.AuditEntry]:
    rows = service.list_audit(
        session, principal.tenant_id, subject_id, cursor_key(cursor, str), limit + 1
    )
    return _paged(rows, limit, schemas.AuditEntry.model_validate)
