"""Tenants and API keys: create, authenticate, revoke."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from zanloop import events
from zanloop.errors import NotFound, Unauthorized
from zanloop.kit.ids import new_id
from zanloop.tenancy import domain, repository
from zanloop.tenancy.domain import Principal, Scope, TenantKind, generate_key, hash_key
from zanloop.tenancy.tables import ApiKey, Tenant


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    plaintext: str


def create_tenant(
    session: Session,
    name: str,
    kind: TenantKind = TenantKind.MERCHANT,
    parent_id: str | None = None,
    key_scopes: tuple[Scope, ...] = (Scope.ADMIN,),
) -> tuple[Tenant, IssuedKey]:
    if parent_id is not None and repository.get_tenant(session, parent_id) is None:
        raise NotFound(f"parent tenant {parent_id} does not exist")
    tenant = Tenant(id=new_id("ten"), name=name, kind=kind.value, parent_id=parent_id)
    session.add(tenant)
    session.flush()
    issued = create_key(session, tenant.id, name="initial admin key", scopes=key_scopes)
    events.publish(
        session,
        events.Event("tenant.created", tenant.id, {"tenant_id": tenant.id}, public=False),
    )
    return tenant, issued


def create_key(
    session: Session,
    tenant_id: str,
    name: str,
    scopes: tuple[Scope, ...] | list[Scope],
    creator_id: str | None = None,
) -> IssuedKey:
    domain.check_creator_binding(set(scopes), creator_id)
    new = generate_key()
    key = ApiKey(
        id=new_id("key"),
        tenant_id=tenant_id,
        name=name,
        prefix=new.prefix,
        key_hash=new.key_hash,
        scopes=sorted({s.value for s in scopes}),
        creator_id=creator_id,
    )
    session.add(key)
    session.flush()
    return IssuedKey(key=key, plaintext=new.plaintext)


def authenticate(session: Session, plaintext: str) -> Principal:
    key = repository.find_active_key(session, hash_key(plaintext))
    if key is None:
        raise Unauthorized("unknown or revoked API key")
    return Principal(
        tenant_id=key.tenant_id,
        key_id=key.id,
        scopes=frozenset(Scope(s) for s in key.scopes),
        creator_id=key.creator_id,
    )


def list_keys(session: Session, tenant_id: str) -> list[ApiKey]:
    return repository.list_keys(session, tenant_id)


def revoke_key(session: Session, tenant_id: str, key_id: str) -> None:
    if not repository.revoke_key(session, tenant_id, key_id):
        raise NotFound(f"API key {key_id} not found")


def get_tenant(session: Session, tenant_id: str) -> Tenant:
    tenant = repository.get_tenant(session, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    return repository.list_tenants(session)


def has_any_tenant(session: Session) -> bool:
    return repository.count_tenants(session) > 0
