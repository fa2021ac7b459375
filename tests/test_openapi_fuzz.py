"""Schema-driven fuzzing: whatever the OpenAPI document allows (and what it does not), no
route answers 5xx. A 500 is a bug (errors.py); the provider callback answers 4xx to garbage."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import TenantHandle
from zanloop.app import create_app
from zanloop.config import Settings
from zanloop.db import Database

NOTIFY = "/v1/payments/notify/{tenant_id}"
# Switching a tenant to the real provider would send its later requests to WeChat Pay.
OWN_TENANT = {("PUT", "/v1/payments/provider")}
# Bounded: no shrinking (the first failing request is reported as found).
FUZZ = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


def _openapi() -> dict[str, Any]:
    """The document the app serves; building it never connects to the database."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/unused.db")
        try:
            app_settings = Settings(database_url=db.url, _env_file=None)  # type: ignore[call-arg]
            return create_app(app_settings, db=db, run_worker=False).openapi()
        finally:
            db.dispose()


# Parametrized at import time (one test per operation); requests go to each test's own app.
# (schemathesis.pytest.from_fixture would be the usual way, but 4.32 breaks on pytest 9: it
# sets `request.node._nodeid`, which pytest 9 no longer has.)
CONFIG = schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": False}}})
schema = schemathesis.openapi.from_dict(_openapi(), config=CONFIG)


@pytest.fixture
def key_for(
    tenant: TenantHandle, make_tenant: Callable[..., TenantHandle]
) -> Callable[[schemathesis.Case], dict[str, str]]:
    own: dict[str, TenantHandle] = {}

    def headers(case: schemathesis.Case) -> dict[str, str]:
        if (case.method.upper(), case.path) not in OWN_TENANT:
            return tenant.headers
        return own.setdefault(case.path, make_tenant("Fuzzed provider")).headers

    return headers


def test_the_fuzzed_document_is_the_one_served(client: TestClient) -> None:
    assert client.get("/openapi.json").json() == schema.raw_schema


@schema.exclude(path=NOTIFY).parametrize()
@FUZZ
def test_no_route_answers_5xx(
    case: schemathesis.Case, app: FastAPI, key_for: Callable[[schemathesis.Case], dict[str, str]]
) -> None:
    response = case.call(app=app, headers=key_for(case))

    case.validate_response(response, checks=[not_a_server_error])


@schema.include(path=NOTIFY).parametrize()
@settings(FUZZ, max_examples=40)
def test_provider_callback_refuses_garbage_with_fail(
    case: schemathesis.Case, app: FastAPI, tenant: TenantHandle
) -> None:
    # Garbage for a tenant that does not exist, then the same garbage for one that does.
    for_nobody = case.call(app=app)
    case.path_parameters = {"tenant_id": tenant.id}
    for_the_tenant = case.call(app=app)

    for response in (for_nobody, for_the_tenant):
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
        assert response.json()["code"] == "FAIL"


def _parameters(operation: dict[str, Any], where: str) -> list[str]:
    return [p["name"] for p in operation.get("parameters", []) if p["in"] == where]


def _operations_with_url_parameters() -> list[Any]:
    cases = []
    for path, item in schema.raw_schema["paths"].items():
        for method, operation in item.items():
            if not (_parameters(operation, "path") or _parameters(operation, "query")):
                continue
            cases.append(pytest.param(method.upper(), path, id=f"{method.upper()} {path}"))
    return cases


@pytest.mark.parametrize(("method", "path"), _operations_with_url_parameters())
def test_a_nul_byte_in_the_url_is_not_a_5xx(
    client: TestClient, tenant: TenantHandle, method: str, path: str
) -> None:
    # PostgreSQL text cannot hold NUL: a %00 in an id or a filter must be refused as invalid
    # input before it reaches the database. One request per parameter, so none masks another.
    operation = schema.raw_schema["paths"][path][method.lower()]
    body = {} if method in ("POST", "PUT", "PATCH") else None
    urls = [re.sub(r"\{[^}]+\}", "x%00", path)]
    valid = re.sub(r"\{[^}]+\}", "x", path)
    urls += [f"{valid}?{name}=x%00" for name in _parameters(operation, "query")]

    statuses = {
        url: client.request(method, url, json=body, headers=tenant.write_headers()).status_code
        for url in urls
    }

    assert all(status < 500 for status in statuses.values()), statuses
