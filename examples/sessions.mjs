// Server-side sessions: an opaque id in the cookie, the session in Redis.
//
//   const sessions = createSessionStore(Redis.fromEnv(), { ttl: 7 * 86_400 });
//   const sid = await sessions.create(user.id, { role: "member" });          // on login
//   const s = await sessions.get(cookie.sid);  if (!s) return redirectToLogin();  // every request
//   const newSid = await sessions.rotate(cookie.sid, { role: "admin" });     // on sudo / role change
//   await sessions.revoke(sid);  await sessions.revokeAll(user.id);          // logout, "log out everywhere"
//
// - Session ids are 256 random bits (base64url). The record {userId, data, createdAt} lives at
//   `<prefix>:s:<id>` with a TTL: absolute by default, or sliding (`rolling: true`, each `get`
//   resets it with GETEX).
// - `rotate` issues a new id whenever privileges change (session fixation: an id planted or
//   leaked before the change must not carry the new rights) and deletes the old one in the same
//   Lua script, which refuses to rotate a session that was already revoked or rotated.
// - Revocation is a DEL, and every request reads Redis, so the next request on any server sees
//   it. `revokeAll` uses the per-user index set `<prefix>:u:<userId>`; the set expires with the
//   user's newest session, and ids of sessions that already expired in it are harmless.
import { randomBytes } from "node:crypto";

const parse = (v) => (v == null ? null : typeof v === "string" ? JSON.parse(v) : v);

// KEYS[1] old session, KEYS[2] new session, KEYS[3] user index
// ARGV[1] new record, ARGV[2] ttl ms, ARGV[3] old id, ARGV[4] new id
const ROTATE = `
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
redis.call("SET", KEYS[2], ARGV[1], "PX", ARGV[2])
redis.call("DEL", KEYS[1])
redis.call("SREM", KEYS[3], ARGV[3])
redis.call("SADD", KEYS[3], ARGV[4])
redis.call("PEXPIRE", KEYS[3], ARGV[2])
return 1`;

/**
 * @param {import("@upstash/redis").Redis} redis
 * @param {{prefix?: string, ttl?: number, rolling?: boolean}} [opts] ttl in seconds
 */
export function createSessionStore(redis, { prefix = "sess", ttl = 86_400, rolling = false } = {}) {
  const ttlMs = Math.round(ttl * 1000);
  const sKey = (id) => `${prefix}:s:${id}`;
  const uKey = (userId) => `${prefix}:u:${userId}`;
  const newId = () => randomBytes(32).toString("base64url");
  const valid = (id) => typeof id === "string" && /^[A-Za-z0-9_-]{43}$/.test(id);

  return {
    /** Starts a session for `userId`; returns its id (put it in an HttpOnly, Secure cookie). */
    async create(userId, data = {}) {
      const id = newId();
      const record = JSON.stringify({ userId, data, createdAt: Date.now() });
      await redis
        .multi()
        .set(sKey(id), record, { px: ttlMs })
        .sadd(uKey(userId), id)
        .pexpire(uKey(userId), ttlMs)
        .exec();
      return id;
    },

    /** The session for a cookie value, or null (unknown, expired, revoked or rotated). */
    async get(id) {
      if (!valid(id)) return null; // never send attacker-chosen junk to Redis
      const record = parse(rolling ? await redis.getex(sKey(id), { px: ttlMs }) : await redis.get(sKey(id)));
      if (record && rolling) await redis.pexpire(uKey(record.userId), ttlMs);
      return record;
    },

    /**
     * Replaces session `id` with a new id whose data is `{...old.data, ...patch}`, and deletes
     * the old one. Returns the new id, or null when `id` is no longer a live session.
     */
    async rotate(id, patch = {}) {
      if (!valid(id)) return null;
      const old = parse(await redis.get(sKey(id)));
      if (!old) return null;
      const id2 = newId();
      const record = JSON.stringify({ userId: old.userId, data: { ...old.data, ...patch }, createdAt: Date.now() });
      const ok = await redis.eval(ROTATE, [sKey(id), sKey(id2), uKey(old.userId)], [record, String(ttlMs), id, id2]);
      return ok === 1 ? id2 : null;
    },

    /** Ends one session (logout). Returns whether it existed. */
    async revoke(id) {
      if (!valid(id)) return false;
      const old = parse(await redis.getdel(sKey(id)));
      if (!old) return false;
      await redis.srem(uKey(old.userId), id);
      return true;
    },

    /** Ends every session of a user ("log out everywhere", password change). Returns how many. */
    async revokeAll(userId) {
      const ids = await redis.smembers(uKey(userId));
      if (ids.length === 0) return 0;
      const [deleted] = await redis
        .multi()
        .del(...ids.map((id) => sKey(String(id))))
        .srem(uKey(userId), ...ids)
        .exec();
      return deleted;
    },
  };
}
