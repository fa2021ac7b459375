"""Records (P6): the buyer's pinned-like history and the creator's received pins, with every
status a pin passes through, filtered and paged newest first."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import TenantHandle
from tests.pins.conftest import PinWorld

History = list[dict[str, Any]]


def _get(world: PinWorld, path: str, **params: Any) -> dict[str, Any]:
    response = world.client.get(path, params=params, headers=world.tenant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def history(world: PinWorld, buyer: str, **params: Any) -> History:
    return list(_get(world, "/v1/pins", buyer_id=buyer, **params)["data"])


def received(world: PinWorld, creator: str | None = None, **params: Any) -> History:
    path = f"/v1/creators/{creator or world.creator}/pins"
    return list(_get(world, path, **params)["data"])


def all_pages(world: PinWorld, path: str, **params: Any) -> list[dict[str, Any]]:
    """Follow ``next_cursor`` to the end; each page as the API returned it."""
    pages, cursor = [], None
    while True:
        page = _get(world, path, **params, **({"cursor": cursor} if cursor else {}))
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "the cursor never ends"


def fail(world: PinWorld, bought: dict[str, Any]) -> None:
    """The buyer's payment fails in the sandbox (PAYERROR); the order query finds it."""
    failed = world.client.post(
        f"/v1/sandbox/orders/{bought['payment']['out_trade_no']}/fail",
        headers=world.tenant.headers,
    )
    assert failed.status_code == 200, failed.text
    world.worker.drain()
    synced = world.client.post(
        f"/v1/payments/orders/{bought['payment']['order_id']}/sync",
        headers=world.tenant.write_headers(),
    )
    assert synced.status_code == 200, synced.text
    assert synced.json()["status"] == "PAYERROR"
    world.worker.drain()


