"""Reading interactions from a file (CSV or Parquet) for a scan: the columns, the times it
accepts (ISO 8601 with an offset, Unix seconds, zoned Parquet timestamps), the range filter,
the optional device and address columns, and a problem naming the field for what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zanloop.errors import Unprocessable
from zanloop.fraud import sources

SHANGHAI = timezone(timedelta(hours=8))
NOON = datetime(2026, 11, 20, 12, 30, tzinfo=SHANGHAI)
NOON_S = int(NOON.timestamp())


def csv(tmp_path: Path, text: str, name: str = "interactions.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def parquet(tmp_path: Path, columns: dict[str, Any], name: str = "interactions.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return path


def refused(path: Path, **kwargs: Any) -> Unprocessable:
    with pytest.raises(Unprocessable) as caught:
        sources.read_file(path, **kwargs)
    return caught.value


def fields(error: Unprocessable) -> list[str | None]:
    return [e.field for e in error.errors]


def edges(path: Path, **kwargs: Any) -> list[tuple[str, str, int]]:
    graph, _ = sources.read_file(path, **kwargs)
    return sorted(
        (graph.users[u], graph.targets[t], int(at))
        for u, t, at in zip(graph.user, graph.target, graph.at, strict=True)
    )


def test_a_csv_with_offsets_utc_and_unix_seconds_reads_the_same_instants(tmp_path: Path) -> None:
    iso = csv(
        tmp_path,
        "user_id,target_id,at\n"
        "ann,store:7,2026-11-20T12:30:00+08:00\n"
        "bob,store:7,2026-11-20T04:30:00Z\n"
        "cat,store:9,2026-11-20T05:30:00+01:00\n",
        "iso.csv",
    )
    unix = csv(
        tmp_path,
        f"user_id,target_id,at\nann,store:7,{NOON_S}\nbob,store:7,{NOON_S}\ncat,store:9,{NOON_S}\n",
        "unix.csv",
    )

    expected = [("ann", "store:7", NOON_S), ("bob", "store:7", NOON_S), ("cat", "store:9", NOON_S)]
    assert edges(iso) == expected
    assert edges(unix) == expected
    graph, sightings = sources.read_file(iso)
    assert (graph.n_users, graph.n_targets, graph.n_edges) == (3, 2, 3)
    # No device or address columns: nothing for the device and address clusters.
    assert list(sightings.user) == []


def test_numeric_looking_ids_stay_text(tmp_path: Path) -> None:
    path = csv(tmp_path, f"user_id,target_id,at\n007,0042,{NOON_S}\n")

    assert edges(path) == [("007", "0042", NOON_S)]


def test_parquet_with_zoned_timestamps_unix_seconds_or_iso_text(tmp_path: Path) -> None:
    users, targets = ["ann", "bob"], ["store:7", "store:8"]
    when = [NOON, NOON + timedelta(minutes=5)]
    expected = [("ann", "store:7", NOON_S), ("bob", "store:8", NOON_S + 300)]
    variants = {
        "stamps": pa.array(when, pa.timestamp("us", "Asia/Shanghai")),
        "seconds": pa.array([NOON_S, NOON_S + 300], pa.int64()),
        "text": pa.array([t.isoformat() for t in when]),
    }
    for name, at in variants.items():
        path = parquet(tmp_path, {"user_id": users, "target_id": targets, "at": at}, name + ".pq")
        assert edges(path) == expected, name


def test_since_and_until_keep_the_half_open_range(tmp_path: Path) -> None:
    rows = "".join(f"u{i},t{i},{NOON_S + i * 3600}\n" for i in range(5))
    path = csv(tmp_path, "user_id,target_id,at\n" + rows)

    kept = edges(
        path, since=NOON + timedelta(hours=1), until=(NOON + timedelta(hours=3)).astimezone(UTC)
    )
    assert [u for u, _, _ in kept] == ["u1", "u2"]
    assert [u for u, _, _ in edges(path, since=NOON + timedelta(hours=4))] == ["u4"]
    assert [u for u, _, _ in edges(path, until=NOON + timedelta(seconds=1))] == ["u0"]
    assert edges(path, since=NOON + timedelta(days=1)) == []


def test_device_and_ip_columns_become_sightings(tmp_path: Path) -> None:
    path = csv(
        tmp_path,
        "user_id,target_id,at,device_id,ip\n"
        f"ann,store:7,{NOON_S},phone-1,203.0.113.7\n"
        f"bob,store:7,{NOON_S + 60},phone-1,\n"
        f"cat,store:8,{NOON_S + 120},,198.51.100.2\n"
        f"dan,store:8,{NOON_S + 7200},phone-9,198.51.100.2\n",
    )

    _, seen = sources.read_file(path, until=NOON + timedelta(hours=1))

    assert list(seen.user) == ["ann", "bob", "cat"]
    assert list(seen.device) == ["phone-1", "phone-1", None]
    assert list(seen.ip) == ["203.0.113.7", None, "198.51.100.2"]
    assert list(seen.at) == [NOON_S, NOON_S + 60, NOON_S + 120]


def test_a_device_column_in_parquet_is_read_too(tmp_path: Path) -> None:
    path = parquet(
        tmp_path,
        {
            "user_id": ["ann", "bob"],
            "target_id": ["t", "t"],
            "at": pa.array([NOON_S, NOON_S], pa.int64()),
            "device_id": ["phone-1", None],
        },
    )

    _, seen = sources.read_file(path)

    assert list(seen.device) == ["phone-1", None]
    assert list(seen.ip) == [None, None]


def test_a_missing_column_is_refused_naming_the_file(tmp_path: Path) -> None:
    for header in ("user_id,target_id", "user,target_id,at", "target_id,at"):
        path = csv(tmp_path, f"{header}\n" + ",".join(["x"] * len(header.split(","))) + "\n")
        error = refused(path)
        assert fields(error) == ["file"], header
        assert "user_id, target_id, at" in error.message


def test_a_time_without_an_offset_is_refused_naming_at(tmp_path: Path) -> None:
    naive_csv = csv(tmp_path, "user_id,target_id,at\nann,t,2026-11-20T12:30:00\n")
    naive_parquet = parquet(
        tmp_path,
        {"user_id": ["ann"], "target_id": ["t"], "at": pa.array([NOON.replace(tzinfo=None)])},
    )
    for path in (naive_csv, naive_parquet):
        error = refused(path)
        assert fields(error) == ["at"], path.name
        assert "time zone" in error.message


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("yesterday", id="words"),
        pytest.param("20/11/2026 12:30", id="local-format"),
        pytest.param("", id="empty"),
    ],
)
def test_a_time_that_is_not_a_time_is_refused_naming_at(tmp_path: Path, value: str) -> None:
    path = csv(tmp_path, f"user_id,target_id,at\nann,t,{NOON_S}\nbob,t,{value}\n")

    assert fields(refused(path)) == ["at"]


def test_rows_without_a_user_or_target_are_refused_naming_the_file(tmp_path: Path) -> None:
    for row in (f",t,{NOON_S}", f"ann,,{NOON_S}"):
        path = csv(tmp_path, f"user_id,target_id,at\nbob,t,{NOON_S}\n{row}\n")
        assert fields(refused(path)) == ["file"], row


def test_unreadable_files_are_refused_naming_the_file(tmp_path: Path) -> None:
    not_parquet = tmp_path / "broken.parquet"
    not_parquet.write_text("user_id,target_id,at\n")
    wrong_kind = tmp_path / "interactions.json"
    wrong_kind.write_text("[]")
    for path in (tmp_path / "missing.csv", not_parquet, wrong_kind, tmp_path):
        assert fields(refused(path)) == ["file"], path.name


def test_an_empty_file_is_an_empty_graph(tmp_path: Path) -> None:
    graph, seen = sources.read_file(csv(tmp_path, "user_id,target_id,at\n"))

    assert (graph.n_edges, graph.n_users, len(seen.user)) == (0, 0, 0)


def test_a_repeated_pair_counts_once_at_its_first_time(tmp_path: Path) -> None:
    path = csv(
        tmp_path,
        f"user_id,target_id,at\nann,t,{NOON_S + 60}\nann,t,{NOON_S}\nann,u,{NOON_S + 5}\n",
    )

    assert edges(path) == [("ann", "t", NOON_S), ("ann", "u", NOON_S + 5)]


def test_fractional_seconds_are_read_not_refused(tmp_path: Path) -> None:
    text = csv(tmp_path, "user_id,target_id,at\nann,t,2026-11-20T12:30:00.250+08:00\n")
    stamps = parquet(
        tmp_path,
        {
            "user_id": ["ann"],
            "target_id": ["t"],
            "at": pa.array([NOON + timedelta(milliseconds=250)], pa.timestamp("ms", "UTC")),
        },
    )

    assert edges(text) == [("ann", "t", NOON_S)]
    assert edges(stamps) == [("ann", "t", NOON_S)]
