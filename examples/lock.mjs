// A distributed lock with fencing tokens: @upstash/lock for mutual exclusion, an INCR counter
// for the token, and a Lua check on the protected write.
//
//   const locks = createFencedLocks(Redis.fromEnv());
//   const held = await locks.acquire("invoice:42", { lease: 10_000 });
//   if (!held) return busy();
//   try {
//     const total = await computeInvoice();                    // may stall: GC, slow I/O, ...
//     if (!(await locks.write("invoice:42", held.token, total))) throw new Error("lost the lock");
//   } finally {
//     await held.release();
//   }
//
// Why a fence: a lease-based lock cannot stop a holder that stalls past its lease from waking up
// and writing after someone else has taken over. The fencing token (Kleppmann, "How to do
// distributed locking") makes the *storage* refuse it: every acquisition gets a strictly larger
// token, and a write carrying a token smaller than the largest one seen is rejected.
//
// - acquire: `SET <prefix>:lock:<r> <uuid> NX PX lease` (@upstash/lock), then a Lua script that
//   INCRs `<prefix>:fence:<r>` only if the lock still holds our uuid. (A bare INCR after the
//   acquire would let a holder that stalls between the two steps get a *larger* token than the
//   next holder.)
// - write: a Lua script on `<prefix>:data:<r>` (a hash {fence, value}) that stores the value only
//   when the token is >= the stored fence. Here the protected resource lives in Redis; with a
//   database the same check is `UPDATE ... SET value = $1, fence = $2 WHERE id = $3 AND fence <= $2`.
import { randomUUID } from "node:crypto";
import { Lock } from "@upstash/lock";

// KEYS: lock, fence counter. ARGV: our uuid. Returns the new token, or 0 if we do not hold it.
const FENCE = `
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("INCR", KEYS[2]) end
return 0`;

// KEYS: protected data. ARGV: token, value. Returns 1 if written, 0 if the token is stale.
const FENCED_WRITE = `
local last = tonumber(redis.call("HGET", KEYS[1], "fence") or "0")
if tonumber(ARGV[1]) < last then return 0 end
redis.call("HSET", KEYS[1], "fence", ARGV[1], "value", ARGV[2])
return 1`;

/**
 * @param {import("@upstash/redis").Redis} redis
 * @param {{prefix?: string}} [opts]
 */
export function createFencedLocks(redis, { prefix = "locks" } = {}) {
  const lockKey = (r) => `${prefix}:lock:${r}`;
  const fenceKey = (r) => `${prefix}:fence:${r}`;
  const dataKey = (r) => `${prefix}:data:${r}`;
  const fence = redis.createScript(FENCE);
  const fencedWrite = redis.createScript(FENCED_WRITE);

  /** A token for `uuid`, if (and only if) it holds the lock on `resource` right now; else 0. */
  const token = (resource, uuid) => fence.exec([lockKey(resource), fenceKey(resource)], [uuid]);

  return {
    token,

    /**
     * Tries to take the lock. Resolves to null when someone else holds it (after `retry`), or
     * to {token, release(), status()}.
     * @param {string} resource
     * @param {{lease?: number, retry?: {attempts: number, delay: number}}} [opts] lease in ms
     */
    async acquire(resource, { lease = 10_000, retry = { attempts: 1, delay: 50 } } = {}) {
      const lock = new Lock({ id: lockKey(resource), redis, lease, retry });
      const uuid = randomUUID();
      if (!(await lock.acquire({ uuid }))) return null;
      const t = await token(resource, uuid);
      if (!t) return null; // the lease ran out before we got a token
      return {
        token: t,
        /** Releases the lock if we still hold it; resolves to whether we did. */
        release: () => lock.release(),
        /** "ACQUIRED" while we hold it, "FREE" once it expired or was released. */
        status: () => lock.getStatus(),
      };
    },

    /** Stores `value` for `resource` if `token` is not stale. Resolves to whether it did. */
    async write(resource, token, value) {
      return (await fencedWrite.exec([dataKey(resource)], [String(token), String(value)])) === 1;
    },

    /** The protected value and the token that wrote it. */
    async read(resource) {
      const h = await redis.hmget(dataKey(resource), "fence", "value");
      return h?.fence == null ? null : { token: Number(h.fence), value: String(h.value) };
    },
  };
}
