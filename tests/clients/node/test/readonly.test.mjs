// The read-only token: reads work, writes fail with Redis's NOPERM text.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Redis } from "@upstash/redis";
import { READONLY_TOKEN, URL, assertUpstashError, makeRedis, uniq } from "./helpers.mjs";

const NOPERM = /NOPERM/;

describe("read-only token", { skip: !READONLY_TOKEN && "RESTDIS_READONLY_TOKEN not set" }, () => {
  const rw = makeRedis({ enableAutoPipelining: false });
  const modes = [
    ["one request per command", { enableAutoPipelining: false }],
    ["auto-pipelining", {}],
  ];

  for (const [mode, opts] of modes) {
    const ro = new Redis({ url: URL, token: READONLY_TOKEN, retry: false, ...opts });

    it(`reads work [${mode}]`, async () => {
      const k = uniq("ro");
      await rw.set(k, { hello: "world" });
      await rw.hset(`${k}:h`, { f: 1 });
      await rw.zadd(`${k}:z`, { score: 2, member: "m" });
      assert.deepEqual(await ro.get(k), { hello: "world" });
      assert.deepEqual(await ro.hgetall(`${k}:h`), { f: 1 });
      assert.equal(await ro.zscore(`${k}:z`, "m"), 2);
      assert.equal(await ro.exists(k), 1);
      assert.equal(await ro.ttl(k), -1);
      assert.equal(await ro.type(k), "string");
      assert.deepEqual(await ro.mget(k, uniq("none")), [{ hello: "world" }, null]);
    });

    it(`writes fail with NOPERM [${mode}]`, async () => {
      const k = uniq("ro");
      const err = await assertUpstashError(ro.set(k, "v"), NOPERM);
      assert.match(err.message, /NOPERM.*'set'/);
      await assertUpstashError(ro.incr(k), NOPERM);
      await assertUpstashError(ro.del(k), NOPERM);
      await assertUpstashError(ro.hset(k, { a: 1 }), NOPERM);
      await assertUpstashError(ro.expire(k, 10), NOPERM);
      await assertUpstashError(ro.publish("chan", "msg"), NOPERM);
      await assertUpstashError(ro.flushdb(), NOPERM);
      assert.equal(await rw.exists(k), 0);
    });
  }

  const ro = new Redis({ url: URL, token: READONLY_TOKEN, retry: false, enableAutoPipelining: false });

  it("scripts that can write (EVAL / EVALSHA / SCRIPT LOAD) fail with NOPERM", async () => {
    await assertUpstashError(ro.eval("return 1", [], []), NOPERM);
    await assertUpstashError(ro.evalsha("0".repeat(40), [], []), NOPERM);
    await assertUpstashError(ro.scriptLoad("return 1"), NOPERM);
  });

  it("KEYS is refused (a @dangerous read)", async () => {
    await assertUpstashError(ro.keys("*"), NOPERM);
  });

  // Upstash's docs: "Some powerful read commands (e.g. SCAN, KEYS) are also restricted" for
  // the read-only token (protocol-spec §3.3, §15.10: "KEYS and SCAN are confirmed denied").
  it("SCAN is refused like on Upstash", async () => {
    await assertUpstashError(ro.scan(0), NOPERM);
  });

  it("a pipeline mixing reads and writes: per-entry NOPERM errors", async () => {
    const k = uniq("ro");
    await rw.set(k, "value");
    const res = await ro.pipeline().get(k).set(k, "changed").strlen(k).exec({ keepErrors: true });
    assert.deepEqual(res[0], { result: "value", error: undefined });
    assert.equal(res[1].result, undefined);
    assert.match(res[1].error, NOPERM);
    assert.deepEqual(res[2], { result: 5, error: undefined });
    await assertUpstashError(ro.pipeline().get(k).set(k, "x").exec(), /Command 2 \[ set \] failed: NOPERM/);
    assert.equal(await rw.get(k), "value");
  });

  it("a transaction containing a write is refused as a whole", async () => {
    const k = uniq("ro");
    await rw.set(k, "value");
    await assertUpstashError(ro.multi().get(k).set(k, "changed").exec(), NOPERM);
    assert.equal(await rw.get(k), "value");
    assert.deepEqual(await ro.multi().get(k).strlen(k).exec(), ["value", 5]);
  });
});
