"""``detect`` as a whole: honest graphs stay quiet, results do not depend on numbering or
order, and what comes back is well formed."""

from __future__ import annotations

import random
from datetime import UTC

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fraud.synthetic import DAY, T0, Shape, Truth, f1, honest
from zanloop.fraud.domain import Group, Kind, ScanParams, Sightings, detect
from zanloop.fraud.graph import Interactions

GRAPH_KINDS = {Kind.DENSE_BLOCK, Kind.LOCKSTEP}


def users(group: Group) -> frozenset[str]:
    return frozenset(m.id for m in group.users)


def targets(group: Group) -> frozenset[str]:
    return frozenset(m.id for m in group.targets)


# -- honest graphs --------------------------------------------------------------------------

HONEST_SHAPES = {
    "default": Shape(),
    "heavy-tails": Shape(user_sigma=1.6, target_alpha=1.1),
    "light-tails": Shape(user_sigma=0.6, target_alpha=2.5),
    "interests": Shape(topics=50, topic_share=0.3),
    "viral": Shape(viral=15, viral_users=400),
    "busy-users": Shape(n_users=5_000, n_targets=1_000, n_edges=120_000),
    "small": Shape(n_users=2_000, n_targets=800, n_edges=12_000),
}


@pytest.mark.parametrize(
    ("shape", "seed"),
    [(name, 0) for name in HONEST_SHAPES] + [("default", 1)],
)
def test_honest_graph_has_no_group(shape: str, seed: int) -> None:
    graph = honest(HONEST_SHAPES[shape], seed).graph()
    groups = detect(graph)
    assert [(g.kind, len(g.users), len(g.targets)) for g in groups] == []


@pytest.mark.xfail(
    strict=True,
    reason=(
        "tight honest communities are reported as dense blocks: with 400 interest groups of "
        "~50 users and ~20 targets and 40% of each user's activity inside their own, detect "
        "reports 1-4 dense blocks of 11-18 honest users x 10-14 targets (density ~0.5, lift "
        "130-240) per graph (2 of 2 seeds; 30%: 1 of 2; 200 groups at 50%: 2-5 blocks). The "
        "degree model knows no communities. 50 groups at 30-40% and 200 at 10-40% stay quiet."
    ),
)
def test_tight_honest_communities_are_not_groups() -> None:
    graph = honest(Shape(topics=400, topic_share=0.4), seed=1).graph()
    assert detect(graph, params=ScanParams(kinds=frozenset(GRAPH_KINDS))) == []


def test_empty_graph_has_no_group() -> None:
    empty = Interactions.from_records([])
    assert detect(empty) == []
    assert detect(empty, Sightings.empty()) == []
    assert detect(empty, None, ScanParams(kinds=frozenset())) == []


def test_a_single_interaction_has_no_group() -> None:
    assert detect(Interactions.from_records([("a", "x", T0)])) == []


# -- an attacked graph, end to end ----------------------------------------------------------


@pytest.fixture(scope="module")
def attacked() -> tuple[Interactions, Sightings, Truth, Truth]:
    s = honest(Shape(), seed=14)
    ring = s.dense_block(60, 50, 0.25, "random", per_user=20)
    burst = s.lockstep(40, 8, 0.8, popular=True, per_user=20)
    graph = s.graph()
    rows = [(f"farm{i}", f"dev{k}", None, T0 + DAY + i + k) for i in range(12) for k in range(2)]
    rows += [(f"h{i}", f"own{i}", f"10.0.{i // 200}.{i % 200}", T0 + i) for i in range(1_000)]
    u, d, ip, at = zip(*rows, strict=True)
    return graph, Sightings(list(u), list(d), list(ip), list(at)), ring, burst


@pytest.fixture(scope="module")
def attacked_groups(attacked: tuple[Interactions, Sightings, Truth, Truth]) -> list[Group]:
    graph, sightings, _, _ = attacked
    return detect(graph, sightings)


def test_each_detector_names_its_attack(
    attacked: tuple[Interactions, Sightings, Truth, Truth], attacked_groups: list[Group]
) -> None:
    _, _, ring, burst = attacked
    kinds = [g.kind for g in attacked_groups]
    assert kinds == [Kind.DENSE_BLOCK, Kind.LOCKSTEP, Kind.SHARED_DEVICE]
    dense, lockstep, device = attacked_groups
    assert f1(users(dense), ring.users) >= 0.9
    assert f1(users(lockstep), burst.users) >= 0.9
    assert users(device) == {f"farm{i}" for i in range(12)}


def test_groups_are_well_formed(attacked_groups: list[Group]) -> None:
    for g in attacked_groups:
        assert g.users
        assert len(users(g)) == len(g.users)  # no one listed twice
        assert [m.hits for m in g.users] == sorted((m.hits for m in g.users), reverse=True)
        assert all(m.hits >= 1 and m.expected >= 0 for m in g.users + g.targets)
        assert g.start is not None
        assert g.end is not None
        assert g.start <= g.end
        assert g.start.tzinfo is UTC
        assert g.score > 0
        assert isinstance(g.evidence["why"], str)
        assert g.evidence["users"] == len(g.users)


