// Strings, counters, bitmaps and HyperLogLog through @upstash/redis.
import assert from "node:assert/strict";
import { it } from "node:test";
import { describeModes, uniq } from "./helpers.mjs";

describeModes("strings", (client) => {
  const redis = client();

  it("set / get a plain string", async () => {
    const k = uniq("str");
    assert.equal(await redis.set(k, "value"), "OK");
    assert.equal(await redis.get(k), "value");
    assert.equal(await redis.get(uniq("missing")), null);
  });

  it("set with ex / px sets a ttl", async () => {
    const k = uniq("str");
    await redis.set(k, "v", { ex: 100 });
    const ttl = await redis.ttl(k);
    assert.ok(ttl > 90 && ttl <= 100, `ttl ${ttl}`);
    await redis.set(k, "v", { px: 50_000 });
    const pttl = await redis.pttl(k);
    assert.ok(pttl > 40_000 && pttl <= 50_000, `pttl ${pttl}`);
  });

  it("set nx / xx", async () => {
    const k = uniq("str");
    assert.equal(await redis.set(k, "a", { xx: true }), null);
    assert.equal(await redis.set(k, "a", { nx: true }), "OK");
    assert.equal(await redis.set(k, "b", { nx: true }), null);
    assert.equal(await redis.get(k), "a");
    assert.equal(await redis.set(k, "c", { xx: true }), "OK");
    assert.equal(await redis.get(k), "c");
  });

  it("set with get returns the old value", async () => {
    const k = uniq("str");
    assert.equal(await redis.set(k, "old", { get: true }), null);
    assert.equal(await redis.set(k, "new", { get: true }), "old");
    assert.equal(await redis.get(k), "new");
  });

  it("set keepTtl / exat / pxat", async () => {
    const k = uniq("str");
    await redis.set(k, "v", { ex: 1000 });
    await redis.set(k, "w", { keepTtl: true });
    assert.ok((await redis.ttl(k)) > 900);
    const at = Math.floor(Date.now() / 1000) + 500;
    await redis.set(k, "x", { exat: at });
    const ttl = await redis.ttl(k);
    assert.ok(ttl > 490 && ttl <= 500, `ttl ${ttl}`);
    await redis.set(k, "y", { pxat: Date.now() + 200_000 });
    assert.ok((await redis.pttl(k)) > 190_000);
  });

  it("setex / psetex / setnx / getset / getdel", async () => {
    const k = uniq("str");
    assert.equal(await redis.setex(k, 100, "a"), "OK");
    assert.ok((await redis.ttl(k)) > 90);
    assert.equal(await redis.psetex(k, 100_000, "b"), "OK");
    assert.ok((await redis.pttl(k)) > 90_000);
    assert.equal(await redis.setnx(k, "c"), 0);
    const k2 = uniq("str");
    assert.equal(await redis.setnx(k2, "c"), 1);
    assert.equal(await redis.getset(k2, "d"), "c");
    assert.equal(await redis.getdel(k2), "d");
    assert.equal(await redis.exists(k2), 0);
  });

  it("getex with ex and persist", async () => {
    const k = uniq("str");
    await redis.set(k, "v");
    assert.equal(await redis.getex(k, { ex: 100 }), "v");
    assert.ok((await redis.ttl(k)) > 90);
    assert.equal(await redis.getex(k, { persist: true }), "v");
    assert.equal(await redis.ttl(k), -1);
  });

  it("getrange / setrange / append / strlen", async () => {
    const k = uniq("str");
    await redis.set(k, "hello world");
    assert.equal(await redis.getrange(k, 0, 4), "hello");
    assert.equal(await redis.getrange(k, -5, -1), "world");
    assert.equal(await redis.setrange(k, 6, "redis"), 11);
    assert.equal(await redis.get(k), "hello redis");
    assert.equal(await redis.append(k, "!!"), 13);
    assert.equal(await redis.strlen(k), 13);
  });

  it("incr / incrby / decr / decrby", async () => {
    const k = uniq("ctr");
    assert.equal(await redis.incr(k), 1);
    assert.equal(await redis.incrby(k, 41), 42);
    assert.equal(await redis.decr(k), 41);
    assert.equal(await redis.decrby(k, 40), 1);
    // 64-bit integers are exact JSON numbers on the wire
    await redis.set(k, "9007199254740990");
    assert.equal(await redis.incrby(k, 1), 9007199254740991);
  });

  it("incrbyfloat returns a number", async () => {
    const k = uniq("flt");
    await redis.set(k, 10);
    assert.equal(await redis.incrbyfloat(k, 1.5), 11.5);
    assert.equal(await redis.incrbyfloat(k, -0.25), 11.25);
    assert.equal(await redis.get(k), 11.25);
  });

  it("mset / mget / msetnx with mixed value types", async () => {
    const a = uniq("m");
    const b = uniq("m");
    const c = uniq("m");
    assert.equal(await redis.mset({ [a]: 1, [b]: "two", [c]: { three: [3] } }), "OK");
    assert.deepEqual(await redis.mget(a, b, c, uniq("missing")), [1, "two", { three: [3] }, null]);
    assert.deepEqual(await redis.mget([a, b]), [1, "two"]);
    assert.equal(await redis.msetnx({ [a]: 5, [uniq("m")]: 6 }), 0);
    assert.equal(await redis.msetnx({ [uniq("m")]: 5, [uniq("m")]: 6 }), 1);
  });

  it("objects, numbers and booleans are serialized by the client", async () => {
    const k = uniq("obj");
    const value = { name: "restdis", tags: ["a", "b"], nested: { n: 1.5, ok: true, nil: null } };
    await redis.set(k, value);
    assert.deepEqual(await redis.get(k), value);
    await redis.set(k, 8);
    assert.equal(await redis.get(k), 8);
    await redis.set(k, 99.5);
    assert.equal(await redis.get(k), 99.5);
    await redis.set(k, true);
    assert.equal(await redis.get(k), true);
    await redis.set(k, [1, "2", 3]);
    assert.deepEqual(await redis.get(k), [1, "2", 3]);
  });

  it("echo / ping / time / dbsize", async () => {
    assert.equal(await redis.echo("hello"), "hello");
    assert.equal(await redis.ping(), "PONG");
    assert.equal(await redis.ping(["pong-message"]), "pong-message");
    const [secs, micros] = await redis.time();
    assert.equal(typeof secs, "number");
    assert.equal(typeof micros, "number");
    assert.ok(Math.abs(secs - Date.now() / 1000) < 60, `server time ${secs}`);
    assert.equal(typeof (await redis.dbsize()), "number");
  });
});

