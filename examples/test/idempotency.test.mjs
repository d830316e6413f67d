import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { IdempotencyConflictError, IdempotencyMismatchError, withIdempotency } from "../idempotency.mjs";
import { makeRedis, sleep, uniq } from "../test-support/helpers.mjs";

// A response with values that a careless JSON round trip would change.
function chargeResponse() {
  return {
    status: 201,
    headers: { "content-type": "application/json", "x-charge-id": randomUUID() },
    body: JSON.stringify({ amount: "10.50", cents: 1050, note: "1.0 ünïcødé \u2028 \"quoted\"", zero: "007" }),
  };
}

describe("idempotency", () => {
  it("20 concurrent duplicates: work runs once, all get the same response", async () => {
    // four app instances (separate clients), five duplicate requests each
    const clients = Array.from({ length: 4 }, () => makeRedis());
    const key = uniq("idem");
    let calls = 0;
    const work = async () => {
      calls++;
      await sleep(200);
      return chargeResponse();
    };
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => withIdempotency(clients[i % 4], key, 60, work)),
    );
    assert.equal(calls, 1);
    assert.equal(results.filter((r) => !r.replayed).length, 1);
    const first = results.find((r) => !r.replayed).response;
    for (const r of results) assert.deepEqual(r.response, first);
  });

  it("a later retry replays the stored response verbatim; the record has the ttl", async () => {
    const redis = makeRedis();
    const key = uniq("idem");
    let calls = 0;
    const original = chargeResponse();
    const a = await withIdempotency(redis, key, 30, async () => (calls++, original));
    assert.equal(a.replayed, false);
    assert.deepEqual(a.response, original);

    // a different process without automatic JSON parsing gets the same bytes
    const raw = makeRedis({ automaticDeserialization: false });
    const b = await withIdempotency(raw, key, 30, async () => (calls++, chargeResponse()));
    assert.equal(b.replayed, true);
    assert.equal(calls, 1);
    assert.equal(JSON.stringify(b.response), JSON.stringify(original));
    assert.equal(b.response.body, original.body);

    const pttl = await redis.pttl(key);
    assert.ok(pttl > 25_000 && pttl <= 30_000, `pttl ${pttl}`);
  });

  it("failed work is not recorded: the retry runs it again", async () => {
    const redis = makeRedis();
    const key = uniq("idem");
    let calls = 0;
    await assert.rejects(
      withIdempotency(redis, key, 60, async () => {
        calls++;
        throw new Error("card declined");
      }),
      /card declined/,
    );
    assert.equal(await redis.exists(key), 0, "the pending marker was released");
    const r = await withIdempotency(redis, key, 60, async () => (calls++, { status: 200, headers: {}, body: "ok" }));
    assert.equal(r.replayed, false);
    assert.equal(calls, 2);
  });

  it("duplicates waiting on a failing first attempt take over, and run it once more", async () => {
    const redis = makeRedis();
    const key = uniq("idem");
    let calls = 0;
    const work = async () => {
      calls++;
      await sleep(100);
      if (calls === 1) throw new Error("transient");
      return { status: 200, headers: {}, body: `attempt ${calls}` };
    };
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => withIdempotency(redis, key, 60, work)));
    assert.equal(results.filter((r) => r.status === "rejected").length, 1);
    assert.equal(calls, 2);
    const ok = results.filter((r) => r.status === "fulfilled").map((r) => r.value.response);
    assert.equal(ok.length, 9);
    for (const r of ok) assert.deepEqual(r, { status: 200, headers: {}, body: "attempt 2" });
  });

  it("the same key with a different request fingerprint is refused (422)", async () => {
    const redis = makeRedis();
    const key = uniq("idem");
    await withIdempotency(redis, key, 60, async () => ({ status: 200, headers: {}, body: "a" }), { fingerprint: "POST /pay amount=10" });
    await assert.rejects(
      withIdempotency(redis, key, 60, async () => assert.fail("must not run"), { fingerprint: "POST /pay amount=99" }),
      IdempotencyMismatchError,
    );
  });

  it("a duplicate gives up with 409 when the first request is still running after waitMs", async () => {
    const redis = makeRedis();
    const key = uniq("idem");
    let release;
    const slow = withIdempotency(redis, key, 60, () => new Promise((r) => (release = r)));
    await sleep(50);
    const err = await withIdempotency(redis, key, 60, async () => assert.fail("must not run"), { waitMs: 150 }).catch((e) => e);
    assert.ok(err instanceof IdempotencyConflictError, `got ${err}`);
    assert.equal(err.status, 409);
    release({ status: 200, headers: {}, body: "done" });
    assert.equal((await slow).response.body, "done");
  });
});
