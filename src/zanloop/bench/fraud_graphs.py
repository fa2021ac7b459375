"""Synthetic interaction graphs with known attacks, for ``zanloop bench fraud``.

Honest traffic: each edge picks a user by activity and a target by popularity, both power laws
over a shuffled rank (``1 / (rank + 10) ** exponent``), at a time spread over a month with a
daily rhythm. Attacks are injected on top, and the fake accounts are returned as the truth:

- a dense block of ``block_users x block_targets`` at a given density, with one of four
  camouflages: ``none``; ``random`` (each fake account also acts on as many random targets as it
  has fake edges); ``popular`` (the same, on targets chosen by popularity); ``hijacked`` (the
  fake accounts are honest accounts taken over, chosen by activity, their own history the
  camouflage);
- a lockstep burst: each fake account hits about ``lockstep_hits`` of ``lockstep_targets``
  popular targets within one ``burst_seconds`` window, and acts on popular targets at random
  times over the month besides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zanloop.fraud.graph import FloatArray, IntArray, Interactions

MONTH = 30 * 86_400
START = 1_767_225_600  # 2026-01-01T00:00:00Z
CAMOUFLAGES = ("none", "random", "popular", "hijacked")


@dataclass(frozen=True)
class Shape:
    users: int = 100_000
    targets: int = 50_000
    edges: int = 1_000_000
    user_exponent: float = 0.7
    target_exponent: float = 0.9


@dataclass(frozen=True)
class Case:
    name: str
    graph: Interactions
    fake_users: frozenset[str]


def _power_law(rng: np.random.Generator, n: int, exponent: float) -> FloatArray:
    weights = 1.0 / (rng.permutation(n).astype(np.float64) + 10.0) ** exponent
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _times(rng: np.random.Generator, n: int) -> IntArray:
    """Spread over the month, busier in the evening (Beijing time) than at night."""
    day = rng.integers(0, 30, n)
    hour_weights = np.array(
        [1, 1, 1, 1, 1, 1, 2, 3, 4, 4, 4, 5, 6, 5, 4, 4, 4, 5, 6, 8, 9, 8, 5, 2]
    )
    hour = rng.choice(24, n, p=hour_weights / hour_weights.sum())
    utc_hour = (hour - 8) % 24
    return (START + day * 86_400 + utc_hour * 3600 + rng.integers(0, 3600, n)).astype(np.int64)


class Generator:
    def __init__(self, seed: int, shape: Shape = Shape()) -> None:
        self.rng = np.random.default_rng(seed)
        self.shape = shape
        self.activity = _power_law(self.rng, shape.users, shape.user_exponent)
        self.popularity = _power_law(self.rng, shape.targets, shape.target_exponent)
        n = shape.edges
        self.user = self.rng.choice(shape.users, n, p=self.activity).astype(np.int64)
        self.target = self.rng.choice(shape.targets, n, p=self.popularity).astype(np.int64)
        self.at = _times(self.rng, n)

    def honest(self) -> Case:
        return self._case("honest", [], [], [], 0, frozenset())

    def block(
        self,
        density: float,
        camouflage: str,
        users: int = 200,
        targets: int = 200,
    ) -> Case:
        rng = self.rng
        if camouflage not in CAMOUFLAGES:
            raise ValueError(f"camouflage is one of {CAMOUFLAGES}")
        hijacked = camouflage == "hijacked"
        if hijacked:
            # Taken over in proportion to activity: busy accounts bring long honest histories.
            fakes = rng.choice(self.shape.users, users, replace=False, p=self.activity)
            fakes = fakes.astype(np.int64)
            new_accounts = 0
        else:
            fakes = self.shape.users + np.arange(users, dtype=np.int64)
            new_accounts = users
        block_targets = rng.choice(self.shape.targets, targets, replace=False)
        hit = rng.random((users, targets)) < density
        fu, ft = np.nonzero(hit)
        extra_u = [fakes[fu]]
        extra_t = [block_targets[ft]]
        if camouflage in ("random", "popular"):
            per_user = hit.sum(axis=1)
            camo_u = np.repeat(fakes, per_user)
            p = None if camouflage == "random" else self.popularity
            extra_u.append(camo_u)
            extra_t.append(rng.choice(self.shape.targets, camo_u.size, p=p))
        u, t = np.concatenate(extra_u), np.concatenate(extra_t)
        name = f"block {users}x{targets} density {density:.2f} camouflage {camouflage}"
        truth = frozenset(_user_name(int(f)) for f in fakes)
        return self._case(name, u, t, _times(rng, u.size), new_accounts, truth)

    def lockstep(
        self,
        users: int = 200,
        targets: int = 20,
        hits: int = 10,
        burst_seconds: int = 3600,
        camouflage_per_user: int = 30,
    ) -> Case:
        rng = self.rng
        fakes = self.shape.users + np.arange(users, dtype=np.int64)
        burst_targets = rng.choice(self.shape.targets, targets, replace=False, p=self.popularity)
        burst_start = START + int(rng.integers(2, 28)) * 86_400 + int(rng.integers(0, 86_400))
        chosen = np.argsort(rng.random((users, targets)), axis=1)[:, :hits]
        u = np.repeat(fakes, hits)
        t = burst_targets[chosen.ravel()]
        at = burst_start + rng.integers(0, burst_seconds, u.size)
        camo_u = np.repeat(fakes, camouflage_per_user)
        camo_t = rng.choice(self.shape.targets, camo_u.size, p=self.popularity)
        name = (
            f"lockstep {users} accounts, {hits} of {targets} targets in "
            f"{burst_seconds // 60} min, camouflage over the month"
        )
        truth = frozenset(_user_name(int(f)) for f in fakes)
        return self._case(
            name,
            np.concatenate((u, camo_u)),
            np.concatenate((t, camo_t)),
            np.concatenate((at, _times(rng, camo_u.size))),
            users,
            truth,
        )

    def _case(
        self,
        name: str,
        u: IntArray | list[int],
        t: IntArray | list[int],
        at: IntArray | list[int],
        new_accounts: int,
        truth: frozenset[str],
    ) -> Case:
        n_users = self.shape.users + new_accounts
        graph = Interactions.from_indexed(
            np.concatenate((self.user, np.asarray(u, dtype=np.int64))),
            np.concatenate((self.target, np.asarray(t, dtype=np.int64))),
            np.concatenate((self.at, np.asarray(at, dtype=np.int64))),
            _Names("u", n_users),
            _Names("t", self.shape.targets),
        )
        return Case(name, graph, truth)


def _user_name(index: int) -> str:
    return f"u{index}"


class _Names(Sequence[str]):
    """``prefix + index`` for ``range(n)``, without building a million strings up front."""

    def __init__(self, prefix: str, n: int) -> None:
        self.prefix, self.n = prefix, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        if not 0 <= index < self.n:
            raise IndexError(index)
        return f"{self.prefix}{index}"
