"""``zanloop bench fraud``: how well, how fast and in how much memory ``fraud.domain.detect``
finds rings of fake accounts, beside the published FRAUDAR when its extra is installed.

Graphs come from ``fraud_graphs.Generator`` (one seed per run, ``ZANLOOP_FRAUD_SEED``, default 1):
an honest graph of about 1M interactions (100k users x 50k targets; ``--quick``: 200k, 20k x 10k)
drawn once, and on top of it, one case at a time: no attack; a 200 x 200 block of fake accounts
(``--quick``: 100 x 100) at density 0.20 and 0.15 under each camouflage (none, random, popular,
hijacked); and a lockstep ring (each fake hits 10 of 20 popular targets within one hour).

Each case's graph is written to a file and ``detect(graph)`` (default ``ScanParams``, no
sightings) runs in a fresh ``python -c`` process: the wall time (``time.perf_counter``) and the
peak memory cover ``detect`` alone, never generating or loading the graph. Memory is the growth
of the kernel's resident-set high-water mark (``VmHWM`` in ``/proc/self/status``, the counter
``ru_maxrss`` reports), reset through ``/proc/self/clear_refs`` just before ``detect`` and read
after it, less the resident set at the reset. ``ru_maxrss`` itself would not do: a child started
by ``vfork`` + ``exec`` inherits its parent's peak there. Accounts flagged: the union of the
users of every group found, scored against the generator's fake accounts (precision, recall,
F1). FRAUDAR (``fraudar.export.greedy.logWeightedAveDegree``, GPL, optional extra
``fraudar-reference``) runs the same way on the same graphs, its row set the accounts flagged,
within ``ZANLOOP_FRAUD_REFERENCE_TIMEOUT`` seconds (default 120) per case.

Targets are reported as met or missed; the self-check fails only if the bench is broken: a case
without its fake accounts in the graph, or a detector that raised.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from zanloop.bench.fraud_graphs import CAMOUFLAGES, Case, Generator, Shape
from zanloop.bench.report import Report, load_average, load_note

# The targets: account-level F1 per block density, lockstep recall at a precision, and
# the cost of one scan of about 1M interactions.
F1_TARGETS = {0.20: 0.95, 0.15: 0.80}
LOCKSTEP_RECALL = 0.90
LOCKSTEP_PRECISION = 0.95
TARGET_SECONDS = 10.0
TARGET_MB = 1_000.0
DETECT_TIMEOUT = 600.0
REFERENCE_TIMEOUT = 120.0
INSTALL = "uv sync --extra fraudar-reference"


@dataclass(frozen=True)
class FraudSizes:
    shape: Shape
    block_users: int
    block_targets: int
    blocks: tuple[tuple[float, str], ...]
    lockstep_users: int


DEFAULT = FraudSizes(Shape(), 200, 200, tuple((d, c) for d in F1_TARGETS for c in CAMOUFLAGES), 200)
QUICK = FraudSizes(
    Shape(users=20_000, targets=10_000, edges=200_000),
    100,
    100,
    ((0.20, "none"), (0.15, "popular"), (0.15, "hijacked")),
    100,
)

# Run in a fresh interpreter: argv is method ("zanloop" or "fraudar"), graph file, result file.
# Users and targets are named by their index, so the flagged accounts come back as indexes.
_CHILD = """
import gc, json, sys, time
import numpy as np

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)

method, source, out = sys.argv[1:4]
with np.load(source) as data:
    user, target, at = data["user"], data["target"], data["at"]
    n_users, n_targets = int(data["n_users"]), int(data["n_targets"])
if method == "zanloop":
    from zanloop.fraud.domain import detect
    from zanloop.fraud.graph import Interactions
    graph = Interactions(
        user, target, at, [str(i) for i in range(n_users)], [str(i) for i in range(n_targets)]
    )
    run = lambda: detect(graph)
else:
    import contextlib, io
    from scipy import sparse
    from fraudar.export import greedy
    matrix = sparse.csr_matrix(
        (np.ones(user.size), (user, target)), shape=(n_users, n_targets), dtype=np.float64
    )
    def run():
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
            return greedy.logWeightedAveDegree(matrix)
gc.collect()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the high-water mark to the current resident set
before = status("VmRSS")
started = time.perf_counter()
found = run()
seconds = time.perf_counter() - started
peak = status("VmHWM")
if method == "zanloop":
    flagged = sorted({int(m.id) for g in found for m in g.users})
    in_time = sorted({int(m.id) for g in found if g.kind.value == "lockstep" for m in g.users})
    groups = [f"{g.kind.value} {len(g.users)}x{len(g.targets)}" for g in found]
