"""Accounts that share a device or an address.

A phone farm runs many accounts on few devices, and a ring working from one room shares its
public address. Accounts are linked through every device (or address on one day) that at least
``min_shared`` of them used; each connected group of at least ``min_users`` accounts is a
cluster. An address alone is weaker evidence than a device (a campus or a carrier gateway puts
many honest users behind one), so addresses count per day and need more accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from zanloop.fraud.graph import IntArray


@dataclass(frozen=True)
class ClusterParams:
    min_shared: int = 3
    min_users: int = 3
    # A value used by more accounts than this is infrastructure (a gateway), not a ring.
    max_shared: int = 500


@dataclass(frozen=True)
class Cluster:
    users: IntArray
    # The shared values (indexes) and how many of the cluster's accounts used each.
    values: IntArray
    value_users: IntArray

    @property
    def score(self) -> float:
        """Accounts per shared value: one device behind 20 accounts scores 20."""
        return float(self.users.size / max(1, self.values.size))


def find_clusters(
    user: IntArray, value: IntArray, n_users: int, n_values: int, params: ClusterParams
) -> list[Cluster]:
    """Groups of users linked by shared values, largest evidence first."""
    if user.size == 0:
        return []
    pairs = np.unique(np.stack((user, value)), axis=1)
    user, value = pairs[0], pairs[1]
    sharing = np.bincount(value, minlength=n_values)
    keep = (sharing[value] >= params.min_shared) & (sharing[value] <= params.max_shared)
    user, value = user[keep], value[keep]
    if user.size == 0:
        return []
    # Users and values in one graph: users 0..n_users-1, values after them.
    n = n_users + n_values
    graph = sparse.coo_matrix((np.ones(user.size), (user, value + n_users)), shape=(n, n)).tocsr()
    _, label = connected_components(graph, directed=False)
    found = []
    for component in np.unique(label[user]):
        members = np.unique(user[label[user] == component])
        if members.size < params.min_users:
            continue
        in_component = label[value + n_users] == component
        values, counts = np.unique(value[in_component], return_counts=True)
        found.append(Cluster(members, values, counts))
    return sorted(found, key=lambda c: (c.score, c.users.size), reverse=True)
