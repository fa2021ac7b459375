"""Domain events: who listens to what.

Areas publish events inside the transaction that made the change; handlers run in that same
transaction, so a listener's change commits or rolls back with the cause. A handler with a side
effect outside the database (a webhook, a notice) only enqueues a job, which runs after commit.
Lower areas (payments, ledger) never import the features that listen to them.

``wire()`` registers every listener once at start-up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

ALL = "*"


@dataclass(frozen=True)
class Event:
    name: str
    tenant_id: str
    data: dict[str, Any]
    # Public events are offered to the tenant's outbound webhooks.
    public: bool = True
    id_hint: str | None = field(default=None, compare=False)


Handler = Callable[[Session, Event], None]
_handlers: dict[str, list[Handler]] = defaultdict(list)
_wired = False


def subscribe(name: str, handler: Handler) -> None:
    if handler not in _handlers[name]:
        _handlers[name].append(handler)


def publish(session: Session, event: Event) -> None:
    if not _wired:
        wire()
    for handler in (*_handlers.get(event.name, ()), *_handlers.get(ALL, ())):
        handler(session, event)


def wire() -> None:
    global _wired
    if _wired:
        return
    from zanloop.campaigns import listeners as campaign_listeners
    from zanloop.coupons import listeners as coupon_listeners
    from zanloop.loyalty import listeners as loyalty_listeners
    from zanloop.payments import listeners as payment_listeners
    from zanloop.pins import listeners as pin_listeners
    from zanloop.risk import listeners as risk_listeners
    from zanloop.webhooks import listeners as webhook_listeners

    payment_listeners.register()
    coupon_listeners.register()
    campaign_listeners.register()
    loyalty_listeners.register()
    pin_listeners.register()
    risk_listeners.register()
    webhook_listeners.register()
    _wired = True
