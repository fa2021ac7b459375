"""Risk rules: pure evaluation, no I/O.

A decision runs in two steps. First the *local* rules look at the signal and at facts the
service loaded (lists, the payment, refunds after rewards). Then the *counter* rules (velocity,
accounts per device or IP, split orders) ask the counter store for their sliding-window values in
one atomic call; the store records the action only when no blocking rule fired, so a blocked
attempt does not use up anybody's allowance. The verdict is the most severe verdict of the
enforced rules that fired, raised to REVIEW when the summed score reaches the review score.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from zanloop.errors import Unprocessable

MAX_SCORE = 100


class Verdict(StrEnum):
    ALLOW = "ALLOW"
    REVIEW = "REVIEW"
    BLOCK = "BLOCK"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Verdict.ALLOW: 0, Verdict.REVIEW: 1, Verdict.BLOCK: 2}


class Subject(StrEnum):
    """What a counter or a list entry is about."""

    USER = "user"
    DEVICE = "device"
    IP = "ip"
    # IPv4 /24 or IPv6 /64: the accounts of one cluster of addresses.
    IP_SUBNET = "ip_subnet"
    PAYMENT_ACCOUNT = "payment_account"


class Mode(StrEnum):
    ENFORCE = "enforce"
    # Fires and is logged, but does not change the verdict: for trying a rule on live traffic.
    MONITOR = "monitor"


@dataclass(frozen=True)
class PaymentFacts:
    """The payment order an action claims to stand on, as the payments area sees it."""

    order_id: str
    status: str
    amount_fen: int
    refunded_fen: int
    payer_openid: str | None


@dataclass(frozen=True)
class Signal:
    """Everything a caller tells ``risk.decide`` about one action."""

    action: str
    user_id: str
    at: datetime
    amount_fen: int = 0
    device_id: str | None = None
    ip: str | None = None
    payment_account: str | None = None
    payment_order_id: str | None = None
    account_created_at: datetime | None = None
    payer_verified: bool | None = None
    context: Mapping[str, Any] = field(default_factory=dict)

    def subject(self, subject: Subject) -> str | None:
        if subject is Subject.USER:
            return self.user_id
        if subject is Subject.DEVICE:
            return self.device_id
        if subject is Subject.IP:
            return self.ip
        if subject is Subject.IP_SUBNET:
            return subnet_of(self.ip) if self.ip else None
        return self.payment_account


def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4-mapped IPv6 address (``::ffff:1.2.3.4``) is the IPv4 address it carries."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def canonical_ip(ip: str) -> str:
    return str(_address(ip))


def signal_fingerprint(signal: Signal) -> str:
    """The caller's description of the action, not the time it was asked."""
    body = json.dumps(
        [
            signal.action,
            signal.user_id,
            signal.amount_fen,
            signal.device_id,
            signal.ip,
            signal.payment_account,
            signal.payment_order_id,
            signal.payer_verified,
            signal.account_created_at.isoformat() if signal.account_created_at else None,
            dict(signal.context),
        ],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


@functools.lru_cache(maxsize=65536)
def subnet_of(ip: str) -> str:
    address = _address(ip)
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@dataclass(frozen=True)
class Reason:
    code: str
    rule_id: str
    verdict: Verdict
    score: int
    message: str
    mode: Mode = Mode.ENFORCE

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "rule_id": self.rule_id,
            "verdict": self.verdict.value,
            "score": self.score,
            "message": self.message,
            "mode": self.mode.value,
        }


BLOCK_LIST = "block"
ALLOW_LIST = "allow"
# Everything its subjects do waits for an analyst (a group fraud finding's "hold").
REVIEW_LIST = "review"
LIST_NAMES = (BLOCK_LIST, ALLOW_LIST, REVIEW_LIST)


@dataclass(frozen=True)
class ListHit:
    list_name: str  # one of LIST_NAMES
    subject: Subject
    value: str
    note: str = ""


