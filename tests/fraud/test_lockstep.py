"""Lockstep bursts: a group acting on the same targets within an hour, seen in time."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fraud.synthetic import (
    DAY,
    T0,
    Shape,
    Synthetic,
    Truth,
    f1,
    honest,
    precision,
    recall,
)
from zanloop.fraud.domain import Group, Kind, ScanParams, detect
from zanloop.fraud.graph import Interactions
from zanloop.fraud.lockstep import LockstepParams, find_bursts

LOCKSTEP = ScanParams(kinds=frozenset({Kind.LOCKSTEP}))
HOUR = 3600


@pytest.fixture(scope="module")
def base() -> Synthetic:
    return honest(Shape(), seed=12)


def users(group: Group) -> set[str]:
    return {m.id for m in group.users}


def targets(group: Group) -> set[str]:
    return {m.id for m in group.targets}


BURSTS = [
    # accounts, targets, density, camouflage interactions per account over the month
    (40, 8, 0.8, 20),
    (25, 5, 0.8, 40),
    (60, 10, 0.5, 30),
]


@pytest.mark.parametrize(("n_users", "n_targets", "density", "per_user"), BURSTS)
def test_burst_on_popular_targets_is_found_in_its_hour(
    base: Synthetic, n_users: int, n_targets: int, density: float, per_user: int
) -> None:
    s = base.fork(200 + n_users)
    truth = s.lockstep(n_users, n_targets, density, popular=True, per_user=per_user)
    assert truth.start is not None
    assert truth.end is not None
    groups = detect(s.graph())
    # Popular targets and camouflage: nothing stands out in the static graph...
    assert [g.kind for g in groups] == [Kind.LOCKSTEP]
    group = groups[0]
    # ...but in time the group does, with its hour.
    assert f1(users(group), truth.users) >= 0.9
    assert precision(targets(group), truth.targets) >= 0.9
    assert recall(targets(group), truth.targets) >= 0.8
    assert group.start is not None
    assert group.end is not None
    start, end = group.start.timestamp(), group.end.timestamp()
    assert truth.start <= start <= end <= truth.end
    assert end - start <= HOUR
    assert group.evidence["burst_seconds"] == HOUR


@pytest.mark.parametrize(("n_users", "n_targets", "density", "per_user"), BURSTS[:2])
def test_same_interactions_spread_over_the_month_are_not_lockstep(
    base: Synthetic, n_users: int, n_targets: int, density: float, per_user: int
) -> None:
    s = base.fork(200 + n_users)
    s.lockstep(n_users, n_targets, density, popular=True, spread=True, per_user=per_user)
    # Neither in time nor (popular targets) in the static graph.
    assert detect(s.graph()) == []


@pytest.fixture(scope="module")
def burst(base: Synthetic) -> tuple[Interactions, Truth, Group]:
    s = base.fork(31)
    truth = s.lockstep(40, 8, 0.8, popular=True, per_user=20)
    graph = s.graph()
    (group,) = detect(graph, params=LOCKSTEP)
    return graph, truth, group


def _ring_edges(graph: Interactions, group: Group, start: float, end: float) -> int:
    member = np.isin(graph.user, [graph.users.index(m.id) for m in group.users])
    aimed = np.isin(graph.target, [graph.targets.index(m.id) for m in group.targets])
    return int((member & aimed & (graph.at >= start) & (graph.at <= end)).sum())


def test_burst_members_hits_are_their_interactions_in_the_window(
    burst: tuple[Interactions, Truth, Group],
) -> None:
    graph, truth, group = burst
    assert group.start is not None
    assert group.end is not None
    inside = _ring_edges(graph, group, group.start.timestamp(), group.end.timestamp())
    assert sum(m.hits for m in group.users) == inside == sum(m.hits for m in group.targets)
    assert group.evidence["targets"] == len(group.targets) == len(truth.targets)
    assert group.evidence["cells"] >= group.evidence["targets"]
    assert [m.hits for m in group.users] == sorted((m.hits for m in group.users), reverse=True)
    assert group.start.tzinfo is not None


def test_burst_evidence_counts_each_interaction_once(
    burst: tuple[Interactions, Truth, Group],
) -> None:
    graph, truth, group = burst
    assert truth.start is not None
    assert truth.end is not None
    ring = _ring_edges(graph, group, truth.start, truth.end)
    assert sum(m.hits for m in group.users) <= group.evidence["interactions_in_burst"] <= ring


@pytest.fixture(scope="module")
def smaller() -> Synthetic:
    return honest(Shape(n_users=5_000, n_targets=2_000, n_edges=40_000), seed=13)


@pytest.mark.parametrize("offset", [0, 1_200, HOUR, 5_000, 2 * HOUR - 600])
def test_a_burst_is_found_wherever_it_falls_on_the_time_grid(
    smaller: Synthetic, offset: int
) -> None:
    """Two grids of 2-hour cells offset by an hour hold any burst of up to an hour whole."""
    origin = int(smaller.graph().at.min())  # where the grids begin
    start = origin + 12 * DAY + offset  # the grids repeat every 2 hours
    s = smaller.fork(41)
    truth = s.lockstep(30, 6, 0.8, per_user=20, burst_seconds=55 * 60, start=start)
    graph = s.graph()
    assert int(graph.at.min()) == origin
    bursts = find_bursts(graph)
    assert len(bursts) == 1
    found = {graph.users[i] for i in bursts[0].users.tolist()}
    assert f1(found, truth.users) >= 0.9
    assert truth.start is not None
    assert truth.end is not None
    assert truth.start <= bursts[0].start <= bursts[0].end <= truth.end


def test_a_burst_on_obscure_targets_is_both_dense_and_lockstep(base: Synthetic) -> None:
    s = base.fork(51)
    truth = s.lockstep(40, 10, 0.9, popular=False, per_user=10)
    groups = detect(s.graph())
    assert sorted(g.kind for g in groups) == [Kind.DENSE_BLOCK, Kind.LOCKSTEP]
    for group in groups:
        assert f1(users(group), truth.users) >= 0.9


def test_honest_graph_has_no_lockstep_group(base: Synthetic) -> None:
    assert find_bursts(base.graph()) == []


@pytest.mark.parametrize("seed", [1, 2])
def test_viral_moments_are_not_lockstep(seed: int) -> None:
    """Hundreds of honest users piling onto one target within two hours is not a group."""
    graph = honest(Shape(viral=15, viral_users=400), seed).graph()
    assert detect(graph, params=LOCKSTEP) == []


def test_a_news_hour_is_not_lockstep(base: Synthetic) -> None:
    """2000 honest users each liking one or two of eight trending targets in the same hour."""
    s = base.fork(61)
    rng = s.rng
    trending = np.argsort(-s.target_degrees())[:8]
    fans = rng.choice(s.shape.n_users, 2000, replace=False, p=s.activity / s.activity.sum())
    likes = np.minimum(rng.poisson(1.5, fans.size), trending.size)
    user = np.repeat(fans, likes)
    target = np.concatenate([rng.choice(trending, k, replace=False) for k in likes])
    s.add(user, target, T0 + 10 * DAY + 20 * HOUR + rng.integers(0, HOUR, user.size))
    assert detect(s.graph()) == []


def test_cells_with_too_few_users_are_ignored() -> None:
    # Two accounts acting together on 10 targets: below min_cell_users, however tight.
    rows = [(f"a{i}", f"t{j}", 1_000 + 10 * j + i) for i in range(2) for j in range(10)]
    graph = Interactions.from_records(rows)
    assert find_bursts(graph) == []
    assert find_bursts(graph, LockstepParams(min_cell_users=2)) == []  # still under min_users


def test_burst_is_found_in_a_small_graph() -> None:
    s = honest(Shape(n_users=500, n_targets=200, n_edges=3_000), seed=0).fork(50)
    truth = s.lockstep(30, 6, 1.0, popular=False, per_user=0, burst_seconds=600)
    graph = s.graph()
    bursts = find_bursts(graph)
    assert bursts
    assert f1({graph.users[i] for i in bursts[0].users.tolist()}, truth.users) >= 0.9
