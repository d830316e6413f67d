// Rate limits per IP, per user and per tenant with @upstash/ratelimit, wrapped for HTTP handlers.
//
//   const limiter = createRateLimiter({
//     redis: Redis.fromEnv(),
//     routes: {
//       // a login form: strict per IP, and refuse everything if the store is unreachable
//       login: { failMode: "closed", limits: { ip: { algorithm: "slidingWindow", limit: 5, window: "1 m" } } },
//       // an API: bursty per user (token bucket), a ceiling per tenant; keep serving on an outage
//       api: {
//         failMode: "open",
//         limits: {
//           user: { algorithm: "tokenBucket", limit: 20, refillRate: 10, interval: "1 s" },
//           tenant: { algorithm: "slidingWindow", limit: 1000, window: "1 m" },
//         },
//       },
//     },
//   });
//   const { allowed, headers } = await limiter.check("api", { ip, user, tenant });
//   if (!allowed) return new Response("Too Many Requests", { status: 429, headers });
//
// Every dimension the route configures and the request carries (an anonymous request has no
// `user`) is checked in parallel; the request is allowed only when all of them allow it. Each
// check consumes from its own budget even when another dimension refuses; that keeps it one
// round trip (auto-pipelined into one POST /pipeline).
//
// The headers describe the binding limit: when allowed, the dimension with the fewest requests
// left; when refused, the refusing dimension that resets last (the earliest moment a retry can
// succeed). `X-RateLimit-Reset` is a Unix time in seconds.
//
// When Redis (restdis) cannot be reached, or does not answer within `timeout` ms, each route
// decides: `failMode: "open"` lets the request through (availability over protection),
// `"closed"` refuses it (protection over availability: logins, password resets, SMS sends).
// The result then has `reason: "unavailable"`, and `error` when the client threw.
import { Ratelimit } from "@upstash/ratelimit";

export const DIMENSIONS = ["ip", "user", "tenant"];

function algorithm(spec) {
  switch (spec.algorithm) {
    case "slidingWindow":
      return Ratelimit.slidingWindow(spec.limit, spec.window);
    case "tokenBucket":
      // a bucket of `limit` tokens, `refillRate` tokens added every `interval`
      return Ratelimit.tokenBucket(spec.refillRate, spec.interval, spec.limit);
    default:
      throw new Error(`unknown algorithm ${spec.algorithm}`);
  }
}

function headersOf(limit, remaining, resetMs) {
  return {
    "X-RateLimit-Limit": String(limit),
    "X-RateLimit-Remaining": String(Math.max(0, remaining)),
    "X-RateLimit-Reset": String(Math.ceil(resetMs / 1000)),
  };
}

/**
 * @param {object} opts
 * @param {import("@upstash/redis").Redis} opts.redis
 * @param {Record<string, {failMode: "open"|"closed", limits: Record<string, object>}>} opts.routes
 * @param {string} [opts.prefix] key prefix (keys are `<prefix>:<route>:<dimension>:<id>...`)
 * @param {number} [opts.timeout] ms to wait for Redis before the route's failMode applies
 * @param {boolean} [opts.ephemeralCache] remember blocked identifiers in process (default true)
 */
export function createRateLimiter({ redis, routes, prefix = "ratelimit", timeout = 1000, ephemeralCache = true }) {
  const compiled = new Map();
  for (const [route, { failMode, limits }] of Object.entries(routes)) {
    if (failMode !== "open" && failMode !== "closed") {
      throw new Error(`route ${route}: failMode must be "open" or "closed"`);
    }
    const checks = [];
    for (const [dimension, spec] of Object.entries(limits)) {
      if (!DIMENSIONS.includes(dimension)) throw new Error(`route ${route}: unknown dimension ${dimension}`);
      checks.push({
        dimension,
        limit: spec.limit,
        ratelimit: new Ratelimit({
          redis,
          limiter: algorithm(spec),
          prefix: `${prefix}:${route}:${dimension}`,
          // the library's own timeout resolves {success: true, reason: "timeout"}; we map that
          // to the route's failMode below
          timeout,
          analytics: false,
          ...(ephemeralCache ? {} : { ephemeralCache: false }),
        }),
      });
    }
    compiled.set(route, { failMode, checks });
  }

  return {
    /**
     * @param {string} route
     * @param {{ip?: string, user?: string, tenant?: string}} who
     * @returns {Promise<{allowed: boolean, headers: Record<string, string>, reason?: string,
     *   dimension?: string, error?: unknown}>}
     */
    async check(route, who) {
      const r = compiled.get(route);
      if (!r) throw new Error(`unknown route ${route}`);
      const active = r.checks.filter((c) => who[c.dimension] != null && who[c.dimension] !== "");
      if (active.length === 0) throw new Error(`route ${route}: the request has none of the limited dimensions`);

      let results;
      let error;
      try {
        results = await Promise.all(active.map((c) => c.ratelimit.limit(String(who[c.dimension]))));
      } catch (e) {
        error = e;
      }
      if (error || results.some((res) => res.reason === "timeout")) {
        const allowed = r.failMode === "open";
        const limit = Math.min(...active.map((c) => c.limit));
        // we do not know what is left: open admits the request uncounted, closed asks for a
        // retry in a second
        const headers = allowed ? headersOf(limit, limit, Date.now()) : headersOf(limit, 0, Date.now() + 1000);
        return { allowed, headers, reason: "unavailable", ...(error ? { error } : {}) };
      }

      const refused = results.map((res, i) => [res, active[i]]).filter(([res]) => !res.success);
      let binding;
      if (refused.length > 0) {
        binding = refused.reduce((a, b) => (b[0].reset > a[0].reset ? b : a));
      } else {
        binding = results.map((res, i) => [res, active[i]]).reduce((a, b) => (b[0].remaining < a[0].remaining ? b : a));
      }
      const [res, c] = binding;
      return {
        allowed: refused.length === 0,
        headers: headersOf(res.limit, res.remaining, res.reset),
        dimension: c.dimension,
        ...(res.reason ? { reason: res.reason } : {}),
      };
    },
  };
}