@dataclass(frozen=True)
class Facts:
    """What the service loaded for the local rules; a rule only sees what it asked for."""

    listed: tuple[ListHit, ...] = ()
    payment: PaymentFacts | None = None
    # An earlier decision that let the same action stand on the same payment.
    payment_used_by: str | None = None
    refunds_after_reward: int = 0


class CounterKind(StrEnum):
    SUM = "sum"  # adds ``increment`` (1 to count, the amount to sum) per action
    DISTINCT = "distinct"  # distinct ``member`` values (user ids) per subject


@dataclass(frozen=True)
class CounterCheck:
    """One sliding-window counter a rule wants read, and bumped if the action goes ahead."""

    key: str
    kind: CounterKind
    window_seconds: int
    limit: int
    increment: int = 1
    member: str = ""
    blocking: bool = False

    def exceeded_by(self, value: int, already_member: bool = False) -> bool:
        """``value`` is the window's count before this action."""
        if self.kind is CounterKind.DISTINCT:
            return not already_member and value + 1 > self.limit
        return value + self.increment > self.limit


@dataclass(frozen=True)
class CounterReading:
    value: int
    already_member: bool = False


class LocalRule(Protocol):
    @property
    def rule_id(self) -> str: ...

    def check(self, signal: Signal, facts: Facts) -> Reason | None: ...


class CounterRule(Protocol):
    @property
    def rule_id(self) -> str: ...

    def counter(self, tenant_id: str, signal: Signal) -> CounterCheck | None: ...

    def judge(
        self, signal: Signal, check: CounterCheck, reading: CounterReading
    ) -> Reason | None: ...


@dataclass(frozen=True)
class RuleSet:
    """The rules that apply to one action, and which facts they need loaded."""

    local: tuple[LocalRule, ...] = ()
    counters: tuple[CounterRule, ...] = ()
    needs_payment: bool = False
    # The longest window of the refund-after-reward rules: how far back to count refunds.
    refunds_window: timedelta | None = None

    def __len__(self) -> int:
        return len(self.local) + len(self.counters)


@dataclass(frozen=True)
class CompiledPolicy:
    version: int
    review_score: int
    by_action: Mapping[str, RuleSet]
    wildcard: RuleSet = field(default_factory=RuleSet)

    def rules_for(self, action: str) -> RuleSet:
        return self.by_action.get(action, self.wildcard)


@dataclass(frozen=True)
class Plan:
    """The first step of a decision: what the local rules found, and the counters to ask."""

    reasons: tuple[Reason, ...]
    counter_rules: tuple[CounterRule, ...]
    checks: tuple[CounterCheck, ...]

    @property
    def record(self) -> bool:
        """A blocked action is not counted against anybody's allowance."""
        return not blocks(self.reasons)


def plan(rules: RuleSet, tenant_id: str, signal: Signal, facts: Facts) -> Plan:
    allowed = any(hit.list_name == ALLOW_LIST for hit in facts.listed)
    reasons = [
        Reason(
            "blocklisted",
            "blocklist",
            Verdict.BLOCK,
            MAX_SCORE,
            f"{hit.subject.value.replace('_', ' ')} {hit.value} is on the block list"
            + (f" ({hit.note})" if hit.note else ""),
        )
        for hit in facts.listed
        if hit.list_name == BLOCK_LIST
    ]
    reasons += [
        Reason(
            "held_for_review",
            "review_list",
            Verdict.REVIEW,
            MAX_SCORE // 2,
            f"{hit.subject.value.replace('_', ' ')} {hit.value} is held for review"
            + (f" ({hit.note})" if hit.note else ""),
        )
        for hit in facts.listed
        if hit.list_name == REVIEW_LIST
    ]
    for rule in rules.local:
        if allowed and getattr(rule, "suppressible", True):
            continue
        if (reason := rule.check(signal, facts)) is not None:
            reasons.append(reason)
    counter_rules: list[CounterRule] = []
    checks: list[CounterCheck] = []
    for counter_rule in rules.counters:
        if allowed and getattr(counter_rule, "suppressible", True):
            continue
        if (check := counter_rule.counter(tenant_id, signal)) is not None:
            counter_rules.append(counter_rule)
            checks.append(check)
    return Plan(tuple(reasons), tuple(counter_rules), tuple(checks))


