import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createCounters } from "../counters.mjs";
import { makeRedis, uniq } from "../test-support/helpers.mjs";

/** A clock the test moves by hand. */
function fakeClock(iso) {
  const clock = { t: Date.parse(iso) };
  clock.now = () => clock.t;
  clock.set = (s) => (clock.t = Date.parse(s));
  return clock;
}

describe("per-tenant, per-route counters in time buckets", () => {
  it("buckets per minute; flush moves only closed buckets into the day summary", async () => {
    const redis = makeRedis();
    const prefix = uniq("counters");
    const clock = fakeClock("2024-01-01T23:58:10Z");
    const c = createCounters(redis, { prefix, now: clock.now });

    await Promise.all([
      c.hit("acme", "GET /a"),
      c.hit("acme", "GET /a"),
      c.hit("acme", "GET /a"),
      c.hit("acme", "POST /b"),
      c.hit("globex", "GET /a", 2),
    ]);
    const b1 = Date.parse("2024-01-01T23:58:00Z");
    assert.deepEqual(await c.current("acme"), { "GET /a": 3, "POST /b": 1 });
    assert.deepEqual(await redis.hgetall(`${prefix}:acme:${b1}`), { "GET /a": 3, "POST /b": 1 });
    const pttl = await redis.pttl(`${prefix}:acme:${b1}`);
    assert.ok(pttl > 86_000_000 && pttl <= 86_400_000, `bucket pttl ${pttl}`);

    assert.equal(await c.flush(), 0, "the current minute is still open");

    clock.set("2024-01-01T23:59:30Z");
    await c.hit("acme", "GET /a", 5);
    assert.equal(await c.flush(), 2, "23:58 closed for acme and globex");
    assert.deepEqual(await c.summary("acme", "2024-01-01"), { "GET /a": 3, "POST /b": 1 });
    assert.deepEqual(await c.summary("globex", "2024-01-01"), { "GET /a": 2 });
    assert.equal(await redis.exists(`${prefix}:acme:${b1}`), 0, "flushed bucket deleted");
    assert.deepEqual(await c.current("acme"), { "GET /a": 5 });

    clock.set("2024-01-02T00:00:05Z");
    await c.hit("acme", "GET /a");
    assert.equal(await c.flush(), 1);
    assert.deepEqual(await c.summary("acme", "2024-01-01"), { "GET /a": 8, "POST /b": 1 }, "23:59 added to Jan 1");
    assert.deepEqual(await c.summary("acme", "2024-01-02"), {}, "00:00 still open");
    assert.deepEqual(await c.current("acme"), { "GET /a": 1 });
    assert.ok((await redis.ttl(`${prefix}:acme:day:2024-01-01`)) > 0, "summaries expire too");
  });

  it("a late hit for an already flushed bucket is counted by the next flush", async () => {
    const prefix = uniq("counters");
    const redis = makeRedis();
    const fast = fakeClock("2024-03-10T12:01:00Z");
    const slow = fakeClock("2024-03-10T12:00:59Z"); // another app server, 1 s behind
    const a = createCounters(redis, { prefix, now: fast.now });
    const b = createCounters(redis, { prefix, now: slow.now });

    await b.hit("acme", "GET /x");
    assert.equal(await a.flush(), 1); // 12:00 is closed for a
    await b.hit("acme", "GET /x"); // still 12:00 for b
    fast.set("2024-03-10T12:02:00Z");
    assert.equal(await a.flush(), 1);
    assert.deepEqual(await a.summary("acme", "2024-03-10"), { "GET /x": 2 });
  });

  it("concurrent flushers never double-count; totals match the hits exactly", async () => {
    const prefix = uniq("counters");
    const clock = fakeClock("2024-06-01T10:00:00Z");
    const c = createCounters(makeRedis(), { prefix, now: clock.now });
    const expected = { acme: {}, globex: {} };
    for (let minute = 0; minute < 5; minute++) {
      clock.t = Date.parse("2024-06-01T10:00:00Z") + minute * 60_000 + 1000;
      const hits = [];
      for (const tenant of ["acme", "globex"]) {
        for (const route of ["GET /a", "GET /b"]) {
          const n = minute + (tenant === "acme" ? 1 : 2) + (route === "GET /b" ? 10 : 0);
          expected[tenant][route] = (expected[tenant][route] ?? 0) + n;
          hits.push(c.hit(tenant, route, n));
        }
      }
      await Promise.all(hits);
    }
    clock.set("2024-06-01T11:00:00Z");
    // three flushers (separate clients, as on three servers) racing over the same 10 buckets
    const flushers = Array.from({ length: 3 }, () => createCounters(makeRedis(), { prefix, now: clock.now }));
    const counts = await Promise.all(flushers.map((f) => f.flush()));
    assert.equal(counts.reduce((a, b) => a + b, 0), 10, `${counts} buckets flushed`);
    assert.deepEqual(await c.summary("acme", "2024-06-01"), expected.acme);
    assert.deepEqual(await c.summary("globex", "2024-06-01"), expected.globex);
    assert.equal(await c.flush(), 0);
  });

  it("other bucket sizes: five-minute buckets", async () => {
    const clock = fakeClock("2024-01-01T00:04:59Z");
    const c = createCounters(makeRedis(), { prefix: uniq("counters"), bucketMs: 300_000, now: clock.now });
    await c.hit("t", "r");
    clock.set("2024-01-01T00:01:00Z");
    await c.hit("t", "r");
    assert.deepEqual(await c.current("t"), { r: 2 }, "00:01 and 00:04:59 share the 00:00 bucket");
    assert.throws(() => createCounters(makeRedis(), { bucketMs: 7_000_000 }), /divide a day/);
  });
});
