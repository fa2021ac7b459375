"""Under real concurrency (PostgreSQL, a live server, requests released together): caps,
budgets, stock and balances stay exact, and a replay credits once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import at_once, is_postgres
from tests.loyalty.conftest import Programme, event

pytestmark = pytest.mark.skipif(
    not is_postgres(), reason="row locks under real concurrency: PostgreSQL"
)

YESTERDAY = datetime.now(UTC) - timedelta(days=1)
SHARE_100 = {"trigger": "share.created", "effects": [{"type": "grant_points", "points": 100}]}


def post(
    http: httpx.Client, server: str, p: Programme, path: str, body: dict[str, Any]
) -> httpx.Response:
    return http.post(f"{server}{path}", json=body, headers=p.tenant.headers)


def test_concurrent_batches_keep_daily_caps_and_budgets_exact(
    programme: Programme, live_server: str, http: httpx.Client
) -> None:
    programme.rule(
        {
            "trigger": "share.created",
            "effects": [{"type": "grant_points", "points": 5}],
            "caps": {"per_user_per_day": 1},
        }
    )
    budget = programme.rule(
        {
            "trigger": "like.created",
            "effects": [{"type": "grant_points", "points": 10}],
            "budget": {"max_rewards": 7},
        }
    )
    members = [f"m{n}" for n in range(5)]

    def batch(i: int) -> httpx.Response:
        events = [
            event("share.created", m, YESTERDAY + timedelta(minutes=i), event_id=f"share-{i}-{m}")
            for m in members
        ] + [
            event("like.created", members[(i + k) % 5], YESTERDAY, event_id=f"like-{i}-{k}")
            for k in range(2)
        ]
        return post(http, live_server, programme, "/v1/loyalty/events/batch", {"events": events})

    answers = at_once(12, batch)

    assert [r.status_code for r in answers] == [200] * 12, [r.text for r in answers]
    likes = [e for r in answers for e in r.json()["events"] if e["event_id"].startswith("like")]
    assert sum(e["points"] > 0 for e in likes) == 7
    shares = [e for r in answers for e in r.json()["events"] if e["event_id"].startswith("share")]
    assert Counter(e["points"] for e in shares) == {5: 5, 0: 55}
    balances = {m: programme.balance(m)["available"] for m in members}
    assert sum(balances.values()) == 5 * 5 + 7 * 10
    assert all(b % 10 == 5 for b in balances.values())
    rules = programme.client.get("/v1/loyalty/economics", headers=programme.tenant.headers)
    spend = {r["rule_id"]: r for r in rules.json()["rules"]}
    assert spend[budget["id"]]["rewards"] == 7
    assert programme.ledger()["loyalty:issued"] == -(5 * 5 + 7 * 10)


def test_concurrent_redemptions_never_overspend(
    programme: Programme, live_server: str, http: httpx.Client
) -> None:
    programme.rule(SHARE_100)
    programme.send(
        *[event("share.created", "ann", YESTERDAY - timedelta(hours=n)) for n in range(5)]
    )
    item = programme.item(price_points=100)

    def redeem(i: int) -> httpx.Response:
        body = {"user_id": "ann", "item_id": item["id"], "request_no": f"r-{i}", "confirm": True}
        return post(http, live_server, programme, "/v1/loyalty/redemptions", body)

    answers = at_once(16, redeem)

    codes = Counter(r.status_code for r in answers)
    assert codes == {201: 5, 409: 11}, [r.text for r in answers]
    assert {r.json()["type"] for r in answers if r.status_code == 409} == {
        "urn:zanloop:problem:insufficient-funds"
    }
    assert programme.balance("ann") == {
        "user_id": "ann",
        "available": 0,
        "pending": 0,
        "held": 0,
        "tier": "normal",
    }
    assert {lot["remaining"] for lot in programme.lots("ann")} == {0}
    ledger = programme.ledger()
    assert (ledger["user:ann"], ledger["loyalty:redeemed"]) == (0, 500)


def test_concurrent_redemptions_never_oversell_stock(
    programme: Programme, live_server: str, http: httpx.Client
) -> None:
    programme.rule(SHARE_100)
    fans = [f"fan{n}" for n in range(10)]
    programme.send(*[event("share.created", f, YESTERDAY) for f in fans])
    item = programme.item(price_points=100, stock=3)

    def redeem(i: int) -> httpx.Response:
        body = {"user_id": fans[i], "item_id": item["id"], "request_no": f"r-{i}"}
        return post(http, live_server, programme, "/v1/loyalty/redemptions", body)

    answers = at_once(10, redeem)

    assert Counter(r.status_code for r in answers) == {201: 3, 409: 7}, [r.text for r in answers]
    assert sum(programme.balance(f)["held"] for f in fans) == 300


def ingested(send: Any) -> dict[str, Any]:
    """The answer's status and the event's outcome, or the error when no answer came."""
    try:
        response = send()
    except httpx.HTTPError as exc:
        return {"status": type(exc).__name__}
    if response.status_code != 200:
        return {"status": response.status_code, "body": response.text}
    [answer] = response.json()["events"]
    return {"status": 200, "outcome": answer["status"], "points": answer["points"]}


def outcome(send: Any) -> int | str:
    """A status code (with the problem's type when refused), or the error when no answer came."""
    try:
        response = send()
    except httpx.HTTPError as exc:
        return type(exc).__name__
    if response.status_code < 300:
        return int(response.status_code)
    return f"{response.status_code} {response.json()['type'].rsplit(':', 1)[-1]}"


def test_an_event_sent_many_times_at_once_credits_once(
    programme: Programme, live_server: str
) -> None:
    programme.rule(SHARE_100)
    sent = event("share.created", "ann", YESTERDAY, event_id="once")

    with httpx.Client(base_url=live_server, timeout=10, trust_env=False) as http:
        answers = at_once(
            4,
            lambda i: ingested(
                lambda: http.post("/v1/loyalty/events", json=sent, headers=programme.tenant.headers)
            ),
        )

    assert [a["status"] for a in answers] == [200] * 4, answers
    assert sorted(a["outcome"] for a in answers) == ["applied"] + ["duplicate"] * 3
    assert {a["points"] for a in answers} == {100}
    assert programme.balance("ann")["available"] == 100
    assert programme.ledger()["loyalty:issued"] == -100


def test_a_request_number_sent_many_times_at_once_redeems_once(
    programme: Programme, live_server: str
) -> None:
    programme.rule(SHARE_100)
    programme.send(event("share.created", "ann", YESTERDAY))
    item = programme.item(price_points=100)
    body = {"user_id": "ann", "item_id": item["id"], "request_no": "r-once"}

    with httpx.Client(base_url=live_server, timeout=10, trust_env=False) as http:
        answers = at_once(
            4,
            lambda i: outcome(
                lambda: http.post(
                    "/v1/loyalty/redemptions", json=body, headers=programme.tenant.headers
                )
            ),
        )

    assert sorted(answers, key=str) == [200, 200, 200, 201], answers
    assert programme.balance("ann")["held"] == 100
    [redemption] = programme.client.get(
        "/v1/loyalty/members/ann/redemptions", headers=programme.tenant.headers
    ).json()
    assert redemption["request_no"] == "r-once"
