// What a shared HTTP gateway must do with commands that would block or change connection state,
// and with oversized requests, as seen through @upstash/redis (protocol-spec §2.4, §11).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assertUpstashError, makeRedis, uniq } from "./helpers.mjs";

describe("gateway safety", () => {
  const redis = makeRedis({ enableAutoPipelining: false });

  it("blocking reads return at once (Upstash runs them non-blocking)", async () => {
    const k = uniq("block");
    const start = Date.now();
    const res = await redis.xread(k, "$", { blockMS: 3000 });
    assert.equal(res, null);
    assert.equal(await redis.exec(["BLPOP", uniq("block"), "3"]), null);
    assert.ok(Date.now() - start < 2500, `blocking commands took ${Date.now() - start} ms`);
  });

  it("a blocking pop still pops when there is data", async () => {
    const k = uniq("block");
    await redis.rpush(k, "item");
    assert.deepEqual(await redis.exec(["BLPOP", k, "1"]), [k, "item"]);
  });

  it("blocking commands do not stall concurrent requests", async () => {
    const k = uniq("block");
    const start = Date.now();
    const [blocked, ...others] = await Promise.all([
      redis.exec(["BRPOP", uniq("block"), "2"]),
      ...Array.from({ length: 10 }, (_, i) => redis.set(`${k}:${i}`, i)),
    ]);
    assert.equal(blocked, null);
    assert.deepEqual(others, Array(10).fill("OK"));
    assert.ok(Date.now() - start < 1500, `took ${Date.now() - start} ms`);
  });

  it("SELECT 0 is accepted; other databases are refused", async () => {
    assert.equal(await redis.exec(["SELECT", "0"]), "OK");
    // Under TENANCY=shared the token's own database is 1 (SELECT 1 is then "mine").
    const other = process.env.RESTDIS_TENANCY === "shared" ? "2" : "1";
    await assertUpstashError(redis.exec(["SELECT", other]), /ERR/);
  });

  it("connection-state and transaction commands are refused, and leave no state behind", async () => {
    for (const cmd of [["MULTI"], ["WATCH", "k"], ["HELLO", "3"], ["CLIENT", "REPLY", "OFF"], ["SUBSCRIBE", "c"]]) {
      await assertUpstashError(redis.exec(cmd), /ERR/);
    }
    const k = uniq("state");
    assert.equal(await redis.set(k, "still-fine"), "OK");
    assert.equal(await redis.get(k), "still-fine");
    // a refused MULTI must not have left the shared connection inside a transaction
    assert.deepEqual(await redis.pipeline().incr(`${k}:n`).incr(`${k}:n`).exec(), [1, 2]);
  });

  it("an oversized request is a JSON UpstashError, not a dropped connection", async () => {
    const k = uniq("big");
    const huge = "x".repeat(11 * 1024 * 1024);
    await assertUpstashError(redis.set(k, huge), /max request size/i);
    assert.equal(await redis.exists(k), 0);
    assert.equal(await redis.ping(), "PONG");
  });

  it("an 8 MiB value (under the 10 MiB default limit) round-trips", async () => {
    const k = uniq("big");
    const big = "y".repeat(8 * 1024 * 1024);
    assert.equal(await redis.set(k, big), "OK");
    const got = await redis.get(k);
    assert.equal(got.length, big.length);
    assert.ok(got === big);
    await redis.del(k);
  });
});
