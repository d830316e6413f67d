import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createCache } from "../cache.mjs";
import { makeRedis, sleep, uniq } from "../test-support/helpers.mjs";

/** A loader that counts its calls, takes `delayMs` and returns "v1", "v2", ... */
function slowLoader(delayMs) {
  const loader = async () => {
    loader.calls++;
    const n = loader.calls;
    await sleep(delayMs);
    return { version: `v${n}` };
  };
  loader.calls = 0;
  return loader;
}

describe("cache (getOrSet with stale-while-revalidate)", () => {
  it("miss loads and stores with ttl + staleWhileRevalidate; a fresh hit does not load", async () => {
    const redis = makeRedis();
    const prefix = uniq("cache");
    const cache = createCache(redis, { prefix });
    const loader = slowLoader(10);
    assert.deepEqual(await cache.getOrSet("p:1", 60, loader, { staleWhileRevalidate: 120 }), { version: "v1" });
    const pttl = await redis.pttl(`${prefix}:val:p:1`);
    assert.ok(pttl > 175_000 && pttl <= 180_000, `pttl ${pttl}`);
    assert.deepEqual(await cache.getOrSet("p:1", 60, loader, { staleWhileRevalidate: 120 }), { version: "v1" });
    await cache.settled();
    assert.equal(loader.calls, 1);
  });

  it("stale value is served at once to concurrent readers while exactly one refresh runs", async () => {
    const redis = makeRedis();
    const prefix = uniq("cache");
    // three app instances, each with its own client
    const caches = Array.from({ length: 3 }, () => createCache(makeRedis(), { prefix }));
    const loader = slowLoader(800);
    const opts = { staleWhileRevalidate: 60 };
    assert.deepEqual(await caches[0].getOrSet("k", 60, loader, opts), { version: "v1" });

    // let 60+ s pass for this key: leave it less than staleWhileRevalidate to live
    await redis.pexpire(`${prefix}:val:k`, 30_000);

    const t0 = Date.now();
    const reads = await Promise.all(
      Array.from({ length: 30 }, (_, i) => caches[i % 3].getOrSet("k", 60, loader, opts)),
    );
    const elapsed = Date.now() - t0;
    for (const v of reads) assert.deepEqual(v, { version: "v1" });
    assert.ok(elapsed < 800, `readers waited for the loader (${elapsed} ms)`);

    await Promise.all(caches.map((c) => c.settled()));
    assert.equal(loader.calls, 2, "exactly one refresh across all instances");
    assert.deepEqual(await caches[1].getOrSet("k", 60, loader, opts), { version: "v2" });
    const pttl = await redis.pttl(`${prefix}:val:k`);
    assert.ok(pttl > 110_000, `refreshed entry pttl ${pttl}`);
    assert.equal(await redis.exists(`${prefix}:lock:k`), 0, "refresh lock released");
    assert.equal(loader.calls, 2);
  });

  it("goes stale in real time after ttl, and is gone after ttl + staleWhileRevalidate", async () => {
    const cache = createCache(makeRedis(), { prefix: uniq("cache") });
    const loader = slowLoader(0);
    const opts = { staleWhileRevalidate: 1 };
    await cache.getOrSet("k", 1, loader, opts); // v1: fresh 1 s, stale 1 s more
    await sleep(1200);
    assert.deepEqual(await cache.getOrSet("k", 1, loader, opts), { version: "v1" }, "stale value served");
    await cache.settled();
    assert.equal(loader.calls, 2);
    await sleep(2200); // v2 is fully expired now
    assert.deepEqual(await cache.getOrSet("k", 1, loader, opts), { version: "v3" }, "expired: loaded in line");
    assert.equal(loader.calls, 3);
  });

  it("a failed refresh keeps the stale value, frees the lock, and the next reader retries", async () => {
    const redis = makeRedis();
    const prefix = uniq("cache");
    const errors = [];
    const cache = createCache(redis, { prefix, onError: (e) => errors.push(e.message) });
    const opts = { staleWhileRevalidate: 60 };
    await cache.getOrSet("k", 60, async () => "good", opts);
    await redis.pexpire(`${prefix}:val:k`, 30_000);

    assert.equal(await cache.getOrSet("k", 60, async () => { throw new Error("db down"); }, opts), "good");
    await cache.settled();
    assert.deepEqual(errors, ["db down"]);
    assert.equal(await redis.exists(`${prefix}:lock:k`), 0);

    assert.equal(await cache.getOrSet("k", 60, async () => "better", opts), "good");
    await cache.settled();
    assert.equal(await cache.getOrSet("k", 60, async () => "unused", opts), "better");
  });

  it("concurrent misses in one process share a single load; null is cached too", async () => {
    const cache = createCache(makeRedis(), { prefix: uniq("cache") });
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(100);
      return null; // "no such product" is worth caching as well
    };
    const values = await Promise.all(Array.from({ length: 10 }, () => cache.getOrSet("missing", 60, loader)));
    assert.deepEqual(values, Array(10).fill(null));
    assert.equal(await cache.getOrSet("missing", 60, loader), null);
    assert.equal(calls, 1);
  });

  it("invalidate drops the entry", async () => {
    const cache = createCache(makeRedis(), { prefix: uniq("cache") });
    let n = 0;
    assert.equal(await cache.getOrSet("k", 60, async () => ++n), 1);
    await cache.invalidate("k");
    assert.equal(await cache.getOrSet("k", 60, async () => ++n), 2);
  });
});
