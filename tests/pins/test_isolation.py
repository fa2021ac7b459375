"""Tenants never meet (X1) in the pins area: one tenant's creators, content, pins, pinned
lists, analytics and streams are 404 to another, even under the same ids of their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.pins.conftest import PinWorld

MakeWorld = Callable[[], PinWorld]

# Ids an integrator might choose: letters, digits, punctuation that survives a URL path, and
# Chinese. "." and ".." would name another path, so they are left out.
external_ids = st.text(
    alphabet=st.sampled_from([*"abcXYZ0189", "-", "_", ".", "~", "赞", "顶"]),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in {".", ".."})


def _get(world: PinWorld, path: str, **params: Any) -> Any:
    return world.client.get(path, params=params, headers=world.tenant.headers)


def _setup_creator(world: PinWorld, creator: str, content: str, name: str) -> None:
    world.client.put(
        f"/v1/creators/{creator}",
        json={"name": name, "programmes": ["incentive"]},
        headers=world.tenant.headers,
    ).raise_for_status()
    world.client.put(
        f"/v1/contents/{content}",
        json={"creator_id": creator, "kind": "video", "title": f"{name}'s video"},
        headers=world.tenant.headers,
    ).raise_for_status()


def _reads_of(creator: str, content: str, pin_id: str) -> dict[str, str]:
    """Every read that names one of another tenant's pin objects."""
    return {
        "creator": f"/v1/creators/{creator}",
        "received pins": f"/v1/creators/{creator}/pins",
        "analytics": f"/v1/creators/{creator}/analytics",
        "content": f"/v1/contents/{content}",
        "pinned list": f"/v1/contents/{content}/pins",
        "pin": f"/v1/pins/{pin_id}",
    }


def _assert_hidden_from(
    outsider: PinWorld, owner: PinWorld, creator: str, content: str, pin_id: str, viewer: str
) -> None:
    """``outsider`` can neither read nor touch ``owner``'s creator, content and pin."""
    client, headers = outsider.client, outsider.tenant.headers
    reads = {
        what: _get(outsider, path).status_code
        for what, path in _reads_of(creator, content, pin_id).items()
    }
    assert reads == dict.fromkeys(reads, 404)
    assert _get(outsider, "/v1/pins", content_id=content).status_code == 404
    assert _get(outsider, "/v1/pins", buyer_id=viewer).json()["data"] == []
    assert _get(outsider, f"/v1/bindings/{viewer}").status_code == 404
    writes = {
        "stream token": client.post(f"/v1/creators/{creator}/stream-tokens", headers=headers),
        "stream": client.get(
            f"/v1/creators/{creator}/stream",
            params={"token": _own_stream_token(outsider)},
        ),
        "remove": client.post(
            f"/v1/pins/{pin_id}/remove", json={}, headers=outsider.tenant.write_headers()
        ),
        "patch content": client.patch(
            f"/v1/contents/{content}", json={"pins_enabled": False}, headers=headers
        ),
        "content under their creator": client.put(
            "/v1/contents/sneaky",
            json={"creator_id": creator, "kind": "post", "title": "t"},
            headers=headers,
        ),
    }
    assert {what: r.status_code for what, r in writes.items()} == dict.fromkeys(writes, 404)
    outsider.bind(viewer, openid="o-outsider")
    buy = outsider.request_pin(viewer, 100, content_id=content)
    assert buy.status_code == 404, buy.text
    # the owner's side is as it was
    assert owner.pin(pin_id)["status"] == "ACTIVE"
    assert owner.pinned(content)["accepts_pins"] is True
    assert [p["pin_id"] for p in owner.pinned(content)["pinned"]] == [pin_id]


def _own_stream_token(world: PinWorld) -> str:
    response = world.client.post(
        f"/v1/creators/{world.creator}/stream-tokens", headers=world.tenant.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def test_the_same_ids_in_two_tenants_name_two_different_creators(make_world: MakeWorld) -> None:
    # given: two tenants that both call their creator "creator-1" and their video "video-1"
    first, second = make_world(), make_world()
    first.bind("viewer-1")
    pin_id = first.buy("viewer-1", 700)["pin"]["id"]

    # when: the second tenant looks at its own creator-1 and video-1
    analytics = _get(second, "/v1/creators/creator-1/analytics").json()
    received = _get(second, "/v1/creators/creator-1/pins").json()
    pinned = second.pinned()
    history = _get(second, "/v1/pins").json()

    # then: nothing of the first tenant's pin
    assert (analytics["pins"], analytics["gross_fen"], analytics["supporters"]) == (0, 0, 0)
    assert received["data"] == history["data"] == pinned["pinned"] == []
    assert _get(second, f"/v1/pins/{pin_id}").status_code == 404
    assert second.balance("creator:creator-1") == 0
    assert first.balance("creator:creator-1") == 490
    assert _get(first, "/v1/creators/creator-1/analytics").json()["gross_fen"] == 700


def test_another_tenants_pin_objects_are_404_to_read_and_to_change(make_world: MakeWorld) -> None:
    owner, outsider = make_world(), make_world()
    _setup_creator(owner, "only-here", "only-here-video", "Owner")
    owner.bind("viewer-1")
    pin_id = owner.buy("viewer-1", 500, content_id="only-here-video")["pin"]["id"]

    _assert_hidden_from(outsider, owner, "only-here", "only-here-video", pin_id, "viewer-1")


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(creator=external_ids, content=external_ids, viewer=external_ids)
def test_tenants_never_see_each_others_pins_whatever_the_ids(
    make_world: MakeWorld, creator: str, content: str, viewer: str
) -> None:
    # given: one tenant's creator and content under random ids, with a paid pin
    owner, outsider = make_world(), make_world()
    _setup_creator(owner, creator, content, "Owner")
    owner.bind(viewer, openid="o-owner")
    pin_id = owner.buy(viewer, 300, content_id=content)["pin"]["id"]

    # then: another tenant can neither see nor touch any of it
    _assert_hidden_from(outsider, owner, creator, content, pin_id, viewer)

    # when: the other tenant registers the very same ids for itself
    _setup_creator(outsider, creator, content, "Outsider")

    # then: two creators that never mix
    assert _get(outsider, f"/v1/creators/{creator}").json()["name"] == "Outsider"
    assert _get(owner, f"/v1/creators/{creator}").json()["name"] == "Owner"
    assert outsider.pinned(content)["pinned"] == []
    assert _get(outsider, f"/v1/creators/{creator}/analytics").json()["pins"] == 0
    assert _get(outsider, f"/v1/creators/{creator}/pins").json()["data"] == []
    assert _get(owner, f"/v1/creators/{creator}/analytics").json()["gross_fen"] == 300
    assert [p["pin_id"] for p in owner.pinned(content)["pinned"]] == [pin_id]
