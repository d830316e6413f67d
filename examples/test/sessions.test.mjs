import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createSessionStore } from "../sessions.mjs";
import { makeRedis, sleep, uniq } from "../test-support/helpers.mjs";

describe("sessions", () => {
  it("create and read back, with the TTL set", async () => {
    const redis = makeRedis();
    const prefix = uniq("sess");
    const store = createSessionStore(redis, { prefix, ttl: 3600 });
    const sid = await store.create("user-1", { role: "member", name: "Zoë" });
    assert.match(sid, /^[A-Za-z0-9_-]{43}$/);
    const s = await store.get(sid);
    assert.equal(s.userId, "user-1");
    assert.deepEqual(s.data, { role: "member", name: "Zoë" });
    const pttl = await redis.pttl(`${prefix}:s:${sid}`);
    assert.ok(pttl > 3_590_000 && pttl <= 3_600_000, `pttl ${pttl}`);
    assert.equal(await store.get("not-a-session-id"), null);
    assert.equal(await store.get(sid.replace(/^./, (c) => (c === "A" ? "B" : "A"))), null);
  });

  it("privilege change rotates the id: the old id stops working, the new one has the rights", async () => {
    const redis = makeRedis();
    const prefix = uniq("sess");
    const store = createSessionStore(redis, { prefix, ttl: 3600 });
    const before = await store.create("user-2", { role: "member", theme: "dark" });
    const after = await store.rotate(before, { role: "admin" });
    assert.ok(after && after !== before);
    assert.equal(await store.get(before), null, "the pre-escalation id must be dead");
    const s = await store.get(after);
    assert.equal(s.userId, "user-2");
    assert.deepEqual(s.data, { role: "admin", theme: "dark" });
    assert.deepEqual(await redis.smembers(`${prefix}:u:user-2`), [after]);
    assert.equal(await store.rotate(before, { role: "admin" }), null, "a dead id cannot be rotated");
  });

  it("two concurrent rotations of one session: exactly one wins", async () => {
    const store = createSessionStore(makeRedis(), { prefix: uniq("sess") });
    const sid = await store.create("user-3", { role: "member" });
    const results = await Promise.all([store.rotate(sid, { role: "admin" }), store.rotate(sid, { role: "admin" })]);
    const winners = results.filter(Boolean);
    assert.equal(winners.length, 1);
    assert.ok(await store.get(winners[0]));
  });

  it("server-side revocation is seen by the next request on another app server", async () => {
    const prefix = uniq("sess");
    const serverA = createSessionStore(makeRedis(), { prefix });
    const serverB = createSessionStore(makeRedis({ enableAutoPipelining: false }), { prefix });
    const sid = await serverA.create("user-4", { role: "member" });
    assert.ok(await serverB.get(sid), "B serves the session");
    assert.equal(await serverA.revoke(sid), true);
    assert.equal(await serverB.get(sid), null, "B's next request is refused");
    assert.equal(await serverA.revoke(sid), false);
  });

  it("revokeAll ends every session of one user only", async () => {
    const prefix = uniq("sess");
    const store = createSessionStore(makeRedis(), { prefix });
    const mine = await Promise.all(["laptop", "phone", "tablet"].map((device) => store.create("user-5", { device })));
    const rotated = await store.rotate(mine[0], { role: "admin" });
    const theirs = await store.create("user-6", {});
    assert.equal(await store.revokeAll("user-5"), 3);
    for (const sid of [...mine, rotated]) assert.equal(await store.get(sid), null);
    assert.ok(await store.get(theirs));
    assert.equal(await store.revokeAll("user-5"), 0);
  });

  it("absolute TTL ends a session even while it is used", async () => {
    const store = createSessionStore(makeRedis(), { prefix: uniq("sess"), ttl: 1 });
    const sid = await store.create("user-7");
    await sleep(500);
    assert.ok(await store.get(sid));
    await sleep(700);
    assert.equal(await store.get(sid), null);
  });

  it("rolling TTL: each request extends the session; idle sessions expire", async () => {
    const redis = makeRedis();
    const prefix = uniq("sess");
    const store = createSessionStore(redis, { prefix, ttl: 1, rolling: true });
    const sid = await store.create("user-8");
    // four requests 500 ms apart: the session outlives its 1 s TTL twice over
    for (let i = 0; i < 4; i++) {
      await sleep(500);
      assert.ok(await store.get(sid), `request ${i + 1} at ~${(i + 1) * 500} ms`);
    }
    // the index outlives the session it points to (revokeAll must still find it)
    assert.ok((await redis.pttl(`${prefix}:u:user-8`)) > 800);
    await sleep(1200);
    assert.equal(await store.get(sid), null, "idle for longer than the TTL");
  });
});
