"""Risk workflows in process, as the pins, campaign and loyalty services call them."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from tests.conftest import TenantHandle
from zanloop.db import Database
from zanloop.errors import InvalidState, RiskBlocked, Unprocessable
from zanloop.kit.clock import utcnow
from zanloop.kit.money import Asset
from zanloop.ledger import service as ledger
from zanloop.ledger.domain import two_party
from zanloop.risk import policy, reviews, service
from zanloop.risk.counters import CountersUnavailable, MemoryCounterStore
from zanloop.risk.domain import CounterReading, Signal

HOLD_BIG = policy.parse(
    {
        "rules": [
            {
                "id": "big",
                "type": "amount_limit",
                "actions": ["reward.grant"],
                "max_amount_fen": 100,
                "verdict": "REVIEW",
            }
        ]
    }
)


class DownStore:
    """A counter store whose Redis is unreachable."""

    def apply(self, checks: object, now: float, record: bool) -> list[CounterReading]:
        raise CountersUnavailable("connection refused")


@pytest.fixture
def tenant_id(db: Database, make_tenant: Callable[..., TenantHandle]) -> str:
    tenant = make_tenant()
    with db.session() as session:
        service.set_policy(session, tenant.id, HOLD_BIG, "test")
        ledger.open_account(session, tenant.id, "issuer", Asset.POINTS, overdraft_allowed=True)
        ledger.post(
            session,
            tenant.id,
            two_party("fund", Asset.POINTS, "issuer", "merchant", 10_000, from_overdraft=True),
        )
    return tenant.id


def _review(db: Database, tenant_id: str, user: str, points: int) -> str:
    with db.session() as session:
        decision = service.decide(
            session, tenant_id, Signal("reward.grant", user, utcnow(), amount_fen=500)
        )
        review = reviews.hold_for_review(
            session, decision, reviews.HoldSpec(Asset.POINTS, "merchant", user, points)
        )
        return review.id


def test_concurrent_approve_and_reject_settle_the_hold_once(db: Database, tenant_id: str) -> None:
    review_id = _review(db, tenant_id, "u1", 300)

    def resolve(approve: bool) -> str:
        with db.session() as session:
            try:
                act = reviews.approve if approve else reviews.reject
                return act(session, tenant_id, review_id, "analyst").status
            except InvalidState:
                return "refused"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(resolve, [True, False]))

    assert outcomes in (["APPROVED", "refused"], ["REJECTED", "refused"])
    with db.read_session() as session:
        merchant = ledger.balance(session, tenant_id, "merchant", Asset.POINTS)
        user = ledger.balance(session, tenant_id, "u1", Asset.POINTS)
    moved = 300 if "APPROVED" in outcomes else 0
    assert (merchant.balance, merchant.pending_out, user.balance) == (10_000 - moved, 0, moved)


def test_a_reference_decides_once_even_when_asked_again(db: Database, tenant_id: str) -> None:
    store = MemoryCounterStore()
    with db.session() as session:
        first = service.decide(
            session,
            tenant_id,
            Signal("like.prompt", "u2", utcnow()),
            reference="pay_1",
            counters=store,
        )
        again = service.decide(
            session,
            tenant_id,
            Signal("like.prompt", "u2", utcnow()),
            reference="pay_1",
            counters=store,
        )
    assert first.id == again.id


def test_a_decision_that_cannot_reach_its_counters_is_held_for_review(
    db: Database, make_tenant: Callable[..., TenantHandle]
) -> None:
    tenant = make_tenant()  # default policy: pins have velocity rules
    with db.session() as session:
        decision = service.decide(
            session,
            tenant.id,
            Signal(
                "pin.purchase",
                "u3",
                utcnow(),
                amount_fen=100,
                device_id="d",
                payment_account="o",
                payer_verified=True,
            ),
            counters=DownStore(),  # type: ignore[arg-type]
        )
    assert decision.verdict == "REVIEW"
    assert [r["code"] for r in decision.reasons] == ["counters_unavailable"]


def test_require_allowed_refuses_anything_but_allow_with_the_reasons(
    db: Database, tenant_id: str
) -> None:
    with db.session() as session:
        held = service.decide(session, tenant_id, Signal("reward.grant", "u4", utcnow(), 500))
        allowed = service.decide(session, tenant_id, Signal("reward.grant", "u4", utcnow(), 50))

    service.require_allowed(allowed)
    with pytest.raises(RiskBlocked) as refused:
        service.require_allowed(held)
    assert refused.value.extensions == {"decision_id": held.id, "reasons": ["amount_too_large"]}


def test_a_new_account_is_judged_by_its_age_at_the_decision(
    db: Database, make_tenant: Callable[..., TenantHandle]
) -> None:
    tenant = make_tenant()
    now = utcnow()
    young, old = now - timedelta(hours=2), now - timedelta(days=3)

    def verdict(created: object) -> str:
        with db.session() as session:
            return service.decide(
                session,
                tenant.id,
                Signal(
                    "paylater.create",
                    f"user-{created}",
                    now,
                    amount_fen=9900,
                    payment_account="o",
                    payer_verified=True,
                    account_created_at=created,  # type: ignore[arg-type]
                ),
            ).verdict

    assert verdict(young) == "REVIEW"
    assert verdict(old) == "ALLOW"


def test_weak_signals_that_only_add_scores_together_ask_for_a_review(
    db: Database, make_tenant: Callable[..., TenantHandle]
) -> None:
    # given: two score-only rules, each alone below the review score
    tenant = make_tenant()
    weak = {"type": "amount_limit", "actions": ["checkin"], "verdict": "ALLOW", "score": 40}
    document = policy.parse(
        {
            "review_score": 60,
            "rules": [
                {**weak, "id": "above-10", "max_amount_fen": 1000},
                {**weak, "id": "above-50", "max_amount_fen": 5000},
            ],
        }
    )
    with db.session() as session:
        service.set_policy(session, tenant.id, document, "test")

        def decide(amount_fen: int) -> tuple[str, int]:
            d = service.decide(session, tenant.id, Signal("checkin", "w", utcnow(), amount_fen))
            return d.verdict, d.score

        # then
        assert decide(500) == ("ALLOW", 0)
        assert decide(2000) == ("ALLOW", 40)
        assert decide(9000) == ("REVIEW", 80)


def test_counters_are_given_back_when_the_transaction_rolls_back(
    db: Database, make_tenant: Callable[..., TenantHandle]
) -> None:
    tenant = make_tenant()
    store = MemoryCounterStore()
    signal = Signal("like.prompt", "rolled-back", utcnow())

    def decide_then_fail() -> None:
        with db.session() as session:
            service.decide(session, tenant.id, signal, counters=store)
            raise RuntimeError("the caller's work failed")

    # when: three decisions whose transactions fail afterwards
    for _ in range(3):
        with pytest.raises(RuntimeError):
            decide_then_fail()

    # then: the daily allowance of three prompts is untouched
    with db.session() as session:
        verdicts = [
            service.decide(session, tenant.id, signal, counters=store).verdict for _ in range(4)
        ]
    assert verdicts == ["ALLOW", "ALLOW", "ALLOW", "BLOCK"]


def test_ip_addresses_are_compared_in_one_form(
    db: Database, make_tenant: Callable[..., TenantHandle]
) -> None:
    tenant = make_tenant()
    strict = policy.parse(
        {
            "rules": [
                {
                    "id": "ip",
                    "type": "velocity",
                    "actions": ["checkin"],
                    "subject": "ip",
                    "window": "1h",
                    "max_count": 2,
                }
            ]
        }
    )
    with db.session() as session:
        service.set_policy(session, tenant.id, strict, "test")
        forms = ["2001:DB8::1", "2001:db8:0::1", "2001:db8::1"]
        verdicts = [
            service.decide(session, tenant.id, Signal("checkin", f"u{i}", utcnow(), ip=ip)).verdict
            for i, ip in enumerate(forms)
        ]
        with pytest.raises(Unprocessable):
            service.decide(session, tenant.id, Signal("checkin", "u", utcnow(), ip="10.0.0.300"))
    assert verdicts == ["ALLOW", "ALLOW", "BLOCK"]


def test_concurrent_requests_for_one_reference_count_once(
    db: Database, make_tenant: Callable[..., TenantHandle]
) -> None:
    tenant = make_tenant()
    store = MemoryCounterStore()
    signal = Signal("like.prompt", "racer", utcnow())

    def decide_once(_: int) -> str:
        with db.session() as session:
            return service.decide(
                session, tenant.id, signal, reference="prompt-1", counters=store
            ).id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(decide_once, range(8)))

    # then: one decision, one prompt counted, two of the day's three left
    with db.session() as session:
        later = [
            service.decide(
                session, tenant.id, Signal("like.prompt", "racer", utcnow()), counters=store
            ).verdict
            for _ in range(3)
        ]
    assert len(ids) == 1
    assert later == ["ALLOW", "ALLOW", "BLOCK"]
