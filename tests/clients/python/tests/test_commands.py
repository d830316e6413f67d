"""Command families through upstash_redis (sync client, both response encodings)."""

import time

import pytest

from conftest import uniq


# ---------------------------------------------------------------------------------------------
# strings
# ---------------------------------------------------------------------------------------------


def test_set_get(any_redis):
    k = uniq("str")
    assert any_redis.set(k, "value") is True
    assert any_redis.get(k) == "value"
    assert any_redis.get(uniq("missing")) is None


def test_set_options(any_redis):
    r = any_redis
    k = uniq("str")
    assert r.set(k, "a", xx=True) is False
    assert r.set(k, "a", nx=True) is True
    assert r.set(k, "b", nx=True) is False
    assert r.set(k, "c", get=True) == "a"
    assert r.set(k, "d", ex=100) is True
    assert 90 < r.ttl(k) <= 100
    assert r.set(k, "e", px=50_000) is True
    assert 40_000 < r.pttl(k) <= 50_000
    assert r.set(k, "f", keepttl=True) is True
    assert r.pttl(k) > 40_000
    assert r.set(k, "g", exat=int(time.time()) + 300) is True
    assert 290 < r.ttl(k) <= 300


def test_string_commands(any_redis):
    r = any_redis
    k = uniq("str")
    r.set(k, "hello world")
    assert r.getrange(k, 0, 4) == "hello"
    assert r.setrange(k, 6, "redis") == 11
    assert r.get(k) == "hello redis"
    assert r.append(k, "!") == 12
    assert r.strlen(k) == 12
    assert r.getdel(k) == "hello redis!"
    assert r.exists(k) == 0
    assert r.setex(k, 100, "x") is True
    assert r.psetex(k, 100_000, "y") is True
    assert r.setnx(k, "z") is False
    assert r.getset(k, "w") == "y"


def test_counters(any_redis):
    r = any_redis
    k = uniq("ctr")
    assert r.incr(k) == 1
    assert r.incrby(k, 41) == 42
    assert r.decr(k) == 41
    assert r.decrby(k, 40) == 1
    r.set(k, "9223372036854775806")
    assert r.incr(k) == 9223372036854775807  # exact 64-bit integer
    f = uniq("flt")
    r.set(f, 10)
    assert r.incrbyfloat(f, 1.5) == 11.5
    assert r.get(f) == "11.5"


def test_mset_mget(any_redis):
    r = any_redis
    a, b = uniq("m"), uniq("m")
    assert r.mset({a: "1", b: "two"}) is True
    assert r.mget(a, b, uniq("missing")) == ["1", "two", None]
    assert r.msetnx({a: "x", uniq("m"): "y"}) is False


def test_ping_echo_time(any_redis):
    assert any_redis.ping() == "PONG"
    assert any_redis.ping("hi") == "hi"
    assert any_redis.echo("echo me") == "echo me"
    secs, micros = any_redis.time()
    assert abs(secs - time.time()) < 60
    assert isinstance(micros, int)


def test_bitmaps_and_hll(any_redis):
    r = any_redis
    k = uniq("bits")
    assert r.setbit(k, 7, 1) == 0
    assert r.getbit(k, 7) == 1
    assert r.bitcount(k) == 1
    assert r.bitpos(k, 1) == 7
    h = uniq("hll")
    assert r.pfadd(h, "a", "b", "c") is True
    assert r.pfcount(h) == 3


# ---------------------------------------------------------------------------------------------
# hashes
# ---------------------------------------------------------------------------------------------


def test_hashes(any_redis):
    r = any_redis
    k = uniq("hash")
    assert r.hset(k, "f1", "v1") == 1
    assert r.hset(k, values={"f2": "v2", "n": 5, "emoji": "🚀"}) == 3
    assert r.hget(k, "f1") == "v1"
    assert r.hgetall(k) == {"f1": "v1", "f2": "v2", "n": "5", "emoji": "🚀"}
    assert r.hmget(k, "f1", "nope") == ["v1", None]
    assert sorted(r.hkeys(k)) == ["emoji", "f1", "f2", "n"]
    assert sorted(r.hvals(k)) == ["5", "v1", "v2", "🚀"]
    assert r.hlen(k) == 4
    assert r.hexists(k, "f1") is True
    assert r.hexists(k, "zz") is False
    assert r.hincrby(k, "n", 10) == 15
    assert r.hincrbyfloat(k, "fl", 0.5) == 0.5
    assert r.hsetnx(k, "f1", "other") is False
    assert r.hdel(k, "f1", "f2") == 2
    assert r.hstrlen(k, "emoji") == 4
    assert r.hgetall(uniq("hash")) == {}
    cursor, fields = r.hscan(k, 0, count=100)
    assert cursor == 0
    assert fields == {"n": "15", "emoji": "🚀", "fl": "0.5"}
    assert r.hrandfield(k, 3, withvalues=True) == {"n": "15", "emoji": "🚀", "fl": "0.5"}


