"""Webhooks listen to every public domain event."""

from __future__ import annotations

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.webhooks import service


def _on_any(session: Session, event: events.Event) -> None:
    if event.public:
        service.publish(session, event)


def register() -> None:
    events.subscribe(events.ALL, _on_any)
