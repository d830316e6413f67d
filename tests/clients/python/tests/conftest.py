"""Fixtures for the upstash-redis / upstash-ratelimit compatibility tests.

run.sh exports UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN and RESTDIS_READONLY_TOKEN for a
private restdis + redis-server pair; tests may FLUSHDB freely.
"""

import os
import uuid

import pytest
import pytest_asyncio
from upstash_redis import Redis
from upstash_redis.asyncio import Redis as AsyncRedis

URL = os.environ.get("UPSTASH_REDIS_REST_URL")
TOKEN = os.environ.get("UPSTASH_REDIS_REST_TOKEN")
READONLY_TOKEN = os.environ.get("RESTDIS_READONLY_TOKEN")

if not URL or not TOKEN:
    raise pytest.UsageError(
        "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set (run tests/clients/run.sh)"
    )

# Retries are disabled so that a broken response fails at once instead of after a 3 s sleep.
CLIENT_KW = dict(allow_telemetry=False, rest_retries=0)


def make_redis(token: str = TOKEN, **kw) -> Redis:
    return Redis(URL, token, **{**CLIENT_KW, **kw})


def make_async_redis(token: str = TOKEN, **kw) -> AsyncRedis:
    return AsyncRedis(URL, token, **{**CLIENT_KW, **kw})


def uniq(label: str = "k") -> str:
    return f"restdis-test:py:{label}:{uuid.uuid4()}"


@pytest.fixture
def redis():
    with make_redis() as r:
        yield r


@pytest.fixture(params=["base64", None], ids=["base64", "plain-json"])
def any_redis(request):
    """The sync client with the default base64 response encoding and without it."""
    with make_redis(rest_encoding=request.param) as r:
        yield r


@pytest_asyncio.fixture
async def aredis():
    async with make_async_redis() as r:
        yield r


@pytest.fixture
def ro_redis():
    if not READONLY_TOKEN:
        pytest.skip("RESTDIS_READONLY_TOKEN not set")
    with make_redis(READONLY_TOKEN) as r:
        yield r


@pytest_asyncio.fixture
async def ro_aredis():
    if not READONLY_TOKEN:
        pytest.skip("RESTDIS_READONLY_TOKEN not set")
    async with make_async_redis(READONLY_TOKEN) as r:
        yield r
