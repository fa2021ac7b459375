"""Dense blocks in a bipartite graph that camouflage cannot hide.

The attack this finds: a ring of accounts that all act on the same set of targets, far more
often than their own activity and the targets' popularity explain, while each account also acts
on honest targets to look ordinary (camouflage) or is an honest account taken over.

Four steps, each vectorised with numpy / scipy.sparse:

1. **Peel** (after FRAUDAR, Hooi et al., KDD 2016): repeatedly remove the nodes with the
   least weighted degree and keep the densest remainder. An edge weighs
   ``1 / sqrt((deg(user) + c) * (deg(target) + c))``: edges of busy users and popular targets
   count for little, so camouflage on popular targets and the long honest history of a hijacked
   account cannot lift an honest node into the block. (FRAUDAR's ``1 / log(deg(target) + 5)``
   lets hundreds of heavy honest users in once the block's density falls to 0.15.) Nodes go in
   rounds of the lowest ``peel_fraction`` rather than one at a time, which keeps the peel in numpy.
   A second peel lets each account's edges share one unit (``by_activity``), for narrow rings.
2. **Refine**: the remainder is only a seed. Every user is tested against the seed's targets,
   and every target against the seed's users, under the degree model (a user of degree ``d``
   hits a target set holding ``D`` of the graph's ``E`` edge ends ``d * D / E`` times on
   average). A node joins when its hits are far above that: the Poisson log-likelihood ratio
   beats ``log(n) + surprise``, a Bonferroni bound over all nodes tested (a member stays while
   it beats half of it). Alternating until nothing changes recovers members the peel dropped
   and drops honest nodes it kept.
3. **Judge**: a block is reported only if it is large enough, dense enough and far denser than
   the degree model expects (its lift). An honest graph has dense cores too (busy users on
   popular targets), but they are exactly as dense as the degrees predict.
4. **Split**: two rings that passed together are cut apart (``split``).

The search repeats on the graph less the edges of each block found, keeps the strongest blocks
and folds a ring that came off in pieces back into one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from zanloop.fraud.graph import FloatArray, IntArray

# Peel rounds remove 5% of the nodes until this many are left, then ``peel_fraction``.
FINE_PEEL_NODES = 20_000
# The largest block (accounts x targets) that ``split`` examines.
MAX_SPLIT_CELLS = 2_000_000


@dataclass(frozen=True)
class BlockParams:
    max_blocks: int = 5
    min_users: int = 10
    min_targets: int = 3
    min_density: float = 0.02
    min_lift: float = 3.0
    # Extra nats above the Bonferroni bound a node's hits must reach to join a block.
    surprise: float = 2.0
    # A node needs at least this many hits into the block to join it.
    min_hits: int = 3
    weight_offset: float = 5.0
    peel_fraction: float = 0.01
    refine_rounds: int = 8


@dataclass(frozen=True)
class Block:
    rows: IntArray
    cols: IntArray
    edges: int
    expected: float
    # Each member's hits into the other side of the block, and what the degree model expects.
    row_hits: IntArray
    row_expected: FloatArray
    col_hits: IntArray
    col_expected: FloatArray

    @property
    def density(self) -> float:
        return self.edges / max(1, self.rows.size * self.cols.size)

    @property
    def lift(self) -> float:
        return self.edges / self.expected if self.expected > 0 else float("inf")

    @property
    def score(self) -> float:
        """Nats of evidence against the degree model (Poisson log-likelihood ratio)."""
        return float(poisson_llr(np.array([self.edges]), np.array([self.expected]))[0])


def poisson_llr(observed: FloatArray | IntArray, expected: FloatArray) -> FloatArray:
    """``o log(o/e) - o + e`` where ``o > e``, else 0: a Chernoff bound on ``-log P(X >= o)``."""
    o = np.asarray(observed, dtype=np.float64)
    e = np.maximum(np.asarray(expected, dtype=np.float64), 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        llr = np.where(o > e, o * np.log(np.where(o > 0, o / e, 1.0)) - o + e, 0.0)
    return llr


class Bipartite:
    """Distinct edges ``row[i] -> col[i]`` with the indexes the peel and the tests need."""

    def __init__(self, row: IntArray, col: IntArray, n_rows: int, n_cols: int) -> None:
        order = np.lexsort((col, row))
        self.row, self.col = row[order], col[order]
        self.n_rows, self.n_cols = n_rows, n_cols
        self.row_degree = np.bincount(self.row, minlength=n_rows).astype(np.float64)
        self.col_degree = np.bincount(self.col, minlength=n_cols).astype(np.float64)
        self.row_ptr = np.concatenate(([0], np.cumsum(self.row_degree))).astype(np.int64)
        self.by_col = np.argsort(self.col, kind="stable")
        self.col_ptr = np.concatenate(([0], np.cumsum(self.col_degree))).astype(np.int64)
        ones = np.ones(self.row.size)
        self.matrix = sparse.csr_matrix((ones, (self.row, self.col)), shape=(n_rows, n_cols))
        self.matrix_t = self.matrix.T.tocsr()

    @property
    def n_edges(self) -> int:
        return int(self.row.size)

    def without_block(self, rows: IntArray, cols: IntArray) -> Bipartite:
        in_rows = np.zeros(self.n_rows, dtype=bool)
        in_rows[rows] = True
        in_cols = np.zeros(self.n_cols, dtype=bool)
        in_cols[cols] = True
        keep = ~(in_rows[self.row] & in_cols[self.col])
        return Bipartite(self.row[keep], self.col[keep], self.n_rows, self.n_cols)


def find_blocks(
    graph: Bipartite,
    params: BlockParams = BlockParams(),
    row_activity: FloatArray | None = None,
    total_edges: int | None = None,
) -> list[Block]:
    """The top-k blocks, best first; none on a graph the degree model explains.

    ``row_activity`` and ``total_edges`` give the model the rows' whole activity when
    ``graph`` is a part of a larger graph (lockstep keeps only its crowded cells)."""
    # The degree model is the original graph's: removing a block must not make its
    # neighbours look unexpectedly dense.
    model = _Model(graph, row_activity, total_edges)
    found: list[Block] = []
    current = graph
    # Two more than asked for, so the k returned are the k strongest, not the first k peeled.
    wanted = params.max_blocks + 2
    for _ in range(wanted + 2):
        if current.n_edges == 0 or len(found) >= wanted:
            break
        seeds = [*peel(current, params), *peel(current, params, by_activity=True)]
        # Every seed is refined and the strongest block kept: a small dense seed can refine
        # to a corner of a ring that a larger seed finds whole.
        refined = [refine(current, model, rows, cols, params) for rows, cols in seeds]
        block = max((b for b in refined if b is not None), key=lambda b: b.score, default=None)
        if block is not None:
            current = current.without_block(block.rows, block.cols)
            for part in split(block, graph, model, params) or [block]:
                found = _merge_into(found, part, graph, model, params)
        elif seeds:
            # Nothing there: take the seed's edges away so the next peel looks elsewhere.
            rows, cols = seeds[0]
            if rows.size * cols.size > 4 * params.min_users * params.min_targets * 100:
                break  # the densest part is a thin honest core; nothing smaller stands out
            current = current.without_block(rows, cols)
        else:
            break
    return sorted(found, key=lambda b: b.score, reverse=True)[: params.max_blocks]


def split(
    block: Block, graph: Bipartite, model: _Model, params: BlockParams, depth: int = 3
) -> list[Block]:
    """The block's separate parts, or ``[]`` if it is one ring.

    Two rings with no account or target in common can pass the node test together, each
    member against the union, and camouflage may even link them by a few edges. A block is
    cut in two along the second singular vectors of its degree-normalised matrix (spectral
    co-clustering, Dhillon 2001); the cut stands if both halves are reportable and the edges
    between them are far sparser than inside them. One ring cut this way has halves as dense
    across as within, so it stays whole."""
    if depth == 0 or min(block.rows.size, block.cols.size) < 2 * params.min_targets:
        return []
    if block.rows.size * block.cols.size > MAX_SPLIT_CELLS:
        return []  # a dense SVD of it would cost more than the whole scan
    sub = graph.matrix[block.rows][:, block.cols].toarray()
    row_side, col_side = _components(sub)
    if row_side is None:
        row_side, col_side = _bisect(sub)
    if row_side is None or col_side is None:
        return []
    halves = []
    for side in (True, False):
        rows, cols = row_side == side, col_side == side
        if not rows.any() or not cols.any():
            return []
        within = sub[np.ix_(rows, cols)].mean()
        across = sub[np.ix_(rows, ~cols)].sum() + sub[np.ix_(~rows, cols)].sum()
        halves.append((block.rows[rows], block.cols[cols], within, across))
    cross_cells = halves[0][0].size * halves[1][1].size + halves[1][0].size * halves[0][1].size
    across_density = halves[0][3] / max(1, cross_cells)
    if across_density * 5 > min(halves[0][2], halves[1][2]):
        return []
    parts = []
    for rows_, cols_, _, _ in halves:
        judged = judge(graph, model, rows_, cols_, params)
        if judged is None:
            return []
        parts.extend(split(judged, graph, model, params, depth - 1) or [judged])
    return parts


def _components(
    sub: FloatArray,
) -> tuple[npt.NDArray[np.bool_] | None, npt.NDArray[np.bool_] | None]:
    """The largest connected part against the rest, if the block is not connected (the
    spectral cut cannot tell disconnected parts apart: each has singular value 1)."""
    n_rows = sub.shape[0]
    joined = sparse.bmat([[None, sparse.csr_matrix(sub)], [sparse.csr_matrix(sub.T), None]])
    count, label = connected_components(joined, directed=False)
    if count < 2:
        return None, None
    largest = np.bincount(label).argmax()
    return label[:n_rows] == largest, label[n_rows:] == largest


def _bisect(
    sub: FloatArray,
) -> tuple[npt.NDArray[np.bool_] | None, npt.NDArray[np.bool_] | None]:
    row_degree = sub.sum(axis=1)
    col_degree = sub.sum(axis=0)
    if (row_degree == 0).any() or (col_degree == 0).any():
        return None, None
    normalised = sub / np.sqrt(row_degree)[:, None] / np.sqrt(col_degree)[None, :]
    u, _, vt = np.linalg.svd(normalised, full_matrices=False)
    if u.shape[1] < 2:
        return None, None
    return u[:, 1] / np.sqrt(row_degree) >= 0, vt[1] / np.sqrt(col_degree) >= 0


def _merge_into(
    found: list[Block], block: Block, graph: Bipartite, model: _Model, params: BlockParams
) -> list[Block]:
    """Add a block, or fold it into an earlier one that shares most of its targets: a ring
    whose accounts pass the node test unevenly can come off in pieces, one per peel, and an
    analyst should see it once."""
    for i, earlier in enumerate(found):
        shared = np.intersect1d(earlier.cols, block.cols).size
        if shared * 2 >= min(earlier.cols.size, block.cols.size):
            merged = judge(
                graph,
                model,
                np.union1d(earlier.rows, block.rows),
                np.union1d(earlier.cols, block.cols),
                params,
            )
            if merged is not None:
                return [*found[:i], merged, *found[i + 1 :]]
    return [*found, block]


class _Model:
    def __init__(
        self,
        graph: Bipartite,
        row_activity: FloatArray | None = None,
        total_edges: int | None = None,
    ) -> None:
        self.row_degree = graph.row_degree if row_activity is None else row_activity
        self.col_degree = graph.col_degree
        self.edges = max(1, graph.n_edges if total_edges is None else total_edges)
        # Bonferroni over the nodes that could be tested: those with any interaction.
        self.row_bound = np.log(max(2, int(np.count_nonzero(graph.row_degree))))
        self.col_bound = np.log(max(2, int(np.count_nonzero(graph.col_degree))))


def peel(
    graph: Bipartite, params: BlockParams, by_activity: bool = False
) -> list[tuple[IntArray, IntArray]]:
    """Seeds: the remainders with the best average weighted degree and the best lift."""
    n_rows, n_cols = graph.n_rows, graph.n_cols
    c = params.weight_offset
    if by_activity:
        # Each account's edges share one unit: a narrow ring (many accounts on a few targets,
        # which its own likes make popular) weighs by its accounts, not its targets' fame.
        weight = 1.0 / (graph.row_degree[graph.row] + c)
    else:
        weight = 1.0 / np.sqrt(
            (graph.row_degree[graph.row] + c) * (graph.col_degree[graph.col] + c)
        )
    priority = np.concatenate(
        (
            np.bincount(graph.row, weights=weight, minlength=n_rows),
            np.bincount(graph.col, weights=weight, minlength=n_cols),
        )
    )
    degree = np.concatenate((graph.row_degree, graph.col_degree))
    alive_nodes = np.flatnonzero(degree > 0)
    alive_edge = np.ones(graph.n_edges, dtype=bool)
    removed_round = np.full(n_rows + n_cols, -1, dtype=np.int64)
    total_weight = float(weight.sum())
    edges = graph.n_edges
    node_degree_sum = np.concatenate((graph.row_degree, graph.col_degree))
    rows_alive = int(np.count_nonzero(graph.row_degree))
    cols_alive = int(np.count_nonzero(graph.col_degree))
    row_ends = float(graph.row_degree.sum())
    col_ends = float(graph.col_degree.sum())
    history: list[tuple[float, float, int, int, float, float]] = []
    round_no = 0
    while alive_nodes.size:
        history.append((total_weight, edges, rows_alive, cols_alive, row_ends, col_ends))
        # Coarse rounds while the graph is large, fine ones where blocks take shape.
        fraction = params.peel_fraction if alive_nodes.size <= FINE_PEEL_NODES else 0.05
        k = max(1, int(alive_nodes.size * fraction))
        keep = np.ones(alive_nodes.size, dtype=bool)
        if k < alive_nodes.size:
            keep[np.argpartition(priority[alive_nodes], k - 1)[:k]] = False
        else:
            keep[:] = False
        gone = alive_nodes[~keep]
        alive_nodes = alive_nodes[keep]
        removed_round[gone] = round_no
        round_no += 1
        gone_rows = gone[gone < n_rows]
        gone_cols = gone[gone >= n_rows] - n_rows
        # An edge between two removed nodes is found from both ends: take it once.
        by_row = _slices(graph.row_ptr, gone_rows)
        by_row = by_row[alive_edge[by_row]]
        alive_edge[by_row] = False
        by_col = graph.by_col[_slices(graph.col_ptr, gone_cols)]
        by_col = by_col[alive_edge[by_col]]
        alive_edge[by_col] = False
        ids = np.concatenate((by_row, by_col))
        w = weight[ids]
        np.subtract.at(priority, graph.row[ids], w)
        np.subtract.at(priority, graph.col[ids] + n_rows, w)
        total_weight -= float(w.sum())
        edges -= int(ids.size)
        rows_alive -= int(gone_rows.size)
        cols_alive -= int(gone_cols.size)
        row_ends -= float(node_degree_sum[gone_rows].sum())
        col_ends -= float(node_degree_sum[gone_cols + n_rows].sum())
    if not history:
        return []
    stats = np.array(history)
    size = stats[:, 2] + stats[:, 3]
    usable = (stats[:, 2] > 0) & (stats[:, 3] > 0) & (stats[:, 1] > 0)
    if not usable.any():
        return []
    avg = np.where(usable, stats[:, 0] / np.maximum(size, 1), -np.inf)
    expected = stats[:, 4] * stats[:, 5] / max(1, graph.n_edges)
    lift = np.where(usable, stats[:, 1] / np.maximum(expected, 1e-12), -np.inf)
    big_enough = usable & (stats[:, 2] >= params.min_users) & (stats[:, 3] >= params.min_targets)
    lift = np.where(big_enough, lift, -np.inf)
    evidence = np.where(big_enough, poisson_llr(stats[:, 1], expected), -np.inf)
    seeds = []
    for best in dict.fromkeys(
        (int(np.argmax(avg)), int(np.argmax(evidence)), int(np.argmax(lift)))
    ):
        if not (np.isfinite(avg[best]) and big_enough[best]):
            continue
        alive = removed_round >= best
        seeds.append((np.flatnonzero(alive[:n_rows]), np.flatnonzero(alive[n_rows:])))
    return seeds


def _slices(ptr: IntArray, nodes: IntArray) -> IntArray:
    """The concatenated ranges ``ptr[n]:ptr[n+1]`` for every node."""
    if nodes.size == 0:
        return np.empty(0, dtype=np.int64)
    starts = ptr[nodes]
    lengths = ptr[nodes + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return offsets + np.arange(total, dtype=np.int64)


def refine(
    graph: Bipartite,
    model: _Model,
    rows: IntArray,
    cols: IntArray,
    params: BlockParams,
) -> Block | None:
    """Grow and trim a seed by testing every node against the other side; judge the result.

    A node joins by beating the Bonferroni bound; once in, it stays while it beats half of it.
    Without that slack a sparse ring thins itself away: each round tests the accounts against
    the targets the last round kept, a few of which fell just short by chance."""
    admitted_rows = np.zeros(graph.n_rows, dtype=bool)
    admitted_cols = np.zeros(graph.n_cols, dtype=bool)
    for _ in range(params.refine_rounds):
        if rows.size == 0 or cols.size == 0:
            return None
        new_cols = _members(
            graph.matrix_t,
            model.col_degree,
            model.row_degree[rows].sum(),
            rows,
            model,
            model.col_bound,
            admitted_cols,
            params,
        )
        if new_cols.size == 0:
            return None
        new_rows = _members(
            graph.matrix,
            model.row_degree,
            model.col_degree[new_cols].sum(),
            new_cols,
            model,
            model.row_bound,
            admitted_rows,
            params,
        )
        stable = np.array_equal(new_rows, rows) and np.array_equal(new_cols, cols)
        rows, cols = new_rows, new_cols
        if stable:
            break
    return judge(graph, model, rows, cols, params)


def judge(
    graph: Bipartite, model: _Model, rows: IntArray, cols: IntArray, params: BlockParams
) -> Block | None:
    """The block ``rows x cols`` with its members' evidence, if it is large, dense and
    surprising enough to report."""
    if rows.size < params.min_users or cols.size < params.min_targets:
        return None
    row_mask = np.zeros(graph.n_rows)
    row_mask[rows] = 1.0
    col_mask = np.zeros(graph.n_cols)
    col_mask[cols] = 1.0
    row_hits = np.asarray(graph.matrix @ col_mask)[rows].astype(np.int64)
    col_hits = np.asarray(graph.matrix_t @ row_mask)[cols].astype(np.int64)
    row_ends = float(model.row_degree[rows].sum())
    col_ends = float(model.col_degree[cols].sum())
    block = Block(
        rows=rows,
        cols=cols,
        edges=int(row_hits.sum()),
        expected=row_ends * col_ends / model.edges,
        row_hits=row_hits,
        row_expected=model.row_degree[rows] * col_ends / model.edges,
        col_hits=col_hits,
        col_expected=model.col_degree[cols] * row_ends / model.edges,
    )
    if block.density < params.min_density or block.lift < params.min_lift:
        return None
    return block


def _members(
    matrix: sparse.csr_matrix,
    degree: FloatArray,
    other_ends: float,
    other: IntArray,
    model: _Model,
    bound: float,
    admitted: npt.NDArray[np.bool_],
    params: BlockParams,
) -> IntArray:
    """The nodes whose hits into ``other`` beat the degree model by the Bonferroni bound, and
    the ones admitted before that still beat half of it. Marks the newly admitted."""
    mask = np.zeros(matrix.shape[1])
    mask[other] = 1.0
    hits = np.asarray(matrix @ mask)
    expected = degree * other_ends / model.edges
    llr = poisson_llr(hits, expected)
    enough = hits >= params.min_hits
    strict = enough & (llr >= bound + params.surprise)
    admitted |= strict
    return np.flatnonzero(strict | (admitted & enough & (llr >= bound / 2 + params.surprise)))
