"""Provider notifications (WeChat Pay v3 callbacks): verified first, settled afterwards.

``verify`` checks everything that needs no write (the signed headers, the timestamp window, the
signature, the decryption, the facts the resource carries) against the tenant's provider
configuration, read outside any write transaction. Whatever it cannot trust raises
``NotificationRejected`` before anything is written. ``settle`` then runs in the caller's write
transaction: the de-duplication record, the order's (or refund's) guarded state change, the
ledger posting and the events. It raises ``NotificationRejected`` for facts that do not match
our records, and the caller rolls back.

A notification is settled on the configuration that verified it, even if the tenant changes
its keys in between: it was signed by the provider and encrypted for this merchant all the same.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.orm import Session

from zanloop.config import Settings
from zanloop.errors import NotificationRejected
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.payments import domain, repository, service, v3
from zanloop.payments.domain import FactsMismatch, RefundFacts, TradeFacts


@dataclass(frozen=True)
class VerifiedNotification:
    """A notification whose signature, timestamp and encryption checked out."""

    tenant_id: str
    mchid: str
    notification_id: str
    event_type: str
    resource: dict[str, Any]
    # None for event types we record but do not act on.
    facts: TradeFacts | RefundFacts | None


# Verifying -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MerchantKeys:
    """What verifying one tenant's notifications takes, as of one configuration version."""

    updated_at: datetime
    mchid: str
    apiv3_key: str
    platform_public_key_id: str
    platform_public_key: rsa.RSAPublicKey


class MerchantKeyCache:
    """Parsed keys per tenant, reused while the configuration's ``updated_at`` is unchanged:
    each lookup costs one indexed read of that column instead of the row and a PEM parse."""

    def __init__(self, max_tenants: int = 10_000) -> None:
        self.max_tenants = max_tenants
        self._items: dict[str, MerchantKeys] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, tenant_id: str) -> MerchantKeys | None:
        version = repository.config_version(session, tenant_id)
        if version is None:
            return None
        keys = self._items.get(tenant_id)
        if keys is not None and keys.updated_at == version:
            return keys
        config = repository.get_config(session, tenant_id)
        if config is None:
            return None
        keys = MerchantKeys(
            updated_at=config.updated_at,
            mchid=config.mchid,
            apiv3_key=config.apiv3_key,
            platform_public_key_id=config.platform_public_key_id,
            platform_public_key=v3.load_public_key(config.platform_public_key_pem),
        )
        with self._lock:
            if len(self._items) >= self.max_tenants:
                self._items.clear()
            self._items[tenant_id] = keys
        return keys


_keys = MerchantKeyCache()


def verify(
    session: Session, settings: Settings, tenant_id: str, headers: dict[str, str], body: bytes
) -> VerifiedNotification:
    """Check everything that needs no write; ``session`` may be a read session."""
    keys = _keys.get(session, tenant_id)
    if keys is None:
        raise NotificationRejected("unknown merchant", 404)
    try:
        signed = v3.SignedHeaders.from_mapping(headers)
    except v3.ProtocolError as exc:
        raise NotificationRejected(str(exc), 401) from exc
    if signed.signature_type != v3.SIGNATURE_TYPE:
        raise NotificationRejected(f"unsupported signature type {signed.signature_type}", 401)
    if signed.serial != keys.platform_public_key_id:
        raise NotificationRejected("unknown platform key serial", 401)
    if not v3.within_window(
        signed.timestamp, int(utcnow().timestamp()), settings.notify_timestamp_window_seconds
    ):
        raise NotificationRejected("timestamp outside the accepted window", 401)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotificationRejected("the body is not UTF-8 text") from exc
    if not v3.verify(
        keys.platform_public_key, signed.signature, signed.timestamp, signed.nonce, text
    ):
        raise NotificationRejected("signature verification failed", 401)
    try:
        envelope = json.loads(text)
        resource = v3.decrypt_resource(keys.apiv3_key, envelope["resource"])
        notification_id = str(envelope["id"])
        event_type = str(envelope["event_type"])
    except (ValueError, KeyError, TypeError, v3.ProtocolError) as exc:
        raise NotificationRejected(f"malformed notification: {exc}") from exc
    try:
        facts = _facts(event_type, resource)
    except FactsMismatch as exc:
        raise NotificationRejected(str(exc)) from exc
    return VerifiedNotification(tenant_id, keys.mchid, notification_id, event_type, resource, facts)


def _facts(event_type: str, resource: dict[str, Any]) -> TradeFacts | RefundFacts | None:
    if event_type.startswith("TRANSACTION."):
        return domain.trade_facts_from_resource(resource)
    if event_type.startswith("REFUND."):
        return domain.refund_facts_from_resource(resource)
    return None


# Settling ------------------------------------------------------------------------------------


def settle(session: Session, notification: VerifiedNotification) -> str:
    """Apply a verified notification in ``session``'s write transaction, once: a replay (the
    same notification id) is a "duplicate" and changes nothing. Returns a short outcome."""
    resource = notification.resource
    if not repository.record_notification(
        session,
        {
            "id": new_id("ntf"),
            "tenant_id": notification.tenant_id,
            "notification_id": notification.notification_id[:64],
            "event_type": notification.event_type[:40],
            "out_trade_no": str(resource.get("out_trade_no", ""))[:32] or None,
            "out_refund_no": str(resource.get("out_refund_no", ""))[:64] or None,
            "received_at": utcnow(),
        },
    ):
        return "duplicate"
    facts = notification.facts
    try:
        if isinstance(facts, TradeFacts):
            return _apply_transaction(session, notification, facts)
        if isinstance(facts, RefundFacts):
            return _apply_refund(session, notification, facts)
    except FactsMismatch as exc:
        raise NotificationRejected(str(exc)) from exc
    return "ignored"


def _apply_transaction(
    session: Session, notification: VerifiedNotification, facts: TradeFacts
) -> str:
    order = repository.get_order_by_out_trade_no(
        session, notification.tenant_id, facts.out_trade_no, lock=True
    )
    if order is None:
        raise NotificationRejected(f"unknown out_trade_no {facts.out_trade_no}", 404)
    changed = service.apply_trade_facts(session, notification.mchid, order, facts)
    return "applied" if changed else "unchanged"


def _apply_refund(session: Session, notification: VerifiedNotification, facts: RefundFacts) -> str:
    refund = repository.get_refund_by_out_refund_no(
        session, notification.tenant_id, facts.out_refund_no
    )
    if refund is None:
        raise NotificationRejected(f"unknown out_refund_no {facts.out_refund_no}", 404)
    changed = service.apply_refund_facts(session, notification.mchid, refund, facts)
    return "applied" if changed else "unchanged"