# ---------------------------------------------------------------------------------------------
# lists
# ---------------------------------------------------------------------------------------------


def test_lists(any_redis):
    r = any_redis
    k = uniq("list")
    assert r.rpush(k, "b", "c") == 2
    assert r.lpush(k, "a") == 3
    assert r.lrange(k, 0, -1) == ["a", "b", "c"]
    assert r.llen(k) == 3
    assert r.lindex(k, 1) == "b"
    assert r.lset(k, 1, "B") is True
    assert r.linsert(k, "AFTER", "B", "b2") == 4
    assert r.lpos(k, "c") == 3
    assert r.lrem(k, 0, "b2") == 1
    assert r.lpop(k) == "a"
    assert r.rpop(k) == "c"
    assert r.lpop(k) == "B"
    assert r.lpop(k) is None
    d = uniq("list")
    r.rpush(k, "x", "y")
    assert r.lmove(k, d, "LEFT", "RIGHT") == "x"
    assert r.lrange(d, 0, -1) == ["x"]
    assert r.ltrim(k, 0, 0) == "OK"


# ---------------------------------------------------------------------------------------------
# sets
# ---------------------------------------------------------------------------------------------


def test_sets(any_redis):
    r = any_redis
    a, b = uniq("set"), uniq("set")
    assert r.sadd(a, "1x", "2x", "3x") == 3
    r.sadd(b, "2x", "4x")
    assert sorted(r.smembers(a)) == ["1x", "2x", "3x"]
    assert r.scard(a) == 3
    assert r.sismember(a, "1x") is True
    assert r.smismember(a, "1x", "9x") == [True, False]
    assert sorted(r.sinter(a, b)) == ["2x"]
    assert sorted(r.sunion(a, b)) == ["1x", "2x", "3x", "4x"]
    assert sorted(r.sdiff(a, b)) == ["1x", "3x"]
    assert r.srem(a, "1x") == 1
    assert r.smove(a, b, "3x") is True
    assert r.smembers(uniq("set")) == []


# ---------------------------------------------------------------------------------------------
# sorted sets
# ---------------------------------------------------------------------------------------------


def test_sorted_sets(any_redis):
    r = any_redis
    k = uniq("zset")
    assert r.zadd(k, {"one": 1, "two": 2.5, "three": 3}) == 3
    assert r.zscore(k, "two") == 2.5
    assert r.zscore(k, "none") is None
    assert r.zmscore(k, ["one", "none"]) == [1.0, None]
    assert r.zcard(k) == 3
    assert r.zrange(k, 0, -1) == ["one", "two", "three"]
    assert r.zrange(k, 0, -1, withscores=True) == [("one", 1.0), ("two", 2.5), ("three", 3.0)]
    assert r.zrange(k, 2, 3, sortby="BYSCORE") == ["two", "three"]
    assert r.zrange(k, "+inf", "-inf", sortby="BYSCORE", rev=True, offset=0, count=2) == [
        "three",
        "two",
    ]
    assert r.zrank(k, "one") == 0
    assert r.zrevrank(k, "one") == 2
    assert r.zincrby(k, 0.25, "one") == 1.25
    assert r.zadd(k, {"one": 10}, incr=True) == 11.25
    assert r.zadd(k, {"one": 5}, gt=True, ch=True) == 0
    assert r.zcount(k, 2, 3) == 2
    assert r.zpopmin(k) == [("two", 2.5)]
    assert r.zpopmax(k) == [("one", 11.25)]
    assert r.zrem(k, "three") == 1


# ---------------------------------------------------------------------------------------------
# keys, scan, type, expiry
# ---------------------------------------------------------------------------------------------


def test_keys_and_expiry(any_redis):
    r = any_redis
    k = uniq("key")
    r.set(k, "v")
    assert r.type(k) == "string"
    assert r.type(uniq("none")) == "none"
    assert r.exists(k, uniq("none")) == 1
    assert r.expire(k, 100) is True
    assert 90 < r.ttl(k) <= 100
    assert r.persist(k) is True
    assert r.ttl(k) == -1
    k2 = uniq("key")
    assert r.rename(k, k2) is True
    assert r.get(k2) == "v"
    assert r.copy(k2, k) is True
    assert r.delete(k, k2) == 2


