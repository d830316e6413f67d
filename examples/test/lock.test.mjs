import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { createFencedLocks } from "../lock.mjs";
import { makeRedis, sleep, uniq } from "../test-support/helpers.mjs";

describe("lock with fencing token", () => {
  it("holder A stalls past its lease, B takes over with a higher token, A's late write is rejected", async () => {
    const prefix = uniq("locks");
    // A and B are two processes with their own clients
    const a = createFencedLocks(makeRedis(), { prefix });
    const b = createFencedLocks(makeRedis({ enableAutoPipelining: false }), { prefix });

    const heldA = await a.acquire("invoice:42", { lease: 800 });
    assert.ok(heldA, "A acquires");
    assert.ok(await a.write("invoice:42", heldA.token, "A: draft"), "A writes while it holds the lock");
    assert.equal(await b.acquire("invoice:42", { lease: 5_000 }), null, "B is locked out while A's lease runs");

    await sleep(1000); // A stalls (GC pause, slow call) past its 800 ms lease

    const heldB = await b.acquire("invoice:42", { lease: 5_000, retry: { attempts: 20, delay: 50 } });
    assert.ok(heldB, "B acquires after A's lease expired");
    assert.ok(heldB.token > heldA.token, `B's token ${heldB.token} > A's ${heldA.token}`);
    assert.ok(await b.write("invoice:42", heldB.token, "B: final"));

    // A wakes up and, not knowing it lost the lock, writes: rejected by the fence
    assert.equal(await a.write("invoice:42", heldA.token, "A: late overwrite"), false);
    assert.deepEqual(await a.read("invoice:42"), { token: heldB.token, value: "B: final" });

    // A cannot release B's lock either
    assert.equal(await heldA.status(), "FREE");
    assert.equal(await heldA.release(), false);
    assert.equal(await heldB.status(), "ACQUIRED");
    assert.equal(await heldB.release(), true);
  });

  it("a uuid that does not hold the lock gets no token (stall between acquire and fence)", async () => {
    const prefix = uniq("locks");
    const locks = createFencedLocks(makeRedis(), { prefix });
    const redis = makeRedis();
    // someone holds the lock
    const held = await locks.acquire("r", { lease: 5_000 });
    // a process whose SET NX succeeded earlier but whose lease ran out before it asked for a token
    assert.equal(await locks.token("r", randomUUID()), 0);
    // the counter did not move for it
    assert.equal(Number(await redis.get(`${prefix}:fence:r`)), held.token);
    await held.release();
    assert.equal(await locks.token("r", randomUUID()), 0, "nor when the lock is free");
  });

  it("tokens strictly increase across holders; equal token may write again", async () => {
    const locks = createFencedLocks(makeRedis(), { prefix: uniq("locks") });
    const tokens = [];
    for (let i = 0; i < 5; i++) {
      const held = await locks.acquire("r");
      tokens.push(held.token);
      assert.ok(await locks.write("r", held.token, `v${i}`));
      assert.ok(await locks.write("r", held.token, `v${i}'`), "the current holder writes twice");
      await held.release();
    }
    for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i] > tokens[i - 1], `tokens ${tokens}`);
    assert.equal(await locks.write("r", tokens[2], "old"), false);
    assert.deepEqual(await locks.read("r"), { token: tokens[4], value: "v4'" });
  });

  it("20 concurrent acquirers: exactly one holds it", async () => {
    const prefix = uniq("locks");
    const clients = Array.from({ length: 4 }, () => createFencedLocks(makeRedis(), { prefix }));
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => clients[i % 4].acquire("r")));
    const winners = results.filter(Boolean);
    assert.equal(winners.length, 1);
    assert.equal(winners[0].token, 1);
    await winners[0].release();
  });
});
