import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createQueue } from "../queue.mjs";
import { makeRedis, sleep, uniq } from "../test-support/helpers.mjs";

async function until(cond, { timeoutMs = 10_000, everyMs = 20, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

describe("job queue (LPUSH / LMOVE / ack / reaper)", () => {
  it("FIFO, ack removes the job, nothing left behind", async () => {
    const redis = makeRedis();
    const q = createQueue(redis, uniq("q"));
    for (const n of [1, 2, 3]) await q.enqueue({ n });
    const w = q.worker();
    const seen = [];
    while (await w.poll(async (job) => seen.push(job.payload.n)));
    assert.deepEqual(seen, [1, 2, 3]);
    assert.deepEqual(await q.stats(), { pending: 0, dead: 0, processing: 0, workers: 1 });
    assert.equal(await redis.hlen(q.keys.jobs), 0);
    assert.equal(await redis.hlen(q.keys.attempts), 0);
  });

  it("a worker crashes mid-job: the reaper re-queues it, another worker processes it, no job lost", async () => {
    const redis = makeRedis();
    const q = createQueue(redis, uniq("q"), { lease: 1000 });
    const ids = [];
    for (let n = 0; n < 10; n++) ids.push(await q.enqueue({ n }));

    const done = new Map(); // job id -> [{worker, attempts}]
    const record = (worker, job) => done.set(job.id, [...(done.get(job.id) ?? []), { worker, attempts: job.attempts }]);

    // worker A handles jobs until it gets n = 3, then "dies" holding it
    const a = q.worker({ id: "A" });
    let crashedOn;
    a.start(async (job) => {
      if (job.payload.n === 3) {
        crashedOn = job.id;
        a.kill();
        return new Promise(() => {}); // never finishes, never acked
      }
      record("A", job);
    });
    await until(() => crashedOn !== undefined, { what: "A to crash" });
    assert.equal(await redis.lrange(q.keys.processing("A"), 0, -1).then((l) => l.length), 1);

    // worker B takes over the rest; the reaper runs periodically
    const b = q.worker({ id: "B" });
    b.start(async (job) => {
      await sleep(5);
      record("B", job);
    });
    let reaped = 0;
    const reaper = setInterval(async () => (reaped += await q.reap()), 100);
    try {
      await until(async () => done.size === 10 && (await q.stats()).pending === 0, { what: "all 10 jobs" });
    } finally {
      clearInterval(reaper);
      await b.stop();
    }

    assert.equal(reaped, 1, "exactly A's job was re-queued");
    assert.deepEqual([...done.keys()].sort(), [...ids].sort(), "every job was processed");
    assert.deepEqual(done.get(crashedOn), [{ worker: "B", attempts: 2 }], "the crashed job ran again, on B");
    for (const id of ids) if (id !== crashedOn) assert.equal(done.get(id).length, 1, "other jobs ran once");
    assert.deepEqual(await q.stats(), { pending: 0, dead: 0, processing: 0, workers: 1 });
    assert.deepEqual((await redis.smembers(q.keys.workers)).map(String), ["B"], "A was removed");
    assert.equal(await redis.hlen(q.keys.jobs), 0);
  });

  it("the reaper leaves a live worker's long job alone (heartbeats keep its lease)", async () => {
    const q = createQueue(makeRedis(), uniq("q"), { lease: 500 });
    await q.enqueue({ slow: true });
    const w = q.worker();
    let runs = 0;
    const job = w.poll(async () => {
      runs++;
      await sleep(1500); // three leases
    });
    let reaped = 0;
    for (let i = 0; i < 15; i++) {
      await sleep(100);
      reaped += await q.reap();
    }
    assert.equal(await job, true);
    assert.equal(reaped, 0);
    assert.equal(runs, 1);
    // The worker itself may be gone: on a loaded machine the reap loop can outlast the job by
    // more than a lease, and a worker whose heartbeat stopped is rightly removed. Its job was not.
    const { pending, dead, processing } = await q.stats();
    assert.deepEqual({ pending, dead, processing }, { pending: 0, dead: 0, processing: 0 });
  });

  it("a failing job goes back to the front and is retried; after maxAttempts it is dead-lettered", async () => {
    const redis = makeRedis();
    const errors = [];
    const q = createQueue(redis, uniq("q"), { maxAttempts: 3, onError: (e) => errors.push(e.message) });
    const poison = await q.enqueue({ poison: true });
    await q.enqueue({ ok: true });
    const w = q.worker();
    const log = [];
    while (
      await w.poll(async (job) => {
        log.push(`${job.payload.poison ? "poison" : "ok"}#${job.attempts}`);
        if (job.payload.poison) throw new Error("boom");
      })
    );
    // retried first (front of the queue), then given up on
    assert.deepEqual(log, ["poison#1", "poison#2", "poison#3", "ok#1"]);
    assert.deepEqual(errors, ["boom", "boom", "boom"]);
    assert.deepEqual(await redis.lrange(q.keys.dead, 0, -1), [poison]);
    assert.ok(await redis.hget(q.keys.jobs, poison), "dead job's payload kept");
    const stats = await q.stats();
    assert.equal(stats.pending + stats.processing, 0);
  });

  it("concurrent workers: every job exactly once when nobody crashes", async () => {
    const q = createQueue(makeRedis(), uniq("q"));
    const ids = await Promise.all(Array.from({ length: 40 }, (_, n) => q.enqueue({ n })));
    const counts = new Map();
    const workers = Array.from({ length: 4 }, () => q.worker({ pollMs: 10 }));
    for (const w of workers) w.start(async (job) => counts.set(job.id, (counts.get(job.id) ?? 0) + 1));
    await until(() => counts.size === 40, { what: "40 jobs" });
    await Promise.all(workers.map((w) => w.stop()));
    assert.deepEqual([...counts.keys()].sort(), [...ids].sort());
    assert.ok([...counts.values()].every((c) => c === 1));
  });
});
