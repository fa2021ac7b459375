"""Group fake-engagement detection (R4): what a scan finds, as pure functions of its inputs.

Per-event rules (R2) judge one like at a time; a ring of accounts is only visible as a group.
``detect`` runs three detectors over a user x target interaction graph and the devices and
addresses accounts were seen on, and describes each group it finds as a ``Group``: members,
targets, time window, a score (nats of evidence against the honest model, or accounts per
device) and the evidence an analyst needs to judge it. Nothing here touches a database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np

from zanloop.fraud.clusters import Cluster, ClusterParams, find_clusters
from zanloop.fraud.dense import Bipartite, Block, BlockParams, find_blocks
from zanloop.fraud.graph import IntArray, Interactions
from zanloop.fraud.lockstep import Burst, LockstepParams, find_bursts

# Shared devices or addresses listed in a cluster's evidence (its accounts are all stored).
EVIDENCE_VALUES = 20


class Kind(StrEnum):
    DENSE_BLOCK = "dense_block"
    LOCKSTEP = "lockstep"
    SHARED_DEVICE = "shared_device"
    SHARED_IP = "shared_ip"


@dataclass(frozen=True)
class Sightings:
    """Which device and address each user acted from (one row per action)."""

    user: Sequence[str]
    device: Sequence[str | None]
    ip: Sequence[str | None]
    at: Sequence[int]

    @classmethod
    def empty(cls) -> Sightings:
        return cls([], [], [], [])


@dataclass(frozen=True)
class Member:
    id: str
    # Hits into the group's other side, and what honest behaviour would explain.
    hits: int
    expected: float


@dataclass(frozen=True)
class Group:
    kind: Kind
    users: tuple[Member, ...]
    targets: tuple[Member, ...]
    score: float
    start: datetime | None
    end: datetime | None
    evidence: dict[str, Any]


@dataclass(frozen=True)
class ScanParams:
    kinds: frozenset[Kind] = frozenset(Kind)
    blocks: BlockParams = field(default_factory=BlockParams)
    lockstep: LockstepParams = field(default_factory=LockstepParams)
    devices: ClusterParams = field(default_factory=lambda: ClusterParams(3, 3))
    # An address is weaker evidence: more accounts, and only within one day.
    ips: ClusterParams = field(default_factory=lambda: ClusterParams(5, 5, max_shared=200))


Progress = Callable[[str], None]


def describe(params: ScanParams) -> dict[str, Any]:
    """The settings a scan ran with, for its record."""
    return {
        "kinds": sorted(k.value for k in params.kinds),
        "blocks": asdict(params.blocks),
        "lockstep": asdict(params.lockstep),
        "devices": asdict(params.devices),
        "ips": asdict(params.ips),
    }


def detect(
    graph: Interactions,
    sightings: Sightings | None = None,
    params: ScanParams = ScanParams(),
    progress: Progress | None = None,
) -> list[Group]:
    """Every group the enabled detectors find, strongest evidence first within each kind."""
    step = progress or (lambda _: None)
    groups: list[Group] = []
    if Kind.DENSE_BLOCK in params.kinds and graph.n_edges:
        step("dense blocks")
        bipartite = Bipartite(graph.user, graph.target, graph.n_users, graph.n_targets)
        groups += [_block_group(graph, b) for b in find_blocks(bipartite, params.blocks)]
    if Kind.LOCKSTEP in params.kinds and graph.n_edges:
        step("lockstep bursts")
        groups += [
            _burst_group(graph, b, params.lockstep) for b in find_bursts(graph, params.lockstep)
        ]
    if sightings is not None and len(sightings.user):
        if Kind.SHARED_DEVICE in params.kinds:
            step("shared devices")
            groups += _shared(sightings, Kind.SHARED_DEVICE, params.devices)
        if Kind.SHARED_IP in params.kinds:
            step("shared addresses")
            groups += _shared(sightings, Kind.SHARED_IP, params.ips)
    return groups


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _members(
    names: Sequence[str], index: IntArray, hits: IntArray, expected: Any
) -> tuple[Member, ...]:
    order = np.argsort(-np.asarray(hits), kind="stable")
    return tuple(
        Member(names[int(index[i])], int(hits[i]), round(float(expected[i]), 4)) for i in order
    )


def _block_evidence(block: Block) -> dict[str, Any]:
    return {
        "users": int(block.rows.size),
        "targets": int(block.cols.size),
        "edges": block.edges,
        "density": round(block.density, 4),
        "expected_edges": round(block.expected, 3),
        "lift": round(block.lift, 2),
    }


def _window(graph: Interactions, block_users: IntArray, block_targets: IntArray) -> tuple[int, int]:
    inside = np.isin(graph.user, block_users) & np.isin(graph.target, block_targets)
    times = graph.at[inside]
    return int(times.min()), int(times.max())


def _block_group(graph: Interactions, block: Block) -> Group:
    start, end = _window(graph, block.rows, block.cols)
    evidence = _block_evidence(block)
    evidence["why"] = (
        f"{block.rows.size} accounts made {block.edges} interactions with the same "
        f"{block.cols.size} targets (density {block.density:.2f}); their activity and the "
        f"targets' popularity explain {block.expected:.1f} ({block.lift:.0f}x fewer)"
    )
    return Group(
        Kind.DENSE_BLOCK,
        _members(graph.users, block.rows, block.row_hits, block.row_expected),
        _members(graph.targets, block.cols, block.col_hits, block.col_expected),
        round(block.score, 2),
        utc(start),
        utc(end),
        evidence,
    )


def _burst_group(graph: Interactions, burst: Burst, params: LockstepParams) -> Group:
    block = burst.block
    evidence = _block_evidence(block)
    evidence.update(
        {
            "cells": int(block.cols.size),
            "targets": int(burst.targets.size),
            "interactions_in_burst": burst.edges,
            "share_of_cells": round(burst.share, 3),
            "burst_seconds": params.burst_seconds,
            "burst_start": utc(burst.core_start).isoformat(),
            "burst_end": utc(burst.core_end).isoformat(),
            "why": (
                f"{burst.users.size} accounts acted on {burst.targets.size} targets together, "
                f"{burst.edges} interactions, most within "
                f"{(burst.core_end - burst.core_start) // 60 + 1} minutes "
                f"({block.lift:.0f}x what their activity explains)"
            ),
        }
    )
    # Per-target hits: the group's interactions with each target inside the burst.
    inside = (
        np.isin(graph.user, burst.users)
        & np.isin(graph.target, burst.targets)
        & (graph.at >= burst.start)
        & (graph.at <= burst.end)
    )
    target_hits = np.bincount(graph.target[inside], minlength=graph.n_targets)[burst.targets]
    user_hits = np.bincount(graph.user[inside], minlength=graph.n_users)[burst.users]
    return Group(
        Kind.LOCKSTEP,
        _members(graph.users, burst.users, user_hits, block.row_expected),
        _members(graph.targets, burst.targets, target_hits, np.zeros(burst.targets.size)),
        round(block.score, 2),
        utc(burst.start),
        utc(burst.end),
        evidence,
    )


def _shared(sightings: Sightings, kind: Kind, params: ClusterParams) -> list[Group]:
    by_device = kind is Kind.SHARED_DEVICE
    raw = sightings.device if by_device else sightings.ip
    at = np.asarray(sightings.at, dtype=np.int64)
    present = np.array([v is not None and v != "" for v in raw], dtype=bool)
    if not present.any():
        return []
    users = np.asarray(sightings.user, dtype=object)[present].astype(str)
    values = np.asarray(raw, dtype=object)[present].astype(str)
    times = at[present]
    if by_device:
        return _clusters_of(kind, users, values, times, params)
    # An address counts per day, on two grids of days offset by half a day, so a ring working
    # across midnight is not cut in two; a ring both grids see is reported once.
    groups: dict[frozenset[str], Group] = {}
    for offset in (0, 43_200):
        starts = (times + offset) // 86_400 * 86_400 - offset
        day = np.datetime_as_string(starts.astype("datetime64[s]"), unit="h")
        for group in _clusters_of(
            kind, users, np.char.add(values, np.char.add(" from ", day)), times, params
        ):
            key = frozenset(m.id for m in group.users)
            if key not in groups or group.score > groups[key].score:
                groups[key] = group
    return list(groups.values())


def _clusters_of(
    kind: Kind, users: Any, values: Any, times: IntArray, params: ClusterParams
) -> list[Group]:
    user_names, user = np.unique(users, return_inverse=True)
    value_names, value = np.unique(values, return_inverse=True)
    return [
        _cluster_group(kind, cluster, user_names, value_names, user, value, times)
        for cluster in find_clusters(
            user.astype(np.int64), value.astype(np.int64), user_names.size, value_names.size, params
        )
    ]


def _cluster_group(
    kind: Kind,
    cluster: Cluster,
    user_names: Any,
    value_names: Any,
    user: Any,
    value: Any,
    times: IntArray,
) -> Group:
    inside = np.isin(user, cluster.users) & np.isin(value, cluster.values)
    per_user = np.bincount(user[inside], minlength=user_names.size)[cluster.users]
    label = "device" if kind is Kind.SHARED_DEVICE else "address-day"
    shared = [
        {"value": str(value_names[v]), "accounts": int(c)}
        for v, c in sorted(
            zip(cluster.values, cluster.value_users, strict=True), key=lambda p: -p[1]
        )
    ]
    return Group(
        kind,
        _members(list(user_names), cluster.users, per_user, np.zeros(cluster.users.size)),
        (),
        round(cluster.score, 2),
        utc(int(times[inside].min())),
        utc(int(times[inside].max())),
        {
            "users": int(cluster.users.size),
            "shared": shared[:EVIDENCE_VALUES],
            "shared_values": int(cluster.values.size),
            "why": f"{cluster.users.size} accounts share {cluster.values.size} {label} value(s)",
        },
    )


def related(groups: Sequence[Group]) -> list[list[tuple[int, int]]]:
    """For each group, the other groups sharing at least half the smaller one's accounts (one
    ring seen by two detectors: a dense block and a lockstep burst, or a shared device), as
    ``(index, shared accounts)``."""
    accounts = [{m.id for m in g.users} for g in groups]
    links: list[list[tuple[int, int]]] = [[] for _ in groups]
    for i, mine in enumerate(accounts):
        for j in range(i + 1, len(groups)):
            shared = len(mine & accounts[j])
            if shared and shared * 2 >= min(len(mine), len(accounts[j])):
                links[i].append((j, shared))
                links[j].append((i, shared))
    return links
