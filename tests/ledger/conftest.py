from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import TenantHandle
from tests.ledger.helpers import Books
from zanloop.db import Database


@pytest.fixture
def make_books(db: Database, make_tenant: Callable[..., TenantHandle]) -> Callable[[], Books]:
    """Books of a fresh tenant: cheap, so hypothesis examples each get their own."""

    def make() -> Books:
        return Books(db, make_tenant().id)

    return make


@pytest.fixture
def books(make_books: Callable[[], Books]) -> Books:
    return make_books()
