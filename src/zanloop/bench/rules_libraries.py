"""The PyPI rule libraries ``zanloop bench rules`` measures zanloop beside: ``rule-engine`` and
``business-rules``.

Each campaign is translated once into the library's own rule form (``rule_engine_text``,
``business_rules_conditions``), its conditions in zanloop's order (cheapest first). Per event, the
library evaluates every campaign of the event's trigger (the same trigger index zanloop has; the
store index is zanloop's own), from an input built from the event with its local time worked
out once by ``datetime.astimezone`` (independently of zanloop's offset cache).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from importlib.metadata import version
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from zanloop.bench.rules import ZONE, Event
from zanloop.rules.domain import (
    AmountAtLeast,
    AmountBelow,
    CategoryIn,
    DateRange,
    FirstPurchase,
    Rule,
    StoreIn,
    TierIn,
    TimeOfDay,
    WeekdayIn,
)


class Library(NamedTuple):
    name: str
    version: str
    evaluate: Callable[[Event], list[str]]
    # One campaign in the library's own form, to show in a note.
    example: str


def _ordered(rule: Rule) -> list[Any]:
    """The conditions in zanloop's own order (cheapest first), for every engine alike."""
    return sorted(rule.document.conditions, key=lambda c: c.cost)


def _local(at: datetime, zone: ZoneInfo) -> tuple[int, int]:
    local = at.astimezone(zone)
    return local.hour * 60 + local.minute, local.isoweekday()


def _by_trigger(rules: Sequence[Rule], build: Callable[[Rule], Any]) -> dict[str, list[Any]]:
    index: dict[str, list[Any]] = {}
    for rule in rules:
        index.setdefault(rule.document.trigger, []).append((rule.key, build(rule)))
    return index


def rule_engine_text(rule: Rule) -> str:
    """A campaign as a ``rule-engine`` expression over the event's attributes."""

    def strings(values: Sequence[str]) -> str:
        return ", ".join(f'"{v}"' for v in values)

    parts = []
    for c in _ordered(rule):
        if isinstance(c, AmountAtLeast):
            parts.append(f"amount_fen >= {c.fen}")
        elif isinstance(c, AmountBelow):
            parts.append(f"amount_fen < {c.fen}")
        elif isinstance(c, DateRange):
            if c.start is not None:
                parts.append(f"epoch >= {int(c.start.timestamp())}")
            if c.end is not None:
                parts.append(f"epoch < {int(c.end.timestamp())}")
        elif isinstance(c, StoreIn):
            parts.append(f"store_id in [{strings(c.values)}]")
        elif isinstance(c, CategoryIn):
            parts.append(f"(categories & {{{strings(c.values)}}}).length > 0")
        elif isinstance(c, FirstPurchase):
            parts.append(f"first_purchase == {str(c.value).lower()}")
        elif isinstance(c, TierIn):
            parts.append(f"tier in [{strings(c.values)}]")
        elif isinstance(c, TimeOfDay):
            lo, hi = c.bounds()
            parts.append(
                f"({lo} <= minute and minute < {hi})"
                if lo < hi
                else f"(minute < {hi} or minute >= {lo})"
            )
        elif isinstance(c, WeekdayIn):
            parts.append(f"weekday in [{', '.join(str(d) for d in c.days)}]")
        else:  # pragma: no cover - a new kind of condition needs a translation here
            raise TypeError(f"no rule-engine form for {c.type}")
    return " and ".join(parts) or "true"


def rule_engine_library(rules: Sequence[Rule]) -> Library:
    """``rule-engine``: each campaign one ``Rule`` (parsed once, default context); an event is
    a ``dict`` of its attributes, local time worked out once per event."""
    import rule_engine

    index = _by_trigger(rules, lambda r: rule_engine.Rule(rule_engine_text(r)).matches)
    zone = ZoneInfo(ZONE)

    def evaluate(e: Event) -> list[str]:
        minute, weekday = _local(e.at, zone)
        thing = {
            "amount_fen": e.amount_fen,
            "epoch": int(e.at.timestamp()),
            "store_id": e.store_id,
            "categories": set(e.categories),
            "first_purchase": e.first_purchase,
            "tier": e.tier,
            "minute": minute,
            "weekday": weekday,
        }
        return [key for key, matches in index.get(e.trigger, ()) if matches(thing)]

    return Library("rule-engine", version("rule-engine"), evaluate, rule_engine_text(rules[0]))


