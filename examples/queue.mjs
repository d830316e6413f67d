// A small reliable job queue: at-least-once delivery, no job lost when a worker dies mid-job.
//
//   const q = createQueue(Redis.fromEnv(), "emails", { lease: 30_000 });
//   await q.enqueue({ to: "a@example.com", template: "welcome" });      // producer
//
//   const worker = q.worker();                                          // each worker process
//   worker.start(async (job) => sendEmail(job.payload));                // acked when it resolves
//
//   setInterval(() => q.reap(), 10_000);                                // anyone, periodically
//
// Keys, all under `q:<name>`:
//   :pending               list of job ids; producers LPUSH, workers take from the right (FIFO)
//   :jobs / :attempts      hashes id -> payload (JSON) / delivery count
//   :processing:<worker>   list of the ids a worker holds; `LMOVE pending processing` takes a
//                          job atomically, so at every moment each id is in exactly one list
//   :workers, :alive:<w>   set of worker ids; a heartbeat key per worker with a `lease` PX,
//                          refreshed on every poll and every lease/3 while a job runs
//   :dead                  ids that failed `maxAttempts` times (payload kept for inspection)
//
// A job is acked (Lua: LREM from the worker's processing list, then drop its payload) when the
// handler resolves, and put back at the front of the queue when it throws. A worker that dies
// stops heartbeating; `reap()` finds workers whose heartbeat expired and moves everything in their
// processing lists back to the front of the queue (Lua, so it cannot race a worker coming back).
// A job may therefore run more than once (a crash after the work but before the ack, or a worker
// stalled past its lease): make handlers idempotent (see idempotency.mjs).
import { randomUUID } from "node:crypto";

const parse = (v) => (v == null ? null : typeof v === "string" ? JSON.parse(v) : v);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// KEYS: processing, jobs, attempts. ARGV: id
const ACK = `
if redis.call("LREM", KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call("HDEL", KEYS[2], ARGV[1])
redis.call("HDEL", KEYS[3], ARGV[1])
return 1`;

// KEYS: processing, target list. ARGV: id, "front" (RPUSH: next to be taken) | "dead" (LPUSH)
const MOVE = `
if redis.call("LREM", KEYS[1], 1, ARGV[1]) == 0 then return 0 end
if ARGV[2] == "front" then redis.call("RPUSH", KEYS[2], ARGV[1]) else redis.call("LPUSH", KEYS[2], ARGV[1]) end
return 1`;

// KEYS: alive, processing, pending, workers. ARGV: worker id
const REAP = `
if redis.call("EXISTS", KEYS[1]) == 1 then return -1 end
local n = 0
while redis.call("LMOVE", KEYS[2], KEYS[3], "LEFT", "RIGHT") do n = n + 1 end
redis.call("SREM", KEYS[4], ARGV[1])
return n`;

/**
 * @param {import("@upstash/redis").Redis} redis
 * @param {string} name
 * @param {{lease?: number, maxAttempts?: number, onError?: (err: unknown) => void}} [opts]
 *   lease: ms without a heartbeat after which a worker counts as dead
 */
export function createQueue(redis, name, { lease = 30_000, maxAttempts = 5, onError = () => {} } = {}) {
  const p = `q:${name}`;
  const keys = {
    pending: `${p}:pending`,
    jobs: `${p}:jobs`,
    attempts: `${p}:attempts`,
    workers: `${p}:workers`,
    dead: `${p}:dead`,
    processing: (w) => `${p}:processing:${w}`,
    alive: (w) => `${p}:alive:${w}`,
  };

  return {
    keys,

    /** Adds a job; returns its id. */
    async enqueue(payload) {
      const id = randomUUID();
      await redis.multi().hset(keys.jobs, { [id]: JSON.stringify(payload) }).lpush(keys.pending, id).exec();
      return id;
    },

    /** Re-queues the jobs of workers whose heartbeat expired. Returns how many jobs moved. */
    async reap() {
      let moved = 0;
      for (const w of await redis.smembers(keys.workers)) {
        const n = await redis.eval(REAP, [keys.alive(w), keys.processing(w), keys.pending, keys.workers], [String(w)]);
        if (n > 0) moved += n;
      }
      return moved;
    },

    async stats() {
      const workers = (await redis.smembers(keys.workers)).map(String);
      const [pending, dead, ...processing] = await Promise.all([
        redis.llen(keys.pending),
        redis.llen(keys.dead),
        ...workers.map((w) => redis.llen(keys.processing(w))),
      ]);
      return { pending, dead, processing: processing.reduce((a, b) => a + b, 0), workers: workers.length };
    },

    /** A worker. `id` must be unique per running worker. */
    worker({ id = randomUUID(), pollMs = 50 } = {}) {
      const processing = keys.processing(id);
      const heartbeats = new Set();
      let running = false;
      let dead = false;
      let loop;

      const heartbeat = () => redis.multi().sadd(keys.workers, id).set(keys.alive(id), "1", { px: lease }).exec();

      async function poll(handler) {
        if (dead) return false;
        await heartbeat(); // registered and alive before we hold anything
        const jobId = await redis.lmove(keys.pending, processing, "right", "left");
        if (jobId == null) return false;
        const [raw, attempts] = await redis.multi().hget(keys.jobs, jobId).hincrby(keys.attempts, jobId, 1).exec();
        if (attempts > maxAttempts) {
          await redis.eval(MOVE, [processing, keys.dead], [jobId, "dead"]);
          return true;
        }
        const hb = setInterval(() => heartbeat().catch(onError), Math.max(10, Math.floor(lease / 3)));
        heartbeats.add(hb);
        try {
          await handler({ id: jobId, payload: parse(raw), attempts });
        } catch (err) {
          onError(err);
          if (!dead) await redis.eval(MOVE, [processing, keys.pending], [jobId, "front"]);
          return true;
        } finally {
          clearInterval(hb);
          heartbeats.delete(hb);
        }
        if (!dead) await redis.eval(ACK, [processing, keys.jobs, keys.attempts], [jobId]);
        return true;
      }

      return {
        id,
        /** Takes and handles at most one job; resolves to whether there was one. */
        poll,
        /** Polls until stop(): back to back while there is work, every pollMs when idle. */
        start(handler) {
          running = true;
          loop = (async () => {
            while (running && !dead) {
              let got = false;
              try {
                got = await poll(handler);
              } catch (err) {
                onError(err);
              }
              if (!got && running) await sleep(pollMs);
            }
          })();
        },
        /** Finishes the current job, then stops polling. */
        async stop() {
          running = false;
          await loop;
        },
        /** Simulates `kill -9`: heartbeats stop and the job in hand is never acked. */
        kill() {
          dead = true;
          running = false;
          for (const hb of heartbeats) clearInterval(hb);
          heartbeats.clear();
        },
      };
    },
  };
}
