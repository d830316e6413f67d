import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "@upstash/redis";
import { createRateLimiter } from "../ratelimit.mjs";
import { TOKEN, blackHole, closedPort, makeRedis, sleep, uniq } from "../test-support/helpers.mjs";

// Long windows: @upstash/ratelimit aligns windows to wall-clock multiples of the window, and a
// boundary inside a test would reset the count.
const routes = {
  login: { failMode: "closed", limits: { ip: { algorithm: "slidingWindow", limit: 3, window: "1 h" } } },
  api: {
    failMode: "open",
    limits: {
      ip: { algorithm: "slidingWindow", limit: 100, window: "1 h" },
      user: { algorithm: "tokenBucket", limit: 3, refillRate: 1, interval: "1 h" },
      tenant: { algorithm: "slidingWindow", limit: 5, window: "1 h" },
    },
  },
};

function limiterFor(redis, extra = {}) {
  return createRateLimiter({ redis, routes, prefix: uniq("rl"), timeout: 10_000, ...extra });
}

function assertHeaders(h, limit, remaining) {
  assert.deepEqual(Object.keys(h).sort(), ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"]);
  assert.equal(h["X-RateLimit-Limit"], String(limit));
  assert.equal(h["X-RateLimit-Remaining"], String(remaining));
  const reset = Number(h["X-RateLimit-Reset"]);
  const now = Date.now() / 1000;
  assert.ok(reset >= Math.floor(now) && reset <= now + 3600 + 1, `X-RateLimit-Reset ${reset} (now ${now})`);
}

describe("ratelimit", () => {
  it("per IP (sliding window): N allowed, then 429 headers; other IPs unaffected", async () => {
    const limiter = limiterFor(makeRedis(), { ephemeralCache: false });
    for (let i = 0; i < 3; i++) {
      const r = await limiter.check("login", { ip: "203.0.113.7" });
      assert.equal(r.allowed, true, `request ${i + 1}`);
      assertHeaders(r.headers, 3, 2 - i);
    }
    const refused = await limiter.check("login", { ip: "203.0.113.7" });
    assert.equal(refused.allowed, false);
    assert.equal(refused.dimension, "ip");
    assertHeaders(refused.headers, 3, 0);
    assert.equal((await limiter.check("login", { ip: "203.0.113.8" })).allowed, true);
  });

  it("per user (token bucket): a burst of 3, then refused, per user", async () => {
    const limiter = limiterFor(makeRedis());
    for (let i = 0; i < 3; i++) {
      const r = await limiter.check("api", { ip: `198.51.100.${i}`, user: "alice" });
      assert.equal(r.allowed, true);
      // the bucket (3) is tighter than the IP limit (100): it is the binding one
      assert.equal(r.dimension, "user");
      assertHeaders(r.headers, 3, 2 - i);
    }
    // a new IP does not help alice
    const refused = await limiter.check("api", { ip: "198.51.100.99", user: "alice" });
    assert.equal(refused.allowed, false);
    assert.equal(refused.dimension, "user");
    assert.equal(refused.headers["X-RateLimit-Remaining"], "0");
    assert.equal((await limiter.check("api", { ip: "198.51.100.99", user: "bob" })).allowed, true);
  });

  it("token bucket refills after its interval", async () => {
    const limiter = createRateLimiter({
      redis: makeRedis(),
      prefix: uniq("rl"),
      routes: { burst: { failMode: "closed", limits: { user: { algorithm: "tokenBucket", limit: 2, refillRate: 1, interval: "1 s" } } } },
      ephemeralCache: false,
    });
    assert.equal((await limiter.check("burst", { user: "u" })).allowed, true);
    assert.equal((await limiter.check("burst", { user: "u" })).allowed, true);
    const refused = await limiter.check("burst", { user: "u" });
    assert.equal(refused.allowed, false);
    const resetMs = Number(refused.headers["X-RateLimit-Reset"]) * 1000;
    await sleep(Math.max(0, resetMs - Date.now()) + 100);
    const again = await limiter.check("burst", { user: "u" });
    assert.equal(again.allowed, true, "no token after the refill interval");
  });

  it("per tenant: users of one tenant share its ceiling", async () => {
    const limiter = limiterFor(makeRedis());
    const results = [];
    for (let i = 0; i < 6; i++) {
      // six different users and IPs, each well under its own limit
      results.push(await limiter.check("api", { ip: `192.0.2.${i}`, user: `user-${i}`, tenant: "acme" }));
    }
    assert.deepEqual(results.map((r) => r.allowed), [true, true, true, true, true, false]);
    assert.equal(results[5].dimension, "tenant");
    assertHeaders(results[5].headers, 5, 0);
    // the tenant is the binding limit once it has fewer left than the user's bucket
    assert.equal(results[3].dimension, "tenant");
    assertHeaders(results[3].headers, 5, 1);
    // another tenant is unaffected
    assert.equal((await limiter.check("api", { ip: "192.0.2.1", user: "x", tenant: "globex" })).allowed, true);
  });

  it("concurrent requests never exceed the limit", async () => {
    const limiter = limiterFor(makeRedis(), { ephemeralCache: false });
    const results = await Promise.all(Array.from({ length: 12 }, () => limiter.check("login", { ip: "203.0.113.50" })));
    assert.equal(results.filter((r) => r.allowed).length, 3);
    assert.ok(results.every((r) => r.reason !== "unavailable"));
  });

  describe("restdis unreachable: failMode per route", () => {
    it("connection refused: open route allows, closed route refuses", async () => {
      const port = await closedPort();
      const down = new Redis({ url: `http://127.0.0.1:${port}`, token: TOKEN, retry: false });
      const limiter = createRateLimiter({ redis: down, routes, prefix: uniq("rl"), timeout: 2000 });

      const open = await limiter.check("api", { ip: "192.0.2.1", user: "u", tenant: "t" });
      assert.equal(open.allowed, true);
      assert.equal(open.reason, "unavailable");
      assert.ok(open.error, "the client error is passed on for logging");
      assertHeaders(open.headers, 3, 3);

      const closed = await limiter.check("login", { ip: "192.0.2.1" });
      assert.equal(closed.allowed, false);
      assert.equal(closed.reason, "unavailable");
      assertHeaders(closed.headers, 3, 0);
    });

    describe("no answer within the timeout", () => {
      let hole;
      after(() => hole?.close());

      it("open route allows, closed route refuses, both after ~timeout ms", async () => {
        hole = await blackHole();
        const hung = new Redis({ url: hole.url, token: TOKEN, retry: false });
        const limiter = createRateLimiter({ redis: hung, routes, prefix: uniq("rl"), timeout: 100 });

        const t0 = Date.now();
        const [open, closed] = await Promise.all([
          limiter.check("api", { ip: "192.0.2.1", user: "u" }),
          limiter.check("login", { ip: "192.0.2.1" }),
        ]);
        const elapsed = Date.now() - t0;
        assert.ok(elapsed >= 90 && elapsed < 2000, `took ${elapsed} ms`);
        assert.equal(open.allowed, true);
        assert.equal(open.reason, "unavailable");
        assert.equal(open.error, undefined);
        assert.equal(closed.allowed, false);
        assert.equal(closed.reason, "unavailable");
      });
    });
  });
});
