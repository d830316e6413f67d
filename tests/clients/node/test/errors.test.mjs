// Errors surface as UpstashError carrying Redis's own text, in every client mode.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Redis } from "@upstash/redis";
import { URL, UpstashError, assertUpstashError, describeModes, makeRedis, uniq } from "./helpers.mjs";

describeModes("errors", (client, mode) => {
  const redis = client();

  it("ERR value is not an integer", async () => {
    const k = uniq("err");
    await redis.set(k, "abc");
    const err = await assertUpstashError(redis.incr(k), "ERR value is not an integer or out of range");
    if (mode.startsWith("one request")) {
      // single-command errors carry the command that failed
      assert.match(err.message, /command was: \["incr",/);
    }
  });

  it("WRONGTYPE", async () => {
    const k = uniq("err");
    await redis.set(k, "abc");
    await assertUpstashError(
      redis.lpush(k, "x"),
      "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
    await assertUpstashError(redis.hget(k, "f"), "WRONGTYPE");
  });

  it("ERR not a valid float / syntax errors", async () => {
    const k = uniq("err");
    await redis.set(k, "abc");
    await assertUpstashError(redis.incrbyfloat(k, 1), "ERR value is not a valid float");
    await assertUpstashError(redis.set(k, "v", { ex: -5 }), /ERR invalid expire time/);
  });

  it("unknown commands and wrong arity (redis.exec)", async () => {
    await assertUpstashError(redis.exec(["NOSUCHCOMMAND", "a"]), /ERR unknown command/i);
    await assertUpstashError(redis.exec(["GET"]), /ERR wrong number of arguments for 'get' command/i);
  });

  it("redis.exec runs arbitrary commands", async () => {
    const k = uniq("err");
    assert.equal(await redis.exec(["SET", k, "raw"]), "OK");
    assert.equal(await redis.exec(["GET", k]), "raw");
    assert.equal(await redis.exec(["STRLEN", k]), 3);
  });
});

describe("authentication errors", () => {
  it("a wrong token gives an UpstashError (JSON body, not a parse error)", async () => {
    const bad = new Redis({ url: URL, token: "definitely-not-the-token", retry: false, enableAutoPipelining: false });
    const err = await assertUpstashError(bad.get("x"));
    assert.equal(err.name, "UpstashError", `got ${err.name}: ${err.message}`);
    assert.match(err.message, /WRONGPASS|Unauthorized/i);
  });

  it("a wrong token fails pipelines and auto-pipelined commands too", async () => {
    const bad = new Redis({ url: URL, token: "nope", retry: false });
    const err = await assertUpstashError(bad.set("x", "y"));
    assert.match(err.message, /WRONGPASS|Unauthorized/i);
    await assertUpstashError(bad.pipeline().get("x").exec(), /WRONGPASS|Unauthorized/i);
    await assertUpstashError(bad.multi().get("x").exec(), /WRONGPASS|Unauthorized/i);
  });

  it("a URL with a trailing slash works", async () => {
    const r = new Redis({ url: `${URL}/`, token: process.env.UPSTASH_REDIS_REST_TOKEN, retry: false });
    const k = uniq("err");
    assert.equal(await r.set(k, "v"), "OK");
    assert.equal(await r.get(k), "v");
    assert.deepEqual(await r.pipeline().get(k).exec(), ["v"]);
  });

  it("Redis.fromEnv reads UPSTASH_REDIS_REST_URL / _TOKEN", async () => {
    const r = Redis.fromEnv({ retry: false });
    assert.equal(await r.ping(), "PONG");
  });

  it("errors are UpstashError instances, not plain Errors", async () => {
    const redis = makeRedis({ enableAutoPipelining: false });
    try {
      await redis.exec(["NOSUCHCOMMAND"]);
      assert.fail("no error");
    } catch (e) {
      assert.ok(e instanceof UpstashError);
      assert.ok(e instanceof Error);
    }
  });
});
