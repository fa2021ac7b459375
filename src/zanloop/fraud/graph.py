"""The interaction graph the detectors read: who acted on what, and when.

Users and targets are numbered densely (``0..n-1``) so the detectors work on numpy arrays; the
names stay beside them to turn findings back into ids. A user acting on the same target twice is
one edge (its first time is kept): a block's density counts distinct pairs, never repeats.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Interactions:
    """Edges ``users[user[i]] -> targets[target[i]]`` at ``at[i]`` (Unix seconds)."""

    user: IntArray
    target: IntArray
    at: IntArray
    users: Sequence[str]
    targets: Sequence[str]

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_targets(self) -> int:
        return len(self.targets)

    @property
    def n_edges(self) -> int:
        return int(self.user.size)

    @classmethod
    def from_records(cls, records: Iterable[tuple[str, str, int]]) -> Interactions:
        """From ``(user, target, unix_seconds)`` tuples, in any order."""
        rows = list(records)
        if not rows:
            return cls.from_arrays(np.array([], dtype=object), np.array([], dtype=object), [])
        users, targets, times = zip(*rows, strict=True)
        return cls.from_arrays(
            np.asarray(users, dtype=object), np.asarray(targets, dtype=object), times
        )

    @classmethod
    def from_arrays(
        cls, users: npt.ArrayLike, targets: npt.ArrayLike, at: npt.ArrayLike
    ) -> Interactions:
        """From three columns of equal length (names may be any hashable values)."""
        user_names, user = np.unique(np.asarray(users).astype(str), return_inverse=True)
        target_names, target = np.unique(np.asarray(targets).astype(str), return_inverse=True)
        return cls.from_indexed(
            user.astype(np.int64),
            target.astype(np.int64),
            np.asarray(at, dtype=np.int64),
            user_names.tolist(),
            target_names.tolist(),
        )

    @classmethod
    def from_indexed(
        cls,
        user: IntArray,
        target: IntArray,
        at: IntArray,
        users: Sequence[str],
        targets: Sequence[str],
    ) -> Interactions:
        """From numbered edges; repeated pairs collapse to their earliest time."""
        if not user.size == target.size == at.size:
            raise ValueError("user, target and at must have the same length")
        order = np.lexsort((at, target, user))
        user, target, at = user[order], target[order], at[order]
        first = np.ones(user.size, dtype=bool)
        first[1:] = (user[1:] != user[:-1]) | (target[1:] != target[:-1])
        return cls(user[first], target[first], at[first], users, targets)

    def matrix(self) -> sparse.csr_matrix:
        """The users x targets 0/1 matrix."""
        data = np.ones(self.n_edges, dtype=np.float64)
        return sparse.csr_matrix(
            (data, (self.user, self.target)), shape=(self.n_users, self.n_targets)
        )

    def without(self, user: IntArray, target: IntArray) -> Interactions:
        """The same graph less the edges inside the block ``user x target``."""
        in_block = np.isin(self.user, user) & np.isin(self.target, target)
        keep = ~in_block
        return Interactions(
            self.user[keep], self.target[keep], self.at[keep], self.users, self.targets
        )