else:
    (rows, cols), _ = found
    flagged, groups = sorted(int(r) for r in rows), [f"{len(rows)}x{len(cols)}"]
    in_time = []
with open(out, "w") as f:
    json.dump({"flagged": flagged, "lockstep": in_time, "groups": groups, "seconds": seconds,
               "growth": peak - before, "peak": peak}, f)
"""


@dataclass(frozen=True)
class Run:
    """One detector on one case: what it flagged and what it cost (``None``: no result)."""

    flagged: frozenset[str] | None
    # Each group found, as "kind users x targets".
    groups: tuple[str, ...] = ()
    seconds: float = 0.0
    growth_mb: float = 0.0
    peak_mb: float = 0.0
    error: str = ""
    timed_out: bool = False
    # What the lockstep detector alone flagged (the static detector may find a ring too).
    in_time: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Plan:
    """A case to generate, and which target it is judged against (neither: the honest graph)."""

    section: str
    make: Callable[[], Case]
    f1_target: float | None = None
    lockstep: bool = False


@dataclass(frozen=True)
class Score:
    flagged: int
    caught: int
    fake: int

    @property
    def precision(self) -> float:
        return self.caught / self.flagged if self.flagged else 0.0

    @property
    def recall(self) -> float:
        return self.caught / self.fake if self.fake else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def text(self) -> str:
        return f"{self.precision:.3f} / {self.recall:.3f} / {self.f1:.3f}"


def run_fraud(*, quick: bool = False) -> Report:
    sizes = QUICK if quick else DEFAULT
    seed = int(os.environ.get("ZANLOOP_FRAUD_SEED", "1"))
    budget = float(os.environ.get("ZANLOOP_FRAUD_REFERENCE_TIMEOUT", str(REFERENCE_TIMEOUT)))
    report = Report(
        f"zanloop bench fraud ({'quick' if quick else 'default'} sizes, seed {seed}) | "
        f"Python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs"
    )
    load_before = load_average()
    started = time.perf_counter()
    reference = _reference_available()
    shape = sizes.shape
    generator = Generator(seed, shape)
    generated = 0.0
    with tempfile.TemporaryDirectory(prefix="zanloop-bench-fraud-") as tmp:
        workdir = Path(tmp)
        for n, plan in enumerate(_plans(generator, sizes)):
            made = time.perf_counter()
            case = plan.make()
            generated += time.perf_counter() - made
            if n == 0:
                report.add(
                    "graph",
                    "users x targets, honest interactions (distinct)",
                    f"{shape.users:,} x {shape.targets:,}, {case.graph.n_edges:,}",
                )
                report.add(
                    "graph",
                    "fake block; lockstep ring (on the same honest graph)",
                    f"{sizes.block_users} x {sizes.block_targets}; {sizes.lockstep_users} "
                    "accounts, 10 of 20 targets in 1 h",
                )
            source = workdir / "graph.npz"
            np.savez(
                source,
                user=case.graph.user,
                target=case.graph.target,
                at=case.graph.at,
                n_users=np.int64(case.graph.n_users),
                n_targets=np.int64(case.graph.n_targets),
            )
            ours = _measure("zanloop", source, case, DETECT_TIMEOUT)
            theirs = _measure("fraudar", source, case, budget) if reference else None
            _report_case(report, plan, case, ours, theirs, budget)
    if not reference:
        report.skip(
            "reference",
            "FRAUDAR (rgmining-fraudar)",
            f"rgmining-fraudar is not installed; `{INSTALL}` adds it (GPL, bench only), "
            "`uv sync` removes it",
        )
    report.notes.append(
        "time and memory are of detect alone, in a fresh process per case: memory is the peak "
        "growth of the resident set (VmHWM reset before detect, minus VmRSS at the reset)"
    )
    report.notes.append(
        f"wall time {time.perf_counter() - started:.1f} s, of which generating graphs "
        f"{generated:.1f} s"
    )
    if quick:
        report.notes.append("quick sizes: the targets are the issue's, set for the default sizes")
    report.notes.append(load_note(load_before))
    return report


def _plans(generator: Generator, sizes: FraudSizes) -> list[Plan]:
    """The cases in a fixed order: each draws from the generator's one random stream."""
    u, t = sizes.block_users, sizes.block_targets
    plans = [Plan("honest", generator.honest)]
    for density, camouflage in sizes.blocks:
        plans.append(
            Plan(
                f"block {density:.2f} {camouflage}",
                partial(generator.block, density, camouflage, users=u, targets=t),
                f1_target=F1_TARGETS[density],
            )
        )
    plans.append(
        Plan("lockstep", partial(generator.lockstep, users=sizes.lockstep_users), lockstep=True)
    )
    return plans


