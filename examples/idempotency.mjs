// Idempotency keys: a retried request (same `Idempotency-Key` header) gets the first response
// replayed verbatim instead of running the work again (charging a card twice, sending two
// emails).
//
//   const { response, replayed } = await withIdempotency(
//     redis, `idem:${tenant}:${req.headers["idempotency-key"]}`, 86_400,
//     async () => ({ status: 201, headers: { "content-type": "application/json" }, body: JSON.stringify(await charge()) }),
//     { fingerprint: sha256(req.method + req.url + body) },
//   );
//
// How it works, on one key:
//   1. SET key {"state":"pending",owner,...} NX PX lockTtl: exactly one caller wins the claim
//      and runs `work`.
//   2. The winner stores {"state":"done",response} with PX ttl, but only while its own pending
//      marker is still there (a Lua compare-and-set), and returns the response.
//   3. Everyone else (concurrent duplicates, later retries) reads the key: "done" is replayed;
//      "pending" is polled until it is done, or until `waitMs`, then IdempotencyConflictError
//      (answer 409 and let the client retry).
//   4. When `work` throws, the winner deletes its marker (again only its own), so a retry can
//      run the work; the error is not recorded.
//
// `response` must be JSON-serialisable (status, headers, body as a string). The pending marker
// lives `lockTtl` seconds (default: min(ttl, 60)): a crashed winner blocks retries that long, and
// work that outlives it may run twice, so keep it above your request timeout.
import { randomUUID } from "node:crypto";

export class IdempotencyConflictError extends Error {
  constructor(key) {
    super(`request with idempotency key ${key} is still in progress`);
    this.name = "IdempotencyConflictError";
    this.status = 409;
  }
}

export class IdempotencyMismatchError extends Error {
  constructor(key) {
    super(`idempotency key ${key} was used for a different request`);
    this.name = "IdempotencyMismatchError";
    this.status = 422;
  }
}

// KEYS[1] = key, ARGV[1] = our pending marker, ARGV[2] = the done record, ARGV[3] = ttl ms
const COMPLETE = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
  return 1
end
return 0`;

// KEYS[1] = key, ARGV[1] = our pending marker
const RELEASE = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`;

// @upstash/redis parses JSON values by default (automaticDeserialization); accept either form.
const parse = (v) => (v == null ? null : typeof v === "string" ? JSON.parse(v) : v);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ms = (seconds) => Math.max(1, Math.round(seconds * 1000));

/**
 * @template T
 * @param {import("@upstash/redis").Redis} redis
 * @param {string} key
 * @param {number} ttl seconds the recorded response is replayed for
 * @param {() => Promise<T>} work
 * @param {{fingerprint?: string, lockTtl?: number, waitMs?: number, pollMs?: number}} [opts]
 * @returns {Promise<{response: T, replayed: boolean}>}
 */
export async function withIdempotency(redis, key, ttl, work, opts = {}) {
  const { fingerprint = null, lockTtl = Math.min(ttl, 60), waitMs = 10_000, pollMs = 20 } = opts;
  const deadline = Date.now() + waitMs;
  for (;;) {
    // we write the marker as a string, so the Lua scripts can compare it byte for byte
    const marker = JSON.stringify({ state: "pending", owner: randomUUID(), fingerprint });
    if ((await redis.set(key, marker, { nx: true, px: ms(lockTtl) })) === "OK") {
      let response;
      try {
        response = await work();
      } catch (err) {
        await redis.eval(RELEASE, [key], [marker]);
        throw err;
      }
      const done = JSON.stringify({ state: "done", fingerprint, response });
      // 0 means our marker expired while `work` ran; the response is still the right answer
      // for this caller, it just is not recorded
      await redis.eval(COMPLETE, [key], [marker, done, String(ms(ttl))]);
      return { response, replayed: false };
    }

    const record = parse(await redis.get(key));
    if (record === null) continue; // expired or released between our SET and GET: claim again
    if ((record.fingerprint ?? null) !== fingerprint) throw new IdempotencyMismatchError(key);
    if (record.state === "done") return { response: record.response, replayed: true };
    if (Date.now() >= deadline) throw new IdempotencyConflictError(key);
    await sleep(pollMs);
  }
}
