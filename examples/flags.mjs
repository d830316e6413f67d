// Feature flags and kill switches in one Redis hash, read on every request.
//
//   const flags = createFlags(Redis.fromEnv(), { key: "flags:shop", defaults: { "new-checkout": false } });
//
//   // per request: one HGETALL, then any number of checks
//   const f = await flags.load();
//   if (f.isEnabled("new-checkout", { user: req.user.id })) { ... }
//
//   // a route that operators can switch off without a deploy
//   app.post("/checkout", killSwitch(flags, "checkout", handler));
//
//   // operators (or an admin endpoint): HSET flags:shop new-checkout on | off | 25%
//   await flags.set("new-checkout", "25%");
//   await flags.set("kill:checkout", "on");
//
// Values: "on"/"true"/"1" and "off"/"false"/"0", or "<N>%" for a gradual rollout: a user is in
// when a hash of (flag, user) falls below N, so the same user always gets the same answer and
// raising N only adds users. No caching: a change is seen by the very next request (an in-process
// cache of a second or two is an easy addition if one HGETALL per request is too many).
//
// When Redis cannot be reached, `load()` evaluates `defaults` (every flag not listed is off, so
// kill switches fail open, features fail closed) and reports the error through `onError`.
import { createHash } from "node:crypto";

function bucketOf(flag, user) {
  return createHash("sha256").update(`${flag}\0${user}`).digest().readUInt32BE(0) % 100;
}

function evaluate(name, value, user) {
  // @upstash/redis parses "1" to 1 and "true" to true by default; compare as strings
  const v = String(value).trim().toLowerCase();
  if (v === "on" || v === "true" || v === "1") return true;
  if (v === "off" || v === "false" || v === "0") return false;
  const pct = /^(\d{1,3})%$/.exec(v);
  if (pct) return user != null && bucketOf(name, String(user)) < Number(pct[1]);
  return false; // unknown value: off
}

/**
 * @param {import("@upstash/redis").Redis} redis
 * @param {{key?: string, defaults?: Record<string, boolean|string>, onError?: (err: unknown) => void}} [opts]
 */
export function createFlags(redis, { key = "flags", defaults = {}, onError = () => {} } = {}) {
  return {
    /** Reads all flags (one HGETALL) and returns an evaluator for this request. */
    async load() {
      let values;
      try {
        values = { ...defaults, ...((await redis.hgetall(key)) ?? {}) };
      } catch (err) {
        onError(err);
        values = { ...defaults };
      }
      return {
        values,
        /** @param {{user?: string}} [ctx] the user, for percentage rollouts */
        isEnabled(name, ctx = {}) {
          return name in values ? evaluate(name, values[name], ctx.user) : false;
        },
      };
    },

    /** One flag, read now (HGET). */
    async isEnabled(name, ctx = {}) {
      const value = await redis.hget(key, name);
      return evaluate(name, value ?? defaults[name] ?? "off", ctx.user);
    },

    async set(name, value) {
      await redis.hset(key, { [name]: String(value) });
    },

    async remove(name) {
      await redis.hdel(key, name);
    },
  };
}

/**
 * Wraps a handler so that setting flag `kill:<name>` to "on" makes it answer 503 at once.
 * The handler gets the request and the loaded flags.
 */
export function killSwitch(flags, name, handler) {
  return async (req) => {
    const f = await flags.load();
    if (f.isEnabled(`kill:${name}`)) {
      return { status: 503, headers: { "retry-after": "30" }, body: `${name} is temporarily disabled` };
    }
    return handler(req, f);
  };
}
