// PUBLISH, and redis.subscribe / redis.psubscribe (SSE on /subscribe and /psubscribe).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { makeRedis, uniq } from "./helpers.mjs";

/** Resolves with the first event `type` the subscriber emits, or rejects after `ms`. */
function nextEvent(subscriber, type, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${type}" event within ${ms} ms`)), ms);
    subscriber.on(type, (data) => {
      clearTimeout(timer);
      resolve(data);
    });
    subscriber.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Publishes until `received` settles (the subscription may take a moment to be live). */
async function publishUntil(redis, channel, message, received, ms = 5000) {
  let done = false;
  received.then(
    () => (done = true),
    () => (done = true),
  );
  const deadline = Date.now() + ms;
  let receivers = 0;
  while (!done && Date.now() < deadline) {
    receivers = Math.max(receivers, await redis.publish(channel, message));
    await new Promise((r) => setTimeout(r, 50));
  }
  return receivers;
}

describe("pub/sub", () => {
  const redis = makeRedis({ enableAutoPipelining: false });

  // The SSE routes are a separate server feature. When the server answers them with an explicit
  // "not available in this version" error, the subscribe tests are reported as skipped (visible in
  // the summary and listed in DIFFERENCES.md); any other failure fails them.
  let sseMissing = "";
  before(async () => {
    const probe = redis.subscribe(uniq("probe"));
    try {
      await nextEvent(probe, "subscribe");
    } catch (e) {
      if (/not available in this version/i.test(String(e?.message))) {
        sseMissing = `server has no SSE /subscribe yet: ${e.message.split(", command was")[0]}`;
      }
    } finally {
      await probe.unsubscribe();
    }
  });

  it("publish returns the number of receivers", async () => {
    assert.equal(await redis.publish(uniq("chan"), "nobody listens"), 0);
  });

  it("subscribe: subscribe event with count 1, then messages", async (t) => {
    if (sseMissing) return t.skip(sseMissing);
    const channel = uniq("chan");
    const sub = redis.subscribe(channel);
    try {
      const count = await nextEvent(sub, "subscribe");
      assert.equal(count, 1);
      const got = nextEvent(sub, "message");
      const receivers = await publishUntil(redis, channel, { hello: "world", n: 1 }, got);
      const msg = await got;
      assert.equal(msg.channel, channel);
      assert.deepEqual(msg.message, { hello: "world", n: 1 });
      assert.ok(receivers >= 1);
    } finally {
      await sub.unsubscribe();
    }
  });

  it("messages keep commas and unicode", async (t) => {
    if (sseMissing) return t.skip(sseMissing);
    const channel = uniq("chan");
    const sub = redis.subscribe(channel);
    try {
      await nextEvent(sub, "subscribe");
      const got = nextEvent(sub, "message");
      await publishUntil(redis, channel, "a,b,c 🚀", got);
      assert.equal((await got).message, "a,b,c 🚀");
    } finally {
      await sub.unsubscribe();
    }
  });

  it("psubscribe receives pmessage with pattern and channel", async (t) => {
    if (sseMissing) return t.skip(sseMissing);
    const prefix = uniq("pchan");
    const sub = redis.psubscribe(`${prefix}:*`);
    try {
      assert.equal(await nextEvent(sub, "psubscribe"), 1);
      const got = nextEvent(sub, "pmessage");
      await publishUntil(redis, `${prefix}:room1`, { text: "hi" }, got);
      const msg = await got;
      assert.equal(msg.pattern, `${prefix}:*`);
      assert.equal(msg.channel, `${prefix}:room1`);
      assert.deepEqual(msg.message, { text: "hi" });
    } finally {
      await sub.unsubscribe();
    }
  });

  it("two subscribers each see count 1 (one Redis connection per stream)", async (t) => {
    if (sseMissing) return t.skip(sseMissing);
    const channel = uniq("chan");
    const a = redis.subscribe(channel);
    const b = redis.subscribe(channel);
    try {
      const [ca, cb] = await Promise.all([nextEvent(a, "subscribe"), nextEvent(b, "subscribe")]);
      assert.deepEqual([ca, cb], [1, 1]);
      const gotA = nextEvent(a, "message");
      const gotB = nextEvent(b, "message");
      const both = Promise.all([gotA, gotB]);
      await publishUntil(redis, channel, "fan-out", both);
      assert.deepEqual(
        (await both).map((m) => m.message),
        ["fan-out", "fan-out"],
      );
    } finally {
      await a.unsubscribe();
      await b.unsubscribe();
    }
  });
});
