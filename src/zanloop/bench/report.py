"""What a benchmark run found: figures against their targets, and the self-checks behind them."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    MET = "met"
    MISSED = "MISSED"
    INFO = ""
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Figure:
    section: str
    label: str
    value: str
    target: str = ""
    verdict: Verdict = Verdict.INFO


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    title: str
    figures: list[Figure] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self,
        section: str,
        label: str,
        value: str,
        target: str = "",
        met: bool | None = None,
    ) -> None:
        verdict = Verdict.INFO if met is None else (Verdict.MET if met else Verdict.MISSED)
        self.figures.append(Figure(section, label, value, target, verdict))

    def skip(self, section: str, label: str, reason: str) -> None:
        self.figures.append(Figure(section, label, "-", "", Verdict.SKIPPED))
        self.notes.append(f"{section} skipped: {reason}")

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    def render(self) -> str:
        headers = ("", "figure", "value", "target", "")
        rows = [(f.section, f.label, f.value, f.target, f.verdict.value) for f in self.figures]
        widths = [max(len(r[i]) for r in (headers, *rows)) for i in range(len(headers))]
        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))

        def line(cells: Sequence[str]) -> str:
            aligned = [
                cell.rjust(width) if i == 2 else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ]
            return "  ".join(aligned).rstrip()

        out = [self.title, rule, line(headers), rule]
        previous = None
        for row in rows:
            if previous is not None and row[0] and row[0] != previous:
                out.append("")
            if row[0]:
                previous = row[0]
            out.append(line(row))
        out.append(rule)
        for note in self.notes:
            out.append(f"note: {note}")
        failed = [c for c in self.checks if not c.ok]
        verdict = "PASSED" if not failed else "FAILED"
        out.append(f"self-check {verdict}: {sum(c.ok for c in self.checks)}/{len(self.checks)}")
        for c in self.checks:
            mark = "ok  " if c.ok else "FAIL"
            out.append(f"  [{mark}] {c.name}" + (f": {c.detail}" if c.detail else ""))
        return "\n".join(out)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "n/a"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def load_average() -> str:
    """The 1-minute load average, or n/a where the system does not tell."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def load_note(before: str, who: str = "other processes on the machine slow every figure") -> str:
    """The note every benchmark ends with: how busy the machine was while it ran."""
    return (
        f"1-minute load average {before} at the start, {load_average()} at the end "
        f"({os.cpu_count()} CPUs); {who}."
    )
