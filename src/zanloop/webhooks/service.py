"""Webhook workflows: fan an event out to endpoints, deliver, log each attempt, replay."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from zanloop import events
from zanloop.errors import InvalidState, NotFound
from zanloop.jobs import service as jobs
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.webhooks import domain, repository
from zanloop.webhooks.domain import DeliveryStatus
from zanloop.webhooks.tables import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage

DELIVER_JOB = "webhooks.deliver"
# A delivery schedules its own next attempt; the job itself is retried only when the handler
# crashes (e.g. the database was briefly away), so the delivery is never left stranded.
JOB_ATTEMPTS = 3


def create_endpoint(
    session: Session, tenant_id: str, url: str, event_types: list[str], description: str
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        tenant_id=tenant_id,
        url=url,
        secret=domain.new_secret(),
        description=description,
        event_types=event_types,
        enabled=True,
    )
    repository.add(session, endpoint)
    return endpoint


def get_endpoint(session: Session, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = repository.get_endpoint(session, tenant_id, endpoint_id)
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint


def update_endpoint(
    session: Session,
    tenant_id: str,
    endpoint_id: str,
    *,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    endpoint = get_endpoint(session, tenant_id, endpoint_id)
    if url is not None:
        endpoint.url = url
    if event_types is not None:
        endpoint.event_types = event_types
    if description is not None:
        endpoint.description = description
    if enabled is not None:
        endpoint.enabled = enabled
    session.flush()
    return endpoint


def disable_endpoint(session: Session, tenant_id: str, endpoint_id: str) -> None:
    repository.delete_endpoint(session, get_endpoint(session, tenant_id, endpoint_id))


def list_endpoints(session: Session, tenant_id: str) -> list[WebhookEndpoint]:
    return repository.list_endpoints(session, tenant_id)


def publish(session: Session, event: events.Event) -> WebhookMessage | None:
    """Record the event as a message and queue one delivery per interested endpoint."""
    endpoints = [
        e
        for e in repository.enabled_endpoints(session, event.tenant_id)
        if domain.wants(e.event_types, event.name)
    ]
    if not endpoints:
        return None
    now = utcnow()
    message = WebhookMessage(
        id=new_id("msg"),
        tenant_id=event.tenant_id,
        event_type=event.name,
        payload=domain.envelope(event.name, now.isoformat(), event.data),
        created_at=now,
    )
    repository.add(session, message)
    for endpoint in endpoints:
        _queue_delivery(session, message, endpoint.id)
    return message


def _queue_delivery(session: Session, message: WebhookMessage, endpoint_id: str) -> WebhookDelivery:
    now = utcnow()
    delivery = WebhookDelivery(
        id=new_id("whd"),
        tenant_id=message.tenant_id,
        message_id=message.id,
        endpoint_id=endpoint_id,
        status=DeliveryStatus.PENDING.value,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    repository.add(session, delivery)
    jobs.enqueue(
        session,
        DELIVER_JOB,
        {"delivery_id": delivery.id},
        tenant_id=message.tenant_id,
        max_attempts=JOB_ATTEMPTS,
    )
    return delivery


def replay(
    session: Session, tenant_id: str, message_id: str, endpoint_id: str | None = None
) -> list[WebhookDelivery]:
    """Send a message again, with its original webhook-id so receivers can de-duplicate."""
    message = get_message(session, tenant_id, message_id)
    if endpoint_id is not None:
        endpoint = get_endpoint(session, tenant_id, endpoint_id)
        if not endpoint.enabled:
            raise InvalidState(f"webhook endpoint {endpoint_id} is disabled; enable it first")
        targets = [endpoint.id]
    else:
        targets = [
            e.id
            for e in repository.enabled_endpoints(session, tenant_id)
            if domain.wants(e.event_types, message.event_type)
        ]
    return [_queue_delivery(session, message, target) for target in targets]


@dataclass(frozen=True)
class SignedRequest:
    url: str
    body: str
    headers: dict[str, str]


def signed_request(session: Session, delivery_id: str, now: datetime) -> SignedRequest | None:
    """The request to send, or None when there is nothing to send: the delivery is finished
    or its endpoint was disabled meanwhile (``abandon`` then closes it)."""
    delivery = repository.get_delivery(session, delivery_id)
    if delivery is None or delivery.status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED):
        return None
    message = repository.get_message(session, delivery.tenant_id, delivery.message_id)
    endpoint = repository.get_endpoint(session, delivery.tenant_id, delivery.endpoint_id)
    if message is None or endpoint is None or not endpoint.enabled:
        return None
    body = json.dumps(message.payload, ensure_ascii=False, separators=(",", ":"))
    signature = Webhook(endpoint.secret).sign(msg_id=message.id, timestamp=now, data=body)
    return SignedRequest(
        url=endpoint.url,
        body=body,
        headers={
            "webhook-id": message.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
            "user-agent": "zanloop-webhooks/1",
        },
    )


def abandon(session: Session, delivery_id: str) -> None:
    """Close an open delivery that cannot be sent (its endpoint was disabled)."""
    delivery = repository.get_delivery(session, delivery_id)
    if delivery is None or delivery.status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED):
        return
    endpoint = repository.get_endpoint(session, delivery.tenant_id, delivery.endpoint_id)
    message = repository.get_message(session, delivery.tenant_id, delivery.message_id)
    if endpoint is not None and endpoint.enabled and message is not None:
        # Enabled again since the check: try once more instead of leaving it open for ever.
        jobs.enqueue(
            session,
            DELIVER_JOB,
            {"delivery_id": delivery.id},
            tenant_id=delivery.tenant_id,
            max_attempts=JOB_ATTEMPTS,
        )
        return
    delivery.status = DeliveryStatus.FAILED.value
    delivery.next_attempt_at = None
    delivery.last_error = "endpoint disabled; no further attempts" if message else "message gone"
    delivery.updated_at = utcnow()
    session.flush()


def record_attempt(
    session: Session,
    delivery_id: str,
    *,
    status_code: int | None,
    response_body: str | None,
    error: str | None,
    duration_ms: int,
    retry_scale: float,
) -> DeliveryStatus:
    delivery = repository.get_delivery(session, delivery_id)
    if delivery is None:
        return DeliveryStatus.FAILED
    now = utcnow()
    delivery.attempts += 1
    delivery.last_status_code = status_code
    delivery.last_error = error
    delivery.updated_at = now
    repository.add(
        session,
        WebhookAttempt(
            delivery_id=delivery_id,
            attempt=delivery.attempts,
            status_code=status_code,
            response_body=(response_body or "")[:1000] or None,
            error=error,
            duration_ms=duration_ms,
            created_at=now,
        ),
    )
    if status_code is not None and domain.succeeded(status_code):
        delivery.status = DeliveryStatus.SUCCEEDED.value
        delivery.next_attempt_at = None
        return DeliveryStatus.SUCCEEDED
    delay = domain.retry_delay(delivery.attempts, retry_scale)
    if delay is None:
        delivery.status = DeliveryStatus.FAILED.value
        delivery.next_attempt_at = None
        return DeliveryStatus.FAILED
    delivery.status = DeliveryStatus.RETRYING.value
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    jobs.enqueue(
        session,
        DELIVER_JOB,
        {"delivery_id": delivery_id},
        tenant_id=delivery.tenant_id,
        run_at=delivery.next_attempt_at,
        max_attempts=JOB_ATTEMPTS,
    )
    return DeliveryStatus.RETRYING


def get_message(session: Session, tenant_id: str, message_id: str) -> WebhookMessage:
    message = repository.get_message(session, tenant_id, message_id)
    if message is None:
        raise NotFound(f"webhook message {message_id} not found")
    return message


def list_messages(
    session: Session, tenant_id: str, before_id: str | None, limit: int, event_type: str | None
) -> list[WebhookMessage]:
    return repository.list_messages(session, tenant_id, before_id, limit, event_type)


def get_delivery(
    session: Session, tenant_id: str, delivery_id: str
) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    delivery = repository.get_tenant_delivery(session, tenant_id, delivery_id)
    if delivery is None:
        raise NotFound(f"webhook delivery {delivery_id} not found")
    return delivery, repository.attempts_of(session, delivery_id)


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
    return repository.list_deliveries(
        session,
        tenant_id,
        before_id,
        limit,
        message_id=message_id,
        endpoint_id=endpoint_id,
        status=status,
    )
