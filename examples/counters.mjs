// Usage counters per tenant and route in time buckets, rolled up into daily summaries (metering,
// billing, "top routes" dashboards).
//
//   const counters = createCounters(Redis.fromEnv());               // one-minute buckets
//   await counters.hit(tenant, "GET /orders");                      // per request
//   setInterval(() => counters.flush(), 60_000);                    // anyone, periodically
//   await counters.summary(tenant, "2024-05-01");                   // { "GET /orders": 1234, ... }
//
// hit():   HINCRBY <prefix>:<tenant>:<bucket> <route> n    (bucket = start of the minute, epoch ms)
//          PEXPIRE the bucket (`retention`: if no flush runs, data expires instead of piling up)
//          ZADD NX <prefix>:open <bucket> [tenant, bucket]  (the index of buckets not yet flushed)
//          in one MULTI, so one round trip.
// flush(): for every indexed bucket that has closed (started before the current one), a Lua
//          script adds its fields into <prefix>:<tenant>:day:<YYYY-MM-DD> (UTC), then deletes the
//          bucket and its index entry: atomic, so concurrent flushers never count a bucket twice.
//          A late hit for an already flushed bucket (a server with a slow clock) recreates the
//          bucket and its index entry, and the next flush adds it: nothing is lost.
//
// `now` is injectable for tests and replays.

// KEYS: bucket, day summary, open index. ARGV: index member, summary ttl (s)
// Returns 0 when another flusher got there first.
const FLUSH = `
if redis.call("ZREM", KEYS[3], ARGV[1]) == 0 then return 0 end
local kv = redis.call("HGETALL", KEYS[1])
for i = 1, #kv, 2 do redis.call("HINCRBY", KEYS[2], kv[i], kv[i + 1]) end
redis.call("DEL", KEYS[1])
redis.call("EXPIRE", KEYS[2], ARGV[2])
return 1`;

const parse = (v) => (typeof v === "string" ? JSON.parse(v) : v);

/**
 * @param {import("@upstash/redis").Redis} redis
 * @param {{prefix?: string, bucketMs?: number, retention?: number, summaryTtl?: number,
 *   now?: () => number}} [opts] retention and summaryTtl in seconds
 */
export function createCounters(
  redis,
  { prefix = "counters", bucketMs = 60_000, retention = 86_400, summaryTtl = 400 * 86_400, now = Date.now } = {},
) {
  if (86_400_000 % bucketMs !== 0) throw new Error("bucketMs must divide a day");
  const bucketOf = (t) => Math.floor(t / bucketMs) * bucketMs;
  const bucketKey = (tenant, bucket) => `${prefix}:${tenant}:${bucket}`;
  const dayKey = (tenant, day) => `${prefix}:${tenant}:day:${day}`;
  const dayOf = (bucket) => new Date(bucket).toISOString().slice(0, 10);
  const openKey = `${prefix}:open`;

  return {
    bucketOf,

    /** Counts `n` requests for (tenant, route) in the current bucket. */
    async hit(tenant, route, n = 1) {
      const bucket = bucketOf(now());
      const key = bucketKey(tenant, bucket);
      await redis
        .multi()
        .hincrby(key, route, n)
        .pexpire(key, retention * 1000)
        .zadd(openKey, { nx: true }, { score: bucket, member: JSON.stringify([tenant, bucket]) })
        .exec();
    },

    /** Rolls every closed bucket into its day summary. Returns the buckets flushed. */
    async flush() {
      const current = bucketOf(now());
      const members = await redis.zrange(openKey, "-inf", `(${current}`, { byScore: true });
      let flushed = 0;
      for (const m of members) {
        const [tenant, bucket] = parse(m);
        const keys = [bucketKey(tenant, bucket), dayKey(tenant, dayOf(bucket)), openKey];
        flushed += await redis.eval(FLUSH, keys, [JSON.stringify([tenant, bucket]), String(summaryTtl)]);
      }
      return flushed;
    },

    /** Counts in the bucket open now (not yet in any summary). */
    async current(tenant) {
      return numbers(await redis.hgetall(bucketKey(tenant, bucketOf(now()))));
    },

    /** Flushed totals of a UTC day, "YYYY-MM-DD". */
    async summary(tenant, day) {
      return numbers(await redis.hgetall(dayKey(tenant, day)));
    },
  };
}

function numbers(h) {
  return Object.fromEntries(Object.entries(h ?? {}).map(([k, v]) => [k, Number(v)]));
}
