"""Setting up the points programme: the programme row and its settings, the points rules and
tasks (parsed, created, changed, listed), and the seed programme installed as defaults. Everything
here is the operator's configuration and touches no member, lot or ledger account: members,
claw-back and the scheduled work read it, and it imports none of them."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from zanloop.errors import FieldError, InvalidDocument, NotFound
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.loyalty import domain, repository
from zanloop.loyalty.domain import RuleStatus, Settings
from zanloop.loyalty.tables import LoyaltyProgramme, LoyaltyRule, LoyaltyTask
from zanloop.rules.domain import LOYALTY_EFFECTS, RuleDocument

_TASK = TypeAdapter(domain.TaskDocument)
# Effects a points rule may have: points, and multipliers of points.
_POINT_EFFECTS = ("grant_points", *LOYALTY_EFFECTS)


def _invalid(message: str, where: str, exc: ValidationError) -> InvalidDocument:
    return InvalidDocument(
        message,
        errors=[
            FieldError(".".join([where, *(str(p) for p in err["loc"])]), err["msg"])
            for err in exc.errors()
        ],
    )


# Programme -----------------------------------------------------------------------------------


def programme(session: Session, tenant_id: str) -> LoyaltyProgramme:
    """The tenant's programme, opened with the default settings on first use."""
    found = repository.get_programme(session, tenant_id)
    if found is not None:
        return found
    now = utcnow()
    repository.insert_programme(
        session,
        {
            "tenant_id": tenant_id,
            "settings": Settings().model_dump(mode="json"),
            "rules_version": 1,
            "receipt_secret": secrets.token_hex(32),
            "created_at": now,
            "updated_at": now,
        },
    )
    found = repository.get_programme(session, tenant_id)
    assert found is not None
    return found


def find_programme(session: Session, tenant_id: str) -> LoyaltyProgramme | None:
    return repository.get_programme(session, tenant_id)


def settings(session: Session, tenant_id: str) -> Settings:
    """The programme's settings (the defaults if it was never opened)."""
    row = repository.get_programme(session, tenant_id)
    return Settings.model_validate(row.settings) if row is not None else Settings()


def put_settings(session: Session, tenant_id: str, raw: Any) -> LoyaltyProgramme:
    try:
        parsed = Settings.model_validate(raw)
    except ValidationError as exc:
        raise _invalid("the programme settings are not valid", "settings", exc) from exc
    row = programme(session, tenant_id)
    row.settings = parsed.model_dump(mode="json")
    row.rules_version += 1  # the compiled programme carries the settings too
    row.updated_at = utcnow()
    session.flush()
    return row


# Rules and tasks -----------------------------------------------------------------------------


def parse_rule(raw: Any, where: str = "rule") -> RuleDocument:
    try:
        document = RuleDocument.model_validate(raw)
    except ValidationError as exc:
        raise _invalid("the points rule is not valid", where, exc) from exc
    problems = [
        FieldError(f"{where}.effects.{i}", f"{e.type} is not a points effect")
        for i, e in enumerate(document.effects)
        if e.type not in _POINT_EFFECTS
    ]
    if problems:
        raise InvalidDocument("the points rule is not valid", errors=problems)
    return document


def create_rule(
    session: Session, tenant_id: str, name: str, raw: Any, status: RuleStatus
) -> LoyaltyRule:
    document = parse_rule(raw)
    programme(session, tenant_id)
    now = utcnow()
    row = LoyaltyRule(
        id=new_id("lrl"),
        tenant_id=tenant_id,
        name=name,
        status=status.value,
        document=document.model_dump(mode="json"),
        version=1,
        created_at=now,
        updated_at=now,
    )
    repository.add(session, row)
    repository.bump_rules_version(session, tenant_id, now)
    return row


def get_rule(session: Session, tenant_id: str, rule_id: str) -> LoyaltyRule:
    row = repository.get_rule(session, tenant_id, rule_id)
    if row is None:
        raise NotFound(f"points rule {rule_id} not found")
    return row


def update_rule(
    session: Session,
    tenant_id: str,
    rule_id: str,
    *,
    name: str | None,
    raw: Any | None,
    status: RuleStatus | None,
) -> LoyaltyRule:
    row = get_rule(session, tenant_id, rule_id)
    if raw is not None:
        row.document = parse_rule(raw).model_dump(mode="json")
        row.version += 1
    if name is not None:
        row.name = name
    if status is not None:
        row.status = status.value
    row.updated_at = utcnow()
    session.flush()
    repository.bump_rules_version(session, tenant_id, row.updated_at)
    return row


def list_rules(session: Session, tenant_id: str) -> list[LoyaltyRule]:
    return repository.list_rules(session, tenant_id)


def parse_task(
    raw: Any, where: str = "task"
) -> domain.StreakTask | domain.AchievementTask | domain.CountTask:
    try:
        return _TASK.validate_python(raw)
    except ValidationError as exc:
        raise _invalid("the task is not valid", where, exc) from exc


