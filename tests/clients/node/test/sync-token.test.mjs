// Read-your-writes: every response carries a fresh `upstash-sync-token`, which the client stores
// in `redis.readYourWritesSyncToken`.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { makeRedis, uniq } from "./helpers.mjs";

describe("read-your-writes sync token", () => {
  it("starts empty and changes after set, pipeline, multi and eval", async () => {
    const redis = makeRedis({ enableAutoPipelining: false });
    assert.equal(redis.readYourWritesSyncToken, "");
    const k = uniq("ryw");

    await redis.set(k, "v");
    const t1 = redis.readYourWritesSyncToken;
    assert.ok(t1, "no token after set");

    await redis.pipeline().set(k, "w").get(k).exec();
    const t2 = redis.readYourWritesSyncToken;
    assert.ok(t2 && t2 !== t1, `pipeline: ${t1} -> ${t2}`);

    await redis.multi().set(k, "x").get(k).exec();
    const t3 = redis.readYourWritesSyncToken;
    assert.ok(t3 && t3 !== t2, `multi: ${t2} -> ${t3}`);

    await redis.eval("return redis.call('SET', KEYS[1], ARGV[1])", [k], ["y"]);
    const t4 = redis.readYourWritesSyncToken;
    assert.ok(t4 && t4 !== t3, `eval: ${t3} -> ${t4}`);

    await redis.get(k);
    const t5 = redis.readYourWritesSyncToken;
    assert.ok(t5 && t5 !== t4, `get: ${t4} -> ${t5}`);
  });

  it("changes after an auto-pipelined batch", async () => {
    const redis = makeRedis();
    const k = uniq("ryw");
    await Promise.all([redis.set(k, "a"), redis.set(`${k}:2`, "b")]);
    const t1 = redis.readYourWritesSyncToken;
    assert.ok(t1);
    await Promise.all([redis.get(k), redis.get(`${k}:2`)]);
    assert.notEqual(redis.readYourWritesSyncToken, t1);
  });

  it("is also sent on error responses", async () => {
    const redis = makeRedis({ enableAutoPipelining: false });
    const k = uniq("ryw");
    await redis.set(k, "text");
    const before = redis.readYourWritesSyncToken;
    // a pipeline with a failing entry is still a 200 response
    await redis.pipeline().incr(k).exec({ keepErrors: true });
    assert.ok(redis.readYourWritesSyncToken && redis.readYourWritesSyncToken !== before);
  });

  it("is distinct across concurrent requests", async () => {
    const clients = Array.from({ length: 3 }, () => makeRedis({ enableAutoPipelining: false }));
    const k = uniq("ryw");
    await Promise.all(clients.map((c, i) => c.set(`${k}:${i}`, i)));
    const tokens = clients.map((c) => c.readYourWritesSyncToken);
    assert.ok(tokens.every(Boolean), JSON.stringify(tokens));
    assert.equal(new Set(tokens).size, 3, `tokens not distinct: ${JSON.stringify(tokens)}`);

    // and unique over many requests
    const many = Array.from({ length: 20 }, () => makeRedis({ enableAutoPipelining: false }));
    await Promise.all(many.map((c, i) => c.incr(`${k}:ctr${i % 3}`)));
    const all = many.map((c) => c.readYourWritesSyncToken);
    assert.equal(new Set(all).size, 20);
  });

  it("a client-side token can be set and is replaced by the server's", async () => {
    const redis = makeRedis({ enableAutoPipelining: false });
    redis.readYourWritesSyncToken = "client-chosen-token";
    await redis.get(uniq("ryw"));
    assert.ok(redis.readYourWritesSyncToken);
    assert.notEqual(redis.readYourWritesSyncToken, "client-chosen-token");
  });

  it("readYourWrites: false ignores the header", async () => {
    const redis = makeRedis({ enableAutoPipelining: false, readYourWrites: false });
    await redis.set(uniq("ryw"), "v");
    assert.equal(redis.readYourWritesSyncToken, "");
  });
});