describeModes("bitmaps", (client, mode) => {
  const redis = client();

  it("setbit / getbit / bitcount", async () => {
    const k = uniq("bits");
    assert.equal(await redis.setbit(k, 7, 1), 0);
    assert.equal(await redis.setbit(k, 7, 1), 1);
    assert.equal(await redis.getbit(k, 7), 1);
    assert.equal(await redis.getbit(k, 6), 0);
    await redis.setbit(k, 15, 1);
    assert.equal(await redis.bitcount(k), 2);
    assert.equal(await redis.bitcount(k, 0, 0), 1);
  });

  it("bitop and / or / xor / not", async () => {
    const a = uniq("bits");
    const b = uniq("bits");
    const dest = uniq("bits");
    await redis.set(a, "ab");
    await redis.set(b, "cd");
    // "a"=0x61 "b"=0x62, "c"=0x63 "d"=0x64
    assert.equal(await redis.bitop("and", dest, a, b), 2);
    assert.equal(await redis.get(dest), "a`");
    assert.equal(await redis.bitop("or", dest, a, b), 2);
    assert.equal(await redis.get(dest), "cf");
    assert.equal(await redis.bitop("xor", dest, a, b), 2);
    assert.equal(await redis.get(dest), "\u0002\u0006");
    assert.equal(await redis.bitop("not", dest, a), 2);
    // ~"ab" = 0x9e 0x9d: not UTF-8, so the client decodes each byte to U+FFFD
    assert.equal(await redis.get(dest), "\uFFFD\uFFFD");
    assert.equal(await redis.strlen(dest), 2);
  });

  it("bitpos", async () => {
    const k = uniq("bits");
    await redis.setbit(k, 10, 1);
    assert.equal(await redis.bitpos(k, 1), 10);
    assert.equal(await redis.bitpos(k, 0), 0);
    assert.equal(await redis.bitpos(k, 1, 2), -1);
  });

  // @upstash/redis 1.39.0 bug: under the auto-pipelining proxy, redis.bitfield(key) returns a
  // Promise instead of the BitFieldCommand builder (".set is not a function"). Client-side; the
  // same happens against Upstash. See DIFFERENCES.md.
  const bitfieldSkip = mode.startsWith("auto")
    ? "@upstash/redis bug: bitfield() builder is broken under auto-pipelining (client-side)"
    : false;
  it("bitfield set / get / incrby", { skip: bitfieldSkip }, async () => {
    const k = uniq("bf");
    const res = await redis
      .bitfield(k)
      .set("u8", 0, 255)
      .get("u8", 0)
      .incrby("u8", 0, 1)
      .overflow("SAT")
      .incrby("u8", 8, 300)
      .exec();
    assert.deepEqual(res, [0, 255, 0, 255]);
  });
});

describeModes("hyperloglog", (client) => {
  const redis = client();

  it("pfadd / pfcount / pfmerge", async () => {
    const a = uniq("hll");
    const b = uniq("hll");
    const dest = uniq("hll");
    assert.equal(await redis.pfadd(a, "x", "y", "z"), 1);
    assert.equal(await redis.pfadd(a, "x"), 0);
    await redis.pfadd(b, "z", "w");
    assert.equal(await redis.pfcount(a), 3);
    assert.equal(await redis.pfcount(a, b), 4);
    assert.equal(await redis.pfmerge(dest, a, b), "OK");
    assert.equal(await redis.pfcount(dest), 4);
  });
});