def remove(world: PinWorld, pin_id: str, **body: Any) -> dict[str, Any]:
    response = world.client.post(
        f"/v1/pins/{pin_id}/remove", json=body, headers=world.tenant.write_headers()
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def one_of_each_status(world: PinWorld, viewer: str) -> dict[str, str]:
    """Five pins by ``viewer``, oldest first: PENDING, ACTIVE, CANCELLED, REMOVED, REFUNDED."""
    world.bind(viewer)
    pending = world.buy(viewer, 100, pay=False)
    active = world.buy(viewer, 200, message="顶一个")
    cancelled = world.buy(viewer, 300, pay=False)
    fail(world, cancelled)
    removed = world.buy(viewer, 400)
    remove(world, removed["pin"]["id"], violation=True, reason="spam")
    refunded = world.buy(viewer, 500)
    remove(world, refunded["pin"]["id"], reason="asked by the buyer")
    world.worker.drain()
    return {
        "PENDING": pending["pin"]["id"],
        "ACTIVE": active["pin"]["id"],
        "CANCELLED": cancelled["pin"]["id"],
        "REMOVED": removed["pin"]["id"],
        "REFUNDED": refunded["pin"]["id"],
    }


# The buyer's history -------------------------------------------------------------------------


def test_the_buyers_history_lists_every_pin_newest_first_with_its_status(
    world: PinWorld,
) -> None:
    # given: a viewer whose five pins ended five different ways, and another viewer's pin
    pins = one_of_each_status(world, "viewer-1")
    world.bind("viewer-2")
    world.buy("viewer-2", 900)

    # when
    listed = history(world, "viewer-1")

    # then: only the viewer's own pins, the newest first, each in the state it reached
    assert [p["id"] for p in listed] == list(reversed(pins.values()))
    assert {p["id"]: p["status"] for p in listed} == {pin: s for s, pin in pins.items()}
    assert {p["buyer_id"] for p in listed} == {"viewer-1"}
    assert {(p["content_id"], p["creator_id"]) for p in listed} == {("video-1", "creator-1")}
    by_status = {p["status"]: p for p in listed}
    assert [by_status[s]["amount_fen"] for s in pins] == [100, 200, 300, 400, 500]
    assert by_status["ACTIVE"]["message"] == "顶一个"
    assert by_status["ACTIVE"]["activated_at"] is not None
    assert by_status["PENDING"]["activated_at"] is None
    assert by_status["CANCELLED"]["activated_at"] is None
    assert by_status["CANCELLED"]["end_reason"] == "the payment did not complete"
    assert (by_status["REMOVED"]["removed_by"], by_status["REMOVED"]["end_reason"]) == (
        "platform",
        "spam",
    )
    assert by_status["REFUNDED"]["removed_by"] == "platform"
    assert by_status["REFUNDED"]["ended_at"] is not None


@pytest.mark.parametrize("status", ["PENDING", "ACTIVE", "CANCELLED", "REMOVED", "REFUNDED"])
def test_the_history_filtered_by_status_shows_only_that_status(
    world: PinWorld, status: str
) -> None:
    pins = one_of_each_status(world, "viewer-1")

    listed = history(world, "viewer-1", status=status)

    assert [(p["id"], p["status"]) for p in listed] == [(pins[status], status)]


def test_a_status_with_no_pins_gives_an_empty_history_and_an_unknown_status_is_refused(
    world: PinWorld,
) -> None:
    world.bind("viewer-1")
    world.buy("viewer-1", 100)

    expired = history(world, "viewer-1", status="EXPIRED")
    unknown = world.client.get(
        "/v1/pins", params={"buyer_id": "viewer-1", "status": "LIVE"}, headers=world.tenant.headers
    )
    stranger = history(world, "nobody")

    assert expired == []
    assert stranger == []
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "status"


def test_the_history_pages_newest_first_and_the_cursor_walks_every_pin_once(
    world: PinWorld,
) -> None:
    # given: five pins by one viewer (ids taken in purchase order)
    world.bind("viewer-1")
    bought = [world.buy("viewer-1", 100 + i)["pin"]["id"] for i in range(5)]

    # when: read two at a time
    pages = all_pages(world, "/v1/pins", buyer_id="viewer-1", limit=2)

    # then: 2 + 2 + 1, newest first, nothing twice, the last page says it is the last
    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    assert [p["id"] for page in pages for p in page["data"]] == list(reversed(bought))
    assert [p["next_cursor"] is None for p in pages] == [False, False, True]


def test_the_cursor_keeps_its_place_when_newer_pins_arrive(world: PinWorld) -> None:
    # given: the first page of three older pins
    world.bind("viewer-1")
    older = [world.buy("viewer-1", 100 + i)["pin"]["id"] for i in range(3)]
    first = _get(world, "/v1/pins", buyer_id="viewer-1", limit=2)

    # when: a new pin arrives before the app asks for the next page
    world.buy("viewer-1", 999)
    second = _get(world, "/v1/pins", buyer_id="viewer-1", limit=2, cursor=first["next_cursor"])

    # then: the next page continues where the first ended
    assert [p["id"] for p in first["data"]] == [older[2], older[1]]
    assert [p["id"] for p in second["data"]] == [older[0]]


def test_a_history_that_fills_its_last_page_exactly_says_it_is_the_last(
    world: PinWorld,
) -> None:
    world.bind("viewer-1")
    for i in range(4):
        world.buy("viewer-1", 100 + i)

    pages = all_pages(world, "/v1/pins", buyer_id="viewer-1", limit=2)

    # then: no cursor to an empty third page
    assert [len(p["data"]) for p in pages] == [2, 2]
    assert pages[-1]["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not-a-cursor!", id="garbage"),
        pytest.param("MTIz", id="a-number"),
        pytest.param("eyJhIjogMX0", id="an-object"),
    ],
)
def test_a_cursor_the_api_did_not_give_is_refused(world: PinWorld, cursor: str) -> None:
    response = world.client.get(
        "/v1/pins", params={"buyer_id": "viewer-1", "cursor": cursor}, headers=world.tenant.headers
    )

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "cursor"


# The creator's received pins -----------------------------------------------------------------


