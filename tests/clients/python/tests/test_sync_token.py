"""Read-your-writes: the client stores the `Upstash-Sync-Token` of every response."""

from conftest import make_redis, uniq


def test_sync_token_changes_after_set_pipeline_multi_eval():
    with make_redis() as r:
        assert r._sync_token == ""
        k = uniq("ryw")
        r.set(k, "v")
        t1 = r._sync_token
        assert t1

        p = r.pipeline()
        p.set(k, "w").get(k)
        p.exec()
        t2 = r._sync_token
        assert t2 and t2 != t1

        tx = r.multi()
        tx.set(k, "x").get(k)
        tx.exec()
        t3 = r._sync_token
        assert t3 and t3 != t2

        r.eval("return redis.call('SET', KEYS[1], ARGV[1])", keys=[k], args=["y"])
        t4 = r._sync_token
        assert t4 and t4 != t3


def test_sync_token_unique_per_response():
    with make_redis() as r:
        seen = set()
        k = uniq("ryw")
        for _ in range(20):
            r.incr(k)
            seen.add(r._sync_token)
        assert len(seen) == 20


async def test_async_sync_token(aredis):
    k = uniq("ryw")
    await aredis.set(k, "v")
    t1 = aredis._sync_token
    assert t1
    await aredis.get(k)
    assert aredis._sync_token and aredis._sync_token != t1


def test_read_your_writes_disabled():
    with make_redis(read_your_writes=False) as r:
        r.set(uniq("ryw"), "v")
        assert r._sync_token == ""
