"""The pure rules: terms, validity, eligibility and the discount, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zanloop.coupons import domain
from zanloop.coupons.domain import (
    Basket,
    CouponKind,
    CouponStatus,
    Holding,
    Refusal,
    Terms,
    Validity,
)
from zanloop.errors import Unprocessable

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
FIXED = Terms(CouponKind.FIXED, amount_fen=500, threshold_fen=3000)
PERCENT = Terms(CouponKind.PERCENT, percent_off=20, max_discount_fen=500)


@pytest.mark.parametrize(
    ("terms", "list_fen", "expected"),
    [
        pytest.param(FIXED, 3800, 500, id="fixed"),
        pytest.param(Terms(CouponKind.FIXED, amount_fen=500), 300, 299, id="fixed-leaves-1-fen"),
        pytest.param(Terms(CouponKind.PERCENT, percent_off=20), 3333, 666, id="percent-floors"),
        pytest.param(PERCENT, 1000, 200, id="percent-under-cap"),
        pytest.param(PERCENT, 10000, 500, id="percent-capped"),
        pytest.param(Terms(CouponKind.PERCENT, percent_off=99), 1, 0, id="one-fen-order"),
        pytest.param(Terms(CouponKind.PERCENT, percent_off=99), 100, 99, id="percent-99"),
    ],
)
def test_discount(terms: Terms, list_fen: int, expected: int) -> None:
    assert domain.discount(terms, list_fen) == expected


@given(
    kind=st.sampled_from(CouponKind),
    amount_fen=st.integers(1, 100_000_000),
    percent_off=st.integers(1, 99),
    cap=st.one_of(st.none(), st.integers(1, 100_000_000)),
    list_fen=st.integers(1, 100_000_000),
)
def test_discount_never_makes_the_order_free_nor_exceeds_the_coupon(
    kind: CouponKind, amount_fen: int, percent_off: int, cap: int | None, list_fen: int
) -> None:
    terms = (
        Terms(kind, amount_fen=amount_fen)
        if kind is CouponKind.FIXED
        else Terms(kind, percent_off=percent_off, max_discount_fen=cap)
    )

    off = domain.discount(terms, list_fen)

    pay = list_fen - off
    assert 0 < pay <= list_fen
    assert off >= 0
    if kind is CouponKind.FIXED:
        assert off <= amount_fen
    else:
        assert off <= list_fen * percent_off // 100
        assert cap is None or off <= cap


@pytest.mark.parametrize(
    ("terms", "budget_fen", "field"),
    [
        pytest.param(Terms(CouponKind.FIXED), None, "amount_fen", id="fixed-without-amount"),
        pytest.param(
            Terms(CouponKind.FIXED, amount_fen=3000, threshold_fen=3000),
            None,
            "amount_fen",
            id="amount-not-below-threshold",
        ),
        pytest.param(
            Terms(CouponKind.FIXED, amount_fen=5, percent_off=5), None, "percent_off", id="mixed"
        ),
        pytest.param(Terms(CouponKind.PERCENT), None, "percent_off", id="percent-without-percent"),
        pytest.param(
            Terms(CouponKind.PERCENT, percent_off=10),
            10_000,
            "max_discount_fen",
            id="percent-budget-without-cap",
        ),
    ],
)
def test_terms_that_make_no_coupon_name_the_field(
    terms: Terms, budget_fen: int | None, field: str
) -> None:
    with pytest.raises(Unprocessable) as refused:
        domain.check_terms(terms, budget_fen)

    assert [e.field for e in refused.value.errors] == [field]


def test_good_terms_pass() -> None:
    domain.check_terms(FIXED, 100_000)
    domain.check_terms(Terms(CouponKind.FIXED, amount_fen=500), None)  # no threshold
    domain.check_terms(PERCENT, 100_000)


@pytest.mark.parametrize(
    ("validity", "field"),
    [
        pytest.param(Validity(), "valid_days", id="no-end"),
        pytest.param(Validity(valid_until=NOW), "valid_until", id="end-not-in-future"),
        pytest.param(
            Validity(valid_from=NOW + timedelta(days=2), valid_until=NOW + timedelta(days=1)),
            "valid_from",
            id="start-after-end",
        ),
    ],
)
def test_validity_that_never_holds_is_refused(validity: Validity, field: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        domain.check_validity(validity, NOW)

    assert [e.field for e in refused.value.errors] == [field]


@pytest.mark.parametrize(
    ("validity", "window"),
    [
        pytest.param(Validity(valid_days=7), (NOW, NOW + timedelta(days=7)), id="days"),
        pytest.param(
            Validity(valid_days=7, valid_until=NOW + timedelta(days=3)),
            (NOW, NOW + timedelta(days=3)),
            id="until-before-days",
        ),
        pytest.param(
            Validity(valid_days=7, valid_until=NOW + timedelta(days=30)),
            (NOW, NOW + timedelta(days=7)),
            id="days-before-until",
        ),
        pytest.param(
            Validity(valid_days=2, valid_from=NOW + timedelta(days=1)),
            (NOW + timedelta(days=1), NOW + timedelta(days=3)),
            id="days-count-from-a-later-start",
        ),
    ],
)
def test_coupon_window(validity: Validity, window: tuple[datetime, datetime]) -> None:
    assert domain.coupon_window(validity, NOW) == window


def _holding(**changes: object) -> Holding:
    fields: dict[str, object] = {
        "user_id": "u1",
        "status": CouponStatus.AVAILABLE,
        "valid_from": NOW - timedelta(days=1),
        "expires_at": NOW + timedelta(days=1),
        **changes,
    }
    return Holding(**fields)  # type: ignore[arg-type]


SHOP = Terms(
    CouponKind.FIXED,
    amount_fen=500,
    threshold_fen=3000,
    stores=("store-1",),
    categories=("coffee", "bakery"),
)
BASKET = Basket("u1", 3000, "store-1", ("coffee",))


@pytest.mark.parametrize(
    ("holding", "basket", "refusal"),
    [
        pytest.param(_holding(), BASKET, None, id="usable"),
        pytest.param(_holding(user_id="u2"), BASKET, Refusal.NOT_OWNER, id="not-owner"),
        pytest.param(
            _holding(status=CouponStatus.LOCKED), BASKET, Refusal.NOT_AVAILABLE, id="locked"
        ),
        pytest.param(
            _holding(status=CouponStatus.REDEEMED), BASKET, Refusal.NOT_AVAILABLE, id="redeemed"
        ),
        pytest.param(_holding(expires_at=NOW), BASKET, Refusal.EXPIRED, id="expired"),
        pytest.param(
            _holding(valid_from=NOW + timedelta(seconds=1)),
            BASKET,
            Refusal.NOT_YET_VALID,
            id="not-yet-valid",
        ),
        pytest.param(
            _holding(), Basket("u1", 2999, "store-1", ("coffee",)), Refusal.THRESHOLD, id="below"
        ),
        pytest.param(_holding(), Basket("u1", 3000, "store-2", ("coffee",)), Refusal.STORE),
        pytest.param(
            _holding(), Basket("u1", 3000, None, ("coffee",)), Refusal.STORE, id="nowhere"
        ),
        pytest.param(
            _holding(), Basket("u1", 3000, "store-1", ("coffee", "wine")), Refusal.CATEGORY
        ),
        pytest.param(_holding(), Basket("u1", 3000, "store-1", ()), Refusal.CATEGORY, id="none"),
    ],
)
def test_use_refusal(holding: Holding, basket: Basket, refusal: Refusal | None) -> None:
    assert domain.use_refusal(holding, SHOP, basket, NOW) == refusal


def test_a_coupon_for_anywhere_and_anything_needs_neither_store_nor_category() -> None:
    terms = Terms(CouponKind.FIXED, amount_fen=500)

    assert domain.use_refusal(_holding(), terms, Basket("u1", 501), NOW) is None


def test_an_available_coupon_past_its_expiry_reads_expired() -> None:
    assert domain.effective_status(CouponStatus.AVAILABLE, NOW, NOW) is CouponStatus.EXPIRED
    assert domain.effective_status(CouponStatus.LOCKED, NOW, NOW) is CouponStatus.LOCKED
    later = NOW + timedelta(seconds=1)
    assert domain.effective_status(CouponStatus.AVAILABLE, later, NOW) is CouponStatus.AVAILABLE


def test_face_value_reserved_per_issue() -> None:
    assert domain.face_value(FIXED) == 500
    assert domain.face_value(PERCENT) == 500
    assert domain.face_value(Terms(CouponKind.PERCENT, percent_off=10)) == 0


def test_ratio() -> None:
    assert domain.ratio(1, 3) == 0.3333
    assert domain.ratio(5, 0) is None
