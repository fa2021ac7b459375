"""Group fraud detection over HTTP: scans, findings, and the actions queue."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.orm import Session

from zanloop.fraud import actions, domain, schemas, service
from zanloop.fraud.domain import Kind
from zanloop.fraud.tables import FraudAction, FraudFinding
from zanloop.http.deps import ReadSession, require
from zanloop.http.problems import PROBLEM_RESPONSES
from zanloop.http.writes import Writer, writer
from zanloop.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, cursor_key, split_page
from zanloop.ledger.schemas import NO_NUL
from zanloop.tenancy.domain import Principal, Scope

router = APIRouter(prefix="/v1/fraud", tags=["fraud"], responses=PROBLEM_RESPONSES)
Analyst = Annotated[Principal, Depends(require(Scope.ANALYST, Scope.MERCHANT))]
AnalystWriter = Annotated[Writer, Depends(writer(require(Scope.ANALYST), key_required=False))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
PathId = Annotated[str, Path(pattern=NO_NUL, max_length=200)]


def _params(body: schemas.ScanCreate) -> domain.ScanParams:
    base = domain.ScanParams()
    sizes = {"max_blocks": body.max_blocks, "min_users": body.min_users}
    return domain.ScanParams(
        kinds=frozenset(body.kinds),
        blocks=replace(base.blocks, **sizes),
        lockstep=replace(
            base.lockstep,
            burst_seconds=body.burst_seconds,
            blocks=replace(base.lockstep.blocks, **sizes),
        ),
    )


def _detail(session: Session, finding: FraudFinding) -> schemas.FindingDetail:
    users, targets = service.finding_members(session, finding.id)
    return schemas.FindingDetail(
        **schemas.Finding.model_validate(finding).model_dump(),
        members=[schemas.Member(id=m.id, hits=m.hits, expected=m.expected) for m in users],
        target_members=[schemas.Member(id=m.id, hits=m.hits, expected=m.expected) for m in targets],
    )


@router.post(
    "/scans",
    response_model=schemas.Scan,
    status_code=201,
    summary="Scan the tenant's interactions in a time range and store the groups found",
)
def create_scan(body: schemas.ScanCreate, write: AnalystWriter) -> Response:
    def work(session: Session) -> schemas.Scan:
        scan = service.scan_database(
            session,
            write.tenant_id,
            body.since,
            body.until,
            write.principal.key_id,
            _params(body),
        )
        return schemas.Scan.model_validate(scan)

    return write(work, status_code=201)


@router.get("/scans", response_model=Page[schemas.Scan], summary="Scans, newest first")
def list_scans(
    session: ReadSession,
    principal: Analyst,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Scan]:
    rows = service.list_scans(session, principal.tenant_id, cursor_key(cursor, str), limit + 1)
    page, next_cursor = split_page(list(rows), limit, lambda row: row.id)
    return Page(data=[schemas.Scan.model_validate(r) for r in page], next_cursor=next_cursor)


@router.get("/scans/{scan_id}", response_model=schemas.Scan, summary="A scan")
def get_scan(scan_id: PathId, session: ReadSession, principal: Analyst) -> schemas.Scan:
    return schemas.Scan.model_validate(service.get_scan(session, principal.tenant_id, scan_id))


@router.get("/findings", response_model=Page[schemas.Finding], summary="Findings, newest first")
def list_findings(
    session: ReadSession,
    principal: Analyst,
    scan_id: Annotated[str | None, Query(pattern=NO_NUL, max_length=200)] = None,
    kind: Kind | None = None,
    status: Annotated[str | None, Query(pattern="^(OPEN|ACTIONED|DISMISSED)$")] = None,
    user_id: Annotated[
        str | None,
        Query(pattern=NO_NUL, max_length=300, description="Findings naming this account"),
    ] = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Finding]:
    rows = service.list_findings(
        session,
        principal.tenant_id,
        scan_id=scan_id,
        kind=kind.value if kind else None,
        status=status,
        user_id=user_id,
        after_id=cursor_key(cursor, str),
        limit=limit + 1,
    )
    page, next_cursor = split_page(list(rows), limit, lambda row: row.id)
    return Page(data=[schemas.Finding.model_validate(r) for r in page], next_cursor=next_cursor)


@router.get(
    "/findings/{finding_id}",
    response_model=schemas.FindingDetail,
    summary="A finding with all its accounts and targets, and the evidence",
)
def get_finding(
    finding_id: PathId, session: ReadSession, principal: Analyst
) -> schemas.FindingDetail:
    return _detail(session, service.get_finding(session, principal.tenant_id, finding_id))


@router.post(
    "/findings/{finding_id}/dismiss",
    response_model=schemas.Finding,
    summary="Judge a finding honest: nothing is done to its accounts",
)
def dismiss(
    finding_id: PathId, write: AnalystWriter, body: schemas.ActionResolve | None = None
) -> Response:
    def work(session: Session) -> schemas.Finding:
        finding = service.dismiss(
            session, write.tenant_id, finding_id, write.principal.key_id, body.note if body else ""
        )
        return schemas.Finding.model_validate(finding)

    return write(work)


@router.post(
    "/findings/{finding_id}/actions",
    response_model=schemas.Action,
    status_code=201,
    summary="Propose an action on a finding's accounts; it waits for an analyst's approval",
)
def propose(finding_id: PathId, body: schemas.ActionCreate, write: AnalystWriter) -> Response:
    def work(session: Session) -> schemas.Action:
        row = actions.propose(
            session,
            write.tenant_id,
            finding_id,
            body.action.value,
            write.principal.key_id,
            user_ids=body.user_ids,
            note=body.note,
            expires_at=body.expires_at,
        )
        return schemas.Action.model_validate(row)

    return write(work, status_code=201)


@router.get("/actions", response_model=Page[schemas.Action], summary="The actions queue")
def list_actions(
    session: ReadSession,
    principal: Analyst,
    status: Annotated[str, Query(pattern="^(PENDING|APPROVED|REJECTED|ALL)$")] = "PENDING",
    finding_id: Annotated[str | None, Query(pattern=NO_NUL, max_length=200)] = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Action]:
    rows = actions.list_actions(
        session,
        principal.tenant_id,
        None if status == "ALL" else status,
        finding_id,
        cursor_key(cursor, str),
        limit + 1,
    )
    page, next_cursor = split_page(list(rows), limit, lambda row: row.id)
    return Page(data=[schemas.Action.model_validate(r) for r in page], next_cursor=next_cursor)


@router.get("/actions/{action_id}", response_model=schemas.Action, summary="An action")
def get_action(action_id: PathId, session: ReadSession, principal: Analyst) -> schemas.Action:
    return schemas.Action.model_validate(
        actions.get_action(session, principal.tenant_id, action_id)
    )


def _resolve(
    action_id: str,
    write: Writer,
    body: schemas.ActionResolve | None,
    resolve: Callable[[Session, str, str, str, str], FraudAction],
) -> Response:
    def work(session: Session) -> schemas.Action:
        row = resolve(
            session, write.tenant_id, action_id, write.principal.key_id, body.note if body else ""
        )
        return schemas.Action.model_validate(row)

    return write(work)


@router.post(
    "/actions/{action_id}/approve",
    response_model=schemas.Action,
    summary="Approve: the action is carried out through risk control",
)
def approve(
    action_id: PathId, write: AnalystWriter, body: schemas.ActionResolve | None = None
) -> Response:
    return _resolve(action_id, write, body, actions.approve)


@router.post(
    "/actions/{action_id}/reject",
    response_model=schemas.Action,
    summary="Reject: nothing is done to the accounts",
)
def reject(
    action_id: PathId, write: AnalystWriter, body: schemas.ActionResolve | None = None
) -> Response:
    return _resolve(action_id, write, body, actions.reject)
