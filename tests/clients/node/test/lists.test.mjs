// Lists through @upstash/redis.
import assert from "node:assert/strict";
import { it } from "node:test";
import { describeModes, uniq } from "./helpers.mjs";

describeModes("lists", (client) => {
  const redis = client();

  it("rpush / lpush / lrange / llen", async () => {
    const k = uniq("list");
    assert.equal(await redis.rpush(k, "b", "c"), 2);
    assert.equal(await redis.lpush(k, "a"), 3);
    assert.deepEqual(await redis.lrange(k, 0, -1), ["a", "b", "c"]);
    assert.equal(await redis.llen(k), 3);
    assert.deepEqual(await redis.lrange(uniq("list"), 0, -1), []);
  });

  it("lpushx / rpushx only push onto existing lists", async () => {
    const k = uniq("list");
    assert.equal(await redis.lpushx(k, "a"), 0);
    assert.equal(await redis.rpushx(k, "a"), 0);
    await redis.rpush(k, "m");
    assert.equal(await redis.lpushx(k, "l"), 2);
    assert.equal(await redis.rpushx(k, "r"), 3);
    assert.deepEqual(await redis.lrange(k, 0, -1), ["l", "m", "r"]);
  });

  it("values are client-serialized", async () => {
    const k = uniq("list");
    await redis.rpush(k, { a: 1 }, 2, "three", "4.0");
    assert.deepEqual(await redis.lrange(k, 0, -1), [{ a: 1 }, 2, "three", "4.0"]);
  });

  it("lindex / lset / linsert / lrem / ltrim", async () => {
    const k = uniq("list");
    await redis.rpush(k, "a", "b", "c", "b", "d");
    assert.equal(await redis.lindex(k, 1), "b");
    assert.equal(await redis.lindex(k, -1), "d");
    assert.equal(await redis.lindex(k, 99), null);
    assert.equal(await redis.lset(k, 0, "A"), "OK");
    assert.equal(await redis.linsert(k, "before", "c", "x"), 6);
    assert.equal(await redis.linsert(k, "after", "nope", "y"), -1);
    assert.equal(await redis.lrem(k, 0, "b"), 2);
    assert.deepEqual(await redis.lrange(k, 0, -1), ["A", "x", "c", "d"]);
    assert.equal(await redis.ltrim(k, 1, 2), "OK");
    assert.deepEqual(await redis.lrange(k, 0, -1), ["x", "c"]);
  });

  it("lpop / rpop with and without count", async () => {
    const k = uniq("list");
    await redis.rpush(k, "1a", "2b", "3c", "4d", "5e");
    assert.equal(await redis.lpop(k), "1a");
    assert.equal(await redis.rpop(k), "5e");
    assert.deepEqual(await redis.lpop(k, 2), ["2b", "3c"]);
    assert.deepEqual(await redis.rpop(k, 5), ["4d"]);
    assert.equal(await redis.lpop(k), null);
    assert.equal(await redis.rpop(k), null);
  });

  it("lpos with rank / count / maxLen", async () => {
    const k = uniq("list");
    await redis.rpush(k, "a", "b", "c", "b", "b");
    assert.equal(await redis.lpos(k, "b"), 1);
    assert.equal(await redis.lpos(k, "b", { rank: 2 }), 3);
    assert.equal(await redis.lpos(k, "b", { rank: -1 }), 4);
    assert.deepEqual(await redis.lpos(k, "b", { count: 0 }), [1, 3, 4]);
    assert.deepEqual(await redis.lpos(k, "b", { count: 2, maxLen: 4 }), [1, 3]);
    assert.equal(await redis.lpos(k, "zzz"), null);
  });

  it("lmove between lists", async () => {
    const src = uniq("list");
    const dst = uniq("list");
    await redis.rpush(src, "one", "two", "three");
    assert.equal(await redis.lmove(src, dst, "left", "right"), "one");
    assert.equal(await redis.lmove(src, dst, "right", "left"), "three");
    assert.deepEqual(await redis.lrange(src, 0, -1), ["two"]);
    assert.deepEqual(await redis.lrange(dst, 0, -1), ["three", "one"]);
    assert.equal(await redis.lmove(uniq("list"), dst, "left", "left"), null);
  });

  it("lmpop pops from the first non-empty list", async () => {
    const a = uniq("list");
    const b = uniq("list");
    await redis.rpush(b, "x", "y", "z");
    assert.deepEqual(await redis.lmpop(2, [a, b], "LEFT"), [b, ["x"]]);
    assert.deepEqual(await redis.lmpop(2, [a, b], "RIGHT", 5), [b, ["z", "y"]]);
    assert.equal(await redis.lmpop(2, [a, b], "LEFT"), null);
  });
});
