from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.orm import Session

from zanloop.errors import Unprocessable
from zanloop.http.deps import ReadSession, require
from zanloop.http.problems import PROBLEM_RESPONSES
from zanloop.http.writes import Writer, writer
from zanloop.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, encode_cursor
from zanloop.tenancy.domain import Principal, Scope
from zanloop.webhooks import schemas, service
from zanloop.webhooks.domain import DeliveryStatus
from zanloop.webhooks.schemas import EVENT_TYPE_PATTERN, ID_PATTERN

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=PROBLEM_RESPONSES)
# Webhooks carry every event of the tenant: platform keys only (a creator key acts for one
# creator and follows its own pins through the live stream).
Admin = Annotated[Principal, Depends(require(Scope.MERCHANT))]
AdminWriter = Annotated[Writer, Depends(writer(require(Scope.MERCHANT), key_required=False))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
EndpointId = Annotated[str, Path(pattern=ID_PATTERN)]
MessageId = Annotated[str, Path(pattern=ID_PATTERN)]
DeliveryId = Annotated[str, Path(pattern=ID_PATTERN)]
IdFilter = Annotated[str | None, Query(pattern=ID_PATTERN)]
EventTypeFilter = Annotated[str | None, Query(pattern=EVENT_TYPE_PATTERN)]


def _after(cursor: str | None) -> str | None:
    """The id a cursor points after; ids are strings, so any other decoded value is forged."""
    key = decode_cursor(cursor)
    if key is not None and not (isinstance(key, str) and re.fullmatch(ID_PATTERN, key)):
        raise Unprocessable("cursor is not one this API returned", field="cursor")
    return key


@router.post(
    "/endpoints",
    response_model=schemas.EndpointWithSecret,
    status_code=201,
    summary="Add an endpoint",
)
def create_endpoint(body: schemas.EndpointCreate, write: AdminWriter) -> Response:
    return write(
        lambda session: schemas.EndpointWithSecret.model_validate(
            service.create_endpoint(
                session, write.tenant_id, str(body.url), body.event_types, body.description
            )
        ),
        status_code=201,
    )


@router.get("/endpoints", response_model=list[schemas.Endpoint], summary="List endpoints")
def list_endpoints(session: ReadSession, principal: Admin) -> list[schemas.Endpoint]:
    return [
        schemas.Endpoint.model_validate(e)
        for e in service.list_endpoints(session, principal.tenant_id)
    ]


@router.get(
    "/endpoints/{endpoint_id}",
    response_model=schemas.EndpointWithSecret,
    summary="An endpoint and its secret",
)
def get_endpoint(
    endpoint_id: EndpointId, session: ReadSession, principal: Admin
) -> schemas.EndpointWithSecret:
    return schemas.EndpointWithSecret.model_validate(
        service.get_endpoint(session, principal.tenant_id, endpoint_id)
    )


@router.patch(
    "/endpoints/{endpoint_id}", response_model=schemas.Endpoint, summary="Change an endpoint"
)
def update_endpoint(
    endpoint_id: EndpointId, body: schemas.EndpointUpdate, write: AdminWriter
) -> Response:
    return write(
        lambda session: schemas.Endpoint.model_validate(
            service.update_endpoint(
                session,
                write.tenant_id,
                endpoint_id,
                url=str(body.url) if body.url else None,
                event_types=body.event_types,
                description=body.description,
                enabled=body.enabled,
            )
        )
    )


@router.delete(
    "/endpoints/{endpoint_id}", status_code=204, summary="Disable an endpoint (its log stays)"
)
def delete_endpoint(endpoint_id: EndpointId, write: AdminWriter) -> Response:
    return write(
        lambda session: service.disable_endpoint(session, write.tenant_id, endpoint_id),
        status_code=204,
    )


@router.get(
    "/messages", response_model=Page[schemas.Message], summary="Messages sent, newest first"
)
def list_messages(
    session: ReadSession,
    principal: Admin,
    event_type: EventTypeFilter = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Message]:
    messages = service.list_messages(
        session, principal.tenant_id, _after(cursor), limit, event_type
    )
    return Page(
        data=[schemas.Message.model_validate(m) for m in messages],
        next_cursor=encode_cursor(messages[-1].id) if len(messages) == limit else None,
    )


@router.get("/messages/{message_id}", response_model=schemas.Message, summary="A message")
def get_message(message_id: MessageId, session: ReadSession, principal: Admin) -> schemas.Message:
    return schemas.Message.model_validate(
        service.get_message(session, principal.tenant_id, message_id)
    )


@router.post(
    "/messages/{message_id}/replay",
    response_model=list[schemas.Delivery],
    status_code=202,
    summary="Send a message again",
)
def replay(
    message_id: MessageId, write: AdminWriter, body: schemas.ReplayCreate | None = None
) -> Response:
    def work(session: Session) -> list[schemas.Delivery]:
        deliveries = service.replay(
            session, write.tenant_id, message_id, body.endpoint_id if body else None
        )
        return [schemas.Delivery.model_validate(d) for d in deliveries]

    return write(work, status_code=202)  # type: ignore[arg-type]


@router.get(
    "/deliveries", response_model=Page[schemas.Delivery], summary="The delivery log, newest first"
)
def list_deliveries(
    session: ReadSession,
    principal: Admin,
    message_id: IdFilter = None,
    endpoint_id: IdFilter = None,
    status: DeliveryStatus | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.Delivery]:
    deliveries = service.list_deliveries(
        session,
        principal.tenant_id,
        _after(cursor),
        limit,
        message_id=message_id,
        endpoint_id=endpoint_id,
        status=status.value if status else None,
    )
    return Page(
        data=[schemas.Delivery.model_validate(d) for d in deliveries],
        next_cursor=encode_cursor(deliveries[-1].id) if len(deliveries) == limit else None,
    )


@router.get(
    "/deliveries/{delivery_id}",
    response_model=schemas.DeliveryDetail,
    summary="A delivery and its attempts",
)
def get_delivery(
    delivery_id: DeliveryId, session: ReadSession, principal: Admin
) -> schemas.DeliveryDetail:
    delivery, attempts = service.get_delivery(session, principal.tenant_id, delivery_id)
    return schemas.DeliveryDetail(
        **schemas.Delivery.model_validate(delivery).model_dump(),
        attempt_log=[schemas.Attempt.model_validate(a) for a in attempts],
    )