def _reference_available() -> bool:
    try:  # GPL: imported here only, and only if installed
        importlib.import_module("fraudar.export.greedy")
    except ImportError:
        return False
    return True


def _measure(method: str, source: Path, case: Case, timeout: float) -> Run:
    out = source.with_suffix(f".{method}.json")
    out.unlink(missing_ok=True)
    command = [sys.executable, "-c", _CHILD, method, str(source), str(out)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Run(None, timed_out=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return Run(None, error=lines[-1] if lines else f"exit status {done.returncode}")
    result = json.loads(out.read_text())
    names = case.graph.users
    return Run(
        frozenset(names[int(i)] for i in result["flagged"]),
        tuple(str(g) for g in result["groups"]),
        float(result["seconds"]),
        result["growth"] / 1e6,
        result["peak"] / 1e6,
        in_time=frozenset(names[int(i)] for i in result["lockstep"]),
    )


def _score(run: Run, case: Case) -> Score:
    flagged = run.flagged or frozenset()
    return Score(len(flagged), len(flagged & case.fake_users), len(case.fake_users))


def _report_case(
    report: Report, plan: Plan, case: Case, ours: Run, theirs: Run | None, budget: float
) -> None:
    section = plan.section
    graph = case.graph
    present = {graph.users[int(i)] for i in np.unique(graph.user)}
    attack = plan.f1_target is not None or plan.lockstep
    sound = bool(case.fake_users) == attack and case.fake_users <= present
    report.check(
        f"{section}: the generator's fake accounts",
        sound,
        (f"{len(case.fake_users)}, all with interactions" if attack else "none")
        if sound
        else f"wrong for {case.name}",
    )
    report.check(f"{section}: detect ran", not ours.error, ours.error or "")
    if ours.flagged is None:
        why = "timed out" if ours.timed_out else f"failed: {ours.error}"
        report.add(section, "detect", f"{why} ({case.name})", met=False)
    else:
        score = _score(ours, case)
        found = ", ".join(ours.groups) or "none"
        if attack:
            if plan.f1_target is not None:
                target = f"F1 >= {plan.f1_target:.2f}"
                met = score.f1 >= plan.f1_target
            else:
                target = f"R >= {LOCKSTEP_RECALL:.2f} at P >= {LOCKSTEP_PRECISION:.2f}"
                met = score.recall >= LOCKSTEP_RECALL and score.precision >= LOCKSTEP_PRECISION
            report.add(section, "accounts: precision / recall / F1", score.text(), target, met)
            if plan.lockstep:
                alone = _score(Run(ours.in_time), case)
                report.add(section, "lockstep detector alone: P / R / F1", alone.text())
            report.add(
                section,
                "groups found; accounts flagged / fake",
                f"{len(ours.groups)} ({found}); {score.flagged} / {score.fake}",
            )
        else:
            report.add(
                section,
                "false groups / accounts flagged",
                f"{len(ours.groups)} / {score.flagged}",
                "0 / 0",
                not ours.groups and not score.flagged,
            )
        report.add(
            section,
            "detect wall time",
            f"{ours.seconds:.2f} s",
            f"<= {TARGET_SECONDS:.0f} s",
            ours.seconds <= TARGET_SECONDS,
        )
        report.add(
            section,
            "detect peak memory: RSS growth (process)",
            f"{ours.growth_mb:,.0f} MB ({ours.peak_mb:,.0f} MB)",
            f"<= {TARGET_MB:,.0f} MB",
            ours.growth_mb <= TARGET_MB,
        )
    if theirs is not None:
        label = "FRAUDAR: P / R / F1 (block), time, memory"
        if theirs.flagged is None:
            value = f"timed out after {budget:.0f} s" if theirs.timed_out else "failed"
            if theirs.error:
                report.notes.append(f"{section}: FRAUDAR failed: {theirs.error}")
        else:
            score = _score(theirs, case)
            cost = f"{theirs.seconds:.1f} s, {theirs.growth_mb:,.0f} MB"
            if attack:
                value = f"{score.text()} ({theirs.groups[0]}), {cost}"
            else:
                label = "FRAUDAR: block flagged, time, memory"
                value = f"{theirs.groups[0]}, {cost}"
        report.add(section, label, value)
