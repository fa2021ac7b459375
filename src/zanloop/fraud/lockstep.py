"""Lockstep bursts: accounts that act on the same targets within the same short window.

After CopyCatch (Beutel et al., WWW 2013) and SynchroTrap (Cao et al., CCS 2014): a ring that
likes many targets in one burst may be invisible in the static graph, because its targets are
popular and each account spreads camouflage over the month, but in time it stands out. Each
interaction is placed in a *cell*, a target in a window of ``2 * burst`` seconds; two grids of
such windows, offset by ``burst``, mean any burst no longer than ``burst`` falls whole inside
one cell. The users x cells graph is then searched for dense blocks exactly as the static
graph is (``dense.find_blocks``): honest traffic spreads over thousands of cells, a burst
crowds into a few.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zanloop.fraud.dense import Bipartite, Block, BlockParams, find_blocks
from zanloop.fraud.graph import IntArray, Interactions


@dataclass(frozen=True)
class LockstepParams:
    burst_seconds: int = 3600
    # A cell with fewer users cannot hold a group; dropping them keeps the graph small.
    min_cell_users: int = 3
    # The group must make at least this share of the interactions in its cells. A news hour
    # crowds a few targets too, and its keenest fans stand out from the degree model, but they
    # are the tail of a crowd; a ring is most of the crowd it makes.
    min_share: float = 0.3
    blocks: BlockParams = field(default_factory=lambda: BlockParams(min_density=0.1))


@dataclass(frozen=True)
class Burst:
    block: Block
    users: IntArray
    targets: IntArray
    # Every interaction of the group in its cells (what a revoke covers), and the shortest
    # span holding 95% of them (the burst itself, without a stray camouflage like).
    start: int
    end: int
    core_start: int
    core_end: int
    # The group's interactions inside its cells, and their share of all interactions there.
    edges: int
    share: float


def find_bursts(graph: Interactions, params: LockstepParams = LockstepParams()) -> list[Burst]:
    if graph.n_edges == 0:
        return []
    width = 2 * params.burst_seconds
    origin = int(graph.at.min())
    users, cells, targets, times = [], [], [], []
    for grid in (0, 1):
        window = (graph.at - origin + grid * params.burst_seconds) // width
        key = (window * graph.n_targets + graph.target) * 2 + grid
        users.append(graph.user)
        cells.append(key)
        targets.append(graph.target)
        times.append(graph.at)
    user = np.concatenate(users)
    cell_key = np.concatenate(cells)
    target = np.concatenate(targets)
    at = np.concatenate(times)
    keys, cell = np.unique(cell_key, return_inverse=True)
    crowd = np.bincount(cell, minlength=keys.size)
    # The degree model counts every cell: a burst must stand out against the users' whole
    # activity, not only against the few crowded cells kept for the search.
    activity = np.bincount(user, minlength=graph.n_users).astype(np.float64)
    total = int(user.size)
    keep = crowd[cell] >= params.min_cell_users
    user, cell, target, at = user[keep], cell[keep], target[keep], at[keep]
    if user.size == 0:
        return []
    kept_cells, cell = np.unique(cell, return_inverse=True)
    crowd_kept = crowd[kept_cells]
    cell_target = np.zeros(kept_cells.size, dtype=np.int64)
    cell_target[cell] = target
    bipartite = Bipartite(user, cell.astype(np.int64), graph.n_users, kept_cells.size)
    bursts = []
    for block in find_blocks(bipartite, params.blocks, activity, total):
        in_block = np.isin(user, block.rows) & np.isin(cell, block.cols)
        block_targets = np.unique(cell_target[block.cols])
        share = block.edges / max(1, int(crowd_kept[block.cols].sum()))
        if block_targets.size < params.blocks.min_targets or share < params.min_share:
            continue
        member_at = at[in_block]
        core_start, core_end = _core_window(np.sort(member_at))
        # The same interaction sits in a cell of each grid: count it once.
        pairs = np.unique(np.stack((user[in_block], target[in_block], member_at)), axis=1)
        bursts.append(
            Burst(
                block=block,
                users=block.rows,
                targets=block_targets,
                start=int(member_at.min()),
                end=int(member_at.max()),
                core_start=core_start,
                core_end=core_end,
                edges=int(pairs.shape[1]),
                share=share,
            )
        )
    return bursts


def _core_window(times: IntArray, share: float = 0.95) -> tuple[int, int]:
    """The shortest span holding ``share`` of the sorted times: a member's odd camouflage
    like on the same target an hour later does not stretch the burst."""
    n = times.size
    k = max(1, int(np.ceil(share * n)))
    widths = times[k - 1 :] - times[: n - k + 1]
    first = int(np.argmin(widths))
    return int(times[first]), int(times[first + k - 1])
