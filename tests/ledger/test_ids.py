"""Ids of ledger rows (``kit.ids``): a prefix and 26 Crockford base32 digits, 10 of milliseconds
then 16 random, so they sort by creation time. Posting makes one per transfer, so the encoding
is done in bulk-friendly ways; these tests hold it to the layout."""

from __future__ import annotations

import time

import pytest

from zanloop.kit import ids

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _base32(value: int, length: int) -> str:
    digits = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        digits.append(CROCKFORD[rem])
    return "".join(reversed(digits))


def test_an_id_is_the_prefix_and_26_crockford_digits() -> None:
    made = ids.new_id("trf")

    prefix, body = made.split("_")
    assert prefix == "trf"
    assert len(body) == 26
    assert set(body) <= set(CROCKFORD)


@pytest.mark.parametrize(
    "millis",
    [
        pytest.param(0, id="epoch"),
        pytest.param(1_764_000_000_123, id="now-ish"),
        pytest.param(2**48 - 1, id="largest"),
    ],
)
def test_the_first_ten_digits_are_the_milliseconds(
    monkeypatch: pytest.MonkeyPatch, millis: int
) -> None:
    monkeypatch.setattr(ids.time, "time_ns", lambda: millis * 1_000_000 + 999_999)

    assert ids.new_id("trf")[4:14] == _base32(millis, 10)


def test_ids_sort_by_creation_time() -> None:
    earlier = ids.new_id("trf")
    time.sleep(0.002)
    later = ids.new_id("trf")

    assert earlier < later


def test_ids_do_not_repeat() -> None:
    made = [ids.new_id("trf") for _ in range(20_000)]

    assert len(set(made)) == len(made)


def test_every_random_digit_is_used() -> None:
    random_digits = "".join(ids.new_id("x")[12:] for _ in range(2_000))

    assert set(random_digits) == set(CROCKFORD)
