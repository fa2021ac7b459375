"""Where a scan's interactions come from: a tenant's own tables, or a file.

From the database: paid pins (``content:<id>``), likes on campaign prompts
(``campaign:<id>``), member events that name a store (``store:<id>``) or invite a member
(``user:<id>``), and the devices and addresses risk decisions saw. Each area answers through
its own service.

From a file (CSV or Parquet, for offline analysis): one row per interaction with the columns
``user_id``, ``target_id`` and ``at`` (ISO 8601 with an offset, or Unix seconds), and optionally
``device_id`` and ``ip`` for the device and address clusters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from zanloop.campaigns import service as campaigns
from zanloop.errors import Unprocessable
from zanloop.fraud.domain import Sightings
from zanloop.fraud.graph import Interactions
from zanloop.kit.clock import as_utc
from zanloop.loyalty import service as loyalty
from zanloop.pins import service as pins
from zanloop.risk import service as risk

REQUIRED = ("user_id", "target_id", "at")
OPTIONAL = ("device_id", "ip")


def _seconds(at: datetime) -> int:
    return int(as_utc(at).timestamp())


def from_database(
    session: Session, tenant_id: str, since: datetime, until: datetime
) -> tuple[Interactions, Sightings]:
    records: list[tuple[str, str, datetime]] = [
        *pins.interactions(session, tenant_id, since, until),
        *campaigns.interactions(session, tenant_id, since, until),
        *loyalty.interactions(session, tenant_id, since, until),
    ]
    graph = Interactions.from_records((u, t, _seconds(at)) for u, t, at in records)
    seen = risk.sightings(session, tenant_id, since, until)
    sightings = Sightings(
        user=[s[0] for s in seen],
        device=[s[1] for s in seen],
        ip=[s[2] for s in seen],
        at=[_seconds(s[3]) for s in seen],
    )
    return graph, sightings


def read_file(
    path: Path, since: datetime | None = None, until: datetime | None = None
) -> tuple[Interactions, Sightings]:
    """A CSV or Parquet file of interactions, limited to ``[since, until)`` if given."""
    table = _read_table(path)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise Unprocessable(
            f"{path.name} has no column {', '.join(missing)} (needs {', '.join(REQUIRED)})",
            field="file",
        )
    at = _unix_seconds(table.column("at"), path)
    keep = np.ones(at.size, dtype=bool)
    if since is not None:
        keep &= at >= _seconds(since)
    if until is not None:
        keep &= at < _seconds(until)
    users = _strings(table.column("user_id"))[keep]
    targets = _strings(table.column("target_id"))[keep]
    at = at[keep]
    if ((users == "") | (targets == "")).any():
        raise Unprocessable(f"{path.name} has rows without a user_id or target_id", field="file")
    graph = Interactions.from_arrays(users, targets, at)
    columns = {c: _optional(table, c, keep) for c in OPTIONAL}
    sightings = Sightings(
        user=list(users), device=columns["device_id"], ip=columns["ip"], at=list(at.tolist())
    )
    if not any(v is not None for v in (*sightings.device, *sightings.ip)):
        sightings = Sightings.empty()
    return graph, sightings


def _read_table(path: Path) -> pa.Table:
    if not path.is_file():
        raise Unprocessable(f"no such file: {path}", field="file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path)
        if suffix in (".csv", ".txt") or suffix == ".gz":
            options = pa_csv.ConvertOptions(
                column_types={c: pa.string() for c in ("user_id", "target_id", *OPTIONAL)}
            )
            return pa_csv.read_csv(path, convert_options=options)
    except (pa.ArrowInvalid, OSError) as exc:
        raise Unprocessable(f"{path.name} could not be read: {exc}", field="file") from exc
    raise Unprocessable("the file must be .csv or .parquet", field="file")


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(
        pc.fill_null(pc.cast(column, pa.string()), "").to_numpy(zero_copy_only=False), dtype=str
    )


def _optional(table: pa.Table, name: str, keep: np.ndarray) -> Sequence[str | None]:
    if name not in table.column_names:
        return [None] * int(keep.sum())
    values = pc.cast(table.column(name), pa.string()).to_pylist()
    return [v or None for v, k in zip(values, keep, strict=True) if k]


def _unix_seconds(column: pa.ChunkedArray, path: Path) -> np.ndarray:
    """Integers are Unix seconds; text is ISO 8601 and must say its offset."""
    try:
        if pa.types.is_integer(column.type):
            values = column
        elif pa.types.is_timestamp(column.type):
            if column.type.tz is None:
                raise Unprocessable(f"{path.name}: 'at' has no time zone", field="at")
            # Whole seconds: a fraction is dropped, not refused.
            seconds = pc.cast(column, pa.timestamp("s", "UTC"), safe=False)
            values = pc.cast(seconds, pa.int64())
        else:
            text = pc.cast(column, pa.string())
            # Arrow's ISO 8601 parser insists on an offset for a zoned timestamp.
            zoned = pc.cast(text, pa.timestamp("us", "UTC"))
            values = pc.cast(pc.cast(zoned, pa.timestamp("s", "UTC"), safe=False), pa.int64())
    except pa.ArrowInvalid as exc:
        raise Unprocessable(
            f"{path.name}: 'at' must be Unix seconds or ISO 8601 with an offset ({exc})",
            field="at",
        ) from exc
    if values.null_count:
        raise Unprocessable(f"{path.name} has rows without 'at'", field="at")
    return np.asarray(values.to_numpy(), dtype=np.int64)
