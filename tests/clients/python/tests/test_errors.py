"""Errors raise UpstashError with Redis's text; the read-only token fails writes with NOPERM."""

import pytest
from upstash_redis.errors import UpstashError

from conftest import URL, make_async_redis, make_redis, uniq


def test_not_an_integer(any_redis):
    k = uniq("err")
    any_redis.set(k, "abc")
    with pytest.raises(UpstashError, match="ERR value is not an integer or out of range"):
        any_redis.incr(k)


def test_wrongtype(any_redis):
    k = uniq("err")
    any_redis.set(k, "abc")
    with pytest.raises(UpstashError, match="WRONGTYPE Operation against a key holding the wrong kind of value"):
        any_redis.lpush(k, "x")


def test_unknown_command_and_arity(any_redis):
    with pytest.raises(UpstashError, match="(?i)ERR unknown command"):
        any_redis.execute(["NOSUCHCOMMAND", "x"])
    with pytest.raises(UpstashError, match="ERR wrong number of arguments for 'get' command"):
        any_redis.execute(["GET"])


def test_lua_error_text(redis):
    with pytest.raises(UpstashError, match="MYERR custom failure"):
        redis.eval("return redis.error_reply('MYERR custom failure')")


def test_noscript_text(redis):
    with pytest.raises(UpstashError, match=r"NOSCRIPT No matching script\. Please use EVAL\."):
        redis.evalsha("f" * 40)


def test_bad_token():
    with make_redis("not-the-token") as bad:
        with pytest.raises(UpstashError, match="(?i)WRONGPASS|Unauthorized"):
            bad.get("x")
        p = bad.pipeline()
        p.get("x")
        with pytest.raises((UpstashError, AttributeError)):
            # a 401 on /pipeline is one {"error"} object; the client iterates it as a dict
            # (client-side quirk, see DIFFERENCES.md)
            p.exec()


def test_url_with_trailing_slash_builds_double_slash_pipeline_url():
    # upstash-redis does not strip the slash: pipelines go to "<url>//pipeline"
    with _client_with_url(f"{URL}/") as r:
        k = uniq("slash")
        assert r.set(k, "v") is True
        p = r.pipeline()
        p.get(k)
        assert p.exec() == ["v"]


def _client_with_url(url):
    from upstash_redis import Redis

    from conftest import TOKEN

    return Redis(url, TOKEN, allow_telemetry=False, rest_retries=0)


async def test_async_errors(aredis):
    k = uniq("err")
    await aredis.set(k, "abc")
    with pytest.raises(UpstashError, match="ERR value is not an integer"):
        await aredis.incr(k)


# ---------------------------------------------------------------------------------------------
# read-only token
# ---------------------------------------------------------------------------------------------


def test_readonly_reads_work(redis, ro_redis):
    k = uniq("ro")
    redis.set(k, "value")
    redis.hset(f"{k}:h", values={"f": "v"})
    assert ro_redis.get(k) == "value"
    assert ro_redis.hgetall(f"{k}:h") == {"f": "v"}
    assert ro_redis.exists(k) == 1
    assert ro_redis.strlen(k) == 5


def test_readonly_writes_fail_with_noperm(redis, ro_redis):
    k = uniq("ro")
    with pytest.raises(UpstashError, match="NOPERM.*'set'"):
        ro_redis.set(k, "v")
    for call in (
        lambda: ro_redis.incr(k),
        lambda: ro_redis.delete(k),
        lambda: ro_redis.hset(k, "f", "v"),
        lambda: ro_redis.expire(k, 5),
        lambda: ro_redis.eval("return 1"),
        lambda: ro_redis.flushdb(),
        lambda: ro_redis.keys("*"),
    ):
        with pytest.raises(UpstashError, match="NOPERM"):
            call()
    assert redis.exists(k) == 0


def test_readonly_pipeline_and_multi(redis, ro_redis):
    k = uniq("ro")
    redis.set(k, "value")
    p = ro_redis.pipeline()
    p.get(k).set(k, "changed")
    with pytest.raises(UpstashError, match="NOPERM"):
        p.exec()
    tx = ro_redis.multi()
    tx.get(k).set(k, "changed")
    with pytest.raises((UpstashError, AttributeError)):
        # the whole transaction is refused with one {"error"} (see test_pipeline.py)
        tx.exec()
    assert redis.get(k) == "value"


async def test_readonly_async(redis, ro_aredis):
    k = uniq("ro")
    redis.set(k, "value")
    assert await ro_aredis.get(k) == "value"
    with pytest.raises(UpstashError, match="NOPERM"):
        await ro_aredis.set(k, "x")


def test_upstash_only_search_fails_clearly(redis):
    with pytest.raises(UpstashError, match=r"(?i)ERR unknown command 'SEARCH\.CREATE'"):
        redis.search.create_index(
            name=uniq("idx"), schema={"title": "TEXT"}, data_type="hash", prefixes="restdis-test:"
        )
    # the connection is fine afterwards
    assert redis.ping() == "PONG"


async def test_async_client_closes_cleanly():
    async with make_async_redis() as r:
        assert await r.ping() == "PONG"


def test_oversized_request_is_an_upstash_error(redis):
    k = uniq("big")
    with pytest.raises(UpstashError, match="(?i)max request size"):
        redis.set(k, "x" * (11 * 1024 * 1024))
    assert redis.exists(k) == 0
    assert redis.ping() == "PONG"
