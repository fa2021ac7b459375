"""``zanloop demo``: the coffee shop's day and the paid-pinned-likes scenario, end to end."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from zanloop import demo_pins
from zanloop.demo import Receiver


def _expected_shares(creator_contents: set[str]) -> tuple[int, int]:
    """(creator share, platform fee) the scripted purchases should leave in the ledger: every
    paid pin but the one refunded, at the default 70/30 split (the fee rounds down)."""
    creator = platform = 0
    for viewer, content, amount, _ in demo_pins.PURCHASES:
        if content not in creator_contents or viewer == demo_pins.WALKS_AWAY:
            continue
        if (viewer, content) == demo_pins.CREATOR_REMOVES:
            continue
        fee = amount * 30 // 100
        creator += amount - fee
        platform += fee
    return creator, platform


def _cny(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d} CNY"


@pytest.mark.slow
def test_the_demo_runs_both_scenarios_and_its_checks_pass(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ZANLOOP_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "ZANLOOP_DATA_DIR": str(tmp_path / "var"),
        "COLUMNS": "240",  # no wrapped lines to match against
    }
    done = subprocess.run(
        [sys.executable, "-m", "zanloop.cli", "demo", "--orders", "12"],
        env=env,
        cwd=tmp_path,  # no .env of the checkout
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-4000:]

    # the coffee shop's day still balances
    assert "ledger check: merchant = taken − refunded OK; merchant + clearing = 0 OK" in out

    # refusals: low quality, no programme, and the burst blocked by risk control
    assert "a pin on post-shells: 409 the content's quality score 11 is below 30" in out
    assert "a pin on video-sketch: 409 the creator is in no incentive or commerce programme" in out
    assert re.search(
        r"4 pins opened \(CANCELLED 4: closed unpaid\), then 403 .*pin-burst-user", out
    )
    assert "“first!!!”: removed by the creator (off-topic), now REFUNDED" in out
    assert "removed by the platform (advertising), now REMOVED" in out
    assert "“等我付款”: never paid, now PENDING" in out

    # the pinned list in display order: the biggest amount first
    assert re.search(r"1 │ pinned │ viewer-06 │ 100\.00 CNY", out)
    assert re.search(r"1 │ pinned │ viewer-11 │\s+50\.00 CNY .* until \d\d:\d\d:\d\d UTC", out)
    assert re.search(r"received, by status\s+│\s+8 ACTIVE, 1 REMOVED, 1 REFUNDED, 1 PENDING", out)
    assert re.search(r"received, by status\s+│\s+9 ACTIVE, 4 CANCELLED", out)

    # ledger figures agree with what the scripted purchases imply
    xiong, xiong_fee = _expected_shares({"video-tide", "post-shells"})
    lin, lin_fee = _expected_shares({"live-kitchen", "video-dumplings"})
    assert re.search(rf"ledger creator:creator-xiong\s+│\s+{re.escape(_cny(xiong))}", out)
    assert re.search(rf"ledger creator:creator-lin\s+│\s+{re.escape(_cny(lin))}", out)
    assert re.search(rf"creator earnings\s+│\s+{re.escape(_cny(xiong))}", out)
    assert re.search(rf"platform:pins \(fees\)\s+│\s+{re.escape(_cny(xiong_fee + lin_fee))}", out)
    paid = sum(1 for v, *_ in demo_pins.PURCHASES if v != demo_pins.WALKS_AWAY)
    assert f"pins check: pins:sales = 0.00 CNY OK; every paid pin live once ({paid} paid, " in out
    assert "FAILED" not in out


class _Ledger(demo_pins.Api):
    """An API whose ledger says what the test wants, for the checks alone."""

    def __init__(self, balances: dict[str, int]) -> None:
        super().__init__("http://127.0.0.1:9", {})
        self.balances = balances

    def balance(self, owner: str) -> int:
        return self.balances.get(owner, 0)

    def get(self, path: str, role: str = "platform", **params: Any) -> Any:
        assert path.endswith("/pins")
        return {"pinned": [], "queued": []}


def test_the_pins_check_fails_when_sales_are_left_over() -> None:
    api = _Ledger({"pins:sales": 150})
    out = io.StringIO()
    try:
        ok = demo_pins._checks(api, Console(file=out, width=240), [], Receiver())
    finally:
        api.client.close()
    assert not ok
    assert "pins:sales = 1.50 CNY FAILED" in out.getvalue()
