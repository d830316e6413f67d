// Explicit pipelines (POST /pipeline) and transactions (POST /multi-exec) through @upstash/redis.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertUpstashError, makeRedis, uniq } from "./helpers.mjs";

describe("pipeline", () => {
  const redis = makeRedis({ enableAutoPipelining: false });

  it("runs commands in order and deserializes each result", async () => {
    const k = uniq("pl");
    const h = uniq("pl");
    const z = uniq("pl");
    const res = await redis
      .pipeline()
      .set(k, "v")
      .get(k)
      .incr(`${k}:n`)
      .incrby(`${k}:n`, 9)
      .hset(h, { a: 1, b: "x" })
      .hgetall(h)
      .zadd(z, { score: 1.5, member: "m" })
      .zscore(z, "m")
      .get(uniq("missing"))
      .exec();
    assert.deepEqual(res, ["OK", "v", 1, 10, 2, { a: 1, b: "x" }, 1, 1.5, null]);
  });

  it("a failing command makes exec() throw, naming the command", async () => {
    const k = uniq("pl");
    const p = redis.pipeline().set(k, "not-a-number").incr(k).get(k);
    const err = await assertUpstashError(p.exec(), /ERR value is not an integer or out of range/);
    assert.match(err.message, /Command 2 \[ incr \] failed/);
    // the pipeline is not atomic and not aborted: the other commands ran
    assert.equal(await redis.get(k), "not-a-number");
  });

  it("keepErrors returns {result, error} per command with the exact key shapes", async () => {
    const k = uniq("pl");
    const l = uniq("pl");
    await redis.rpush(l, "x");
    const res = await redis
      .pipeline()
      .set(k, "text")
      .incr(k)
      .lpush(k, "x")
      .get(k)
      .llen(l)
      .exec({ keepErrors: true });
    assert.equal(res.length, 5);
    assert.deepEqual(res[0], { result: "OK", error: undefined });
    assert.equal(res[1].result, undefined);
    assert.match(res[1].error, /^ERR value is not an integer or out of range/);
    assert.equal(res[2].result, undefined);
    assert.match(res[2].error, /^WRONGTYPE Operation against a key holding the wrong kind of value/);
    assert.deepEqual(res[3], { result: "text", error: undefined });
    assert.deepEqual(res[4], { result: 1, error: undefined });
  });

  it("a large pipeline returns one entry per command", async () => {
    const k = uniq("pl");
    const p = redis.pipeline();
    for (let i = 0; i < 500; i++) p.rpush(k, `item-${i}`);
    p.llen(k);
    const res = await p.exec();
    assert.equal(res.length, 501);
    assert.deepEqual(res.slice(0, 500), Array.from({ length: 500 }, (_, i) => i + 1));
    assert.equal(res[500], 500);
  });

  it("an empty pipeline is rejected by the client before any request", async () => {
    await assert.rejects(redis.pipeline().exec(), /Pipeline is empty/);
  });

  it("nested replies (xrange, hgetall, zrange withScores) decode inside a pipeline", async () => {
    const s = uniq("pl");
    const z = uniq("pl");
    const res = await redis
      .pipeline()
      .xadd(s, "5-1", { f: "v" })
      .xrange(s, "-", "+")
      .zadd(z, { score: 2, member: "two" }, { score: 1, member: "one" })
      .zrange(z, 0, -1, { withScores: true })
      .exec();
    assert.deepEqual(res, ["5-1", { "5-1": { f: "v" } }, 2, ["one", 1, "two", 2]]);
  });
});

describe("multi (transactions)", () => {
  const redis = makeRedis({ enableAutoPipelining: false });

  it("executes atomically and returns every result", async () => {
    const k = uniq("tx");
    const res = await redis
      .multi()
      .set(k, 1)
      .incr(k)
      .incrby(k, 10)
      .get(k)
      .del(k)
      .exists(k)
      .exec();
    assert.deepEqual(res, ["OK", 2, 12, 12, 1, 0]);
  });

  it("a run-time error inside EXEC fails only its own slot", async () => {
    const k = uniq("tx");
    // Redis runs every queued command; the INCR fails at run time, the rest succeed.
    const p = redis.multi().set(k, "abc").incr(k).append(k, "def").get(k);
    const err = await assertUpstashError(p.exec(), /ERR value is not an integer or out of range/);
    assert.match(err.message, /Command 2 \[ incr \] failed/);
    assert.equal(await redis.get(k), "abcdef");

    const kept = await redis.multi().set(k, "x").incr(k).get(k).exec({ keepErrors: true });
    assert.deepEqual(kept[0], { result: "OK", error: undefined });
    assert.equal(kept[1].result, undefined);
    assert.match(kept[1].error, /^ERR value is not an integer or out of range/);
    assert.deepEqual(kept[2], { result: "x", error: undefined });
  });

  it("a queue-time error discards the whole transaction with one error", async () => {
    const k = uniq("tx");
    // HSET with no field/value pairs is an arity error, detected when Redis queues it.
    const p = redis.multi().set(k, "should-not-be-set").hset(uniq("tx"), {});
    await assertUpstashError(p.exec(), /EXECABORT|wrong number of arguments/i);
    assert.equal(await redis.get(k), null);
  });

  it("concurrent transactions never interleave", async () => {
    const k = uniq("tx");
    const clients = Array.from({ length: 4 }, () => makeRedis({ enableAutoPipelining: false }));
    const runs = [];
    for (let i = 0; i < 40; i++) {
      const c = clients[i % clients.length];
      runs.push(c.multi().incr(k).incr(k).incr(k).incr(k).incr(k).exec());
    }
    const results = await Promise.all(runs);
    const firsts = [];
    for (const r of results) {
      assert.equal(r.length, 5);
      for (let j = 1; j < 5; j++) {
        assert.equal(r[j], r[0] + j, `transaction interleaved: ${JSON.stringify(r)}`);
      }
      firsts.push(r[0]);
    }
    firsts.sort((a, b) => a - b);
    assert.deepEqual(
      firsts,
      Array.from({ length: 40 }, (_, i) => i * 5 + 1),
    );
    assert.equal(await redis.get(k), 200);
  });

  it("transactions and plain commands can run side by side", async () => {
    const k = uniq("tx");
    const other = uniq("tx");
    const work = [];
    for (let i = 0; i < 30; i++) {
      work.push(redis.multi().set(k, i).get(k).exec());
      work.push(redis.set(other, `o${i}`).then(() => redis.get(other)));
    }
    const res = await Promise.all(work);
    for (let i = 0; i < 30; i++) {
      const tx = res[2 * i];
      assert.equal(tx[0], "OK");
      assert.equal(tx[1], i, `transaction saw a foreign value: ${JSON.stringify(tx)}`);
      assert.equal(typeof res[2 * i + 1], "string");
      assert.ok(res[2 * i + 1].startsWith("o"));
    }
  });
});