def finish(
    plan: Plan,
    signal: Signal,
    readings: Sequence[CounterReading],
    review_score: int,
    extra: Iterable[Reason] = (),
) -> Outcome:
    reasons = list(plan.reasons)
    for rule, check, reading in zip(plan.counter_rules, plan.checks, readings, strict=True):
        if (reason := rule.judge(signal, check, reading)) is not None:
            reasons.append(reason)
    reasons.extend(extra)
    return combine(reasons, review_score)


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    score: int
    reasons: tuple[Reason, ...]


def combine(reasons: Iterable[Reason], review_score: int) -> Outcome:
    """The verdict of the enforced reasons; a high enough score alone asks for a review."""
    fired = tuple(reasons)
    enforced = [r for r in fired if r.mode is Mode.ENFORCE]
    verdict = max((r.verdict for r in enforced), key=_severity, default=Verdict.ALLOW)
    score = min(MAX_SCORE, sum(r.score for r in enforced))
    if verdict is Verdict.ALLOW and enforced and score >= review_score:
        verdict = Verdict.REVIEW
    return Outcome(verdict, score, fired)


def _severity(verdict: Verdict) -> int:
    return verdict.severity


def blocks(reasons: Iterable[Reason]) -> bool:
    return any(r.mode is Mode.ENFORCE and r.verdict is Verdict.BLOCK for r in reasons)


def describe_window(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class ListEntry:
    list_name: str
    subject: Subject
    value: str
    note: str
    expires_at: datetime | None


class ListIndex:
    """A tenant's block and allow lists, indexed for a decision: set look-ups, plus the IP
    ranges, which are few, scanned."""

    def __init__(self, entries: Iterable[ListEntry]) -> None:
        self._exact: dict[tuple[Subject, str], list[ListEntry]] = {}
        self._ranges: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ListEntry]] = []
        expiries = []
        for entry in entries:
            if entry.expires_at is not None:
                expiries.append(entry.expires_at)
            if entry.subject is Subject.IP and "/" in entry.value:
                self._ranges.append((ipaddress.ip_network(entry.value, strict=False), entry))
            else:
                self._exact.setdefault((entry.subject, entry.value), []).append(entry)
        # The index must be rebuilt once the first entry runs out.
        self.valid_until = min(expiries, default=None)

    def match(self, signal: Signal) -> tuple[ListHit, ...]:
        hits: list[ListHit] = []
        for subject in (Subject.USER, Subject.DEVICE, Subject.IP, Subject.PAYMENT_ACCOUNT):
            value = signal.subject(subject)
            if value is None:
                continue
            if subject is Subject.IP:
                value = canonical_ip(value)
            for entry in self._exact.get((subject, value), ()):
                hits.append(ListHit(entry.list_name, subject, value, entry.note))
        if self._ranges and signal.ip:
            raw = ipaddress.ip_address(signal.ip)
            # A mapped address is in the IPv4 ranges of its IPv4 form and in the IPv6 ranges.
            forms = {raw, _address(signal.ip)}
            for network, entry in self._ranges:
                if any(a.version == network.version and a in network for a in forms):
                    hits.append(ListHit(entry.list_name, Subject.IP, entry.value, entry.note))
        return tuple(hits)


def normalise_list_value(subject: Subject, value: str) -> str:
    """The stored form of a list entry; an IP entry is an address or a CIDR range."""
    value = value.strip()
    if not value:
        raise Unprocessable("value may not be empty", field="value")
    if subject is Subject.IP:
        try:
            if "/" in value:
                return str(ipaddress.ip_network(value, strict=False))
            return canonical_ip(value)
        except ValueError:
            raise Unprocessable(
                f"{value!r} is not an IP address or CIDR range", field="value"
            ) from None
    if subject is Subject.IP_SUBNET:
        raise Unprocessable("list an IP range as subject ip with CIDR notation", field="subject")
    return value
