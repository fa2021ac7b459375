"""API keys and scopes without a database."""

from __future__ import annotations

import re

import pytest

from zanloop.tenancy import domain
from zanloop.tenancy.domain import KEY_PREFIX, Principal, Scope


def test_a_new_key_carries_its_prefix_and_only_its_hash_is_kept() -> None:
    new = domain.generate_key()

    assert re.fullmatch(rf"{KEY_PREFIX}_[0-9a-f]{{8}}", new.prefix)
    assert new.plaintext.startswith(new.prefix + "_")
    assert new.key_hash == domain.hash_key(new.plaintext)
    assert re.fullmatch(r"[0-9a-f]{64}", new.key_hash)
    assert new.plaintext.removeprefix(new.prefix) not in new.key_hash


def test_keys_are_long_and_never_repeat() -> None:
    keys = [domain.generate_key() for _ in range(200)]

    assert len({k.plaintext for k in keys}) == 200
    assert len({k.key_hash for k in keys}) == 200
    assert min(len(k.plaintext) for k in keys) >= 40


def test_hashing_is_stable_and_tells_keys_apart() -> None:
    assert domain.hash_key("zl_a_b") == domain.hash_key("zl_a_b")
    assert domain.hash_key("zl_a_b") != domain.hash_key("zl_a_c")


def _principal(*scopes: Scope) -> Principal:
    return Principal("ten_1", "key_1", frozenset(scopes))


@pytest.mark.parametrize(
    ("held", "wanted", "allowed"),
    [
        pytest.param((Scope.ADMIN,), (Scope.MERCHANT,), True, id="admin-implies-merchant"),
        pytest.param((Scope.ADMIN,), (), True, id="admin-passes-admin-only"),
        pytest.param((Scope.MERCHANT,), (Scope.MERCHANT,), True, id="exact-scope"),
        pytest.param((Scope.APP,), (Scope.MERCHANT, Scope.APP), True, id="any-one-of"),
        pytest.param((Scope.APP,), (Scope.MERCHANT,), False, id="app-is-not-merchant"),
        pytest.param((Scope.MERCHANT,), (), False, id="merchant-is-not-admin"),
        pytest.param((Scope.ANALYST, Scope.CREATOR), (Scope.MERCHANT,), False, id="none-of-them"),
        pytest.param((), (Scope.APP,), False, id="no-scopes"),
    ],
)
def test_scopes(held: tuple[Scope, ...], wanted: tuple[Scope, ...], allowed: bool) -> None:
    assert _principal(*held).allows(*wanted) is allowed
