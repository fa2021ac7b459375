"""Compiling rules: each rule set becomes generated Python, indexed by trigger and store.

A bucket (the rules of one trigger that admit one store) is one generated function: a tree of
``if``s in which the test most of its rules share is asked once, with every rule needing it
underneath, so a failed test skips them all together. Every value of a rule lives in a constant
of the function's namespace, never in its source text, so a rule can only ever compare.
``compile`` runs once per rule set; ``RuleSet.match`` then costs a dict look-up or two and one
call. ``rules.domain.explain`` is the slow twin every answer is held to (a property test).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from zanloop.rules.domain import (
    AmountAtLeast,
    Emit,
    Facts,
    Rule,
    StoreIn,
    TimeOfDay,
    WeekdayIn,
)

Matcher = Callable[[Facts], list[Rule]]


def _no_match(facts: Facts) -> list[Rule]:
    return []


@dataclass(frozen=True)
class _Test:
    """One condition of one rule, ready for code: ``key`` is equal for equal tests, so rules
    sharing a test can share its evaluation."""

    key: str
    condition: Any
    tz: str


def _zone_of(condition: Any, tz: str) -> str:
    """The zone a condition depends on: only local-time conditions differ between zones."""
    return tz if isinstance(condition, TimeOfDay | WeekdayIn) else ""


def _tests(rule: Rule) -> list[_Test]:
    doc = rule.document
    tests = [
        _Test(f"{c.type}|{_zone_of(c, doc.timezone)}|{c.model_dump_json()}", c, doc.timezone)
        for c in sorted(doc.conditions, key=lambda c: c.cost)
        if not isinstance(c, StoreIn)  # indexed: a rule is only filed under its stores
    ]
    # The same condition twice in a rule is tested once.
    return list({t.key: t for t in tests}.values())


def _tree(
    members: list[tuple[str, list[_Test]]], emit: Emit, indent: str, sources: dict[str, str]
) -> list[str]:
    """Code testing every member (a rule's constant and its tests still to pass).

    The test most members share is asked once, and all the members that need it go under
    it: when it fails, they are skipped together. The rest are placed the same way, so each
    rule's append appears once in the code, at most as deep as its number of conditions."""

    def source(test: _Test) -> str:
        if test.key not in sources:
            sources[test.key] = f"({test.condition.source(emit, test.tz)})"
        return sources[test.key]

    lines: list[str] = []
    pending = members
    while pending:
        lines.extend(f"{indent}add({target})" for target, tests in pending if not tests)
        pending = [(target, tests) for target, tests in pending if tests]
        if not pending:
            break
        shared = Counter(t.key for _, tests in pending for t in tests)
        key, count = max(shared.items(), key=lambda kv: kv[1])
        if count < 2:
            for target, tests in pending:
                lines.append(f"{indent}if {' and '.join(source(t) for t in tests)}:")
                lines.append(f"{indent}    add({target})")
            break
        test = next(t for _, tests in pending for t in tests if t.key == key)
        inside = [(target, [t for t in tests if t.key != key]) for target, tests in pending]
        lines.append(f"{indent}if {source(test)}:")
        lines.extend(
            _tree(
                [
                    m
                    for m, (_, tests) in zip(inside, pending, strict=True)
                    if any(t.key == key for t in tests)
                ],
                emit,
                indent + "    ",
                sources,
            )
        )
        pending = [(target, tests) for target, tests in pending if all(t.key != key for t in tests)]
    return lines


def _with_ladder(
    own: list[_Test], rules: Sequence[Rule], tests: dict[int, list[_Test]]
) -> list[_Test]:
    """A rule's tests, with the lower amount thresholds of its bucket that its own implies
    (a >= 5000 implies a >= 3000): the tree then nests thresholds as a ladder, and an event
    below a rung skips every rule above it at once. The answer is unchanged."""
    mine = next((t for t in own if isinstance(t.condition, AmountAtLeast)), None)
    if mine is None:
        return own
    lower = {
        t.key: t
        for r in rules
        for t in tests[id(r)]
        if isinstance(t.condition, AmountAtLeast) and t.condition.fen < mine.condition.fen
    }
    return [*sorted(lower.values(), key=lambda t: t.condition.fen), *own]


def _bucket(rules: Sequence[Rule], tests: dict[int, list[_Test]]) -> Matcher:
    """One generated function for a bucket of rules: their tests as a tree of ``if``s."""
    if not rules:
        return _no_match
    namespace: dict[str, Any] = {}
    emit = Emit(namespace)
    members = [(emit.const(r), _with_ladder(tests[id(r)], rules, tests)) for r in rules]
    body = _tree(members, emit, "    ", {})
    head = [
        "def match(f):",
        "    a, t, cats = f.amount_fen, f.epoch, f.categories",
        "    tier, first = f.tier, f.first_purchase",
        "    bd, v = f.birthday, f.value",
    ]
    lines = [
        *head,
        *emit.prelude(),
        "    out = []",
        "    add = out.append",
        *body,
        "    return out",
    ]
    code = compile("\n".join(lines), "<zanloop.rules>", "exec")
    # The source is ours; every rule value lives in a constant of the namespace.
    exec(code, namespace)
    matcher: Matcher = namespace["match"]
    return matcher


@dataclass(frozen=True)
class _TriggerIndex:
    by_store: dict[str, Matcher]
    any_store: Matcher


class RuleSet:
    """Compiled rules, indexed by trigger and store. Build once per set of active rules."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        grouped: dict[str, list[Rule]] = {}
        for rule in self.rules:
            grouped.setdefault(rule.document.trigger, []).append(rule)
        self._by_trigger = grouped
        self._by_key = {rule.key: rule for rule in self.rules}
        self._index: dict[str, _TriggerIndex] = {}
        tests = {id(rule): _tests(rule) for rule in self.rules}
        for trigger, members in grouped.items():
            anywhere = [r for r in members if r.document.stores is None]
            stores = {s for r in members for s in (r.document.stores or ())}
            by_store = {
                store: _bucket(
                    [r for r in members if r.document.stores is None or store in r.document.stores],
                    tests,
                )
                for store in stores
            }
            self._index[trigger] = _TriggerIndex(by_store, _bucket(anywhere, tests))

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, facts: Facts) -> list[Rule]:
        """The rules whose conditions all hold for ``facts``."""
        index = self._index.get(facts.trigger)
        if index is None:
            return []
        store = facts.store_id
        if store is not None:
            return index.by_store.get(store, index.any_store)(facts)
        return index.any_store(facts)

    def of_trigger(self, trigger: str) -> list[Rule]:
        return list(self._by_trigger.get(trigger, ()))

    def by_key(self, key: str) -> Rule:
        return self._by_key[key]
