// Hashes through @upstash/redis.
import assert from "node:assert/strict";
import { it } from "node:test";
import { describeModes, uniq } from "./helpers.mjs";

describeModes("hashes", (client) => {
  const redis = client();

  it("hset / hget / hgetall with client-serialized values", async () => {
    const k = uniq("hash");
    assert.equal(await redis.hset(k, { a: 1, b: "two", c: { x: [1, 2] }, d: "1.0" }), 4);
    assert.equal(await redis.hget(k, "a"), 1);
    assert.equal(await redis.hget(k, "b"), "two");
    assert.deepEqual(await redis.hget(k, "c"), { x: [1, 2] });
    assert.equal(await redis.hget(k, "d"), "1.0");
    assert.equal(await redis.hget(k, "missing"), null);
    // hgetall's own deserializer JSON.parses every value without the "number must print back
    // the same" guard that hget uses, so "1.0" comes back as 1 (client-side, same on Upstash).
    assert.deepEqual(await redis.hgetall(k), { a: 1, b: "two", c: { x: [1, 2] }, d: 1 });
  });

  it("hgetall on a missing key is null", async () => {
    assert.equal(await redis.hgetall(uniq("hash")), null);
  });

  it("hgetall keeps big integers as strings", async () => {
    const k = uniq("hash");
    await redis.hset(k, { big: "12345678901234567890", small: "42" });
    assert.deepEqual(await redis.hgetall(k), { big: "12345678901234567890", small: 42 });
  });

  it("hmget / hmset", async () => {
    const k = uniq("hash");
    assert.equal(await redis.hmset(k, { f1: "v1", f2: 2 }), "OK");
    assert.deepEqual(await redis.hmget(k, "f1", "f2", "nope"), { f1: "v1", f2: 2, nope: null });
    assert.equal(await redis.hmget(uniq("hash"), "a", "b"), null);
  });

  it("hkeys / hvals / hlen / hexists / hdel / hstrlen", async () => {
    const k = uniq("hash");
    await redis.hset(k, { a: "x", b: "yy" });
    assert.deepEqual((await redis.hkeys(k)).sort(), ["a", "b"]);
    assert.deepEqual((await redis.hvals(k)).sort(), ["x", "yy"]);
    assert.equal(await redis.hlen(k), 2);
    assert.equal(await redis.hexists(k, "a"), 1);
    assert.equal(await redis.hexists(k, "z"), 0);
    assert.equal(await redis.hstrlen(k, "b"), 2);
    assert.equal(await redis.hdel(k, "a"), 1);
    assert.equal(await redis.hdel(k, "a"), 0);
    assert.equal(await redis.hlen(k), 1);
  });

  it("hincrby / hincrbyfloat / hsetnx", async () => {
    const k = uniq("hash");
    assert.equal(await redis.hincrby(k, "n", 5), 5);
    assert.equal(await redis.hincrby(k, "n", -7), -2);
    assert.equal(await redis.hincrbyfloat(k, "f", 1.25), 1.25);
    assert.equal(await redis.hincrbyfloat(k, "f", 1.25), 2.5);
    assert.equal(await redis.hsetnx(k, "n", 100), 0);
    assert.equal(await redis.hsetnx(k, "new", 100), 1);
    assert.equal(await redis.hget(k, "new"), 100);
  });

  it("hrandfield with and without values", async () => {
    const k = uniq("hash");
    const data = { a: 1, b: 2, c: 3 };
    await redis.hset(k, data);
    const one = await redis.hrandfield(k);
    assert.ok(Object.keys(data).includes(one), `unexpected field ${one}`);
    const two = await redis.hrandfield(k, 2);
    assert.equal(two.length, 2);
    const withValues = await redis.hrandfield(k, 3, true);
    assert.deepEqual(withValues, data);
  });

  it("hscan iterates every field", async () => {
    const k = uniq("hash");
    const data = {};
    for (let i = 0; i < 50; i++) data[`f${i}`] = `v${i}`;
    await redis.hset(k, data);
    const seen = {};
    let cursor = "0";
    do {
      const [next, items] = await redis.hscan(k, cursor, { count: 10 });
      assert.equal(typeof next, "string");
      for (let i = 0; i < items.length; i += 2) seen[items[i]] = items[i + 1];
      cursor = next;
    } while (cursor !== "0");
    assert.deepEqual(seen, data);
    const [, matched] = await redis.hscan(k, 0, { match: "f1", count: 1000 });
    assert.deepEqual(matched, ["f1", "v1"]);
  });
});
