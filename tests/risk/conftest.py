from __future__ import annotations

import os
import uuid

import pytest
import redis

REDIS_URL = os.environ.get("ZANLOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> str:
    """The Redis that CI starts; the test fails (not skips) when it is down, because the Redis
    counters are a product path. Keys carry tenant ids unique to each test, and the database is
    never flushed: other test processes share it."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:12]