def test_same_input_same_groups(
    attacked: tuple[Interactions, Sightings, Truth, Truth], attacked_groups: list[Group]
) -> None:
    graph, sightings, _, _ = attacked
    steps: list[str] = []
    assert detect(graph, sightings, progress=steps.append) == attacked_groups
    assert steps == ["dense blocks", "lockstep bursts", "shared devices", "shared addresses"]


def test_only_enabled_kinds_run(
    attacked: tuple[Interactions, Sightings, Truth, Truth], attacked_groups: list[Group]
) -> None:
    graph, sightings, _, _ = attacked
    steps: list[str] = []
    groups = detect(graph, sightings, ScanParams(kinds=frozenset({Kind.LOCKSTEP})), steps.append)
    assert groups == [g for g in attacked_groups if g.kind is Kind.LOCKSTEP]
    assert steps == ["lockstep bursts"]


# -- invariants -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_attacked() -> tuple[Interactions, frozenset[tuple[Kind, frozenset[str], frozenset[str]]]]:
    s = honest(Shape(n_users=3_000, n_targets=1_500, n_edges=25_000), seed=3)
    s.dense_block(40, 30, 0.3, "random", per_user=10)
    s.lockstep(20, 5, 0.8, popular=True, per_user=10)
    graph = s.graph()
    found = frozenset((g.kind, users(g), targets(g)) for g in detect(graph))
    assert {kind for kind, _, _ in found} == GRAPH_KINDS
    return graph, found


def relabel(graph: Interactions, seed: int) -> Interactions:
    """The same graph with users, targets and edges numbered in another order."""
    rng = np.random.default_rng(seed)
    up = rng.permutation(graph.n_users)
    tp = rng.permutation(graph.n_targets)
    order = rng.permutation(graph.n_edges)
    users = [""] * graph.n_users
    for i, p in enumerate(up.tolist()):
        users[p] = graph.users[i]
    targets = [""] * graph.n_targets
    for j, p in enumerate(tp.tolist()):
        targets[p] = graph.targets[j]
    return Interactions.from_indexed(
        up[graph.user][order], tp[graph.target][order], graph.at[order], users, targets
    )


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_renumbering_users_and_targets_finds_the_same_groups(
    small_attacked: tuple[Interactions, frozenset[tuple[Kind, frozenset[str], frozenset[str]]]],
    seed: int,
) -> None:
    graph, found = small_attacked
    again = frozenset((g.kind, users(g), targets(g)) for g in detect(relabel(graph, seed)))
    assert again == found


def test_renaming_through_records_finds_the_same_groups(
    small_attacked: tuple[Interactions, frozenset[tuple[Kind, frozenset[str], frozenset[str]]]],
) -> None:
    """New names that sort in another order, through ``from_arrays``, name the same people."""
    graph, found = small_attacked
    rename = {name: f"{(i * 7_919) % 10_007:05d}-{name}" for i, name in enumerate(graph.users)}
    renamed = Interactions.from_arrays(
        [rename[graph.users[u]] for u in graph.user.tolist()],
        [graph.targets[t] for t in graph.target.tolist()],
        graph.at,
    )
    back = {v: k for k, v in rename.items()}
    again = frozenset(
        (g.kind, frozenset(back[m.id] for m in g.users), targets(g)) for g in detect(renamed)
    )
    assert again == found


tiny_record = st.tuples(
    st.integers(0, 29),
    st.integers(0, 11),
    st.integers(0, 6 * 3600),
)


@settings(max_examples=30, deadline=None)
@given(st.lists(tiny_record, max_size=200))
def test_any_small_graph_gives_well_formed_deterministic_groups(
    rows: list[tuple[int, int, int]],
) -> None:
    graph = Interactions.from_records([(f"u{u}", f"t{t}", T0 + at) for u, t, at in rows])
    sightings = Sightings(
        [f"u{u}" for u, _, _ in rows],
        [f"d{t % 3}" for _, t, _ in rows],
        [None] * len(rows),
        [T0 + at for _, _, at in rows],
    )
    groups = detect(graph, sightings)
    assert detect(graph, sightings) == groups
    names = set(graph.users)
    for g in groups:
        assert users(g) <= names
        assert g.start is not None
        assert g.end is not None
        assert g.start <= g.end
        if g.kind in GRAPH_KINDS:
            assert targets(g) <= set(graph.targets)


@settings(max_examples=20, deadline=None)
@given(st.lists(tiny_record, min_size=1, max_size=60), st.randoms(use_true_random=False))
def test_record_order_does_not_change_groups(
    rows: list[tuple[int, int, int]], rnd: random.Random
) -> None:
    # A complete 12 x 4 block in one hour amid the random rows, so there is something to find.
    block = [(100 + i, 50 + j, 7_200 + 60 * i + j) for i in range(12) for j in range(4)]
    records = [(f"u{u}", f"t{t}", T0 + at) for u, t, at in rows + block]
    shuffled = list(records)
    rnd.shuffle(shuffled)
    a = detect(Interactions.from_records(records))
    b = detect(Interactions.from_records(shuffled))
    assert a == b