def test_scan(any_redis):
    r = any_redis
    r.flushdb()
    p = uniq("scan")
    keys = {f"{p}:{i}" for i in range(50)}
    r.mset({key: "v" for key in keys})
    r.hset(f"{p}-hash", "f", "v")
    seen = set()
    cursor = None
    while cursor != 0:
        cursor, batch = r.scan(cursor or 0, match=f"{p}:*", count=10)
        assert isinstance(cursor, int)
        seen.update(batch)
    assert seen == keys
    found = []
    cursor = None
    while cursor != 0:
        cursor, batch = r.scan(cursor or 0, count=1000, type="hash")
        found.extend(batch)
    assert found == [f"{p}-hash"]
    assert sorted(r.keys(f"{p}-*")) == [f"{p}-hash"]
    assert r.dbsize() == 51


# ---------------------------------------------------------------------------------------------
# scripts and streams
# ---------------------------------------------------------------------------------------------


def test_scripts(any_redis):
    r = any_redis
    k = uniq("lua")
    assert r.eval("return ARGV[1]", args=["hello"]) == "hello"
    assert r.eval("return {1, 'two', {3}}") == [1, "two", [3]]
    assert r.eval("return redis.call('SET', KEYS[1], ARGV[1])", keys=[k], args=["v"]) == "OK"
    assert r.eval("return {redis.status_reply('OK'), redis.status_reply('PONG')}") == [
        "OK",
        "PONG",
    ]
    sha = r.script_load("return 'loaded'")
    assert r.evalsha(sha) == "loaded"
    assert r.script_exists(sha, "0" * 40) == [True, False]


def test_error_nested_in_script_table(any_redis):
    k = uniq("lua")
    any_redis.set(k, "not-a-number")
    res = any_redis.eval("return {redis.pcall('INCR', KEYS[1]), 1}", keys=[k])
    assert len(res) == 2
    assert "ERR value is not an integer or out of range" in res[0]
    assert res[1] == 1


def test_streams(any_redis):
    r = any_redis
    k = uniq("stream")
    id1 = r.xadd(k, "*", {"name": "alice", "emoji": "🚀"})
    id2 = r.xadd(k, "*", {"name": "bob"})
    assert r.xlen(k) == 2
    assert r.xrange(k, "-", "+") == [[id1, ["name", "alice", "emoji", "🚀"]], [id2, ["name", "bob"]]]
    assert r.xgroup_create(k, "g", "0") == "OK"
    res = r.xreadgroup("g", "c1", {k: ">"})
    assert res == [[k, [[id1, ["name", "alice", "emoji", "🚀"]], [id2, ["name", "bob"]]]]]
    assert r.xack(k, "g", id1) == 1


def test_publish(any_redis):
    assert any_redis.publish(uniq("chan"), "nobody") == 0


# ---------------------------------------------------------------------------------------------
# async client
# ---------------------------------------------------------------------------------------------


async def test_async_basics(aredis):
    r = aredis
    k = uniq("async")
    assert await r.set(k, "v") is True
    assert await r.get(k) == "v"
    assert await r.incr(f"{k}:n") == 1
    assert await r.hset(f"{k}:h", values={"a": "1", "b": "🚀"}) == 2
    assert await r.hgetall(f"{k}:h") == {"a": "1", "b": "🚀"}
    assert await r.rpush(f"{k}:l", "x", "y") == 2
    assert await r.lrange(f"{k}:l", 0, -1) == ["x", "y"]
    assert await r.sadd(f"{k}:s", "m") == 1
    assert await r.smembers(f"{k}:s") == ["m"]
    assert await r.zadd(f"{k}:z", {"m": 1.5}) == 1
    assert await r.zscore(f"{k}:z", "m") == 1.5
    assert await r.zrange(f"{k}:z", 0, -1, withscores=True) == [("m", 1.5)]
    assert await r.type(f"{k}:z") == "zset"
    assert await r.eval("return ARGV[1]", args=["async"]) == "async"


async def test_async_concurrency(aredis):
    import asyncio

    k = uniq("async")
    results = await asyncio.gather(*(aredis.incr(k) for _ in range(50)))
    assert sorted(results) == list(range(1, 51))
    values = await asyncio.gather(*(aredis.set(f"{k}:{i}", str(i)) for i in range(30)))
    assert all(v is True for v in values)
    got = await asyncio.gather(*(aredis.get(f"{k}:{i}") for i in range(30)))
    assert got == [str(i) for i in range(30)]


@pytest.mark.parametrize("n", [1, 100])
def test_many_values(any_redis, n):
    k = uniq("many")
    any_redis.rpush(k, *[f"v{i}" for i in range(n)])
    assert any_redis.lrange(k, 0, -1) == [f"v{i}" for i in range(n)]
