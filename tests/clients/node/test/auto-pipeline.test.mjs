// Auto-pipelining (on by default in @upstash/redis): commands issued in the same tick are batched
// into POST /pipeline requests, reads and writes in separate batches.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UpstashError, makeRedis, uniq } from "./helpers.mjs";

describe("auto-pipelining", () => {
  it("is on by default", () => {
    const redis = makeRedis();
    assert.equal(redis.enableAutoPipelining, true);
    assert.equal(redis.pipelineCounter, 0);
  });

  it("200 concurrent writes then 200 concurrent reads: every result correct, few requests", async () => {
    const redis = makeRedis();
    const p = uniq("ap");
    const n = 200;
    const writes = await Promise.all(
      Array.from({ length: n }, (_, i) => redis.set(`${p}:${i}`, { i, s: `v${i}` })),
    );
    assert.deepEqual(writes, Array(n).fill("OK"));
    const afterWrites = redis.pipelineCounter;
    assert.ok(afterWrites >= 1 && afterWrites <= 2, `writes used ${afterWrites} pipelines`);

    const reads = await Promise.all(Array.from({ length: n }, (_, i) => redis.get(`${p}:${i}`)));
    assert.deepEqual(
      reads,
      Array.from({ length: n }, (_, i) => ({ i, s: `v${i}` })),
    );
    assert.ok(redis.pipelineCounter - afterWrites <= 2, `reads used ${redis.pipelineCounter - afterWrites} pipelines`);
  });

  it("200 concurrent mixed commands keep their order and types", async () => {
    const redis = makeRedis();
    const p = uniq("ap");
    const ops = [];
    const expected = [];
    for (let i = 0; i < 200; i++) {
      switch (i % 5) {
        case 0:
          ops.push(redis.incr(`${p}:ctr`));
          expected.push(Math.floor(i / 5) + 1);
          break;
        case 1:
          ops.push(redis.rpush(`${p}:list`, `e${i}`));
          expected.push(Math.floor(i / 5) + 1);
          break;
        case 2:
          ops.push(redis.hset(`${p}:hash`, { [`f${i}`]: i }));
          expected.push(1);
          break;
        case 3:
          ops.push(redis.zadd(`${p}:z`, { score: i + 0.5, member: `m${i}` }));
          expected.push(1);
          break;
        default:
          ops.push(redis.echo(`echo-${i}`));
          expected.push(`echo-${i}`);
      }
    }
    assert.deepEqual(await Promise.all(ops), expected);
    const [len, card, score, field] = await Promise.all([
      redis.llen(`${p}:list`),
      redis.zcard(`${p}:z`),
      redis.zscore(`${p}:z`, "m3"),
      redis.hget(`${p}:hash`, "f2"),
    ]);
    assert.deepEqual([len, card, score, field], [40, 40, 3.5, 2]);
  });

  it("an error fails only the command that caused it", async () => {
    const redis = makeRedis();
    const k = uniq("ap");
    await redis.set(k, "text");
    const results = await Promise.allSettled([
      redis.get(k),
      redis.incr(k),
      redis.strlen(k),
      redis.lpush(k, "x"),
      redis.set(`${k}:2`, "ok"),
    ]);
    assert.deepEqual(results.map((r) => r.status), [
      "fulfilled",
      "rejected",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);
    assert.equal(results[0].value, "text");
    assert.equal(results[2].value, 4);
    assert.ok(results[1].reason instanceof UpstashError);
    assert.match(results[1].reason.message, /ERR value is not an integer or out of range/);
    assert.ok(results[3].reason instanceof UpstashError);
    assert.match(results[3].reason.message, /WRONGTYPE/);
    assert.equal(results[4].value, "OK");
  });

  it("more than 1000 concurrent commands are split into several pipelines", async () => {
    const redis = makeRedis();
    const k = uniq("ap");
    const before = redis.pipelineCounter;
    const res = await Promise.all(Array.from({ length: 2500 }, () => redis.incr(k)));
    assert.deepEqual(
      [...res].sort((a, b) => a - b),
      Array.from({ length: 2500 }, (_, i) => i + 1),
    );
    assert.ok(redis.pipelineCounter - before >= 3, `used ${redis.pipelineCounter - before} pipelines`);
    assert.equal(await redis.get(k), 2500);
  });
});
