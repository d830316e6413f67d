// @upstash/ratelimit against restdis: each algorithm allows exactly N requests, then blocks.
// The library runs Lua scripts with EVALSHA and falls back to EVAL on NOSCRIPT.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis";
import { READONLY_TOKEN, SHARED_TENANCY, URL, assertUpstashError, makeRedis, uniq } from "./helpers.mjs";

const LIMIT = 5;

// Windows are long (1 h): fixed windows align to wall-clock multiples of the window, and a
// boundary falling inside a test would reset the count.

const ALGORITHMS = [
  ["slidingWindow", () => Ratelimit.slidingWindow(LIMIT, "1 h")],
  ["fixedWindow", () => Ratelimit.fixedWindow(LIMIT, "1 h")],
  ["tokenBucket", () => Ratelimit.tokenBucket(1, "1 h", LIMIT)],
];

function makeLimiter(redis, limiter, extra = {}) {
  return new Ratelimit({
    redis,
    limiter,
    prefix: uniq("ratelimit"),
    // no in-process cache: every call must reach the server
    ephemeralCache: false,
    // a slow or broken server must not be mistaken for "allowed"
    timeout: 30_000,
    analytics: false,
    ...extra,
  });
}

describe("@upstash/ratelimit", () => {
  for (const [mode, opts] of [
    ["auto-pipelining", {}],
    ["one request per command", { enableAutoPipelining: false }],
  ]) {
    for (const [name, algorithm] of ALGORITHMS) {
      it(`${name} allows exactly ${LIMIT} then blocks [${mode}]`, async () => {
        const redis = makeRedis(opts);
        const rl = makeLimiter(redis, algorithm());
        const id = uniq("user");
        for (let i = 0; i < LIMIT; i++) {
          const res = await rl.limit(id);
          await res.pending;
          assert.equal(res.reason, undefined, `request ${i + 1}: reason ${res.reason}`);
          assert.equal(res.success, true, `request ${i + 1} was blocked`);
          assert.equal(res.limit, LIMIT);
          assert.equal(res.remaining, LIMIT - 1 - i, `request ${i + 1}: remaining`);
          assert.ok(res.reset > Date.now() - 1000, `reset ${res.reset}`);
        }
        for (let i = 0; i < 2; i++) {
          const res = await rl.limit(id);
          await res.pending;
          assert.equal(res.reason, undefined);
          assert.equal(res.success, false, `request ${LIMIT + i + 1} was allowed`);
          assert.equal(res.remaining, 0);
        }
        // other identifiers are independent
        const other = await rl.limit(uniq("user"));
        assert.equal(other.success, true);
        // getRemaining agrees, and resetUsedTokens restores the budget
        const rem = await rl.getRemaining(id);
        assert.equal(rem.remaining, 0);
        assert.equal(rem.limit, LIMIT);
        await rl.resetUsedTokens(id);
        const again = await rl.limit(id);
        assert.equal(again.success, true);
      });
    }
  }

  it("concurrent requests never exceed the limit", async () => {
    const redis = makeRedis();
    const rl = makeLimiter(redis, Ratelimit.slidingWindow(10, "1 h"));
    const id = uniq("user");
    const results = await Promise.all(Array.from({ length: 30 }, () => rl.limit(id)));
    assert.equal(results.filter((r) => r.reason !== undefined).length, 0);
    assert.equal(results.filter((r) => r.success).length, 10);
  });

  it("works after SCRIPT FLUSH (EVALSHA -> NOSCRIPT -> EVAL fallback)", { skip: SHARED_TENANCY }, async () => {
    const redis = makeRedis({ enableAutoPipelining: false });
    const rl = makeLimiter(redis, Ratelimit.fixedWindow(2, "1 h"));
    const id = uniq("user");
    await redis.scriptFlush();
    assert.equal((await rl.limit(id)).success, true);
    await redis.scriptFlush();
    assert.equal((await rl.limit(id)).success, true);
    assert.equal((await rl.limit(id)).success, false);
  });

  it("rate > 1 consumes several tokens", async () => {
    const redis = makeRedis();
    const rl = makeLimiter(redis, Ratelimit.fixedWindow(10, "1 h"));
    const id = uniq("user");
    const first = await rl.limit(id, { rate: 7 });
    assert.equal(first.success, true);
    assert.equal(first.remaining, 3);
    const second = await rl.limit(id, { rate: 7 });
    assert.equal(second.success, false);
  });

  it("with a read-only token the scripts fail with NOPERM (as on Upstash)", { skip: !READONLY_TOKEN }, async () => {
    const ro = new Redis({ url: URL, token: READONLY_TOKEN, retry: false, enableAutoPipelining: false });
    const rl = makeLimiter(ro, Ratelimit.fixedWindow(2, "1 h"));
    await assertUpstashError(rl.limit(uniq("user")), /NOPERM/);
  });
});
