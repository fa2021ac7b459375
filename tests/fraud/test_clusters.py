"""Accounts sharing devices (phone farms) or an address on one day."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np
import pytest

from tests.fraud.synthetic import DAY, T0
from zanloop.fraud.clusters import ClusterParams, find_clusters
from zanloop.fraud.domain import Group, Kind, ScanParams, Sightings, detect
from zanloop.fraud.graph import Interactions

NO_GRAPH = Interactions.from_records([])
SHARING = ScanParams(kinds=frozenset({Kind.SHARED_DEVICE, Kind.SHARED_IP}))

Row = tuple[str, str | None, str | None, int]


def sightings(rows: Iterable[Row]) -> Sightings:
    users, devices, ips, at = zip(*rows, strict=True)
    return Sightings(list(users), list(devices), list(ips), list(at))


def honest_rows(n: int = 2_000, seed: int = 0) -> list[Row]:
    """Each honest user on a device of their own, at home on an address of their own, a few
    times over the month."""
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    for i in range(n):
        for _ in range(int(rng.integers(1, 6))):
            at = T0 + int(rng.integers(0, 30 * DAY))
            rows.append((f"h{i}", f"phone-h{i}", f"10.{i // 250}.{i % 250}.1", at))
    return rows


def detect_sharing(rows: Iterable[Row]) -> list[Group]:
    return detect(NO_GRAPH, sightings(rows), SHARING)


def ids(group: Group) -> set[str]:
    return {m.id for m in group.users}


def of_kind(groups: list[Group], kind: Kind) -> list[Group]:
    return [g for g in groups if g.kind is kind]


def test_a_phone_farm_is_one_shared_device_group() -> None:
    # 12 accounts on 2 devices: 0-6 on the first, 5-11 on the second (5 and 6 on both).
    farm: list[Row] = []
    for i in range(12):
        devices = (["farm-a"] if i < 7 else []) + (["farm-b"] if i >= 5 else [])
        for k, device in enumerate(devices):
            farm.append((f"f{i}", device, f"203.0.113.{i}", T0 + 5 * DAY + 60 * i + k))
    groups = detect_sharing(honest_rows() + farm)
    (group,) = of_kind(groups, Kind.SHARED_DEVICE)
    assert ids(group) == {f"f{i}" for i in range(12)}
    assert group.score == 6.0  # accounts per device
    assert group.targets == ()
    assert group.evidence["shared_values"] == 2
    assert {s["value"]: s["accounts"] for s in group.evidence["shared"]} == {
        "farm-a": 7,
        "farm-b": 7,
    }
    # Sightings per account on the shared devices: 5 and 6 were seen on both.
    hits = {m.id: m.hits for m in group.users}
    assert hits["f5"] == hits["f6"] == 2
    assert hits["f0"] == hits["f11"] == 1
    assert group.start == datetime.fromtimestamp(T0 + 5 * DAY, UTC)
    assert group.end == datetime.fromtimestamp(T0 + 5 * DAY + 60 * 11, UTC)
    assert of_kind(groups, Kind.SHARED_IP) == []


def test_two_farms_are_two_groups_the_denser_first() -> None:
    farm = [(f"a{i}", "dev-a", None, T0 + i) for i in range(12)]
    farm += [(f"b{i}", f"dev-b{k}", None, T0 + i + k) for i in range(8) for k in range(2)]
    groups = of_kind(detect_sharing(honest_rows(300) + farm), Kind.SHARED_DEVICE)
    assert [ids(g) for g in groups] == [{f"a{i}" for i in range(12)}, {f"b{i}" for i in range(8)}]
    assert [g.score for g in groups] == [12.0, 4.0]


@pytest.mark.parametrize("seed", [0, 1])
def test_honest_users_on_their_own_devices_form_no_group(seed: int) -> None:
    assert detect_sharing(honest_rows(seed=seed)) == []


def test_a_family_sharing_a_tablet_is_not_a_group() -> None:
    family = [(f"fam{i}", "tablet", "192.0.2.7", T0 + DAY + i) for i in range(2)]
    assert detect_sharing(honest_rows(300) + family) == []


def test_one_account_seen_many_times_counts_once() -> None:
    # Two accounts, 20 sightings each on one device: still only two accounts share it.
    rows = [(f"x{i % 2}", "dev", None, T0 + i) for i in range(40)]
    assert detect_sharing(rows) == []


def test_a_carrier_gateway_is_not_a_group() -> None:
    # 350 users behind one carrier address on the same day: above max_shared (200).
    gateway = [(f"c{i}", f"phone-c{i}", "198.51.100.1", T0 + 3 * DAY + 100 * i) for i in range(350)]
    groups = detect_sharing(honest_rows(500) + gateway)
    assert groups == []


def test_a_default_device_id_used_by_hundreds_is_not_a_farm() -> None:
    # An emulator's default id, reported by 600 unrelated accounts: infrastructure, not a ring.
    rows = [(f"e{i}", "00000000", None, T0 + 1_000 * i) for i in range(600)]
    assert detect_sharing(rows) == []


def test_a_ring_behind_a_gateway_is_found_without_the_gateway() -> None:
    # The ring's 6 accounts share a small office address; they also go through the gateway,
    # which must not pull the gateway's 350 users into their group.
    day = T0 + 3 * DAY
    gateway = [(f"c{i}", f"phone-c{i}", "198.51.100.1", day + 100 * i) for i in range(350)]
    ring = [(f"r{i}", f"phone-r{i}", "192.0.2.50", day + 7 * i) for i in range(6)]
    ring += [(f"r{i}", f"phone-r{i}", "198.51.100.1", day + 900 + i) for i in range(6)]
    (group,) = detect_sharing(gateway + ring)
    assert group.kind is Kind.SHARED_IP
    assert ids(group) == {f"r{i}" for i in range(6)}


def test_address_clusters_are_per_day() -> None:
    address = "192.0.2.99"
    # The same 10 accounts on one address, but never more than two on the same day.
    spread = [(f"s{i}", f"phone-s{i}", address, T0 + (i // 2) * DAY + 3_600) for i in range(10)]
    assert detect_sharing(honest_rows(300) + spread) == []
    # The same 10 on one day are one group, named by the address and the day.
    one_day = [(f"s{i}", f"phone-s{i}", address, T0 + 4 * DAY + 60 * i) for i in range(10)]
    (group,) = detect_sharing(honest_rows(300) + one_day)
    assert group.kind is Kind.SHARED_IP
    assert ids(group) == {f"s{i}" for i in range(10)}
    day = datetime.fromtimestamp((T0 + 4 * DAY) // DAY * DAY, UTC)
    assert [s["value"] for s in group.evidence["shared"]] == [f"{address} from {day:%Y-%m-%dT%H}"]
    assert group.score == 10.0


def test_the_same_address_on_two_days_is_two_groups() -> None:
    address = "192.0.2.99"
    rows = [(f"d{i}", f"phone-d{i}", address, T0 + (1 + i // 6) * DAY + i) for i in range(12)]
    groups = detect_sharing(rows)
    assert sorted(len(g.users) for g in groups) == [6, 6]
    assert all(g.kind is Kind.SHARED_IP for g in groups)


def test_an_address_needs_more_accounts_than_a_device() -> None:
    # Four accounts sharing a device is a group; four on an address (per day) is not.
    device = [(f"v{i}", "shared-phone", f"10.9.9.{i}", T0 + i) for i in range(4)]
    address = [(f"w{i}", f"phone-w{i}", "192.0.2.1", T0 + i) for i in range(4)]
    groups = detect_sharing(device + address)
    assert [(g.kind, ids(g)) for g in groups] == [(Kind.SHARED_DEVICE, {f"v{i}" for i in range(4)})]


def test_missing_devices_and_addresses_link_nobody() -> None:
    rows: list[Row] = [(f"n{i}", None, "", T0 + i) for i in range(30)]
    rows += [(f"m{i}", "", None, T0 + i) for i in range(30)]
    assert detect_sharing(rows) == []
    assert detect(NO_GRAPH, Sightings.empty(), SHARING) == []
    assert detect(NO_GRAPH, None, SHARING) == []


def test_disabled_kinds_are_not_searched() -> None:
    farm = [(f"f{i}", "farm", "192.0.2.1", T0 + i) for i in range(12)]
    only_ip = ScanParams(kinds=frozenset({Kind.SHARED_IP}))
    groups = detect(NO_GRAPH, sightings(farm), only_ip)
    assert [g.kind for g in groups] == [Kind.SHARED_IP]


def test_find_clusters_links_through_shared_values() -> None:
    # Users 0-2 share value 0, users 2-4 share value 1: one chain of five; 7-8 share value 2
    # (only two, below min_shared).
    user = np.array([0, 1, 2, 2, 3, 4, 7, 8])
    value = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    params = ClusterParams(min_shared=3, min_users=3)
    (cluster,) = find_clusters(user, value, 10, 3, params)
    assert cluster.users.tolist() == [0, 1, 2, 3, 4]
    assert cluster.values.tolist() == [0, 1]
    assert cluster.value_users.tolist() == [3, 3]
    assert cluster.score == pytest.approx(2.5)


def test_find_clusters_drops_values_over_max_shared() -> None:
    user = np.arange(10)
    value = np.zeros(10, dtype=np.int64)
    assert find_clusters(user, value, 10, 1, ClusterParams(max_shared=9)) == []
    assert len(find_clusters(user, value, 10, 1, ClusterParams(max_shared=10))) == 1


def test_find_clusters_on_nothing() -> None:
    empty = np.empty(0, dtype=np.int64)
    assert find_clusters(empty, empty, 0, 0, ClusterParams()) == []


def test_a_ring_working_across_midnight_utc_is_found() -> None:
    midnight = T0 + 6 * DAY
    ring = [(f"z{i}", f"phone-z{i}", "192.0.2.200", midnight - 1_500 + 400 * i) for i in range(8)]
    noon = [(u, d, ip, at + DAY // 2) for u, d, ip, at in ring]
    assert len(detect_sharing(noon)) == 1
    (group,) = detect_sharing(ring)
    assert ids(group) == {f"z{i}" for i in range(8)}
