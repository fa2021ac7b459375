"""`zanloop fraud scan`: a file scanned offline, or a tenant's tables (or a file) scanned into
the database where /v1/fraud reads the findings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import zanloop.db
from tests.fraud.conftest import BURST_START, SINCE, UNTIL, Shop, World, make_world, members_of
from zanloop.cli import app
from zanloop.config import get_settings
from zanloop.db import Database


@pytest.fixture
def runner(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """The CLI against the test database (as tests/sandbox/test_cli.py runs it)."""
    monkeypatch.setenv("ZANLOOP_DATABASE_URL", db.url)
    get_settings.cache_clear()
    opened: list[Database] = []

    class Closable(Database):
        def __init__(self, url: str) -> None:
            super().__init__(url)
            opened.append(self)

    monkeypatch.setattr(zanloop.db, "Database", Closable)
    yield CliRunner()
    for database in opened:
        database.dispose()
    get_settings.cache_clear()


def write_csv(world: World, path: Path, iso: bool = False) -> Path:
    lines = ["user_id,target_id,at,device_id"]
    for v in world.visits:
        at = v.at.isoformat() if iso else str(int(v.at.timestamp()))
        lines.append(f"{v.user},store:{v.store},{at},")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def ring_world() -> World:
    return make_world()


def test_a_file_scan_prints_the_ring_and_writes_it_as_json(
    runner: CliRunner, ring_world: World, tmp_path: Path
) -> None:
    data = write_csv(ring_world, tmp_path / "visits.csv")
    output = tmp_path / "groups.json"

    result = runner.invoke(app, ["fraud", "scan", "--file", str(data), "--output", str(output)])

    assert result.exit_code == 0, result.output
    assert f"{len(ring_world.visits):,} interactions" in result.output
    assert "2 group(s) found" in result.output
    assert "dense_block" in result.output
    assert "lockstep" in result.output
    groups = json.loads(output.read_text())
    assert sorted(g["kind"] for g in groups) == ["dense_block", "lockstep"]
    for group in groups:
        assert set(group["members"]) == set(ring_world.ring_users)
        assert set(group["target_members"]) == {f"store:{s}" for s in ring_world.ring_stores}
        assert group["users"] == len(ring_world.ring_users)
        assert group["evidence"]["why"]


def test_a_file_scan_limited_to_a_range_before_the_burst_finds_nothing(
    runner: CliRunner, ring_world: World, tmp_path: Path
) -> None:
    data = write_csv(ring_world, tmp_path / "visits.csv", iso=True)
    output = tmp_path / "groups.json"
    since = (BURST_START - timedelta(days=10)).isoformat()

    result = runner.invoke(
        app,
        [
            "fraud",
            "scan",
            "--file",
            str(data),
            "--since",
            since,
            "--until",
            BURST_START.isoformat(),
            "--output",
            str(output),
        ],
    )

    assert result.exit_code == 0, result.output
    assert "0 group(s) found" in result.output
    assert json.loads(output.read_text()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([], "give --file, --tenant, or both", id="nothing-to-scan"),
        pytest.param(["--file", "{missing}"], "no such file", id="missing-file"),
        pytest.param(["--file", "{no_at}"], "has no column at", id="no-at-column"),
        pytest.param(["--file", "{naive}"], "no time zone", id="naive-times"),
        pytest.param(["--file", "{ok}", "--since", "2026-11-01T00:00"], "offset", id="naive-since"),
        pytest.param(["--file", "{ok}", "--until", "soon"], "ISO 8601", id="bad-until"),
        pytest.param(["--tenant", "ten_nope"], "not found", id="unknown-tenant"),
    ],
)
def test_bad_input_is_a_usage_error_with_a_message(
    runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    files = {
        "missing": tmp_path / "missing.csv",
        "no_at": tmp_path / "no_at.csv",
        "naive": tmp_path / "naive.csv",
        "ok": tmp_path / "ok.csv",
    }
    files["no_at"].write_text("user_id,target_id\nann,t\n")
    files["naive"].write_text("user_id,target_id,at\nann,t,2026-11-20T12:30:00\n")
    files["ok"].write_text("user_id,target_id,at\nann,t,1795149000\n")
    output = tmp_path / "groups.json"
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]

    result = runner.invoke(app, ["fraud", "scan", *argv, "--output", str(output)])

    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert not output.exists()


def test_a_tenant_scan_stores_findings_the_api_serves(runner: CliRunner, ringed: Shop) -> None:
    world = ringed.world
    assert world is not None
    args = ["fraud", "scan", "--tenant", ringed.tenant.id]
    window = ["--since", SINCE.isoformat(), "--until", UNTIL.isoformat()]

    result = runner.invoke(app, [*args, *window])

    assert result.exit_code == 0, result.output
    assert f"{len(world.visits):,} interactions" in result.output
    assert "2 new finding(s), 0 already reported" in " ".join(result.output.split())
    (scan,) = ringed.client.get("/v1/fraud/scans", headers=ringed.headers).json()["data"]
    assert (scan["source"], scan["requested_by"]) == ("database", "cli")
    for kind in ("dense_block", "lockstep"):
        assert members_of(ringed.ring_finding(scan, kind)) == set(world.ring_users)

    again = runner.invoke(app, [*args, *window])

    assert again.exit_code == 0, again.output
    assert "0 new finding(s), 2 already reported" in " ".join(again.output.split())


def test_a_file_scanned_for_a_tenant_is_stored_under_it(
    runner: CliRunner, shop: Shop, ring_world: World, tmp_path: Path
) -> None:
    data = write_csv(ring_world, tmp_path / "export.csv")
    output = tmp_path / "groups.json"

    result = runner.invoke(
        app,
        ["fraud", "scan", "--file", str(data), "--tenant", shop.tenant.id, "--output", str(output)],
    )

    assert result.exit_code == 0, result.output
    (scan,) = shop.client.get("/v1/fraud/scans", headers=shop.headers).json()["data"]
    assert scan["source"] == "file:export.csv"
    assert scan["stats"]["interactions"] == len(ring_world.visits)
    groups = json.loads(output.read_text())
    assert {g["id"] for g in groups} == {f["id"] for f in shop.findings()}
    for group in groups:
        assert set(group["members"]) == set(ring_world.ring_users)
    # The stored finding can be acted on through the API.
    finding = shop.ring_finding(scan, "dense_block")
    action = shop.propose(finding["id"], "block", user_ids=[ring_world.ring_users[0]])
    shop.resolve(action["id"], "approve")
    assert shop.decide(ring_world.ring_users[0])["verdict"] == "BLOCK"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_sample_file_scans_back_to_its_rings(
    runner: CliRunner, tmp_path: Path, suffix: str
) -> None:
    sample = tmp_path / f"sample{suffix}"
    output = tmp_path / "groups.json"
    size = ["--users", "5000", "--targets", "2000", "--interactions", "40000"]

    written = runner.invoke(app, ["fraud", "sample", str(sample), *size])
    scanned = runner.invoke(app, ["fraud", "scan", "--file", str(sample), "--output", str(output)])

    assert written.exit_code == 0, written.output
    assert scanned.exit_code == 0, scanned.output
    groups = json.loads(output.read_text())
    by_kind: dict[str, set[str]] = {}
    for group in groups:
        by_kind.setdefault(group["kind"], set()).update(group["members"])
    ring = {f"u{i}" for i in range(5000, 5100)}
    burst = {f"u{i}" for i in range(5100, 5150)}
    assert by_kind["dense_block"] >= ring
    assert by_kind["lockstep"] == burst
    assert by_kind["shared_device"] == burst
    # No honest account is named by any group.
    assert set().union(*by_kind.values()) <= ring | burst


def test_a_sample_needs_a_csv_or_parquet_name(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["fraud", "sample", str(tmp_path / "sample.json")])

    assert result.exit_code == 2
    assert "csv or .parquet" in result.output
