"""The programme's pure rules (``loyalty.domain``): settings, expiry, tiers, tasks, pricing an
event, spending lots and receipt codes. No database, no HTTP."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from zanloop.loyalty import domain
from zanloop.loyalty.domain import (
    AchievementTask,
    CountTask,
    Expiry,
    Receipt,
    Settings,
    Spendable,
    StreakTask,
    Tier,
)
from zanloop.rules.domain import EarnPerYuan, RuleDocument

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ladder(*tiers: tuple[str, int, str]) -> list[dict[str, Any]]:
    return [{"name": n, "threshold": t, "multiplier": m} for n, t, m in tiers]


def settings(**fields: Any) -> Settings:
    return Settings.model_validate(fields)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# Settings ------------------------------------------------------------------------------------


def test_the_default_settings_are_the_seed_article_programme() -> None:
    conf = Settings()
    assert [(t.name, t.threshold, t.multiplier) for t in conf.tiers] == [
        ("normal", 0, Decimal("1.0")),
        ("silver", 2000, Decimal("1.2")),
        ("gold", 10000, Decimal("1.5")),
    ]
    assert (conf.timezone, conf.refund_window_days, conf.expiry.policy) == (
        "Asia/Shanghai",
        7,
        "rolling",
    )
    assert (conf.expiry.months, conf.expiry.notice_days, conf.max_event_age_days) == (12, 30, 90)
    assert (conf.downgrade, conf.tier_basis, conf.hold_minutes) == ("one_step", "points", 30)


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        pytest.param(
            ladder(("normal", 10, "1"), ("silver", 20, "1.2")), "must be 0", id="first-not-zero"
        ),
        pytest.param(
            ladder(("normal", 0, "1"), ("silver", 20, "1.2"), ("gold", 20, "1.5")),
            "must rise",
            id="equal-thresholds",
        ),
        pytest.param(
            ladder(("normal", 0, "1"), ("silver", 200, "1.2"), ("gold", 100, "1.5")),
            "must rise",
            id="falling-thresholds",
        ),
        pytest.param(
            ladder(("normal", 0, "1"), ("normal", 100, "1.2")), "must differ", id="same-name"
        ),
        pytest.param(ladder(("normal", 0, "0.5")), "greater than or equal to 1", id="below-1x"),
        pytest.param([], "at least 1", id="no-tiers"),
    ],
)
def test_a_tier_ladder_must_start_at_zero_and_rise(tiers: list[Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(tiers=tiers)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        settings(timezone="Mars/Olympus_Mons")


def test_a_tier_removed_from_the_ladder_counts_as_the_first() -> None:
    conf = settings(tiers=ladder(("basic", 0, "1.0"), ("vip", 100, "2")))
    assert conf.first_tier == "basic"
    assert conf.multiplier("vip") == Decimal(2)
    assert conf.multiplier("gold") == Decimal(1)


# Expiry --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("available_at", "months", "expected"),
    [
        # 04:00 on 16 March in Shanghai: twelve months on, at the end of that local day.
        pytest.param(utc(2026, 3, 15, 20), 12, utc(2027, 3, 16, 16), id="local-day-not-utc-day"),
        pytest.param(utc(2026, 3, 16, 3), 12, utc(2027, 3, 16, 16), id="same-local-day"),
        # 31 January + 1 month is the last day of February.
        pytest.param(utc(2026, 1, 31, 2), 1, utc(2026, 2, 28, 16), id="month-end-clamped"),
        pytest.param(utc(2027, 1, 31, 2), 13, utc(2028, 2, 29, 16), id="leap-february"),
    ],
)
def test_rolling_expiry_is_the_end_of_the_local_day_months_later(
    available_at: datetime, months: int, expected: datetime
) -> None:
    conf = settings(expiry={"policy": "rolling", "months": months})
    assert domain.expires_at(conf, available_at) == expected


def test_rolling_expiry_follows_the_programme_time_zone() -> None:
    conf = settings(timezone="America/New_York", expiry={"policy": "rolling", "months": 1})
    # 01:00 UTC on 1 June is still 31 May in New York; 30 June ends at 04:00 UTC on 1 July.
    assert domain.expires_at(conf, utc(2026, 6, 1, 1)) == utc(2026, 7, 1, 4)


def test_year_end_expiry_is_the_end_of_the_following_local_year() -> None:
    conf = settings(expiry={"policy": "year_end"})
    assert domain.expires_at(conf, utc(2026, 5, 1)) == utc(2027, 12, 31, 16)
    # 17:00 UTC on 31 December 2026 is already 2027 in Shanghai.
    assert domain.expires_at(conf, utc(2026, 12, 31, 17)) == utc(2028, 12, 31, 16)


def test_points_that_never_expire_have_no_expiry() -> None:
    assert domain.expires_at(settings(expiry={"policy": "never"}), utc(2026, 5, 1)) is None


def test_the_expiry_rule_in_words_discloses_every_term() -> None:
    text = domain.expiry_rule(Settings())
    assert "12 months after they become available, at the end of that day" in text
    assert "(Asia/Shanghai)" in text
    assert "soonest-expiring points are spent first" in text
    assert "told 30 days before" in text
    assert "pending for 7 days" in text

    year_end = domain.expiry_rule(
        settings(expiry={"policy": "year_end", "notice_days": 0}, refund_window_days=0)
    )
    assert "expire at the end of the following year" in year_end
    assert "told" not in year_end
    assert "pending" not in year_end
    assert domain.expiry_rule(settings(expiry={"policy": "never"})) == "Points do not expire."


@pytest.mark.parametrize(
    ("birthday", "day", "expected"),
    [
        pytest.param("04-17", date(2026, 4, 17), True, id="on-the-day"),
        pytest.param("04-17", date(2026, 4, 18), False, id="next-day"),
        pytest.param("02-29", date(2027, 2, 28), True, id="leap-birthday-on-28th"),
        pytest.param("02-29", date(2028, 2, 28), False, id="leap-year-waits-for-29th"),
        pytest.param("02-29", date(2028, 2, 29), True, id="leap-year-29th"),
        pytest.param(None, date(2026, 4, 17), None, id="unknown"),
    ],
)
def test_birthday(birthday: str | None, day: date, expected: bool | None) -> None:
    assert domain.is_birthday(birthday, day) is expected


def test_the_local_date_is_the_programme_zone_date() -> None:
    assert domain.local_date(utc(2026, 3, 15, 16), SHANGHAI) == date(2026, 3, 16)
    assert domain.local_date(utc(2026, 3, 15, 15, 59), SHANGHAI) == date(2026, 3, 15)


# Tiers ---------------------------------------------------------------------------------------

LADDER = ladder(("normal", 0, "1.0"), ("silver", 100, "1.2"), ("gold", 300, "1.5"))


@pytest.mark.parametrize(
    ("qualifying", "tier"),
    [
        (0, "normal"),
        (99, "normal"),
        (100, "silver"),
        (299, "silver"),
        (300, "gold"),
        (10**9, "gold"),
    ],
)
def test_the_highest_tier_whose_threshold_is_reached_qualifies(qualifying: int, tier: str) -> None:
    assert domain.qualified_tier(settings(tiers=LADDER), qualifying) == tier


def test_earning_only_ever_raises_a_tier() -> None:
    conf = settings(tiers=LADDER)
    assert domain.tier_after_earning(conf, "normal", 150) == "silver"
    assert domain.tier_after_earning(conf, "gold", 0) == "gold"


@pytest.mark.parametrize(
    ("current", "base", "qualifying", "expected"),
    [
        pytest.param("gold", "normal", 150, "silver", id="falls-to-what-still-qualifies"),
        pytest.param("gold", "normal", 0, "normal", id="falls-to-the-bottom"),
        pytest.param("gold", "silver", 0, "silver", id="never-below-the-evaluated-tier"),
        pytest.param("silver", "gold", 0, "silver", id="never-raised-by-a-refund"),
        pytest.param("gold", "normal", 400, "gold", id="still-qualifies"),
    ],
)
def test_a_refund_undoes_an_upgrade_but_not_below_the_evaluated_tier(
    current: str, base: str, qualifying: int, expected: str
) -> None:
    conf = settings(tiers=LADDER)
    assert domain.tier_after_refund(conf, current, base, qualifying) == expected


@pytest.mark.parametrize(
    ("downgrade", "current", "qualifying", "expected"),
    [
        pytest.param("one_step", "gold", 0, "silver", id="one-step-down"),
        pytest.param("one_step", "silver", 0, "normal", id="one-step-to-bottom"),
        pytest.param("to_qualified", "gold", 0, "normal", id="to-qualified"),
        pytest.param("to_qualified", "gold", 150, "silver", id="to-qualified-middle"),
        pytest.param("never", "gold", 0, "gold", id="never-down"),
        pytest.param("never", "normal", 300, "gold", id="never-down-but-up"),
        pytest.param("one_step", "normal", 300, "gold", id="up-to-qualified-at-once"),
    ],
)
def test_the_scheduled_evaluation_moves_up_to_what_qualifies_and_down_by_policy(
    downgrade: str, current: str, qualifying: int, expected: str
) -> None:
    conf = settings(tiers=LADDER, downgrade=downgrade)
    assert domain.tier_after_evaluation(conf, current, qualifying) == expected


# Tasks ---------------------------------------------------------------------------------------

D = date(2026, 5, 1)


def days(*offsets: int) -> list[date]:
    return [D + timedelta(days=o) for o in offsets]


@pytest.mark.parametrize(
    ("acted", "goal", "grace", "expected"),
    [
        pytest.param(days(0, 1, 2), 3, 0, (1, 0), id="three-in-a-row"),
        pytest.param(days(0, 1, 3), 3, 0, (0, 1), id="a-gap-breaks-it"),
        pytest.param(days(0, 1, 3), 3, 1, (1, 0), id="grace-covers-the-gap"),
        pytest.param(days(0, 2, 4), 5, 1, (0, 1), id="grace-is-spent-per-streak"),
        pytest.param(days(0, 3), 3, 1, (0, 1), id="gap-bigger-than-grace"),
        pytest.param(days(0, 0, 1, 1), 3, 0, (0, 2), id="one-day-counts-once"),
        pytest.param(days(0, 1, 2, 3, 4, 5, 6), 3, 0, (2, 1), id="completes-and-starts-again"),
        pytest.param(days(0, 1, 2, 4, 5, 6), 3, 1, (2, 0), id="grace-again-after-completion"),
    ],
)
def test_streak_run(acted: list[date], goal: int, grace: int, expected: tuple[int, int]) -> None:
    completed, length, last = domain.streak_run(acted, goal, grace)
    assert (completed, length) == expected
    assert last == max(acted)


def streak(**fields: Any) -> StreakTask:
    return StreakTask(type="streak", trigger="store.checkin", **fields)


def test_a_streak_rewards_every_completion_only_if_it_repeats() -> None:
    marks = [d.isoformat() for d in days(0, 1, 2, 3, 4, 5)]
    assert domain.completions(streak(days=3, points=200), marks) == 2
    assert domain.completions(streak(days=3, points=200, repeat=False), marks) == 1


def test_achievements_and_counts_are_rewarded_once() -> None:
    achievement = AchievementTask(
        type="achievement", actions=["share.created", "comment.created"], points=500
    )
    assert domain.completions(achievement, ["share.created"]) == 0
    assert domain.completions(achievement, ["share.created", "comment.created"] * 3) == 1
    count = CountTask(type="count", trigger="payment.succeeded", goal=2, points=100)
    assert domain.completions(count, ["1"]) == 0
    assert domain.completions(count, ["1"] * 5) == 1


def test_an_event_marks_only_the_tasks_it_serves() -> None:
    at = utc(2026, 5, 1, 17)  # 2 May in Shanghai
    start, end = utc(2026, 5, 1), utc(2026, 5, 2)
    count = CountTask(
        type="count", trigger="payment.succeeded", goal=2, points=100, start=start, end=end
    )
    achievement = AchievementTask(type="achievement", actions=["share.created"], points=5)
    assert domain.task_mark(streak(days=3, points=1), "store.checkin", at, SHANGHAI) == "2026-05-02"
    assert domain.task_mark(streak(days=3, points=1), "share.created", at, SHANGHAI) is None
    assert domain.task_mark(achievement, "share.created", at, SHANGHAI) == "share.created"
    assert domain.task_mark(achievement, "like.created", at, SHANGHAI) is None
    assert domain.task_mark(count, "payment.succeeded", start, SHANGHAI) == "1"
    assert domain.task_mark(count, "payment.succeeded", end, SHANGHAI) is None
    assert (
        domain.task_mark(count, "payment.succeeded", start - timedelta(seconds=1), SHANGHAI) is None
    )


def test_a_task_document_is_validated() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 2"):
        streak(days=1, points=10)
    with pytest.raises(ValidationError, match="actions must differ"):
        AchievementTask(type="achievement", actions=["a.b", "a.b"], points=1)
    with pytest.raises(ValidationError, match="start must be before end"):
        CountTask(
            type="count",
            trigger="a.b",
            goal=1,
            points=1,
            start=utc(2026, 5, 2),
            end=utc(2026, 5, 1),
        )


def test_progress_as_a_member_sees_it() -> None:
    today = D + timedelta(days=2)
    walk = streak(days=7, points=200)
    seen = domain.describe(walk, [d.isoformat() for d in days(0, 1)], today)
    assert (seen.progress, seen.goal, seen.detail) == (2, 7, "2 of 7 days in a row")
    broken = domain.describe(walk, [d.isoformat() for d in days(0, 1)], today + timedelta(days=1))
    assert broken.progress == 0
    achievement = AchievementTask(
        type="achievement", actions=["share.created", "comment.created"], points=500
    )
    half = domain.describe(achievement, ["share.created"], today)
    assert (half.completed, half.progress, half.detail) == (0, 1, "still to do: comment.created")
    done = domain.describe(achievement, ["comment.created", "share.created"], today)
    assert (done.completed, done.detail) == (1, "complete")


# Pricing an event ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount_fen", "rate", "points"),
    [(12345, "1.5", 185), (99, "1.5", 1), (66, "1.5", 0), (10000, "1", 100), (199, "1", 1)],
)
def test_points_per_yuan_are_rounded_down(amount_fen: int, rate: str, points: int) -> None:
    effect = EarnPerYuan(type="earn_per_yuan", points_per_yuan=Decimal(rate))
    assert effect.points(amount_fen) == points


def test_base_points_for_the_member_and_the_counterparty() -> None:
    invite = RuleDocument.model_validate(
        {
            "trigger": "invite.accepted",
            "effects": [{"type": "grant_points", "points": 20, "to": "both"}],
        }
    )
    both = RuleDocument.model_validate(
        {
            "trigger": "payment.succeeded",
            "effects": [
                {"type": "earn_per_yuan", "points_per_yuan": "2"},
                {"type": "grant_points", "points": 5},
            ],
        }
    )
    assert domain.base_points(invite, 0) == (20, 20)
    assert domain.base_points(both, 1050) == (26, 0)
    assert domain.factor(invite) is None
    double = RuleDocument.model_validate(
        {
            "trigger": "payment.succeeded",
            "effects": [
                {"type": "multiply_points", "factor": "2"},
                {"type": "multiply_points", "factor": "1.5"},
            ],
        }
    )
    assert domain.factor(double) == Decimal(3)


def always(rule: str, points: int) -> bool:
    return True


def test_multipliers_and_the_tier_apply_together_rounded_down_once() -> None:
    # 7 x 2 x 2 x 1.2 = 33.6 -> 33 (rounding after the tier alone would give 8 x 4 = 32).
    granted, extras = domain.price(
        {"base": 7}, {"partner": Decimal(2), "birthday": Decimal(2)}, Decimal("1.2"), always
    )
    assert granted == {"base": 33}
    assert set(extras) == {"partner", "birthday"}


def test_each_base_rule_is_rounded_down_on_its_own() -> None:
    granted, _ = domain.price({"a": 1, "b": 1}, {}, Decimal("1.5"), always)
    assert granted == {"a": 1, "b": 1}


def test_a_multiplier_over_its_budget_is_left_out_and_the_rest_priced_again() -> None:
    def fits(rule: str, points: int) -> bool:
        return rule != "birthday"

    granted, extras = domain.price(
        {"base": 10}, {"partner": Decimal(2), "birthday": Decimal(2)}, Decimal(1), fits
    )
    assert granted == {"base": 20}
    assert extras == {"partner": 10}


def test_a_base_rule_over_its_budget_earns_nothing() -> None:
    def fits(rule: str, points: int) -> bool:
        return rule != "bonus" or points <= 40

    granted, _ = domain.price({"yuan": 100, "bonus": 50}, {}, Decimal(1), fits)
    assert granted == {"yuan": 100}


# Spending ------------------------------------------------------------------------------------

T0 = utc(2026, 5, 1)


def lot(lot_id: str, remaining: int, expires_in_days: int | None, earned_days: int) -> Spendable:
    expires = T0 + timedelta(days=expires_in_days) if expires_in_days is not None else None
    return Spendable(lot_id, remaining, expires, T0 + timedelta(days=earned_days))


def test_spending_takes_the_soonest_expiring_lots_first() -> None:
    lots = [
        lot("never", 100, None, 0),
        lot("late", 100, 300, 1),
        lot("soon-newer", 100, 30, 2),
        lot("soon-older", 100, 30, 1),
    ]
    assert domain.allocate(lots, 250) == {"soon-older": 100, "soon-newer": 100, "late": 50}
    assert domain.allocate(lots, 400) == {
        "soon-older": 100,
        "soon-newer": 100,
        "late": 100,
        "never": 100,
    }


def test_spending_more_than_the_lots_hold_is_refused() -> None:
    assert domain.allocate([lot("a", 100, 30, 0)], 101) is None
    assert domain.allocate([], 1) is None
    assert domain.allocate([lot("a", 0, 30, 0), lot("b", 5, 60, 0)], 5) == {"b": 5}


# Receipt codes -------------------------------------------------------------------------------


def test_a_receipt_code_reads_back_only_with_its_secret() -> None:
    receipt = Receipt("rcp_1", "mall-2", 8800)
    code = domain.sign_receipt("secret", receipt)
    assert domain.read_receipt("secret", code) == receipt
    assert domain.read_receipt("another secret", code) is None


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda c: c[:-2] + ("AA" if c[-2:] != "AA" else "BB"), id="mac-changed"),
        pytest.param(lambda c: c[:10] + ("x" if c[10] != "x" else "y") + c[11:], id="body-changed"),
        pytest.param(lambda c: "not-a-code-at-all", id="garbage"),
        pytest.param(lambda c: "", id="empty"),
    ],
)
def test_a_forged_receipt_code_is_not_read(forge: Any) -> None:
    code = domain.sign_receipt("secret", Receipt("rcp_1", "mall-2", 8800))
    assert domain.read_receipt("secret", forge(code)) is None


def test_expiry_and_tier_models_forbid_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Expiry.model_validate({"policy": "rolling", "weeks": 3})
    with pytest.raises(ValidationError):
        Tier.model_validate({"name": "Gold Star", "threshold": 0})
