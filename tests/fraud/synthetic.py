"""Synthetic interaction graphs with known attacks, for testing the fraud detectors.

Written independently of the benchmark's generator (``zanloop.bench.fraud_graphs``), on
purpose: the detectors were tuned on that one, so these tests check them on graphs of another
shape.

Honest traffic is a Chung-Lu style graph: every interaction picks a user in proportion to a
lognormal activity and a target in proportion to a Pareto (power-law tail) popularity, at a
time over one month with a daily rhythm (most activity in the evening). Optional extras make
it less uniform, the way real traffic is: *interests* (each user and target belongs to a topic
and a share of a user's interactions stay within it) and *viral moments* (a target picked up by
hundreds of users within an hour or two).

Attacks are added on top, each returning the ground truth (its users' and targets' names):

* ``dense_block``: a ring of accounts acting on the same targets, with camouflage ``none``,
  ``random`` (extra interactions with uniformly random targets), ``popular`` (extra
  interactions biased to popular targets) or ``hijacked`` (the ring is made of existing honest
  accounts, which keep their history).
* ``lockstep``: a group acting on the same few targets within a short burst (or, with
  ``spread=True``, the same interactions over the whole month), with camouflage over the month.

``graph()`` shuffles user and target numbers, so nothing about an attack shows in its indexes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from zanloop.fraud.graph import IntArray, Interactions

DAY = 86_400
MONTH = 30 * DAY
# 2026-03-01T00:00:00Z
T0 = 1_772_323_200


@dataclass(frozen=True)
class Shape:
    n_users: int = 20_000
    n_targets: int = 8_000
    n_edges: int = 150_000
    # Users' activity is lognormal(0, user_sigma); targets' popularity is 1 + Pareto(alpha).
    user_sigma: float = 1.1
    target_alpha: float = 1.4
    # Topics of interest (0: none) and the share of a user's interactions within its topic.
    topics: int = 0
    topic_share: float = 0.0
    # Targets that go viral: each gets viral_users users within a couple of hours.
    viral: int = 0
    viral_users: int = 300


@dataclass(frozen=True)
class Truth:
    users: frozenset[str]
    targets: frozenset[str]
    start: int | None = None
    end: int | None = None


@dataclass
class Synthetic:
    shape: Shape
    seed: int
    rng: np.random.Generator = field(init=False)
    n_users: int = field(init=False)
    n_targets: int = field(init=False)
    activity: np.ndarray = field(init=False)
    popularity: np.ndarray = field(init=False)
    _user: list[IntArray] = field(init=False, default_factory=list)
    _target: list[IntArray] = field(init=False, default_factory=list)
    _at: list[IntArray] = field(init=False, default_factory=list)
    _used_targets: set[int] = field(init=False, default_factory=set)
    _used_users: set[int] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        s = self.shape
        self.rng = np.random.default_rng(self.seed)
        self.n_users, self.n_targets = s.n_users, s.n_targets
        self.activity = self.rng.lognormal(0.0, s.user_sigma, s.n_users)
        popularity = 1.0 + self.rng.pareto(s.target_alpha, s.n_targets)
        # No honest target is liked by more than a fifth of all users.
        cap = 0.2 * s.n_users / s.n_edges * popularity.sum()
        self.popularity = np.minimum(popularity, cap)
        self._honest()

    # -- honest traffic ---------------------------------------------------------------------

    def _times(self, n: int) -> IntArray:
        day = self.rng.integers(0, 30, n)
        hour = self.rng.normal(20.0, 4.0, n) % 24.0
        return (T0 + day * DAY + (hour * 3600).astype(np.int64)).astype(np.int64)

    def _honest(self) -> None:
        s, rng = self.shape, self.rng
        p_user = self.activity / self.activity.sum()
        p_target = self.popularity / self.popularity.sum()
        user = rng.choice(s.n_users, s.n_edges, p=p_user)
        target = rng.choice(s.n_targets, s.n_edges, p=p_target)
        if s.topics and s.topic_share > 0:
            user_topic = rng.integers(0, s.topics, s.n_users)
            target_topic = rng.integers(0, s.topics, s.n_targets)
            local = rng.random(s.n_edges) < s.topic_share
            for topic in range(s.topics):
                pool = np.flatnonzero(target_topic == topic)
                chosen = local & (user_topic[user] == topic)
                weights = self.popularity[pool] / self.popularity[pool].sum()
                target[chosen] = rng.choice(pool, int(chosen.sum()), p=weights)
        self.add(user, target, self._times(s.n_edges))
        for _ in range(s.viral):
            hit = int(rng.choice(s.n_targets, p=p_target))
            fans = rng.choice(s.n_users, s.viral_users, p=p_user)
            start = T0 + int(rng.integers(0, MONTH - 3 * 3600))
            at = start + rng.integers(0, 2 * 3600, s.viral_users)
            self.add(fans, np.full(s.viral_users, hit), at)

    # -- building blocks --------------------------------------------------------------------

    def add(self, user: np.ndarray, target: np.ndarray, at: np.ndarray) -> None:
        """Interactions ``user[i] -> target[i]`` at ``at[i]`` (generator numbering)."""
        self._user.append(np.asarray(user, dtype=np.int64))
        self._target.append(np.asarray(target, dtype=np.int64))
        self._at.append(np.asarray(at, dtype=np.int64))

    def _new_users(self, k: int) -> IntArray:
        ids = np.arange(self.n_users, self.n_users + k, dtype=np.int64)
        self.n_users += k
        return ids

    def _fresh(self, pool: IntArray, k: int, used: set[int]) -> IntArray:
        """``k`` members of ``pool`` no earlier attack used."""
        free = np.array([i for i in pool.tolist() if i not in used], dtype=np.int64)
        chosen = self.rng.choice(free, k, replace=False)
        used.update(chosen.tolist())
        return np.sort(chosen)

    def honest_degrees(self) -> IntArray:
        user = np.concatenate(self._user)
        target = np.concatenate(self._target)
        pairs = np.unique(user * self.n_targets + target)
        return np.bincount(pairs // self.n_targets, minlength=self.n_users)

    def target_degrees(self) -> IntArray:
        user = np.concatenate(self._user)
        target = np.concatenate(self._target)
        pairs = np.unique(user * self.n_targets + target)
        return np.bincount(pairs % self.n_targets, minlength=self.n_targets)

    def _camouflage(self, users: IntArray, per_user: int, how: str) -> None:
        if per_user <= 0 or how in ("none", "hijacked"):
            return
        n = users.size * per_user
        if how == "random":
            target = self.rng.integers(0, self.n_targets, n)
        elif how == "popular":
            # In proportion to popularity, as FRAUDAR's biased camouflage.
            p = self.popularity / self.popularity.sum()
            target = self.rng.choice(self.n_targets, n, p=p)
        else:
            raise ValueError(how)
        self.add(np.repeat(users, per_user), target, T0 + self.rng.integers(0, MONTH, n))

    # -- attacks ----------------------------------------------------------------------------

    def dense_block(
        self,
        n_users: int,
        n_targets: int,
        density: float,
        camouflage: str = "none",
        per_user: int = 0,
    ) -> Truth:
        """A ring of ``n_users`` accounts acting on ``n_targets`` targets, each pair with
        probability ``density``, at times over the month. Targets are picked uniformly, so most
        are obscure (the kind a ring promotes). ``hijacked`` takes over honest accounts with
        some history instead of creating new ones."""
        rng = self.rng
        targets = self._fresh(np.arange(self.shape.n_targets), n_targets, self._used_targets)
        if camouflage == "hijacked":
            degree = self.honest_degrees()[: self.shape.n_users]
            pool = np.flatnonzero((degree >= 5) & (degree <= 60))
            users = self._fresh(pool, n_users, self._used_users)
        else:
            users = self._new_users(n_users)
        mask = rng.random((n_users, n_targets)) < density
        # Every account takes part (an idle member is no member at all).
        mask[np.arange(n_users), rng.integers(0, n_targets, n_users)] = True
        r, c = np.nonzero(mask)
        self.add(users[r], targets[c], T0 + rng.integers(0, MONTH, r.size))
        self._camouflage(users, per_user, camouflage)
        return self._truth(users, targets)

    def lockstep(
        self,
        n_users: int,
        n_targets: int,
        density: float = 0.8,
        popular: bool = True,
        spread: bool = False,
        per_user: int = 20,
        burst_seconds: int = 40 * 60,
        start: int | None = None,
    ) -> Truth:
        """A group acting on the same targets within one burst of ``burst_seconds`` (or, with
        ``spread``, at times over the whole month); ``popular`` targets are among the 60 most
        popular, so the static graph does not show the group. Each account also makes
        ``per_user`` interactions with random targets over the month. The burst begins at
        ``start`` (Unix seconds), or on a random whole hour well inside the month."""
        rng = self.rng
        if popular:
            top = np.argsort(-self.target_degrees())[:60].astype(np.int64)
            targets = self._fresh(top, n_targets, self._used_targets)
        else:
            targets = self._fresh(np.arange(self.shape.n_targets), n_targets, self._used_targets)
        users = self._new_users(n_users)
        mask = rng.random((n_users, n_targets)) < density
        mask[np.arange(n_users), rng.integers(0, n_targets, n_users)] = True
        r, c = np.nonzero(mask)
        if start is None:
            start = T0 + int(rng.integers(2, 28)) * DAY + int(rng.integers(0, 23)) * 3600
        if spread:
            at = T0 + rng.integers(0, MONTH, r.size)
            window = (None, None)
        else:
            at = start + rng.integers(0, burst_seconds, r.size)
            window = (int(at.min()), int(at.max()))
        self.add(users[r], targets[c], at)
        self._camouflage(users, per_user, "random")
        return self._truth(users, targets, *window)

    # -- output -----------------------------------------------------------------------------

    def fork(self, seed: int) -> Synthetic:
        """A copy sharing this one's traffic so far, with its own random stream: attacks
        added to it leave this one untouched (the honest graph is generated once)."""
        other = copy.copy(self)
        other.seed = seed
        other.rng = np.random.default_rng(seed)
        other._user, other._target, other._at = list(self._user), list(self._target), list(self._at)
        other._used_targets, other._used_users = set(self._used_targets), set(self._used_users)
        return other

    def _truth(
        self, users: IntArray, targets: IntArray, start: int | None = None, end: int | None = None
    ) -> Truth:
        # Names are fixed at creation; the shuffle in graph() only changes numbering.
        return Truth(
            frozenset(f"u{i}" for i in users.tolist()),
            frozenset(f"t{j}" for j in targets.tolist()),
            start,
            end,
        )

    def graph(self) -> Interactions:
        perm_rng = np.random.default_rng(self.seed + 7_919)
        user_perm = perm_rng.permutation(self.n_users).astype(np.int64)
        target_perm = perm_rng.permutation(self.n_targets).astype(np.int64)
        user = user_perm[np.concatenate(self._user)]
        target = target_perm[np.concatenate(self._target)]
        at = np.concatenate(self._at)
        users = [""] * self.n_users
        for i, p in enumerate(user_perm.tolist()):
            users[p] = f"u{i}"
        targets = [""] * self.n_targets
        for j, p in enumerate(target_perm.tolist()):
            targets[p] = f"t{j}"
        return Interactions.from_indexed(user, target, at, users, targets)


def honest(shape: Shape = Shape(), seed: int = 0) -> Synthetic:
    return Synthetic(shape, seed)


def f1(found: set[str] | frozenset[str], truth: set[str] | frozenset[str]) -> float:
    """Account-level F1 of a found set against the truth."""
    if not found or not truth:
        return 0.0
    hit = len(set(found) & set(truth))
    if hit == 0:
        return 0.0
    precision, recall = hit / len(found), hit / len(truth)
    return 2 * precision * recall / (precision + recall)


def precision(found: set[str] | frozenset[str], truth: set[str] | frozenset[str]) -> float:
    return len(set(found) & set(truth)) / len(found) if found else 0.0


def recall(found: set[str] | frozenset[str], truth: set[str] | frozenset[str]) -> float:
    return len(set(found) & set(truth)) / len(truth) if truth else 0.0
