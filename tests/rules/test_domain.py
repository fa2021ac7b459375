"""The rule language: validation that names fields, and local time in any zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from zanloop.rules.domain import Facts, RuleDocument

ZONES = ["Asia/Shanghai", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]
# hypothesis takes naive bounds and adds the zone itself.
ZONE_FROM = datetime(2000, 1, 1)  # noqa: DTZ001
ZONE_TO = datetime(2040, 1, 1)  # noqa: DTZ001


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=ZONE_FROM, max_value=ZONE_TO, timezones=st.just(UTC)),
    st.sampled_from(ZONES),
)
def test_local_time_matches_the_zone_database(at: datetime, zone: str) -> None:
    here = at.astimezone(ZoneInfo(zone))
    minute, weekday = Facts("x.y", at).local(zone)
    assert (minute, weekday) == (here.hour * 60 + here.minute, here.isoweekday())


def rule_json(**fields: Any) -> dict[str, Any]:
    return {
        "trigger": "payment.succeeded",
        "effects": [{"type": "grant_points", "points": 1}],
    } | fields


@pytest.mark.parametrize(
    ("document", "where"),
    [
        (
            rule_json(conditions=[{"type": "amount_gte", "fen": "lots"}]),
            ("conditions", 0, "amount_gte", "fen"),
        ),
        (
            rule_json(conditions=[{"type": "weekday_in", "days": [8]}]),
            ("conditions", 0, "weekday_in", "days", 0),
        ),
        (rule_json(trigger="Payment Succeeded"), ("trigger",)),
        (rule_json(budget={"max_rewards": 0}), ("budget", "max_rewards")),
        (
            rule_json(effects=[{"type": "progress_tier", "goal": 3}]),
            ("effects", 0, "progress_tier"),
        ),
        (
            rule_json(
                conditions=[{"type": "amount_gte", "fen": 1}, {"type": "amount_gte", "fen": 2}]
            ),
            (),
        ),
        (rule_json(unknown=1), ("unknown",)),
    ],
)
def test_invalid_rules_name_the_field(document: dict[str, Any], where: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        RuleDocument.model_validate(document)
    assert caught.value.errors()[0]["loc"][: len(where)] == where
