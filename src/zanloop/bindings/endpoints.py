from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from sqlalchemy.orm import Session

from zanloop.bindings import schemas, service
from zanloop.http.deps import ReadSession, require
from zanloop.http.problems import PROBLEM_RESPONSES
from zanloop.http.writes import Writer, writer
from zanloop.ledger.schemas import NO_NUL
from zanloop.tenancy.domain import Principal, Scope

router = APIRouter(prefix="/v1/bindings", tags=["bindings"], responses=PROBLEM_RESPONSES)
Reader = Annotated[Principal, Depends(require(Scope.APP, Scope.MERCHANT, Scope.ANALYST))]
AppWriter = Annotated[
    Writer, Depends(writer(require(Scope.APP, Scope.MERCHANT), key_required=False))
]
UserId = Annotated[str, Path(pattern=NO_NUL, max_length=200)]


@router.put(
    "/{user_id}",
    response_model=schemas.Binding,
    summary="Bind the user's payment account (openid)",
    description="Binding the same openid again is a no-op; a different one needs an unbind.",
)
def bind(user_id: UserId, body: schemas.BindingCreate, write: AppWriter) -> Response:
    def work(session: Session) -> schemas.Binding:
        return schemas.Binding.model_validate(
            service.bind(session, write.tenant_id, user_id, body.openid, body.real_name_verified)
        )

    return write(work)


@router.delete("/{user_id}", status_code=204, summary="Unbind the user's payment account")
def unbind(user_id: UserId, write: AppWriter) -> Response:
    def work(session: Session) -> None:
        service.unbind(session, write.tenant_id, user_id)

    return write(work, status_code=204)


@router.get("/{user_id}", response_model=schemas.Binding, summary="The user's payment account")
def get_binding(user_id: UserId, session: ReadSession, principal: Reader) -> schemas.Binding:
    return schemas.Binding.model_validate(service.get(session, principal.tenant_id, user_id))
