"""``zanloop fraud scan``: group detection over a file or a tenant's database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from zanloop.config import get_settings
from zanloop.errors import ZanloopError

fraud_app = typer.Typer(help="Group fake-engagement detection (R4).", no_args_is_help=True)
console = Console(stderr=True)


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint=option) from exc
    if value.tzinfo is None:
        raise typer.BadParameter("give an offset, e.g. +08:00 or Z", param_hint=option)
    return value


@contextmanager
def _progress() -> Iterator[Any]:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)
        yield lambda step: bar.update(task, description=step)


def _render(groups: list[dict[str, Any]]) -> None:
    table = Table(title=f"{len(groups)} group(s) found")
    for column in ("kind", "accounts", "targets", "score", "window (UTC)", "why"):
        table.add_column(column)
    for g in groups:
        start, end = g.get("window_start"), g.get("window_end")
        window = f"{start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M}" if start and end else ""
        table.add_row(
            g["kind"],
            str(g["users"]),
            str(g["targets"]),
            f"{g['score']:.1f}",
            window,
            str(g["evidence"].get("why", "")),
        )
    Console(width=max(Console().width, 150)).print(table)


@fraud_app.command("scan")
def scan(
    file: Annotated[
        Path | None, typer.Option(help="A CSV or Parquet file (user_id, target_id, at)")
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Scan this tenant's tables, or store a file's findings")
    ] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601; default: 30 days ago")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601; default: now")] = None,
    burst_seconds: Annotated[int, typer.Option(help="Longest lockstep burst")] = 3600,
    output: Annotated[Path | None, typer.Option(help="Also write the groups as JSON")] = None,
) -> None:
    """Find groups of accounts faking engagement together, and print them.

    With --file only, nothing is stored. With --tenant, findings are stored under the tenant
    and can be read and acted on through /v1/fraud."""
    from zanloop.fraud import domain, sources
    from zanloop.fraud.lockstep import LockstepParams

    if file is None and tenant is None:
        raise typer.BadParameter("give --file, --tenant, or both")
    begin, end = _when(since, "--since"), _when(until, "--until")
    params = domain.ScanParams(lockstep=LockstepParams(burst_seconds=burst_seconds))
    try:
        with _progress() as step:
            if tenant is None:
                assert file is not None
                step("reading file")
                graph, sightings = sources.read_file(file, begin, end)
                groups = [_plain(g) for g in domain.detect(graph, sightings, params, step)]
                summary = f"{graph.n_edges:,} interactions, {graph.n_users:,} accounts"
            else:
                groups, summary = _stored(tenant, file, begin, end, params, step)
    except ZanloopError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    console.print(summary)
    _render(groups)
    if output is not None:
        output.write_text(json.dumps(groups, default=str, indent=2))
        console.print(f"written to {output}")


def _plain(group: Any) -> dict[str, Any]:
    return {
        "kind": group.kind.value,
        "users": len(group.users),
        "targets": len(group.targets),
        "score": group.score,
        "window_start": group.start,
        "window_end": group.end,
        "evidence": group.evidence,
        "members": [m.id for m in group.users],
        "target_members": [m.id for m in group.targets],
    }


def _stored(
    tenant: str,
    file: Path | None,
    begin: datetime | None,
    end: datetime | None,
    params: Any,
    step: Any,
) -> tuple[list[dict[str, Any]], str]:
    from zanloop.db import Database
    from zanloop.fraud import service

    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            if file is not None:
                scan = service.scan_file(session, tenant, file, begin, end, "cli", params, step)
            else:
                until = end or datetime.now(UTC)
                since = begin or until - timedelta(days=30)
                scan = service.scan_database(session, tenant, since, until, "cli", params, step)
            findings = service.list_findings(
                session,
                tenant,
                scan_id=scan.id,
                kind=None,
                status=None,
                user_id=None,
                after_id=None,
                limit=1000,
            )
            groups = [
                {
                    "id": f.id,
                    "kind": f.kind,
                    "users": f.users,
                    "targets": f.targets,
                    "score": f.score,
                    "window_start": f.window_start,
                    "window_end": f.window_end,
                    "evidence": f.evidence,
                    "members": [m.id for m in service.finding_members(session, f.id)[0]],
                }
                for f in findings
            ]
            stats = scan.stats
            summary = (
                f"scan {scan.id}: {stats['interactions']:,} interactions, "
                f"{stats['findings']} new finding(s), {stats['repeated']} already reported"
            )
    finally:
        db.dispose()
    return groups, summary


@fraud_app.command("sample")
def sample(
    path: Annotated[Path, typer.Argument(help="Where to write: .csv or .parquet")],
    users: Annotated[int, typer.Option(help="Honest accounts")] = 20_000,
    targets: Annotated[int, typer.Option(help="Targets (content, stores, products)")] = 10_000,
    interactions: Annotated[int, typer.Option(help="Honest interactions")] = 200_000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
) -> None:
    """Write a synthetic month of interactions with known rings, to try `fraud scan --file` on.

    Honest power-law traffic, plus a 100 x 100 ring at density 0.2 camouflaged on popular
    targets, and 50 accounts hitting 8 of 20 popular targets within one hour from 5 phones.
    The rings' accounts are printed (and are the only ones named ``u`` + a number above the
    honest range)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    from zanloop.bench.fraud_graphs import Generator, Shape

    if path.suffix.lower() not in (".csv", ".parquet"):
        raise typer.BadParameter("the file must end in .csv or .parquet", param_hint="PATH")
    generator = Generator(seed, Shape(users=users, targets=targets, edges=interactions))
    block = generator.block(0.2, "popular", users=100, targets=100)
    burst = generator.lockstep(users=50, targets=20, hits=8)
    # The burst's accounts come after the block's: renumber them past it.
    shift = 100
    graph = block.graph
    burst_graph = burst.graph
    fresh = burst_graph.user >= users
    user = np.concatenate((graph.user, burst_graph.user[fresh] + shift))
    target = np.concatenate((graph.target, burst_graph.target[fresh]))
    at = np.concatenate((graph.at, burst_graph.at[fresh]))
    names = np.array([f"u{i}" for i in range(users + shift + 50)])
    device = np.where(user >= users + shift, np.char.add("phone-", (user % 5).astype(str)), "")
    table = pa.table(
        {
            "user_id": names[user],
            "target_id": np.char.add("t", target.astype(str)),
            "at": pa.array(at * 1_000_000, type=pa.timestamp("us", "UTC")),
            "device_id": pa.array([d or None for d in device.tolist()], type=pa.string()),
        }
    )
    if path.suffix.lower() == ".csv":
        pa_csv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    console.print(
        f"wrote {table.num_rows:,} interactions to {path}: accounts u{users}-u{users + 99} are "
        f"a dense ring, u{users + 100}-u{users + 149} a lockstep burst on 5 phones"
    )
