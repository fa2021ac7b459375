"""``zanloop demo``: the coffee shop's day, the paid-pinned-likes scenario, the coffee chain's
campaigns and the coffee club's points programme, end to end."""

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

from zanloop import demo_campaigns, demo_campaigns_report, demo_pins
from zanloop.demo import Receiver
from zanloop.demo_campaigns import BUYERS, DAY, GOAL, PROMPTS_A_DAY, THRESHOLD_FEN, Paid, Visit
from zanloop.demo_loyalty import MONTH, PRICE_POINTS, REFUNDED, TODAY


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


def _expected_campaign_figures() -> dict[str, int]:
    """What the scripted day should add up to: a payment of 50 CNY or more (after the 5 CNY
    coupon) prompts a like, up to the risk policy's 3 prompts a buyer a day."""
    prompted: dict[int, int] = {}
    figures = dict.fromkeys(["prompts", "refused", "likes", "shares", "redeemed", "spend"], 0)
    for visit in DAY:
        paid = visit.list_fen - (500 if visit.coupon else 0)
        figures["redeemed"] += visit.coupon
        figures["spend"] += paid if visit.coupon else 0
        if paid < THRESHOLD_FEN:
            continue
        if prompted.get(visit.buyer, 0) == PROMPTS_A_DAY:
            figures["refused"] += 1
            continue
        prompted[visit.buyer] = prompted.get(visit.buyer, 0) + 1
        figures["prompts"] += 1
        figures["likes"] += visit.then in ("like", "share")
        figures["shares"] += visit.then == "share"
    return figures


@pytest.mark.slow
def test_the_demo_runs_its_scenarios_and_their_checks_pass(tmp_path: Path) -> None:
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

    # the coffee chain's campaigns: figures read back from the API agree with the scripted day
    want = _expected_campaign_figures()
    assert (want["prompts"], want["refused"], want["likes"], want["redeemed"]) == (13, 1, 12, 4)

    def row(figure: str, value: str) -> None:
        assert re.search(rf"{re.escape(figure)}\s+│\s+{re.escape(value)} │", out), figure

    row("like prompts", str(want["prompts"]))
    row("prompts refused by risk control", str(want["refused"]))
    row("likes (like rate)", f"{want['likes']} (92.3 %)")
    row("shares (share rate)", f"{want['shares']} (25.0 %)")
    row("5 CNY coupons issued", str(want["likes"]))
    row("redeemed (redemption rate)", f"{want['redeemed']} (33.3 %)")
    row("discount given", _cny(500 * want["redeemed"]))
    row("spend driven", _cny(want["spend"]))
    row("leverage (spend per fen of discount)", f"{want['spend'] / (500 * want['redeemed']):.2f}×")
    row("rewarded buyers who paid again (repurchase rate)", "5 of 6 (83.3 %)")
    row("free coffees issued", "0")
    row("furthest along", f"guest-01, guest-02 at 3/{GOAL}")
    row("rewards reversed by refunds (prompt, coupon, track)", "4 (2, 1, 1)")
    row("all coupons: issued, redeemed, revoked", f"{want['likes']}, {want['redeemed']}, 1")
    assert re.search(r"guest-10 .*│ 1 REVOKED\s+│\s+0/5 │", out)
    assert (
        "guest-03's Americano (morning), 18.00 CNY: not rewarded: amount 18.00 CNY is below" in out
    )
    assert re.search(
        r"guest-01's Beans 250 g \(evening\), 88\.00 CNY: no like prompt, BLOCK "
        r"like-prompts-day \(user guest-01 would make 4 like\.prompt",
        out,
    )
    assert (
        "guest-10's Beans 250 g (lunch), 88.00 CNY, 88.00 CNY refunded (the beans went back): "
        "2 event(s) evaluated; 0 reward(s) stand; the payment was refunded, so its 3 reward(s) "
        "were reversed\n    prompt LIKED; rewards 3 REVERSED; coupons 1 REVOKED" in out
    )
    assert "guest-08's Latte and cake (morning)" in out
    assert "prompt REVOKED; rewards 1 REVERSED; coupons none" in out
    assert re.search(
        r"campaign check: no prompt below 50 CNY OK; .*webhook signatures OK", out, re.S
    )

    # the coffee club's month of points: what the scripted events imply, read back from the API
    # (beyond the events' own points: the invited friend's 20, the streak's 200, the 500 of the
    # achievement the refunded payment completed)
    issued = sum(a.expect for a in MONTH) + sum(p.expect for p in TODAY) + 20 + 200 + 500
    clawed = next(p.expect for p in TODAY if p.member == REFUNDED) + 500
    expired = sum(a.expect for a in MONTH if not a.till and a.days_ago >= 33)
    assert (issued, clawed, expired) == (3603, 1376, 42)
    row("points issued", f"{issued:,}")
    row("clawed back by refunds", f"{clawed:,}")
    row("expired (breakage)", f"{expired} ({expired / (issued - clawed) * 100:.1f} %)")
    row("redeemed", str(PRICE_POINTS))
    row("liability (1 point = 1 fen)", _cny(issued - clawed - expired - PRICE_POINTS))
    assert re.search(r"│ jun\s+│ \d\d-\d\d │ normal │ silver │ earned │\s+1,231 │", out)
    assert "notice (webhook loyalty.points.expiring): jun, 183 points expire" in out
    assert re.search(r"│ after\s+│\s+255 │\s+0 │ normal │\s+297 │\s+0 │", out)
    flat = " ".join(out.split())
    assert re.search(
        r"loyalty check: every event earned what the rules say OK; .* signatures valid OK", flat
    )
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


def test_the_campaign_check_fails_when_a_small_payment_is_prompted() -> None:
    small = Paid(Visit("morning", 3, "Americano", 1800), {"id": "ord_small"}, None)
    prompt = {"order_id": "ord_small", "user_id": "guest-03", "status": "OPEN", "liked_at": None}
    figures = ["likes", "coupons_issued", "coupons_redeemed", "discount_fen", "spend_fen"]
    metrics = dict.fromkeys([*figures, "rewards_reversed"], 0) | {"prompts": 1}
    campaigns = ("cmp_prompt", "cmp_coupon", "cmp_track")
    readings = demo_campaigns_report.Readings(
        orders={"ord_small": {"amount_fen": 1800, "refunded_fen": 0, "status": "SUCCESS"}},
        prompts={b: [prompt] if b == 3 else [] for b in BUYERS},
        coupons={b: [] for b in BUYERS},
        rewards=[],
        metrics={c: metrics for c in campaigns} | {"coupons": {"revoked": 0}},
    )
    out = io.StringIO()
    ok = demo_campaigns_report._checks(
        Console(file=out, width=240),
        demo_campaigns.Setup("ctpl_five", *campaigns),
        [small],
        [],
        readings,
        Receiver(),
    )
    assert not ok
    assert "no prompt below 50 CNY FAILED" in out.getvalue()
