"""The interaction graph: numbering, duplicates, removing a block."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zanloop.fraud.graph import Interactions


def edges(graph: Interactions) -> set[tuple[str, str, int]]:
    return {
        (graph.users[u], graph.targets[t], int(a))
        for u, t, a in zip(graph.user, graph.target, graph.at, strict=True)
    }


def test_a_repeated_pair_is_one_edge_at_its_earliest_time() -> None:
    graph = Interactions.from_records(
        [("ann", "post", 300), ("ann", "post", 100), ("ann", "post", 200), ("bob", "post", 50)]
    )
    assert graph.n_edges == 2
    assert edges(graph) == {("ann", "post", 100), ("bob", "post", 50)}


def test_records_are_numbered_densely_by_sorted_name() -> None:
    graph = Interactions.from_records(
        [("zoe", "t2", 5), ("ann", "t1", 6), ("mia", "t2", 7), ("ann", "t3", 8)]
    )
    assert list(graph.users) == ["ann", "mia", "zoe"]
    assert list(graph.targets) == ["t1", "t2", "t3"]
    assert (graph.n_users, graph.n_targets, graph.n_edges) == (3, 3, 4)
    assert edges(graph) == {("zoe", "t2", 5), ("ann", "t1", 6), ("mia", "t2", 7), ("ann", "t3", 8)}
    for column in (graph.user, graph.target, graph.at):
        assert column.dtype == np.int64


def test_from_arrays_accepts_any_hashable_names_as_strings() -> None:
    graph = Interactions.from_arrays([10, 2, 10], ["a", "b", "b"], [3, 2, 1])
    # Names become strings, so 10 sorts before 2.
    assert list(graph.users) == ["10", "2"]
    assert edges(graph) == {("10", "a", 3), ("2", "b", 2), ("10", "b", 1)}


def test_from_arrays_and_from_records_agree() -> None:
    rows = [("u3", "x", 9), ("u1", "y", 4), ("u3", "x", 2), ("u2", "x", 7)]
    a = Interactions.from_records(rows)
    users, targets, at = zip(*rows, strict=True)
    b = Interactions.from_arrays(list(users), list(targets), list(at))
    assert edges(a) == edges(b)
    assert list(a.users) == list(b.users)
    assert list(a.targets) == list(b.targets)


def test_an_empty_graph_has_no_nodes_and_no_edges() -> None:
    graph = Interactions.from_records([])
    assert (graph.n_users, graph.n_targets, graph.n_edges) == (0, 0, 0)
    assert graph.matrix().shape == (0, 0)


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        Interactions.from_indexed(
            np.array([0, 1]), np.array([0]), np.array([5, 6]), ["a", "b"], ["x"]
        )


def test_matrix_is_zero_one_even_for_repeats() -> None:
    graph = Interactions.from_records([("a", "x", 1), ("a", "x", 2), ("b", "y", 3)])
    m = graph.matrix().toarray()
    assert m.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_without_removes_only_the_blocks_edges() -> None:
    rows = [
        ("a", "x", 1),
        ("a", "y", 2),
        ("a", "z", 3),  # a is in the block, z is not: kept
        ("b", "x", 4),
        ("c", "x", 5),  # x is in the block, c is not: kept
        ("c", "z", 6),
    ]
    graph = Interactions.from_records(rows)
    user = np.array([graph.users.index("a"), graph.users.index("b")])
    target = np.array([graph.targets.index("x"), graph.targets.index("y")])
    rest = graph.without(user, target)
    assert edges(rest) == {("a", "z", 3), ("c", "x", 5), ("c", "z", 6)}
    # Names and numbering stay, so a finding on the rest still names the right nodes.
    assert rest.users == graph.users
    assert rest.targets == graph.targets
    assert graph.n_edges == 6  # the original is untouched


record = st.tuples(
    st.sampled_from([f"u{i}" for i in range(6)]),
    st.sampled_from([f"t{i}" for i in range(5)]),
    st.integers(0, 10_000),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(record, max_size=40), st.randoms(use_true_random=False))
def test_order_does_not_matter_and_each_pair_keeps_its_first_time(
    rows: list[tuple[str, str, int]], rnd: random.Random
) -> None:
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    a, b = Interactions.from_records(rows), Interactions.from_records(shuffled)
    first: dict[tuple[str, str], int] = {}
    for u, t, at in rows:
        first[(u, t)] = min(at, first.get((u, t), at))
    expected = {(u, t, at) for (u, t), at in first.items()}
    assert edges(a) == edges(b) == expected
    assert a.n_edges == len(first)
