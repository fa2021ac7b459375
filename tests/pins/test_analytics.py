"""Creator analytics (P7), checked against the same figures worked out here from the pins the
API reports: totals, the daily series, supporters by region and by spend band, and the repeat
supporters who gave the most. Refunded support is not support: it is left out of the
supporters, regions, bands and top supporters (it still shows in the gross figures)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.pins.conftest import PinWorld

BANDS = (
    ("under 1 CNY", 0, 100),
    ("1–10 CNY", 100, 1000),
    ("10–50 CNY", 1000, 5000),
    ("50–100 CNY", 5000, 10000),
    ("100 CNY and more", 10000, None),
)
PAID = {"ACTIVE", "EXPIRED", "REMOVED", "REFUNDED", "IN_REVIEW"}

# (viewer, region, amount_fen, what happens after the purchase)
SCRIPT: list[tuple[str, str | None, int, str]] = [
    ("alice", "Guangdong", 5000, "paid"),
    ("bob", "Zhejiang", 1000, "paid"),
    ("alice", "Guangdong", 5000, "paid"),
    ("carol", "Guangdong", 50, "paid"),
    ("dave", None, 300, "paid"),
    ("frank", "Sichuan", 5000, "paid"),
    ("bob", "Zhejiang", 1500, "paid"),
    ("erin", "Beijing", 3000, "refunded"),  # erin's only pin: refunded
    ("dave", None, 400, "violation"),  # removed for breaking the rules: no refund
    ("alice", "Guangdong", 2000, "paid"),
    ("bob", "Zhejiang", 4000, "refunded"),  # bob's third pin: refunded
    ("frank", "Sichuan", 4000, "paid"),
    ("carol", "Guangdong", 700, "unpaid"),  # never paid: not support at all
]


def analytics(world: PinWorld, creator: str | None = None, **params: Any) -> dict[str, Any]:
    response = world.client.get(
        f"/v1/creators/{creator or world.creator}/analytics",
        params=params,
        headers=world.tenant.headers,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def remove(world: PinWorld, pin_id: str, *, violation: bool) -> None:
    response = world.client.post(
        f"/v1/pins/{pin_id}/remove",
        json={"violation": violation},
        headers=world.tenant.write_headers(),
    )
    assert response.status_code == 200, response.text


def play(world: PinWorld, script: list[tuple[str, str | None, int, str]]) -> list[str]:
    """Buy every pin of the script, then remove the ones it says; returns the pin ids."""
    for viewer in {v for v, *_ in script}:
        world.bind(viewer)
    pin_ids = []
    for viewer, region, amount, fate in script:
        extra = {"region": region} if region else {}
        bought = world.buy(viewer, amount, pay=fate != "unpaid", **extra)
        pin_ids.append(bought["pin"]["id"])
        if fate in ("refunded", "violation"):
            remove(world, bought["pin"]["id"], violation=fate == "violation")
    world.worker.drain()
    return pin_ids


def band_of(total_fen: int) -> str:
    return next(
        n for n, low, high in BANDS if total_fen >= low and (high is None or total_fen < high)
    )


def expected_figures(pins: list[dict[str, Any]]) -> dict[str, Any]:
    """The analytics worked out independently from the pins as the API lists them."""
    paid = [p for p in pins if p["status"] in PAID]
    kept = [p for p in paid if p["status"] != "REFUNDED"]
    daily: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for p in paid:
        day = datetime.fromisoformat(p["activated_at"]).astimezone(UTC).date().isoformat()
        daily[day][0] += 1
        daily[day][1] += p["amount_fen"]
    per_buyer: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    region_of: dict[str, str] = {}
    for p in kept:
        per_buyer[p["buyer_id"]][0] += 1
        per_buyer[p["buyer_id"]][1] += p["amount_fen"]
        region_of[p["buyer_id"]] = p["region"] or "unknown"
    regions: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    bands = {name: [0, 0] for name, _, _ in BANDS}
    for buyer, (_, total) in per_buyer.items():
        for bucket in (regions[region_of[buyer]], bands[band_of(total)]):
            bucket[0] += 1
            bucket[1] += total
    repeat = [
        {"buyer_id": b, "pins": n, "amount_fen": total}
        for b, (n, total) in per_buyer.items()
        if n >= 2
    ]
    return {
        "pins": len(paid),
        "gross_fen": sum(p["amount_fen"] for p in paid),
        "refunded_fen": sum(p["amount_fen"] for p in paid if p["status"] == "REFUNDED"),
        "creator_earnings_fen": sum(p["creator_fen"] for p in kept),
        # the buyers who kept at least one pin: the people the regions and bands count
        "supporters": len(per_buyer),
        "daily": [{"day": d, "pins": n, "amount_fen": a} for d, (n, a) in sorted(daily.items())],
        "regions": sorted(
            ({"name": r, "supporters": n, "amount_fen": a} for r, (n, a) in regions.items()),
            key=lambda r: (-r["amount_fen"], r["name"]),
        ),
        "spend_bands": [
            {"name": name, "supporters": bands[name][0], "amount_fen": bands[name][1]}
            for name, _, _ in BANDS
        ],
        "top_supporters": sorted(repeat, key=lambda s: -s["amount_fen"]),
    }


def received(world: PinWorld) -> list[dict[str, Any]]:
    response = world.client.get(
        f"/v1/creators/{world.creator}/pins", params={"limit": 200}, headers=world.tenant.headers
    )
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


@pytest.fixture
def scripted(world: PinWorld) -> PinWorld:
    play(world, SCRIPT)
    return world


def test_the_analytics_agree_with_the_pins_the_creator_received(scripted: PinWorld) -> None:
    # when
    figures = analytics(scripted)

    # then: every figure matches the one worked out from the pins themselves
    expected = expected_figures(received(scripted))
    assert {k: figures[k] for k in expected} == expected
    assert figures["creator_id"] == scripted.creator
    # every supporter is in exactly one region and one band
    assert (
        figures["supporters"]
        == sum(r["supporters"] for r in figures["regions"])
        == sum(b["supporters"] for b in figures["spend_bands"])
    )


def test_the_scripted_purchases_give_the_figures_a_creator_would_expect(
    scripted: PinWorld,
) -> None:
    figures = analytics(scripted)

    # then: 12 paid pins, 2 of them refunded (70 CNY); the unpaid one counts nowhere
    assert (figures["pins"], figures["gross_fen"], figures["refunded_fen"]) == (12, 31250, 7000)
    # five supporters: erin's only pin was refunded
    assert (figures["creator_earnings_fen"], figures["supporters"]) == (16975, 5)
    # the ledger agrees: what the creator keeps is what the creator's account holds
    assert scripted.balance(scripted.creator_owner()) == figures["creator_earnings_fen"]
    assert sum(d["pins"] for d in figures["daily"]) == 12
    assert sum(d["amount_fen"] for d in figures["daily"]) == 31250
    # nor is erin in any region or band
    assert [r["name"] for r in figures["regions"]] == [
        "Guangdong",
        "Sichuan",
        "Zhejiang",
        "unknown",
    ]
    assert {r["name"]: (r["supporters"], r["amount_fen"]) for r in figures["regions"]} == {
        "Guangdong": (2, 12050),
        "Sichuan": (1, 9000),
        "Zhejiang": (1, 2500),
        "unknown": (1, 700),
    }
    assert [(b["name"], b["supporters"]) for b in figures["spend_bands"]] == [
        ("under 1 CNY", 1),
        ("1–10 CNY", 1),
        ("10–50 CNY", 1),
        ("50–100 CNY", 1),
        ("100 CNY and more", 1),
    ]
    # repeat supporters by what they kept paid: bob's refunded pin does not count
    assert [(s["buyer_id"], s["pins"], s["amount_fen"]) for s in figures["top_supporters"]] == [
        ("alice", 3, 12000),
        ("frank", 2, 9000),
        ("bob", 2, 2500),
        ("dave", 2, 700),
    ]


def test_a_period_before_any_pin_is_empty_but_lists_every_band(scripted: PinWorld) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=400)

    figures = analytics(
        scripted,
        since=long_ago.isoformat(),
        until=(long_ago + timedelta(days=1)).isoformat(),
    )

    assert (figures["pins"], figures["gross_fen"], figures["supporters"]) == (0, 0, 0)
    assert figures["daily"] == figures["regions"] == figures["top_supporters"] == []
    assert [(b["name"], b["supporters"], b["amount_fen"]) for b in figures["spend_bands"]] == [
        (name, 0, 0) for name, _, _ in BANDS
    ]


def test_the_period_defaults_to_the_last_30_days(world: PinWorld) -> None:
    world.bind("alice")
    world.buy("alice", 500)

    figures = analytics(world)

    since = datetime.fromisoformat(figures["since"])
    until = datetime.fromisoformat(figures["until"])
    assert until - since == timedelta(days=30)
    assert since < datetime.now(UTC) <= until
    assert figures["pins"] == 1


def test_another_creators_pins_do_not_count(scripted: PinWorld) -> None:
    # given: a second creator of the same tenant, supported by alice
    client, headers = scripted.client, scripted.tenant.headers
    client.put(
        "/v1/creators/creator-2",
        json={"name": "c2", "programmes": ["incentive"]},
        headers=headers,
    ).raise_for_status()
    client.put(
        "/v1/contents/video-2",
        json={"creator_id": "creator-2", "kind": "video", "title": "t"},
        headers=headers,
    ).raise_for_status()
    before = analytics(scripted)
    scripted.buy("alice", 3000, content_id="video-2", region="Hainan")

    # when
    first = analytics(scripted)
    second = analytics(scripted, "creator-2")

    # then: the first creator's figures did not move; the second sees only alice's pin
    assert {k: v for k, v in first.items() if k not in ("since", "until")} == {
        k: v for k, v in before.items() if k not in ("since", "until")
    }
    assert (second["pins"], second["gross_fen"], second["supporters"]) == (1, 3000, 1)
    assert second["regions"] == [{"name": "Hainan", "supporters": 1, "amount_fen": 3000}]
    assert second["top_supporters"] == []


def test_a_single_pin_never_makes_a_top_supporter(world: PinWorld) -> None:
    for viewer in ("big", "small-1"):
        world.bind(viewer)
    world.buy("big", 5000)
    world.buy("small-1", 10)
    world.buy("small-1", 10)

    figures = analytics(world)

    assert [s["buyer_id"] for s in figures["top_supporters"]] == ["small-1"]


def test_analytics_of_an_unknown_creator_are_404(world: PinWorld) -> None:
    response = world.client.get("/v1/creators/nobody/analytics", headers=world.tenant.headers)

    assert response.status_code == 404
