// @upstash/lock against restdis: SET NX PX to acquire, a Lua script to release and extend.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Lock } from "@upstash/lock";
import { makeRedis, sleep, uniq } from "./helpers.mjs";

describe("@upstash/lock", () => {
  for (const [mode, opts] of [
    ["auto-pipelining", {}],
    ["one request per command", { enableAutoPipelining: false }],
  ]) {
    const redis = makeRedis(opts);
    const retry = { attempts: 1, delay: 10 };

    it(`acquire, contend, release, re-acquire [${mode}]`, async () => {
      const id = uniq("lock");
      const first = new Lock({ id, redis, lease: 10_000, retry });
      const second = new Lock({ id, redis, lease: 10_000, retry });

      assert.equal(await first.acquire(), true);
      assert.equal(await first.getStatus(), "ACQUIRED");
      assert.equal(await second.acquire(), false);
      assert.equal(await second.getStatus(), "FREE");

      // only the holder can release
      assert.equal(await second.release(), false);
      assert.equal(await first.getStatus(), "ACQUIRED");

      assert.equal(await first.release(), true);
      assert.equal(await first.getStatus(), "FREE");
      assert.equal(await redis.exists(id), 0);

      assert.equal(await second.acquire(), true);
      assert.equal(await second.getStatus(), "ACQUIRED");
      assert.equal(await second.release(), true);
    });

    it(`extend prolongs the lease [${mode}]`, async () => {
      const id = uniq("lock");
      const lock = new Lock({ id, redis, lease: 5_000, retry });
      assert.equal(await lock.acquire(), true);
      const before = await redis.pttl(id);
      assert.ok(before > 0 && before <= 5_000, `pttl ${before}`);
      assert.equal(await lock.extend(20_000), true);
      const after = await redis.pttl(id);
      assert.ok(after > 5_000, `pttl after extend ${after}`);
      assert.equal(await lock.release(), true);
    });

    it(`an expired lease frees the lock [${mode}]`, async () => {
      const id = uniq("lock");
      const holder = new Lock({ id, redis, lease: 100, retry });
      assert.equal(await holder.acquire(), true);
      const other = new Lock({ id, redis, lease: 5_000, retry: { attempts: 40, delay: 25 } });
      assert.equal(await other.acquire(), true, "lock not freed after the lease expired");
      assert.equal(await holder.release(), false);
      assert.equal(await other.release(), true);
    });
  }

  it("many concurrent acquirers: exactly one wins", async () => {
    const redis = makeRedis();
    const id = uniq("lock");
    const locks = Array.from({ length: 20 }, () => new Lock({ id, redis, lease: 10_000, retry: { attempts: 1, delay: 1 } }));
    const won = await Promise.all(locks.map((l) => l.acquire()));
    assert.equal(won.filter(Boolean).length, 1);
    await locks[won.indexOf(true)].release();
    await sleep(0);
  });
});
