from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TenantHandle


@pytest.fixture
def create_key(client: TestClient) -> Callable[..., dict[str, Any]]:
    """Create an API key through the API; returns the response body (with `key`)."""

    def create(t: TenantHandle, *scopes: str, **headers: str) -> dict[str, Any]:
        response = client.post(
            "/v1/api-keys",
            json={"name": "test key", "scopes": list(scopes) or ["app"]},
            headers={**t.headers, **headers},
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    return create
