"""Bind and unbind payment accounts. Binding the same account again changes nothing; binding a
different one needs an unbind first, so an account is never swapped silently under a user."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from zanloop.bindings import repository
from zanloop.bindings.tables import PayerBinding, PayerBindingEvent
from zanloop.errors import DuplicateConflict, NotFound, PayerNotBound
from zanloop.kit.clock import utcnow


@dataclass(frozen=True)
class Payer:
    """What a paying feature needs to know about the user's payment account."""

    user_id: str
    openid: str
    real_name_verified: bool


def bind(
    session: Session, tenant_id: str, user_id: str, openid: str, real_name_verified: bool
) -> PayerBinding:
    repository.ensure(session, tenant_id, user_id)
    binding = repository.get(session, tenant_id, user_id, lock=True)
    assert binding is not None
    if binding.openid == openid:
        if binding.real_name_verified != real_name_verified:
            binding.real_name_verified = real_name_verified
            binding.updated_at = utcnow()
            session.flush()
        return binding
    if binding.openid is not None:
        raise DuplicateConflict(
            f"user {user_id} is bound to another payment account; unbind it first"
        )
    now = utcnow()
    binding.openid = openid
    binding.real_name_verified = real_name_verified
    binding.bound_at = now
    binding.updated_at = now
    repository.add_event(
        session,
        PayerBindingEvent(
            tenant_id=tenant_id, user_id=user_id, action="bind", openid=openid, created_at=now
        ),
    )
    return binding


def unbind(session: Session, tenant_id: str, user_id: str) -> None:
    binding = repository.get(session, tenant_id, user_id, lock=True)
    if binding is None or binding.openid is None:
        return  # unbinding twice is fine
    now = utcnow()
    repository.add_event(
        session,
        PayerBindingEvent(
            tenant_id=tenant_id,
            user_id=user_id,
            action="unbind",
            openid=binding.openid,
            created_at=now,
        ),
    )
    binding.openid = None
    binding.real_name_verified = False
    binding.bound_at = None
    binding.updated_at = now
    session.flush()


def get(session: Session, tenant_id: str, user_id: str) -> PayerBinding:
    binding = repository.get(session, tenant_id, user_id)
    if binding is None or binding.openid is None:
        raise NotFound(f"user {user_id} has no payment account bound")
    return binding


def require_payer(session: Session, tenant_id: str, user_id: str) -> Payer:
    """The bound payer of ``user_id``, or PayerNotBound (409): paying needs a binding."""
    binding = repository.get(session, tenant_id, user_id)
    if binding is None or binding.openid is None:
        raise PayerNotBound(f"user {user_id} must bind a payment account before paying")
    return Payer(user_id, binding.openid, binding.real_name_verified)


def history(session: Session, tenant_id: str, user_id: str) -> list[PayerBindingEvent]:
    return repository.history(session, tenant_id, user_id)
