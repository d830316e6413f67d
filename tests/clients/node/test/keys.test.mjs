// Generic key commands through @upstash/redis: exists/del/type/expiry/rename/copy, and the
// keyspace walkers keys/scan, including the Upstash-only `SCAN ... WITHTYPE` that restdis
// emulates. The scan tests FLUSHDB first: the Redis behind the suite is private.
import assert from "node:assert/strict";
import { it } from "node:test";
import { describeModes, uniq } from "./helpers.mjs";

const sorted = (xs) => [...xs].sort();

describeModes("keys", (client) => {
  const redis = client();

  it("exists / del / unlink / touch", async () => {
    const a = uniq("key");
    const b = uniq("key");
    await redis.set(a, "1");
    await redis.set(b, "2");
    assert.equal(await redis.exists(a, b, uniq("nope")), 2);
    assert.equal(await redis.touch(a, b), 2);
    assert.equal(await redis.del(a), 1);
    assert.equal(await redis.unlink(b, uniq("nope")), 1);
    assert.equal(await redis.exists(a, b), 0);
  });

  it("type of every data type", async () => {
    const p = uniq("type");
    await redis.set(`${p}:string`, "v");
    await redis.rpush(`${p}:list`, "v");
    await redis.sadd(`${p}:set`, "v");
    await redis.zadd(`${p}:zset`, { score: 1, member: "v" });
    await redis.hset(`${p}:hash`, { f: "v" });
    await redis.xadd(`${p}:stream`, "*", { f: "v" });
    for (const t of ["string", "list", "set", "zset", "hash", "stream"]) {
      assert.equal(await redis.type(`${p}:${t}`), t);
    }
    assert.equal(await redis.type(`${p}:missing`), "none");
  });

  it("expire / ttl / pttl / persist / pexpire / expireat / pexpireat", async () => {
    const k = uniq("ttl");
    await redis.set(k, "v");
    assert.equal(await redis.ttl(k), -1);
    assert.equal(await redis.ttl(uniq("nope")), -2);
    assert.equal(await redis.expire(k, 100), 1);
    const ttl = await redis.ttl(k);
    assert.ok(ttl > 90 && ttl <= 100, `ttl ${ttl}`);
    assert.equal(await redis.expire(k, 200, "NX"), 0);
    assert.equal(await redis.expire(k, 200, "GT"), 1);
    assert.equal(await redis.persist(k), 1);
    assert.equal(await redis.persist(k), 0);
    assert.equal(await redis.pexpire(k, 100_000), 1);
    assert.ok((await redis.pttl(k)) > 90_000);
    assert.equal(await redis.expireat(k, Math.floor(Date.now() / 1000) + 300), 1);
    assert.ok((await redis.ttl(k)) > 290);
    assert.equal(await redis.pexpireat(k, Date.now() + 400_000), 1);
    assert.ok((await redis.pttl(k)) > 390_000);
    assert.equal(await redis.expire(uniq("nope"), 10), 0);
  });

  it("a key with a short expiry disappears", async () => {
    const k = uniq("ttl");
    await redis.set(k, "v", { px: 50 });
    const deadline = Date.now() + 3000;
    while ((await redis.exists(k)) === 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(await redis.get(k), null);
  });

  it("rename / renamenx / copy", async () => {
    const a = uniq("key");
    const b = uniq("key");
    const c = uniq("key");
    await redis.set(a, "v");
    assert.equal(await redis.rename(a, b), "OK");
    assert.equal(await redis.get(b), "v");
    await redis.set(c, "other");
    assert.equal(await redis.renamenx(b, c), 0);
    assert.equal(await redis.copy(b, c), "NOT_COPIED");
    assert.equal(await redis.copy(b, c, { replace: true }), "COPIED");
    assert.equal(await redis.get(c), "v");
  });

  it("keys / randomkey / dbsize / flushdb", async () => {
    assert.equal(await redis.flushdb(), "OK");
    assert.equal(await redis.randomkey(), null);
    const p = uniq("keys");
    await redis.mset({ [`${p}:a`]: 1, [`${p}:b`]: 2, [`${p}:c`]: 3 });
    assert.deepEqual(sorted(await redis.keys(`${p}:*`)), [`${p}:a`, `${p}:b`, `${p}:c`]);
    assert.deepEqual(await redis.keys(`${p}:z*`), []);
    assert.ok((await redis.randomkey()).startsWith(p));
    assert.equal(await redis.dbsize(), 3);
    assert.equal(await redis.flushdb({ async: true }), "OK");
    const deadline = Date.now() + 3000;
    while ((await redis.dbsize()) !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(await redis.dbsize(), 0);
  });

  it("scan walks the keyspace with match / count; cursors are strings", async () => {
    await redis.flushdb();
    const p = uniq("scan");
    const keys = Array.from({ length: 120 }, (_, i) => `${p}:${i}`);
    const kv = Object.fromEntries(keys.map((k) => [k, "v"]));
    await redis.mset(kv);
    await redis.set(uniq("other"), "x");
    const seen = new Set();
    let cursor = "0";
    let rounds = 0;
    do {
      const [next, batch] = await redis.scan(cursor, { match: `${p}:*`, count: 25 });
      assert.equal(typeof next, "string");
      for (const k of batch) seen.add(k);
      cursor = next;
      rounds++;
    } while (cursor !== "0" && rounds < 1000);
    assert.deepEqual(sorted(seen), sorted(keys));
    assert.ok(rounds > 1, "expected more than one scan round");
  });

  it("scan with type filter", async () => {
    await redis.flushdb();
    const p = uniq("scan");
    await redis.set(`${p}:s`, "v");
    await redis.hset(`${p}:h`, { f: "v" });
    await redis.rpush(`${p}:l`, "v");
    const found = [];
    let cursor = "0";
    do {
      const [next, batch] = await redis.scan(cursor, { type: "hash", count: 100 });
      found.push(...batch);
      cursor = next;
    } while (cursor !== "0");
    assert.deepEqual(found, [`${p}:h`]);
  });

  it("scan withType returns {key, type} pairs (Upstash extension, emulated)", async () => {
    await redis.flushdb();
    const p = uniq("scan");
    await redis.set(`${p}:string`, "v");
    await redis.hset(`${p}:hash`, { f: "v" });
    await redis.rpush(`${p}:list`, "v");
    await redis.sadd(`${p}:set`, "v");
    await redis.zadd(`${p}:zset`, { score: 1, member: "v" });
    await redis.xadd(`${p}:stream`, "*", { f: "v" });
    const found = [];
    let cursor = "0";
    do {
      const [next, batch] = await redis.scan(cursor, { withType: true, count: 100 });
      assert.equal(typeof next, "string");
      found.push(...batch);
      cursor = next;
    } while (cursor !== "0");
    found.sort((a, b) => a.key.localeCompare(b.key));
    const expected = ["hash", "list", "set", "stream", "string", "zset"].map((t) => ({
      key: `${p}:${t}`,
      type: t,
    }));
    assert.deepEqual(found, expected);
  });

  it("scan withType together with match", async () => {
    await redis.flushdb();
    const p = uniq("scan");
    await redis.set(`${p}:a`, "v");
    await redis.hset(`${p}:b`, { f: "v" });
    await redis.set(uniq("unrelated"), "v");
    const found = [];
    let cursor = 0;
    do {
      const [next, batch] = await redis.scan(cursor, { match: `${p}:*`, withType: true, count: 100 });
      found.push(...batch);
      cursor = next;
    } while (cursor !== "0");
    found.sort((a, b) => a.key.localeCompare(b.key));
    assert.deepEqual(found, [
      { key: `${p}:a`, type: "string" },
      { key: `${p}:b`, type: "hash" },
    ]);
  });
});