def test_the_creator_sees_the_pins_received_from_every_viewer_newest_first(
    world: PinWorld,
) -> None:
    # given: pins from two viewers on the creator's video, and a pin for another creator
    world.client.put(
        "/v1/creators/creator-2",
        json={"name": "赶海二号", "programmes": ["commerce"]},
        headers=world.tenant.headers,
    ).raise_for_status()
    world.client.put(
        "/v1/contents/video-2",
        json={"creator_id": "creator-2", "kind": "post", "title": "Other"},
        headers=world.tenant.headers,
    ).raise_for_status()
    world.bind("viewer-1")
    world.bind("viewer-2")
    first = world.buy("viewer-1", 500)["pin"]["id"]
    elsewhere = world.buy("viewer-2", 800, content_id="video-2")["pin"]["id"]
    second = world.buy("viewer-2", 300)["pin"]["id"]
    waiting = world.buy("viewer-1", 200, pay=False)["pin"]["id"]

    # when
    listed = received(world)
    other = received(world, "creator-2")

    # then
    assert [(p["id"], p["buyer_id"], p["status"]) for p in listed] == [
        (waiting, "viewer-1", "PENDING"),
        (second, "viewer-2", "ACTIVE"),
        (first, "viewer-1", "ACTIVE"),
    ]
    assert [(p["id"], p["creator_id"], p["content_id"]) for p in other] == [
        (elsewhere, "creator-2", "video-2")
    ]
    assert (listed[1]["creator_fen"], listed[1]["platform_fen"]) == (210, 90)


def test_the_creators_received_pins_show_every_status_and_filter_by_it(
    world: PinWorld,
) -> None:
    pins = one_of_each_status(world, "viewer-1")

    listed = received(world)
    by_status = {s: [p["id"] for p in received(world, status=s)] for s in pins}

    assert [(p["id"], p["status"]) for p in listed] == [(i, s) for s, i in reversed(pins.items())]
    assert by_status == {s: [i] for s, i in pins.items()}


def test_the_creators_received_pins_page_with_the_cursor(world: PinWorld) -> None:
    bought = []
    for viewer in ("viewer-1", "viewer-2"):
        world.bind(viewer)
        bought += [world.buy(viewer, 100 + i)["pin"]["id"] for i in range(3)]

    pages = all_pages(world, f"/v1/creators/{world.creator}/pins", limit=4)

    assert [len(p["data"]) for p in pages] == [4, 2]
    assert [p["id"] for page in pages for p in page["data"]] == list(reversed(bought))


def test_an_unknown_creator_has_no_received_pins(world: PinWorld) -> None:
    response = world.client.get("/v1/creators/nobody/pins", headers=world.tenant.headers)

    assert response.status_code == 404
    assert response.json()["type"] == "urn:zanloop:problem:not-found"


# How removal shows in the records ----------------------------------------------------------


def test_a_removal_for_a_violation_stays_removed_and_keeps_the_money(world: PinWorld) -> None:
    # given: a live 4 CNY pin
    world.bind("viewer-1")
    bought = world.buy("viewer-1", 400)

    # when: the platform removes it for breaking the rules, and the worker runs
    removed = remove(world, bought["pin"]["id"], violation=True, reason="abuse")
    world.worker.drain()

    # then: removed for good, nobody refunded, the creator keeps the share
    assert (removed["status"], removed["removed_by"]) == ("REMOVED", "platform")
    assert world.pin(bought["pin"]["id"])["status"] == "REMOVED"
    assert history(world, "viewer-1", status="REFUNDED") == []
    assert world.balance(world.creator_owner()) == 280
    assert world.balance("platform:pins") == 120
    assert world.pinned()["pinned"] == []


def test_a_removal_without_a_violation_is_refunded_once_the_provider_confirms(
    world: PinWorld,
) -> None:
    # given: a live 5 CNY pin
    world.bind("viewer-1")
    bought = world.buy("viewer-1", 500)

    # when: the platform removes it without a violation
    removed = remove(world, bought["pin"]["id"], reason="the creator asked")
    before_refund = history(world, "viewer-1")
    world.worker.drain()
    after_refund = history(world, "viewer-1")

    # then: removed at once, refunded when the provider's refund succeeds; the money is back
    assert removed["status"] == "REMOVED"
    assert [p["status"] for p in before_refund] == ["REMOVED"]
    assert [p["status"] for p in after_refund] == ["REFUNDED"]
    assert [p["status"] for p in received(world)] == ["REFUNDED"]
    assert world.balance(world.creator_owner()) == 0
    assert world.balance("platform:pins") == 0


