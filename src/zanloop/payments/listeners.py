"""Payments listens to tenancy: every new tenant gets a sandbox merchant to start with."""

from __future__ import annotations

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.payments import service


def _on_tenant_created(session: Session, event: events.Event) -> None:
    service.provision_sandbox(session, event.tenant_id)


def register() -> None:
    events.subscribe("tenant.created", _on_tenant_created)
