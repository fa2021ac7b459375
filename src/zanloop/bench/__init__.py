"""Benchmarks behind ``zanloop bench`` (what each figure means: benchmarks/README.md).

``core`` runs, in one go: (a) verified WeChat Pay notifications settled per second through the
HTTP API on SQLite, (b) batched ledger postings on SQLite beside the raw ``sqlite3`` ceiling,
and (c) the same postings on PostgreSQL. ``notify``, ``ledger`` and ``postgres`` run a part.
``risk`` times ``risk.decide``: the decision in-process, with Redis, and logged on SQLite.
``pins`` reads the pinned list over HTTP with 1,000,000 pins in the database and times pin
purchases settled by their verified payment notifications. ``rules`` evaluates events against
500 campaigns with the rules engine, beside rule libraries from PyPI on the same rules.
``loyalty`` ingests member events in batches (events -> rules -> lots -> ledger) on SQLite and
PostgreSQL, each beside the raw insert ceiling for the same rows, and reads balances over HTTP.
``fraud`` scores the group fake-engagement detectors (``fraud.domain.detect``) on synthetic
graphs of about 1M interactions with known rings, and times them, beside FRAUDAR if installed.
Every run checks its own results and fails (exit status 1) if they are wrong.
"""

from __future__ import annotations

from zanloop.bench.core import run_core
from zanloop.bench.fraud import run_fraud
from zanloop.bench.loyalty import run_loyalty
from zanloop.bench.pins import run_pins
from zanloop.bench.report import Report
from zanloop.bench.risk import run_risk
from zanloop.bench.rules import run_rules

BENCHES: dict[str, tuple[str, ...]] = {
    "core": ("notify", "sqlite", "postgres"),
    "notify": ("notify",),
    "ledger": ("sqlite", "postgres"),
    "sqlite": ("notify", "sqlite"),
    "postgres": ("postgres",),
    "risk": ("risk",),
    "pins": ("pins",),
    "rules": ("rules",),
    "loyalty": ("loyalty",),
    "fraud": ("fraud",),
}


class BenchFailed(SystemExit):
    """The benchmark's self-check found wrong results (exits with status 1)."""


def run(what: str = "core", *, quick: bool = False) -> Report:
    """Run a benchmark and return its report, without printing."""
    if what not in BENCHES:
        raise SystemExit(f"unknown benchmark {what!r}; choose one of: {', '.join(BENCHES)}")
    if what == "risk":
        return run_risk(quick=quick)
    if what == "pins":
        return run_pins(quick=quick)
    if what == "rules":
        return run_rules(quick=quick)
    if what == "loyalty":
        return run_loyalty(quick=quick)
    if what == "fraud":
        return run_fraud(quick=quick)
    return run_core(what, BENCHES[what], quick=quick)


def run_bench(what: str, *, quick: bool = False) -> None:
    """Run, print the table, and raise BenchFailed if the self-check did not pass."""
    report = run(what, quick=quick)
    print(report.render(), flush=True)
    if not report.passed:
        failed = ", ".join(c.name for c in report.checks if not c.ok)
        raise BenchFailed(f"benchmark self-check failed: {failed}")


__all__ = ["BENCHES", "BenchFailed", "run", "run_bench"]
