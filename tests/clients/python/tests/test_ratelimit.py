"""upstash_ratelimit against restdis: each limiter allows exactly N requests, then blocks.
The limiters run their Lua scripts with EVAL."""

import pytest
from upstash_ratelimit import FixedWindow, Ratelimit, SlidingWindow, TokenBucket
from upstash_ratelimit.asyncio import Ratelimit as AsyncRatelimit
from upstash_redis.errors import UpstashError

from conftest import uniq

LIMIT = 5

LIMITERS = [
    pytest.param(lambda: FixedWindow(max_requests=LIMIT, window=3600), id="fixed-window"),
    pytest.param(lambda: SlidingWindow(max_requests=LIMIT, window=3600), id="sliding-window"),
    pytest.param(lambda: TokenBucket(max_tokens=LIMIT, refill_rate=1, interval=3600), id="token-bucket"),
]


@pytest.mark.parametrize("make_limiter", LIMITERS)
def test_allows_exactly_n_then_blocks(redis, make_limiter):
    rl = Ratelimit(redis=redis, limiter=make_limiter(), prefix=uniq("ratelimit"))
    ident = uniq("user")
    for i in range(LIMIT):
        res = rl.limit(ident)
        assert res.allowed, f"request {i + 1} was blocked"
        assert res.limit == LIMIT
        assert res.remaining == LIMIT - 1 - i
    for i in range(2):
        res = rl.limit(ident)
        assert not res.allowed, f"request {LIMIT + i + 1} was allowed"
        assert res.remaining == 0
    assert rl.limit(uniq("user")).allowed
    assert rl.get_remaining(ident) == 0


@pytest.mark.parametrize("make_limiter", LIMITERS)
async def test_async_allows_exactly_n_then_blocks(aredis, make_limiter):
    rl = AsyncRatelimit(redis=aredis, limiter=make_limiter(), prefix=uniq("ratelimit"))
    ident = uniq("user")
    results = [await rl.limit(ident) for _ in range(LIMIT + 2)]
    assert [r.allowed for r in results] == [True] * LIMIT + [False] * 2


def test_readonly_token_cannot_ratelimit(ro_redis):
    rl = Ratelimit(redis=ro_redis, limiter=FixedWindow(max_requests=2, window=3600), prefix=uniq("rl"))
    with pytest.raises(UpstashError, match="NOPERM"):
        rl.limit(uniq("user"))
