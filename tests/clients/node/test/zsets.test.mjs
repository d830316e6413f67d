// Sorted sets through @upstash/redis. Scores travel as strings (RESP2 doubles) and the client
// turns them into numbers.
import assert from "node:assert/strict";
import { it } from "node:test";
import { describeModes, uniq } from "./helpers.mjs";

describeModes("sorted sets", (client) => {
  const redis = client();

  async function seed() {
    const k = uniq("zset");
    await redis.zadd(
      k,
      { score: 1, member: "one" },
      { score: 2.5, member: "two" },
      { score: 3, member: "three" },
    );
    return k;
  }

  it("zadd / zscore / zcard return numbers", async () => {
    const k = uniq("zset");
    assert.equal(await redis.zadd(k, { score: 1.5, member: "a" }, { score: -2, member: "b" }), 2);
    assert.equal(await redis.zscore(k, "a"), 1.5);
    assert.equal(await redis.zscore(k, "b"), -2);
    assert.equal(await redis.zscore(k, "missing"), null);
    assert.equal(await redis.zcard(k), 2);
    assert.deepEqual(await redis.zmscore(k, ["a", "b", "nope"]), [1.5, -2, null]);
  });

  it("zadd options nx / xx / ch / incr / gt / lt", async () => {
    const k = uniq("zset");
    await redis.zadd(k, { score: 10, member: "m" });
    assert.equal(await redis.zadd(k, { nx: true }, { score: 99, member: "m" }), 0);
    assert.equal(await redis.zscore(k, "m"), 10);
    assert.equal(await redis.zadd(k, { xx: true }, { score: 5, member: "new" }), 0);
    assert.equal(await redis.zscore(k, "new"), null);
    assert.equal(await redis.zadd(k, { ch: true }, { score: 11, member: "m" }), 1);
    assert.equal(await redis.zadd(k, { incr: true }, { score: 4, member: "m" }), 15);
    assert.equal(await redis.zadd(k, { gt: true, ch: true }, { score: 1, member: "m" }), 0);
    assert.equal(await redis.zadd(k, { lt: true, ch: true }, { score: 1, member: "m" }), 1);
    assert.equal(await redis.zscore(k, "m"), 1);
  });

  it("zrange by index, withScores, rev", async () => {
    const k = await seed();
    assert.deepEqual(await redis.zrange(k, 0, -1), ["one", "two", "three"]);
    assert.deepEqual(await redis.zrange(k, 0, -1, { withScores: true }), [
      "one",
      1,
      "two",
      2.5,
      "three",
      3,
    ]);
    assert.deepEqual(await redis.zrange(k, 0, 1, { rev: true }), ["three", "two"]);
  });

  it("zrange byScore with limit, and byLex", async () => {
    const k = await seed();
    assert.deepEqual(await redis.zrange(k, 2, 3, { byScore: true }), ["two", "three"]);
    assert.deepEqual(await redis.zrange(k, "(1", "+inf", { byScore: true }), ["two", "three"]);
    assert.deepEqual(
      await redis.zrange(k, "-inf", "+inf", { byScore: true, offset: 1, count: 1 }),
      ["two"],
    );
    assert.deepEqual(await redis.zrange(k, "+inf", "-inf", { byScore: true, rev: true }), [
      "three",
      "two",
      "one",
    ]);
    const lex = uniq("zset");
    await redis.zadd(lex, { score: 0, member: "a" }, { score: 0, member: "b" }, { score: 0, member: "c" });
    assert.deepEqual(await redis.zrange(lex, "[b", "+", { byLex: true }), ["b", "c"]);
    assert.equal(await redis.zlexcount(lex, "[a", "(c"), 2);
  });

  it("zrank / zrevrank / zcount / zincrby", async () => {
    const k = await seed();
    assert.equal(await redis.zrank(k, "one"), 0);
    assert.equal(await redis.zrevrank(k, "one"), 2);
    assert.equal(await redis.zrank(k, "none"), null);
    assert.equal(await redis.zcount(k, 2, 3), 2);
    assert.equal(await redis.zcount(k, "-inf", "+inf"), 3);
    assert.equal(await redis.zincrby(k, 0.5, "one"), 1.5);
  });

  it("zpopmin / zpopmax", async () => {
    const k = await seed();
    assert.deepEqual(await redis.zpopmin(k), ["one", 1]);
    assert.deepEqual(await redis.zpopmax(k, 2), ["three", 3, "two", 2.5]);
    assert.deepEqual(await redis.zpopmin(k), []);
  });

  it("zrem / zremrangebyrank / zremrangebyscore / zremrangebylex", async () => {
    const k = await seed();
    assert.equal(await redis.zrem(k, "one", "nope"), 1);
    assert.equal(await redis.zremrangebyscore(k, 3, 3), 1);
    assert.equal(await redis.zremrangebyrank(k, 0, 0), 1);
    assert.equal(await redis.zcard(k), 0);
    const lex = uniq("zset");
    await redis.zadd(lex, { score: 0, member: "a" }, { score: 0, member: "b" });
    assert.equal(await redis.zremrangebylex(lex, "[a", "[a"), 1);
  });

  it("zunion / zunionstore / zinterstore / zdiffstore", async () => {
    const a = await seed();
    const b = uniq("zset");
    const dest = uniq("zset");
    await redis.zadd(b, { score: 10, member: "one" }, { score: 20, member: "four" });
    assert.deepEqual(await redis.zunion(2, [a, b], { withScores: true }), [
      "two",
      2.5,
      "three",
      3,
      "one",
      11,
      "four",
      20,
    ]);
    assert.equal(await redis.zunionstore(dest, 2, [a, b], { aggregate: "max" }), 4);
    assert.equal(await redis.zscore(dest, "one"), 10);
    assert.equal(await redis.zinterstore(dest, 2, [a, b], { weights: [2, 1] }), 1);
    assert.equal(await redis.zscore(dest, "one"), 12);
    assert.equal(await redis.zdiffstore(dest, 2, a, b), 2);
    assert.deepEqual(await redis.zrange(dest, 0, -1), ["two", "three"]);
  });

  it("zscan returns members and scores", async () => {
    const k = await seed();
    const [cursor, items] = await redis.zscan(k, 0);
    assert.equal(cursor, "0");
    assert.deepEqual(items, ["one", 1, "two", 2.5, "three", 3]);
  });
});