def business_rules_conditions(rule: Rule) -> dict[str, Any]:
    """A campaign as ``business-rules`` conditions: ``{"all": [...]}`` of variable, operator,
    value. Membership is ``shares_at_least_one_element_with`` on a one-element list."""

    def cond(name: str, operator: str, value: Any) -> dict[str, Any]:
        return {"name": name, "operator": operator, "value": value}

    parts: list[dict[str, Any]] = []
    for c in _ordered(rule):
        if isinstance(c, AmountAtLeast):
            parts.append(cond("amount_fen", "greater_than_or_equal_to", c.fen))
        elif isinstance(c, AmountBelow):
            parts.append(cond("amount_fen", "less_than", c.fen))
        elif isinstance(c, DateRange):
            if c.start is not None:
                parts.append(cond("epoch", "greater_than_or_equal_to", int(c.start.timestamp())))
            if c.end is not None:
                parts.append(cond("epoch", "less_than", int(c.end.timestamp())))
        elif isinstance(c, StoreIn | CategoryIn | TierIn):
            name = {StoreIn: "store", CategoryIn: "categories", TierIn: "tier"}[type(c)]
            parts.append(cond(name, "shares_at_least_one_element_with", list(c.values)))
        elif isinstance(c, FirstPurchase):
            # A boolean variable must be a bool: "not known" is neither first nor repeat.
            name = "first_purchase" if c.value else "repeat_purchase"
            parts.append(cond(name, "is_true", None))
        elif isinstance(c, TimeOfDay):
            lo, hi = c.bounds()
            after = cond("minute", "greater_than_or_equal_to", lo)
            before = cond("minute", "less_than", hi)
            parts.extend([after, before] if lo < hi else [{"any": [before, after]}])
        elif isinstance(c, WeekdayIn):
            parts.append(cond("weekday", "shares_at_least_one_element_with", list(c.days)))
        else:  # pragma: no cover
            raise TypeError(f"no business-rules form for {c.type}")
    # "all" needs one condition at least; a campaign without any holds for every amount.
    return {"all": parts or [cond("amount_fen", "greater_than_or_equal_to", 0)]}


def business_rules_library(rules: Sequence[Rule]) -> Library:
    """``business-rules``: per event a ``BaseVariables`` object (local time worked out once)
    and ``run_all`` over the trigger's campaigns; each rule's action records its key."""
    from business_rules import run_all
    from business_rules.actions import BaseActions, rule_action
    from business_rules.fields import FIELD_TEXT
    from business_rules.variables import (
        BaseVariables,
        boolean_rule_variable,
        numeric_rule_variable,
        select_multiple_rule_variable,
    )

    zone = ZoneInfo(ZONE)

    class EventVariables(BaseVariables):  # type: ignore[misc]
        def __init__(self, e: Event) -> None:
            self.e = e
            self.local = _local(e.at, zone)

        @numeric_rule_variable  # type: ignore[untyped-decorator]
        def amount_fen(self) -> int:
            return self.e.amount_fen

        @numeric_rule_variable  # type: ignore[untyped-decorator]
        def epoch(self) -> int:
            return int(self.e.at.timestamp())

        @select_multiple_rule_variable()  # type: ignore[untyped-decorator]
        def store(self) -> list[str]:
            return [] if self.e.store_id is None else [self.e.store_id]

        @select_multiple_rule_variable()  # type: ignore[untyped-decorator]
        def categories(self) -> list[str]:
            return list(self.e.categories)

        @select_multiple_rule_variable()  # type: ignore[untyped-decorator]
        def tier(self) -> list[str]:
            return [] if self.e.tier is None else [self.e.tier]

        @boolean_rule_variable  # type: ignore[untyped-decorator]
        def first_purchase(self) -> bool:
            return self.e.first_purchase is True

        @boolean_rule_variable  # type: ignore[untyped-decorator]
        def repeat_purchase(self) -> bool:
            return self.e.first_purchase is False

        @numeric_rule_variable  # type: ignore[untyped-decorator]
        def minute(self) -> int:
            return self.local[0]

        @select_multiple_rule_variable()  # type: ignore[untyped-decorator]
        def weekday(self) -> list[int]:
            return [self.local[1]]

    class Matched(BaseActions):  # type: ignore[misc]
        def __init__(self) -> None:
            self.keys: list[str] = []

        @rule_action(params={"key": FIELD_TEXT})  # type: ignore[untyped-decorator]
        def matched(self, key: str) -> None:
            self.keys.append(key)

    def document(rule: Rule) -> dict[str, Any]:
        action = {"name": "matched", "params": {"key": rule.key}}
        return {"conditions": business_rules_conditions(rule), "actions": [action]}

    index = {t: [doc for _, doc in docs] for t, docs in _by_trigger(rules, document).items()}

    def evaluate(e: Event) -> list[str]:
        found = Matched()
        run_all(index.get(e.trigger, []), EventVariables(e), found)
        keys: list[str] = found.keys
        return keys

    example = repr(business_rules_conditions(rules[0]))
    return Library("business-rules", version("business-rules"), evaluate, example)


LIBRARIES: tuple[Callable[[Sequence[Rule]], Library], ...] = (
    rule_engine_library,
    business_rules_library,
)
