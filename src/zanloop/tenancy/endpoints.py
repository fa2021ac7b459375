from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from zanloop.http.deps import DatabaseDep, ReadSession, require
from zanloop.http.problems import PROBLEM_RESPONSES
from zanloop.http.writes import Writer, writer
from zanloop.tenancy import schemas, service
from zanloop.tenancy.domain import Principal, Scope

router = APIRouter(prefix="/v1", tags=["tenancy"], responses=PROBLEM_RESPONSES)
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]
AnyKey = Annotated[Principal, Depends(require(*Scope))]
AdminWriter = Annotated[Writer, Depends(writer(require(Scope.ADMIN), key_required=False))]


@router.get("/tenant", response_model=schemas.Tenant, summary="The tenant of the calling key")
def current_tenant(session: ReadSession, principal: AnyKey) -> schemas.Tenant:
    return schemas.Tenant.model_validate(service.get_tenant(session, principal.tenant_id))


@router.post(
    "/api-keys",
    response_model=schemas.ApiKeyCreated,
    status_code=201,
    summary="Create an API key",
    description="The key is shown in this response only. This call takes no Idempotency-Key: a "
    "stored replay would keep the key in plain text, so a retry issues another key (revoke any "
    "you did not receive).",
)
def create_key(
    body: schemas.ApiKeyCreate, db: DatabaseDep, principal: Admin
) -> schemas.ApiKeyCreated:
    with db.session() as session:
        issued = service.create_key(
            session, principal.tenant_id, body.name, body.scopes, body.creator_id
        )
        created = schemas.ApiKey.model_validate(issued.key)
    return schemas.ApiKeyCreated(**created.model_dump(), key=issued.plaintext)


@router.get(
    "/api-keys",
    response_model=list[schemas.ApiKey],
    summary="List API keys (never the keys themselves)",
)
def list_keys(session: ReadSession, principal: Admin) -> list[schemas.ApiKey]:
    return [
        schemas.ApiKey.model_validate(k) for k in service.list_keys(session, principal.tenant_id)
    ]


@router.delete("/api-keys/{key_id}", status_code=204, summary="Revoke an API key")
def revoke_key(
    key_id: Annotated[str, Path(pattern=schemas.NO_NUL)], request: Request, write: AdminWriter
) -> Response:
    response = write(
        lambda session: service.revoke_key(session, write.tenant_id, key_id), status_code=204
    )
    request.app.state.principals.clear()
    return response
