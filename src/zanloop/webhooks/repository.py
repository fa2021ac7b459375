from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zanloop.webhooks.tables import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage


def add(session: Session, obj: Any) -> None:
    session.add(obj)
    session.flush()


def enabled_endpoints(session: Session, tenant_id: str) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.enabled.is_(True)
            )
        )
    )


def list_endpoints(session: Session, tenant_id: str) -> list[WebhookEndpoint]:
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == tenant_id)
            .order_by(WebhookEndpoint.id)
        )
    )


def get_endpoint(session: Session, tenant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    return session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id
        )
    )


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    # Deliveries keep their log; the endpoint is disabled rather than erased.
    endpoint.enabled = False
    session.flush()


def get_message(session: Session, tenant_id: str, message_id: str) -> WebhookMessage | None:
    return session.scalar(
        select(WebhookMessage).where(
            WebhookMessage.tenant_id == tenant_id, WebhookMessage.id == message_id
        )
    )


def list_messages(
    session: Session, tenant_id: str, before_id: str | None, limit: int, event_type: str | None
) -> list[WebhookMessage]:
    stmt = select(WebhookMessage).where(WebhookMessage.tenant_id == tenant_id)
    if event_type:
        stmt = stmt.where(WebhookMessage.event_type == event_type)
    if before_id:
        stmt = stmt.where(WebhookMessage.id < before_id)
    return list(session.scalars(stmt.order_by(WebhookMessage.id.desc()).limit(limit)))


def get_delivery(session: Session, delivery_id: str) -> WebhookDelivery | None:
    return session.get(WebhookDelivery, delivery_id)


def get_tenant_delivery(
    session: Session, tenant_id: str, delivery_id: str
) -> WebhookDelivery | None:
    return session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.tenant_id == tenant_id, WebhookDelivery.id == delivery_id
        )
    )


def list_deliveries(
    session: Session,
    tenant_id: str,
    before_id: str | None,
    limit: int,
    *,
    message_id: str | None = None,
    endpoint_id: str | None = None,
    status: str | None = None,
) -> list[WebhookDelivery]:
    stmt = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id)
    if message_id:
        stmt = stmt.where(WebhookDelivery.message_id == message_id)
    if endpoint_id:
        stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    if before_id:
        stmt = stmt.where(WebhookDelivery.id < before_id)
    return list(session.scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit)))


def attempts_of(session: Session, delivery_id: str) -> list[WebhookAttempt]:
    return list(
        session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
    )


def due_time(delivery: WebhookDelivery) -> datetime | None:
    return delivery.next_attempt_at
