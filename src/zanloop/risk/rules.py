"""The rule kinds a policy is compiled into: pure objects, built once per policy version.

Local rules answer from the signal and the loaded facts; counter rules name a sliding-window
counter and judge its reading. ``suppressible`` rules are skipped for allow-listed callers;
the checks of facts (blocked, real name, verified payment) never are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from zanloop.kit.money import format_fen
from zanloop.risk.domain import (
    CounterCheck,
    CounterKind,
    CounterReading,
    Facts,
    Mode,
    Reason,
    Signal,
    Subject,
    Verdict,
    describe_window,
)

PAID = "SUCCESS"


@dataclass(frozen=True)
class RuleBase:
    rule_id: str
    verdict: Verdict
    score: int
    mode: Mode

    suppressible = True

    def reason(self, code: str, message: str) -> Reason:
        return Reason(code, self.rule_id, self.verdict, self.score, message, self.mode)

    @property
    def blocking(self) -> bool:
        return self.mode is Mode.ENFORCE and self.verdict is Verdict.BLOCK


def counter_key(tenant_id: str, rule_id: str, window_seconds: int, value: str) -> str:
    # The tenant in braces is a Redis Cluster hash tag: one decision's keys share a slot.
    return f"zl:risk:{{{tenant_id}}}:{rule_id}:{window_seconds}:{value}"


# Local rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AmountLimit(RuleBase):
    max_amount_fen: int

    def check(self, signal: Signal, facts: Facts) -> Reason | None:
        if signal.amount_fen <= self.max_amount_fen:
            return None
        return self.reason(
            "amount_too_large",
            f"{format_fen(signal.amount_fen)} is above the {format_fen(self.max_amount_fen)} "
            f"limit for {signal.action}",
        )


@dataclass(frozen=True)
class NewAccount(RuleBase):
    min_age: timedelta
    # Young accounts may still act up to this amount; None: any amount fires.
    max_amount_fen: int | None
    unknown_is_new: bool

    def check(self, signal: Signal, facts: Facts) -> Reason | None:
        if self.max_amount_fen is not None and signal.amount_fen <= self.max_amount_fen:
            return None
        created = signal.account_created_at
        if created is None:
            if not self.unknown_is_new:
                return None
            age_text = "of unknown age"
        else:
            age = signal.at - created
            if age >= self.min_age:
                return None
            age_text = f"{_age(age)} old"
        limit = "" if self.max_amount_fen is None else f" above {format_fen(self.max_amount_fen)}"
        return self.reason(
            "new_account",
            f"account {signal.user_id} is {age_text}; {signal.action}{limit} needs an account "
            f"at least {describe_window(int(self.min_age.total_seconds()))} old",
        )


def _age(age: timedelta) -> str:
    seconds = max(0, int(age.total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


@dataclass(frozen=True)
class RealName(RuleBase):
    suppressible = False

    def check(self, signal: Signal, facts: Facts) -> Reason | None:
        if signal.payment_account and signal.payer_verified:
            return None
        missing = "no bound payment account" if not signal.payment_account else "not verified"
        return self.reason(
            "real_name_required",
            f"{signal.action} needs a bound, real-name verified payer ({missing})",
        )


@dataclass(frozen=True)
class VerifiedPayment(RuleBase):
    suppressible = False

    def check(self, signal: Signal, facts: Facts) -> Reason | None:
        if signal.payment_order_id is None:
            return self.reason(
                "payment_missing", f"{signal.action} must stand on a completed payment"
            )
        payment = facts.payment
        if payment is None:
            return self.reason(
                "payment_not_found", f"payment order {signal.payment_order_id} does not exist"
            )
        if payment.refunded_fen > 0:
            return self.reason(
                "payment_refunded",
                f"payment order {payment.order_id} was refunded "
                f"({format_fen(payment.refunded_fen)})",
            )
        if payment.status != PAID:
            return self.reason(
                "payment_not_completed",
                f"payment order {payment.order_id} is {payment.status}, not paid",
            )
        if signal.amount_fen != payment.amount_fen:
            return self.reason(
                "payment_amount_mismatch",
                f"the action claims {format_fen(signal.amount_fen)} but payment order "
                f"{payment.order_id} paid {format_fen(payment.amount_fen)}",
            )
        if signal.payment_account != payment.payer_openid:
            return self.reason(
                "payer_mismatch",
                f"payment order {payment.order_id} was paid by another payment account"
                if signal.payment_account
                else f"the action names no payment account; it must be the payer of order "
                f"{payment.order_id}",
            )
        if facts.payment_used_by is not None:
            return self.reason(
                "payment_reused",
                f"payment order {payment.order_id} already stands behind {signal.action} "
                f"(decision {facts.payment_used_by})",
            )
        return None


@dataclass(frozen=True)
class RefundAfterReward(RuleBase):
    window: timedelta
    max_refunds: int

    def check(self, signal: Signal, facts: Facts) -> Reason | None:
        if facts.refunds_after_reward < self.max_refunds:
            return None
        return self.reason(
            "refund_after_reward",
            f"user {signal.user_id} refunded {facts.refunds_after_reward} rewarded payment(s) "
            f"in {describe_window(int(self.window.total_seconds()))} "
            f"(limit {self.max_refunds - 1})",
        )


# Counter rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Velocity(RuleBase):
    subject: Subject
    window_seconds: int
    max_count: int | None
    max_sum_fen: int | None

    def counter(self, tenant_id: str, signal: Signal) -> CounterCheck | None:
        value = signal.subject(self.subject)
        if value is None:
            return None
        by_sum = self.max_sum_fen is not None
        if by_sum and signal.amount_fen <= 0:
            return None
        limit = self.max_sum_fen if self.max_sum_fen is not None else self.max_count
        assert limit is not None
        return CounterCheck(
            counter_key(tenant_id, self.rule_id, self.window_seconds, value),
            CounterKind.SUM,
            self.window_seconds,
            limit,
            increment=signal.amount_fen if by_sum else 1,
            blocking=self.blocking,
        )

    def judge(self, signal: Signal, check: CounterCheck, reading: CounterReading) -> Reason | None:
        if not check.exceeded_by(reading.value):
            return None
        window = describe_window(self.window_seconds)
        who = f"{self.subject.value.replace('_', ' ')} {signal.subject(self.subject)}"
        if self.max_sum_fen is not None:
            return self.reason(
                "velocity_amount",
                f"{who} would reach {format_fen(reading.value + check.increment)} of "
                f"{signal.action} in {window} (limit {format_fen(check.limit)})",
            )
        return self.reason(
            "velocity_count",
            f"{who} would make {reading.value + 1} {signal.action} in {window} "
            f"(limit {check.limit})",
        )


@dataclass(frozen=True)
class DistinctUsers(RuleBase):
    subject: Subject
    window_seconds: int
    max_users: int

    def counter(self, tenant_id: str, signal: Signal) -> CounterCheck | None:
        value = signal.subject(self.subject)
        if value is None:
            return None
        return CounterCheck(
            counter_key(tenant_id, self.rule_id, self.window_seconds, value),
            CounterKind.DISTINCT,
            self.window_seconds,
            self.max_users,
            member=signal.user_id,
            blocking=self.blocking,
        )

    def judge(self, signal: Signal, check: CounterCheck, reading: CounterReading) -> Reason | None:
        if not check.exceeded_by(reading.value, reading.already_member):
            return None
        return self.reason(
            "too_many_accounts",
            f"{self.subject.value.replace('_', ' ')} {signal.subject(self.subject)} would be "
            f"used by {reading.value + 1} accounts in {describe_window(self.window_seconds)} "
            f"(limit {self.max_users})",
        )


@dataclass(frozen=True)
class SplitOrder(RuleBase):
    """Payments landing just above a reward threshold, again and again: one purchase split in
    several to collect the reward several times."""

    subject: Subject
    window_seconds: int
    threshold_fen: int | None
    margin_percent: int
    max_near_threshold: int

    def threshold(self, signal: Signal) -> int | None:
        given = signal.context.get("reward_threshold_fen")
        if isinstance(given, int) and not isinstance(given, bool) and given > 0:
            return given
        return self.threshold_fen

    def counter(self, tenant_id: str, signal: Signal) -> CounterCheck | None:
        threshold = self.threshold(signal)
        value = signal.subject(self.subject)
        if threshold is None or value is None:
            return None
        ceiling = threshold + threshold * self.margin_percent // 100
        if not threshold <= signal.amount_fen <= ceiling:
            return None
        return CounterCheck(
            counter_key(tenant_id, self.rule_id, self.window_seconds, value),
            CounterKind.SUM,
            self.window_seconds,
            self.max_near_threshold,
            blocking=self.blocking,
        )

    def judge(self, signal: Signal, check: CounterCheck, reading: CounterReading) -> Reason | None:
        if not check.exceeded_by(reading.value):
            return None
        threshold = self.threshold(signal)
        assert threshold is not None
        return self.reason(
            "split_order",
            f"{reading.value + 1} payments within {self.margin_percent}% above the "
            f"{format_fen(threshold)} reward threshold in {describe_window(self.window_seconds)} "
            f"(limit {check.limit})",
        )


LOCAL = (AmountLimit, NewAccount, RealName, VerifiedPayment, RefundAfterReward)
COUNTERS = (Velocity, DistinctUsers, SplitOrder)