def test_removing_needs_an_idempotency_key_and_a_retry_replays_the_answer(
    world: PinWorld,
) -> None:
    world.bind("viewer-1")
    pin_id = world.buy("viewer-1", 500)["pin"]["id"]
    path = f"/v1/pins/{pin_id}/remove"

    keyless = world.client.post(path, json={"violation": True}, headers=world.tenant.headers)
    headers = world.tenant.write_headers("remove-once")
    first = world.client.post(path, json={"violation": True}, headers=headers)
    again = world.client.post(path, json={"violation": True}, headers=headers)
    other_body = world.client.post(path, json={"violation": False}, headers=headers)
    world.worker.drain()

    assert keyless.status_code == 400
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert other_body.status_code == 422
    assert world.pin(pin_id)["status"] == "REMOVED"
    assert world.balance(world.creator_owner()) == 350


# Who may read a creator's records ------------------------------------------------------------


def _key(world: PinWorld, scopes: list[str], creator_id: str | None = None) -> TenantHandle:
    body: dict[str, Any] = {"name": "records reader", "scopes": scopes}
    if creator_id is not None:
        body["creator_id"] = creator_id
    response = world.client.post("/v1/api-keys", json=body, headers=world.tenant.headers)
    assert response.status_code == 201, response.text
    return TenantHandle(world.tenant.id, response.json()["key"])


def _two_creators_with_a_pin_each(world: PinWorld) -> dict[str, str]:
    world.client.put(
        "/v1/creators/creator-2",
        json={"name": "c2", "programmes": ["incentive"]},
        headers=world.tenant.headers,
    ).raise_for_status()
    world.client.put(
        "/v1/contents/video-2",
        json={"creator_id": "creator-2", "kind": "video", "title": "t"},
        headers=world.tenant.headers,
    ).raise_for_status()
    world.bind("viewer-1")
    return {
        "creator-1": world.buy("viewer-1", 100)["pin"]["id"],
        "creator-2": world.buy("viewer-1", 200, content_id="video-2")["pin"]["id"],
    }


def test_a_creator_key_reads_its_own_received_pins_and_not_another_creators(
    world: PinWorld,
) -> None:
    pins = _two_creators_with_a_pin_each(world)
    key = _key(world, ["creator"], creator_id="creator-1")

    own = world.client.get("/v1/creators/creator-1/pins", headers=key.headers)
    others = world.client.get("/v1/creators/creator-2/pins", headers=key.headers)
    own_figures = world.client.get("/v1/creators/creator-1/analytics", headers=key.headers)
    other_figures = world.client.get("/v1/creators/creator-2/analytics", headers=key.headers)

    assert own.status_code == 200, own.text
    assert [p["id"] for p in own.json()["data"]] == [pins["creator-1"]]
    assert own_figures.json()["gross_fen"] == 100
    assert others.status_code == other_figures.status_code == 403


def test_an_analyst_key_reads_any_creators_received_pins_and_analytics(world: PinWorld) -> None:
    pins = _two_creators_with_a_pin_each(world)
    analyst = _key(world, ["analyst"])

    received_pins = world.client.get("/v1/creators/creator-2/pins", headers=analyst.headers)
    analytics = world.client.get("/v1/creators/creator-2/analytics", headers=analyst.headers)

    assert (received_pins.status_code, analytics.status_code) == (200, 200)
    assert [p["id"] for p in received_pins.json()["data"]] == [pins["creator-2"]]


def test_a_creator_key_cannot_read_another_creators_pins_through_the_pin_list(
    world: PinWorld,
) -> None:
    pins = _two_creators_with_a_pin_each(world)
    key = _key(world, ["creator"], creator_id="creator-1")

    by_content = world.client.get("/v1/pins", params={"content_id": "video-2"}, headers=key.headers)
    everything = world.client.get("/v1/pins", headers=key.headers)
    one = world.client.get(f"/v1/pins/{pins['creator-2']}", headers=key.headers)

    # then: the lists hold only the key's own creator's pins; the other pin is forbidden
    assert (by_content.status_code, by_content.json()["data"]) == (200, [])
    assert [p["id"] for p in everything.json()["data"]] == [pins["creator-1"]]
    assert one.status_code == 403
