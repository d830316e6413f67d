// Upstash-only features that plain Redis cannot provide. restdis passes them through, so they
// must fail loudly, as an UpstashError that names the unknown command, never silently.
// See DIFFERENCES.md.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { s } from "@upstash/redis";
import { UpstashError, assertUpstashError, makeRedis, uniq } from "./helpers.mjs";

const UNKNOWN = (cmd) => new RegExp(`ERR unknown command '${cmd.replace(".", "\\.")}'`, "i");

describe("Upstash-only features fail clearly", () => {
  for (const [mode, opts] of [
    ["one request per command", { enableAutoPipelining: false }],
    ["auto-pipelining", {}],
  ]) {
    const redis = makeRedis(opts);

    it(`redis.search.createIndex -> unknown command SEARCH.CREATE [${mode}]`, async () => {
      await assertUpstashError(
        redis.search.createIndex({
          name: uniq("idx"),
          dataType: "hash",
          prefix: "restdis-test:",
          schema: { title: s.string(), n: s.number() },
        }),
        UNKNOWN("SEARCH.CREATE"),
      );
    });

    it(`search index query / count / describe / drop / aliases -> unknown command [${mode}]`, async () => {
      const index = redis.search.index({ name: uniq("idx") });
      await assertUpstashError(index.query({ filter: { title: "x" } }), UNKNOWN("SEARCH.QUERY"));
      await assertUpstashError(index.count({ filter: { title: "x" } }), UNKNOWN("SEARCH.COUNT"));
      await assertUpstashError(index.describe(), UNKNOWN("SEARCH.DESCRIBE"));
      await assertUpstashError(index.drop(), UNKNOWN("SEARCH.DROP"));
      await assertUpstashError(redis.search.alias.list(), UNKNOWN("SEARCH.LISTALIASES"));
    });

    it(`redis.vector.createIndex -> unknown command VECTOR.CREATE [${mode}]`, async () => {
      await assertUpstashError(
        redis.vector.createIndex({ name: uniq("vec"), dimension: 3, metric: "COSINE" }),
        UNKNOWN("VECTOR.CREATE"),
      );
      await assertUpstashError(redis.vector.index(uniq("vec")).count(), UNKNOWN("VECTOR.COUNT"));
    });

    it(`Upstash arrays (AR*) -> unknown command [${mode}]`, async () => {
      await assertUpstashError(redis.arinsert(uniq("arr"), "a", "b"), UNKNOWN("ARINSERT"));
      await assertUpstashError(redis.arlen(uniq("arr")), UNKNOWN("ARLEN"));
    });

    it(`JSON.* without the RedisJSON module -> unknown command [${mode}]`, async () => {
      // Upstash has JSON built in; a plain Redis 7.0 without the module does not.
      await assertUpstashError(redis.json.set(uniq("json"), "$", { a: 1 }), UNKNOWN("JSON.SET"));
    });
  }

  it("the failed Upstash-only command does not break the connection", async () => {
    const redis = makeRedis({ enableAutoPipelining: false });
    const k = uniq("after");
    await redis.search.alias.list().catch((e) => assert.ok(e instanceof UpstashError));
    assert.equal(await redis.set(k, "still-works"), "OK");
    assert.equal(await redis.get(k), "still-works");
  });
});

// Optional Upstash relaxations of Redis syntax (protocol-spec §11.5). Documented in
// DIFFERENCES.md; each test accepts the Upstash result or Redis's own error, and nothing else.
describe("Upstash relaxations of Redis syntax", () => {
  const redis = makeRedis({ enableAutoPipelining: false });

  it("ZRANGE ... LIMIT without BYSCORE/BYLEX: Upstash slices, Redis says syntax error", async () => {
    const k = uniq("z");
    await redis.zadd(k, { score: 1, member: "a" }, { score: 2, member: "b" }, { score: 3, member: "c" });
    try {
      const res = await redis.zrange(k, 0, 7, { offset: 1, count: 1 });
      assert.deepEqual(res, ["b"]);
    } catch (e) {
      assert.ok(e instanceof UpstashError, String(e));
      assert.match(e.message, /ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX/);
    }
  });

  it("UNLINK with no keys: Upstash returns 0, Redis says wrong number of arguments", async () => {
    try {
      assert.equal(await redis.unlink(), 0);
    } catch (e) {
      assert.ok(e instanceof UpstashError, String(e));
      assert.match(e.message, /ERR wrong number of arguments for 'unlink' command/);
    }
  });
});
