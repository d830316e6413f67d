// Cache-aside with stale-while-revalidate.
//
//   const cache = createCache(Redis.fromEnv(), { prefix: "cache" });
//   const product = await cache.getOrSet(`product:${id}`, 60, () => db.product(id), { staleWhileRevalidate: 300 });
//
// An entry is fresh for `ttl` seconds, then stale for `staleWhileRevalidate` more seconds, then
// gone. Freshness is read from Redis's own clock (the key lives ttl + staleWhileRevalidate and is
// stale once its PTTL drops to staleWhileRevalidate or below), so app servers with skewed clocks
// agree.
//   - fresh: returned.
//   - stale: returned at once; one refresh runs in the background. "One" across all processes:
//     the refresher is whoever wins `SET <prefix>:lock:<key> NX PX lockTtl`; the others just
//     serve the stale value. A failed refresh keeps the stale value and frees the lock, so the
//     next reader retries.
//   - missing: the caller waits for `loader`. Concurrent misses in one process share one load;
//     across processes each may load once (use a longer staleWhileRevalidate to make misses rare).
//
// Values go through JSON. `settled()` resolves when background refreshes are done (for graceful
// shutdown, and serverless handlers that must not return with work pending; like ratelimit's
// `pending`).
import { randomUUID } from "node:crypto";

const parse = (v) => (v == null ? null : typeof v === "string" ? JSON.parse(v) : v);
const ms = (seconds) => Math.max(1, Math.round(seconds * 1000));

/**
 * @param {import("@upstash/redis").Redis} redis
 * @param {{prefix?: string, lockTtl?: number, onError?: (err: unknown, key: string) => void}} [opts]
 *   lockTtl: seconds a refresh may take before another process may start one (default 30)
 */
export function createCache(redis, { prefix = "cache", lockTtl = 30, onError = () => {} } = {}) {
  const refreshes = new Set();
  const loading = new Map(); // key -> promise of a load for a miss, in this process

  const valueKey = (key) => `${prefix}:val:${key}`;
  const lockKey = (key) => `${prefix}:lock:${key}`;

  async function store(key, value, ttl, swr) {
    await redis.set(valueKey(key), JSON.stringify({ v: value ?? null }), { px: ms(ttl) + (swr > 0 ? ms(swr) : 0) });
  }

  function refresh(key, ttl, swr, loader) {
    const p = (async () => {
      const owner = randomUUID();
      if ((await redis.set(lockKey(key), owner, { nx: true, px: ms(lockTtl) })) !== "OK") return;
      try {
        await store(key, await loader(), ttl, swr);
      } catch (err) {
        onError(err, key);
      } finally {
        // free the lock only if it is still ours (a slow refresh may have outlived lockTtl)
        await redis
          .eval('if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0', [lockKey(key)], [owner])
          .catch((err) => onError(err, key));
      }
    })().catch((err) => onError(err, key));
    refreshes.add(p);
    p.finally(() => refreshes.delete(p));
  }

  return {
    /**
     * @template T
     * @param {string} key
     * @param {number} ttl seconds the value is fresh
     * @param {() => Promise<T>} loader
     * @param {{staleWhileRevalidate?: number}} [opts] seconds a stale value may still be served
     * @returns {Promise<T>}
     */
    async getOrSet(key, ttl, loader, { staleWhileRevalidate = 0 } = {}) {
      const swr = staleWhileRevalidate;
      // one round trip, atomic: the value and how long it has left
      const [raw, pttl] = await redis.multi().get(valueKey(key)).pttl(valueKey(key)).exec();
      const entry = parse(raw);
      if (entry !== null) {
        if (swr > 0 && pttl >= 0 && pttl <= ms(swr)) refresh(key, ttl, swr, loader);
        return entry.v;
      }
      let load = loading.get(key);
      if (!load) {
        load = (async () => {
          const value = await loader();
          await store(key, value, ttl, swr);
          return value ?? null;
        })().finally(() => loading.delete(key));
        loading.set(key, load);
      }
      return load;
    },

    /** Drop a key (after a write to the source of truth). */
    async invalidate(key) {
      await redis.del(valueKey(key));
    },

    /** Resolves when the background refreshes started so far have finished. */
    async settled() {
      while (refreshes.size > 0) await Promise.allSettled([...refreshes]);
    },
  };
}