def create_task(
    session: Session, tenant_id: str, name: str, raw: Any, status: RuleStatus
) -> LoyaltyTask:
    document = parse_task(raw)
    programme(session, tenant_id)
    now = utcnow()
    row = LoyaltyTask(
        id=new_id("ltk"),
        tenant_id=tenant_id,
        name=name,
        status=status.value,
        document=document.model_dump(mode="json"),
        created_at=now,
        updated_at=now,
    )
    repository.add(session, row)
    repository.bump_rules_version(session, tenant_id, now)
    return row


def get_task(session: Session, tenant_id: str, task_id: str) -> LoyaltyTask:
    row = repository.get_task(session, tenant_id, task_id)
    if row is None:
        raise NotFound(f"task {task_id} not found")
    return row


def update_task(
    session: Session, tenant_id: str, task_id: str, *, name: str | None, status: RuleStatus | None
) -> LoyaltyTask:
    """A task's terms are fixed once members make progress on it; pause it and add another."""
    row = get_task(session, tenant_id, task_id)
    if name is not None:
        row.name = name
    if status is not None:
        row.status = status.value
    row.updated_at = utcnow()
    session.flush()
    repository.bump_rules_version(session, tenant_id, row.updated_at)
    return row


def list_tasks(session: Session, tenant_id: str) -> list[LoyaltyTask]:
    return repository.list_tasks(session, tenant_id)


# Defaults ------------------------------------------------------------------------------------


def _rule(
    trigger: str,
    effect: dict[str, Any],
    conditions: Sequence[dict[str, Any]] = (),
    per_day: int | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {"trigger": trigger, "effects": [effect]}
    if conditions:
        document["conditions"] = list(conditions)
    if per_day is not None:
        document["caps"] = {"per_user_per_day": per_day}
    return document


def default_rules(
    partner_stores: Iterable[str] = (),
    double_points: tuple[datetime, datetime] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """The seed article's programme (L1), as rules: name and document."""
    pay = domain.PAYMENT_TRIGGER
    per_yuan = {"type": "earn_per_yuan", "points_per_yuan": "1"}
    double = {"type": "multiply_points", "factor": "2"}

    def points(n: int) -> dict[str, Any]:
        return {"type": "grant_points", "points": n}

    rules: list[tuple[str, dict[str, Any]]] = [
        ("1 point a yuan", _rule(pay, per_yuan)),
        (
            "+50 for a payment of 100 CNY or more",
            _rule(pay, points(50), [{"type": "amount_gte", "fen": 10000}]),
        ),
        ("Birthday: double points", _rule(pay, double, [{"type": "birthday"}])),
        ("Invite a friend: 20 each", _rule("invite.accepted", {**points(20), "to": "both"})),
        ("Daily share: 5", _rule("share.created", points(5), per_day=1)),
        ("Comment: 2", _rule("comment.created", points(2), per_day=5)),
        ("Like: 2", _rule("like.created", points(2), per_day=5)),
        (
            "Read a whole article: 15",
            _rule("article.read", points(15), [{"type": "value_gte", "value": 100}], 3),
        ),
        (
            "Watch 30 seconds: 10",
            _rule("video.watched", points(10), [{"type": "value_gte", "value": 30}], 3),
        ),
        ("Watch to the end: +20", _rule("video.completed", points(20), per_day=3)),
        ("Store check-in: 5", _rule("store.checkin", points(5), per_day=1)),
        ("Receipt QR: 1 point a yuan", _rule(domain.RECEIPT_TRIGGER, per_yuan)),
    ]
    stores = sorted(set(partner_stores))
    if stores:
        rules.append(
            (
                "Partner merchants: double points",
                _rule(pay, double, [{"type": "store_in", "values": stores}]),
            )
        )
    if double_points is not None:
        window = {
            "type": "date_range",
            "start": double_points[0].isoformat(),
            "end": double_points[1].isoformat(),
        }
        rules.append(("Limited-time event: double points", _rule(pay, double, [window])))
    return rules


def default_tasks() -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "Check in 7 days in a row: 200",
            {"type": "streak", "trigger": "store.checkin", "days": 7, "points": 200},
        ),
        (
            "Try everything once: 500",
            {
                "type": "achievement",
                "points": 500,
                "actions": [
                    "payment.succeeded",
                    "share.created",
                    "comment.created",
                    "article.read",
                    "video.completed",
                ],
            },
        ),
    ]


def install_defaults(
    session: Session,
    tenant_id: str,
    *,
    activate: bool,
    partner_stores: Iterable[str] = (),
    double_points: tuple[datetime, datetime] | None = None,
) -> tuple[list[LoyaltyRule], list[LoyaltyTask]]:
    status = RuleStatus.ACTIVE if activate else RuleStatus.PAUSED
    # The rules count their days (caps, birthdays) in the programme's own time zone.
    zone = settings(session, tenant_id).timezone
    rules = [
        create_rule(session, tenant_id, name, {**doc, "timezone": zone}, status)
        for name, doc in default_rules(partner_stores, double_points)
    ]
    tasks = [create_task(session, tenant_id, name, doc, status) for name, doc in default_tasks()]
    return rules, tasks
