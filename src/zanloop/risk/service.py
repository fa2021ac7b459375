"""Risk workflows: ``decide`` (R1), the per-tenant policy and lists (R2), explanations.

``decide`` is what every pin, reward and pay-later path calls before it acts. It costs one
small query (the tenant's policy and list versions) plus, only when a rule of the action needs
them, the payment order and the count of refunds after rewards; the compiled policy and the
lists are cached per process and reloaded when their version moves, so a change made through
one API process reaches every other one at its next decision.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.orm import Session

from zanloop.config import Settings
from zanloop.errors import DuplicateConflict, NotFound, RiskBlocked, Unprocessable
from zanloop.kit.clock import utcnow
from zanloop.kit.ids import new_id
from zanloop.ops import metrics
from zanloop.payments import service as payments
from zanloop.risk import domain, policy, repository
from zanloop.risk.counters import CounterStore, CountersUnavailable, commits, store_for
from zanloop.risk.domain import (
    CompiledPolicy,
    Facts,
    ListEntry,
    ListIndex,
    PaymentFacts,
    Reason,
    Signal,
    Subject,
    Verdict,
)
from zanloop.risk.tables import RiskAudit, RiskDecision, RiskListEntry

log = structlog.get_logger(__name__)

REFUND_AFTER_REWARD = "refund_after_reward"
MAX_LIST_ENTRY_LIFE = timedelta(days=3653)
# Decisions whose payment, once refunded, counts as a refund after a reward.
REWARD_ACTIONS = ("reward.grant", "like.create")
SYSTEM = "system"

_store: CounterStore = store_for(None)
_cache_lock = threading.Lock()
_policies: dict[str, CompiledPolicy] = {}
_lists: dict[str, tuple[int, ListIndex]] = {}


def configure(settings: Settings) -> None:
    """Pick the counter store for this process: Redis when ``ZANLOOP_REDIS_URL`` is set."""
    global _store
    _store = store_for(settings.redis_url)
    if not settings.redis_url and not settings.is_sqlite:
        log.warning(
            "risk counters are per process: with several API processes every limit is "
            "multiplied; set ZANLOOP_REDIS_URL to share them"
        )


def now() -> datetime:
    return utcnow()


# Deciding ------------------------------------------------------------------------------------


def decide(
    session: Session,
    tenant_id: str,
    signal: Signal,
    *,
    reference: str | None = None,
    counters: CounterStore | None = None,
) -> RiskDecision:
    """Decide on one action and log it. With a ``reference`` (the caller's id for the action)
    a repeated call returns the first decision and counts nothing twice; the same reference
    with another action body is a DuplicateConflict.

    Counters live outside the database: if the caller's transaction rolls back, or another
    request logged the same reference first, what this decision counted is given back."""
    started = time.perf_counter()
    signal = _canonical(signal)
    fingerprint = domain.signal_fingerprint(signal)
    if reference is not None:
        existing = repository.find_decision(session, tenant_id, signal.action, reference)
        if existing is not None:
            return _replay(existing, fingerprint, reference)
    policy_version, lists_version = repository.versions(session, tenant_id)
    compiled = _policy(session, tenant_id, policy_version)
    rules = compiled.rules_for(signal.action)
    payment = _payment(session, tenant_id, signal.payment_order_id) if rules.needs_payment else None
    facts = Facts(
        listed=list_index(session, tenant_id, lists_version, signal.at).match(signal),
        payment=payment,
        payment_used_by=repository.prior_use(session, tenant_id, payment.order_id, signal.action)
        if payment is not None
        else None,
        refunds_after_reward=repository.count_signals(
            session,
            tenant_id,
            signal.user_id,
            REFUND_AFTER_REWARD,
            signal.at - rules.refunds_window,
        )
        if rules.refunds_window is not None
        else 0,
    )
    plan = domain.plan(rules, tenant_id, signal, facts)
    store = counters if counters is not None else _store
    now = signal.at.timestamp()
    extra: list[Reason] = []
    try:
        readings = store.apply(plan.checks, now, plan.record)
    except CountersUnavailable as exc:
        # Neither let the action through unchecked nor refuse honest users: hold it.
        log.error("risk counters unavailable", error=str(exc))
        readings = [domain.CounterReading(0)] * len(plan.checks)
        extra.append(
            Reason(
                "counters_unavailable",
                SYSTEM,
                Verdict.REVIEW,
                0,
                "the velocity counters could not be read; the action waits for a review",
            )
        )
        recorded = False
    else:
        recorded = commits(plan.checks, readings, plan.record)
    outcome = domain.finish(plan, signal, readings, compiled.review_score, extra)
    decision_id = new_id("rsk")
    row = {
        "id": decision_id,
        "tenant_id": tenant_id,
        "reference": reference,
        "action": signal.action,
        "user_id": signal.user_id,
        "amount_fen": signal.amount_fen,
        "device_id": signal.device_id,
        "ip": signal.ip,
        "payment_account": signal.payment_account,
        # The order's own id, whichever id the caller gave: payment reuse is found by it.
        "payment_order_id": payment.order_id if payment else signal.payment_order_id,
        "verdict": outcome.verdict.value,
        "score": outcome.score,
        "reasons": [r.as_dict() for r in outcome.reasons],
        "context": dict(signal.context),
        "policy_version": compiled.version,
        "rules_evaluated": len(rules),
        "fingerprint": fingerprint,
        "created_at": signal.at,
    }
    give_back = partial(store.release, plan.checks, readings, now) if recorded else None
    if not repository.insert_decision(session, row):
        # The same reference was logged by a concurrent request: that decision stands.
        if give_back is not None:
            give_back()
        existing = repository.find_decision(session, tenant_id, signal.action, str(reference))
        assert existing is not None
        return _replay(existing, fingerprint, str(reference))
    if give_back is not None:
        session.info.setdefault(_RELEASE_ON_ROLLBACK, []).append(give_back)
    metrics.RISK_DECISIONS.labels(signal.action, outcome.verdict.value).inc()
    metrics.RISK_DECIDE_LATENCY.observe(time.perf_counter() - started)
    # The row as logged, without reading it back: a plain object, not attached to the session.
    return RiskDecision(**row)


_RELEASE_ON_ROLLBACK = "risk_counters_to_release"


@event.listens_for(Session, "after_commit")
def _keep_counted(session: Session) -> None:
    session.info.pop(_RELEASE_ON_ROLLBACK, None)


@event.listens_for(Session, "after_rollback")
def _give_back_counted(session: Session) -> None:
    for give_back in session.info.pop(_RELEASE_ON_ROLLBACK, []):
        try:
            give_back()
        except CountersUnavailable as exc:
            log.error("risk counters not given back after a rollback", error=str(exc))


def _canonical(signal: Signal) -> Signal:
    if signal.ip is None:
        return signal
    try:
        return replace(signal, ip=domain.canonical_ip(signal.ip))
    except ValueError:
        raise Unprocessable(f"{signal.ip!r} is not an IP address", field="ip") from None


def _replay(existing: RiskDecision, fingerprint: str, reference: str) -> RiskDecision:
    if existing.fingerprint != fingerprint:
        raise DuplicateConflict(
            f"reference {reference} was already decided for another {existing.action}"
        )
    return existing


def payment_refunded(session: Session, decision: RiskDecision) -> bool:
    payment = _payment(session, decision.tenant_id, decision.payment_order_id)
    return payment is not None and payment.refunded_fen > 0


def decisions_on_payment(
    session: Session, tenant_id: str, payment_refs: list[str]
) -> list[RiskDecision]:
    return repository.decisions_on_payment(session, tenant_id, payment_refs, None)


def require_allowed(decision: RiskDecision) -> None:
    """For callers that cannot hold their effect: anything but ALLOW is refused (403)."""
    if decision.verdict != Verdict.ALLOW.value:
        raise RiskBlocked(
            f"{decision.action} was {decision.verdict.lower()}ed by risk control: "
            + "; ".join(r["message"] for r in decision.reasons if r["mode"] == "enforce"),
            decision_id=decision.id,
            reasons=[r["code"] for r in decision.reasons if r["mode"] == "enforce"],
        )


def _payment(session: Session, tenant_id: str, order_ref: str | None) -> PaymentFacts | None:
    if order_ref is None:
        return None
    try:
        order = payments.get_order(session, tenant_id, order_ref)
    except NotFound:
        try:
            order = payments.find_order(session, tenant_id, order_ref)
        except NotFound:
            return None
    return PaymentFacts(
        order.id,
        order.status,
        order.amount_fen,
        max(order.refunded_fen, order.refund_reserved_fen),
        order.payer_openid,
    )


def get_decision(session: Session, tenant_id: str, decision_id: str) -> RiskDecision:
    decision = repository.get_decision(session, tenant_id, decision_id)
    if decision is None:
        raise NotFound(f"risk decision {decision_id} not found")
    return decision


def list_decisions(
    session: Session,
    tenant_id: str,
    *,
    user_id: str | None = None,
    action: str | None = None,
    verdict: Verdict | None = None,
    before_id: str | None = None,
    limit: int = 50,
) -> list[RiskDecision]:
    return repository.list_decisions(
        session,
        tenant_id,
        user_id=user_id,
        action=action,
        verdicts=[verdict.value] if verdict else [],
        before_id=before_id,
        limit=limit,
    )


# Policy --------------------------------------------------------------------------------------


def _policy(session: Session, tenant_id: str, version: int) -> CompiledPolicy:
    cached = _policies.get(tenant_id)
    if cached is not None and cached.version == version:
        return cached
    row = repository.get_policy(session, tenant_id) if version else None
    document = (
        policy.parse(row.document)
        if row is not None and row.document is not None
        else policy.DEFAULT_DOCUMENT
    )
    compiled = policy.compile_policy(document, version)
    with _cache_lock:
        _policies[tenant_id] = compiled
    return compiled


@dataclass(frozen=True)
class PolicyView:
    version: int
    is_default: bool
    document: policy.PolicyDocument
    updated_at: datetime | None


def get_policy(session: Session, tenant_id: str) -> PolicyView:
    row = repository.get_policy(session, tenant_id)
    if row is None or row.document is None:
        return PolicyView(
            row.version if row else 0,
            True,
            policy.DEFAULT_DOCUMENT,
            row.updated_at if row else None,
        )
    return PolicyView(row.version, False, policy.parse(row.document), row.updated_at)


def set_policy(
    session: Session, tenant_id: str, document: policy.PolicyDocument | None, actor: str
) -> PolicyView:
    """Replace the tenant's policy (None: back to the defaults); the old one is in the audit."""
    before = get_policy(session, tenant_id)
    stored = None if document is None else document.model_dump(mode="json")
    version = repository.save_policy(session, tenant_id, stored)
    audit(
        session,
        tenant_id,
        actor,
        "policy.updated" if document is not None else "policy.reset",
        "policy",
        tenant_id,
        {"version": version, "previous_version": before.version, "rules": _rule_ids(stored)},
    )
    return get_policy(session, tenant_id)


def _rule_ids(document: Mapping[str, Any] | None) -> list[str]:
    source = document if document is not None else policy.DEFAULT_POLICY
    return [rule["id"] for rule in source["rules"]]


# Lists ---------------------------------------------------------------------------------------


def list_index(session: Session, tenant_id: str, version: int, now: datetime) -> ListIndex:
    cached = _lists.get(tenant_id)
    if cached is not None and cached[0] == version:
        valid_until = cached[1].valid_until
        if valid_until is None or now < valid_until:
            return cached[1]
    index = ListIndex(
        ListEntry(e.list_name, Subject(e.subject), e.value, e.note, e.expires_at)
        for e in repository.live_list_entries(session, tenant_id, now)
    )
    with _cache_lock:
        _lists[tenant_id] = (version, index)
    return index


def add_list_entry(
    session: Session,
    tenant_id: str,
    *,
    list_name: str,
    subject: Subject,
    value: str,
    note: str,
    expires_at: datetime | None,
    actor: str,
) -> tuple[RiskListEntry, bool]:
    """Add an entry; adding the same entry again returns it (created=False)."""
    value = domain.normalise_list_value(subject, value)
    if list_name not in domain.LIST_NAMES:
        raise Unprocessable("list is block, allow or review", field="list")
    now = utcnow()
    if expires_at is not None and not now < expires_at <= now + MAX_LIST_ENTRY_LIFE:
        raise Unprocessable(
            "expires_at must be in the future and at most 10 years away", field="expires_at"
        )
    inserted = repository.insert_list_entry(
        session,
        {
            "id": new_id("rle"),
            "tenant_id": tenant_id,
            "list_name": list_name,
            "subject": subject.value,
            "value": value,
            "note": note,
            "expires_at": expires_at,
            "created_by": actor,
            "created_at": now,
        },
    )
    entry = repository.find_list_entry(session, tenant_id, list_name, subject.value, value)
    assert entry is not None
    if not inserted:
        if (entry.note, entry.expires_at) == (note, expires_at):
            return entry, False
        if entry.expires_at is None or entry.expires_at > now:
            raise DuplicateConflict(
                f"{subject.value} {value} is already on the {list_name} list with other details"
            )
        # An entry that ran out is renewed with the new details.
        entry.note, entry.expires_at, entry.created_by, entry.created_at = (
            note,
            expires_at,
            actor,
            now,
        )
        session.flush()
    repository.bump_lists_version(session, tenant_id)
    audit(
        session,
        tenant_id,
        actor,
        "list.added" if inserted else "list.renewed",
        "list_entry",
        entry.id,
        {"list": list_name, "subject": subject.value, "value": value, "note": note},
    )
    return entry, True


def remove_list_entry(session: Session, tenant_id: str, entry_id: str, actor: str) -> None:
    entry = repository.get_list_entry(session, tenant_id, entry_id)
    if entry is None:
        raise NotFound(f"list entry {entry_id} not found")
    repository.delete_list_entry(session, entry)
    repository.bump_lists_version(session, tenant_id)
    audit(
        session,
        tenant_id,
        actor,
        "list.removed",
        "list_entry",
        entry.id,
        {"list": entry.list_name, "subject": entry.subject, "value": entry.value},
    )


def list_entries(
    session: Session, tenant_id: str, list_name: str | None, after_id: str | None, limit: int
) -> list[RiskListEntry]:
    return repository.list_entries(session, tenant_id, list_name, after_id, limit)


# Audit ---------------------------------------------------------------------------------------


def audit(
    session: Session,
    tenant_id: str,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    detail: dict[str, Any],
) -> None:
    repository.add(
        session,
        RiskAudit(
            id=new_id("aud"),
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            detail=detail,
            created_at=utcnow(),
        ),
    )


def list_audit(
    session: Session, tenant_id: str, subject_id: str | None, before_id: str | None, limit: int
) -> list[RiskAudit]:
    return repository.list_audit(session, tenant_id, subject_id, before_id, limit)


# Signals -------------------------------------------------------------------------------------


def record_refund_after_reward(
    session: Session, tenant_id: str, payment_refs: list[str], at: datetime
) -> list[RiskDecision]:
    """A payment that earned a reward was refunded: remember it against the user. Returns the
    reward decisions that stood on the payment."""
    rewarded = [
        d
        for d in repository.decisions_on_payment(session, tenant_id, payment_refs, REWARD_ACTIONS)
        if d.verdict != Verdict.BLOCK.value
    ]
    for user_id in {d.user_id for d in rewarded}:
        repository.insert_signal(
            session,
            {
                "tenant_id": tenant_id,
                "user_id": user_id,
                "kind": REFUND_AFTER_REWARD,
                "ref": f"{payment_refs[0]}:{user_id}",
                "created_at": at,
            },
        )
    return rewarded


def sightings(
    session: Session, tenant_id: str, since: datetime, until: datetime
) -> Sequence[tuple[str, str | None, str | None, datetime]]:
    """Which device and address each user's decided actions came from, for group detection."""
    return repository.sightings(session, tenant_id, since, until)
