"""The pins catalogue: creators, their content, and the pin policy (tenant-wide, overridden
per creator). Content says whether it accepts paid pins (P1, P9)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from zanloop.errors import DuplicateConflict, FieldError, InvalidDocument, NotFound
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.pins import domain, repository
from zanloop.pins.domain import PinPolicy
from zanloop.pins.tables import Content, Creator

# Creators and content ------------------------------------------------------------------------


def upsert_creator(
    session: Session,
    tenant_id: str,
    external_id: str,
    name: str,
    programmes: list[str],
    policy: dict[str, Any],
) -> Creator:
    if policy:
        domain.effective_policy(tenant_policy_document(session, tenant_id), policy)
    now = utcnow()
    repository.insert_creator(
        session,
        {
            "id": new_id("crt"),
            "tenant_id": tenant_id,
            "external_id": external_id,
            "name": name,
            "programmes": sorted(set(programmes)),
            "policy": policy,
            "created_at": now,
            "updated_at": now,
        },
    )
    creator = repository.creator_by_external(session, tenant_id, external_id, lock=True)
    assert creator is not None
    if (creator.name, creator.programmes, creator.policy) != (
        name,
        sorted(set(programmes)),
        policy,
    ):
        creator.name, creator.programmes, creator.policy = name, sorted(set(programmes)), policy
        creator.updated_at = now
        session.flush()
    return creator


def get_creator(session: Session, tenant_id: str, external_id: str) -> Creator:
    creator = repository.creator_by_external(session, tenant_id, external_id)
    if creator is None:
        raise NotFound(f"creator {external_id} not found")
    return creator


def list_creators(
    session: Session, tenant_id: str, after_id: str | None, limit: int
) -> list[Creator]:
    return repository.list_creators(session, tenant_id, after_id, limit)


@dataclass
class ContentFields:
    creator_external_id: str
    kind: str
    title: str
    pins_enabled: bool = True
    completion_rate: float | None = None
    engagement_rate: float | None = None


def upsert_content(
    session: Session, tenant_id: str, external_id: str, fields: ContentFields
) -> Content:
    creator = get_creator(session, tenant_id, fields.creator_external_id)
    now = utcnow()
    values = {
        "kind": fields.kind,
        "title": fields.title,
        "pins_enabled": fields.pins_enabled,
        "completion_rate": fields.completion_rate,
        "engagement_rate": fields.engagement_rate,
    }
    repository.insert_content(
        session,
        {
            "id": new_id("cnt"),
            "tenant_id": tenant_id,
            "creator_id": creator.id,
            "external_id": external_id,
            "pins_version": 0,
            "created_at": now,
            "updated_at": now,
            **values,
        },
    )
    content = repository.content_by_external(session, tenant_id, external_id, lock=True)
    assert content is not None
    if content.creator_id != creator.id:
        raise DuplicateConflict(f"content {external_id} belongs to another creator")
    if any(getattr(content, k) != v for k, v in values.items()):
        for key, value in values.items():
            setattr(content, key, value)
        content.updated_at = now
        content.pins_version += 1
        session.flush()
    return content


def update_content(
    session: Session, tenant_id: str, external_id: str, changes: dict[str, Any]
) -> Content:
    """Change some fields (quality figures, pins switched on or off)."""
    content = get_content(session, tenant_id, external_id, lock=True)
    for key, value in changes.items():
        setattr(content, key, value)
    content.updated_at = utcnow()
    content.pins_version += 1
    session.flush()
    return content


def get_content(
    session: Session, tenant_id: str, external_id: str, *, lock: bool = False
) -> Content:
    content = repository.content_by_external(session, tenant_id, external_id, lock=lock)
    if content is None:
        raise NotFound(f"content {external_id} not found")
    return content


def list_contents(
    session: Session,
    tenant_id: str,
    creator_external_id: str | None,
    after_id: str | None,
    limit: int,
) -> list[Content]:
    creator_id = (
        get_creator(session, tenant_id, creator_external_id).id if creator_external_id else None
    )
    return repository.list_contents(session, tenant_id, creator_id, after_id, limit)


@dataclass(frozen=True)
class ContentView:
    content: Content
    creator: Creator
    policy: PinPolicy
    quality_score: int | None
    eligibility: domain.Eligibility


def view_content(session: Session, content: Content) -> ContentView:
    creator = repository.creator_by_id(session, content.creator_id)
    assert creator is not None
    policy = policy_for(session, content.tenant_id, creator)
    score = domain.quality_score(content.completion_rate, content.engagement_rate)
    return ContentView(
        content,
        creator,
        policy,
        score,
        domain.eligibility(
            creator.programmes, content.pins_enabled, score, policy.min_quality_score
        ),
    )


# Policy --------------------------------------------------------------------------------------


def tenant_policy_document(session: Session, tenant_id: str) -> dict[str, Any] | None:
    return repository.policy_document(session, tenant_id)


def get_policy(session: Session, tenant_id: str) -> PinPolicy:
    return domain.effective_policy(tenant_policy_document(session, tenant_id), None)


def set_policy(session: Session, tenant_id: str, policy: PinPolicy) -> PinPolicy:
    document = policy.model_dump(mode="json", exclude_unset=False)
    # Every creator's overrides must still make a valid policy on top of the new one.
    for creator in repository.creators_with_policy(session, tenant_id):
        try:
            domain.effective_policy(document, creator.policy)
        except InvalidDocument as exc:
            raise InvalidDocument(
                f"creator {creator.external_id}'s overrides would no longer be valid",
                errors=[
                    FieldError(f"creators.{creator.external_id}.{e.field}", e.message)
                    for e in exc.errors
                ],
            ) from None
    repository.save_policy(session, tenant_id, document, utcnow())
    return get_policy(session, tenant_id)


def policy_for(session: Session, tenant_id: str, creator: Creator) -> PinPolicy:
    return domain.effective_policy(tenant_policy_document(session, tenant_id), creator.policy)
