// Sets through @upstash/redis.
import assert from "node:assert/strict";
import { it } from "node:test";
import { describeModes, uniq } from "./helpers.mjs";

const sorted = (xs) => [...xs].sort();

describeModes("sets", (client) => {
  const redis = client();

  it("sadd / smembers / scard / sismember / smismember / srem", async () => {
    const k = uniq("set");
    assert.equal(await redis.sadd(k, "a", "b", "c"), 3);
    assert.equal(await redis.sadd(k, "a"), 0);
    assert.deepEqual(sorted(await redis.smembers(k)), ["a", "b", "c"]);
    assert.equal(await redis.scard(k), 3);
    assert.equal(await redis.sismember(k, "a"), 1);
    assert.equal(await redis.sismember(k, "z"), 0);
    assert.deepEqual(await redis.smismember(k, ["a", "z", "c"]), [1, 0, 1]);
    assert.equal(await redis.srem(k, "a", "z"), 1);
    assert.deepEqual(sorted(await redis.smembers(k)), ["b", "c"]);
    assert.deepEqual(await redis.smembers(uniq("set")), []);
  });

  it("spop / srandmember", async () => {
    const k = uniq("set");
    await redis.sadd(k, "a", "b", "c");
    const rnd = await redis.srandmember(k);
    assert.ok(["a", "b", "c"].includes(rnd));
    assert.equal((await redis.srandmember(k, 2)).length, 2);
    const popped = await redis.spop(k);
    assert.ok(["a", "b", "c"].includes(popped));
    assert.equal((await redis.spop(k, 5)).length, 2);
    assert.equal(await redis.spop(k), null);
  });

  it("smove", async () => {
    const a = uniq("set");
    const b = uniq("set");
    await redis.sadd(a, "m");
    assert.equal(await redis.smove(a, b, "m"), 1);
    assert.equal(await redis.smove(a, b, "m"), 0);
    assert.deepEqual(await redis.smembers(b), ["m"]);
  });

  it("sdiff / sinter / sunion and their store variants / sintercard", async () => {
    const a = uniq("set");
    const b = uniq("set");
    const dest = uniq("set");
    await redis.sadd(a, "1x", "2x", "3x");
    await redis.sadd(b, "2x", "3x", "4x");
    assert.deepEqual(sorted(await redis.sdiff(a, b)), ["1x"]);
    assert.deepEqual(sorted(await redis.sinter(a, b)), ["2x", "3x"]);
    assert.deepEqual(sorted(await redis.sunion(a, b)), ["1x", "2x", "3x", "4x"]);
    assert.equal(await redis.sdiffstore(dest, a, b), 1);
    assert.equal(await redis.sinterstore(dest, a, b), 2);
    assert.equal(await redis.sunionstore(dest, a, b), 4);
    assert.deepEqual(sorted(await redis.smembers(dest)), ["1x", "2x", "3x", "4x"]);
    assert.equal(await redis.sintercard([a, b]), 2);
    assert.equal(await redis.sintercard([a, b], { limit: 1 }), 1);
  });

  it("numeric and JSON members are deserialized", async () => {
    const k = uniq("set");
    await redis.sadd(k, 1, { o: 1 });
    const members = await redis.smembers(k);
    assert.equal(members.length, 2);
    assert.ok(members.some((m) => m === 1));
    assert.ok(members.some((m) => typeof m === "object" && m.o === 1));
  });

  it("sscan iterates every member", async () => {
    const k = uniq("set");
    const all = Array.from({ length: 60 }, (_, i) => `m${i}`);
    await redis.sadd(k, ...all);
    const seen = new Set();
    let cursor = "0";
    do {
      const [next, items] = await redis.sscan(k, cursor, { count: 7 });
      for (const m of items) seen.add(m);
      cursor = next;
    } while (cursor !== "0");
    assert.deepEqual(sorted(seen), sorted(all));
  });
});
