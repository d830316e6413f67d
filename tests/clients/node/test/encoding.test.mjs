// Response encoding: the default `Upstash-Encoding: base64` and `responseEncoding: false` (plain
// JSON strings) must give the same values, with and without the client's automatic
// deserialization.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { makeRedis, uniq } from "./helpers.mjs";

const BIG = `${"x".repeat(1024 * 1024 - 2)}🚀`;

/** deepEqual that does not print megabytes of text when a big value differs. */
function same(actual, expected) {
  const big = JSON.stringify(expected).length > 10_000;
  if (!big) return assert.deepEqual(actual, expected);
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  assert.ok(a === e, `big value differs: got ${a.length} chars starting ${a.slice(0, 80)}`);
}

// [label, value sent, value read back with automaticDeserialization (default),
//  value read back with automaticDeserialization: false]
const CASES = [
  ["emoji and non-ASCII", "🚀 héllo ☃ 你好 👩‍👩‍👧", "🚀 héllo ☃ 你好 👩‍👩‍👧", "🚀 héllo ☃ 你好 👩‍👩‍👧"],
  [
    "object (client JSON-serializes it)",
    { a: [1, 2, { b: "c" }], s: "x", n: null, t: true, e: "🚀" },
    { a: [1, 2, { b: "c" }], s: "x", n: null, t: true, e: "🚀" },
    '{"a":[1,2,{"b":"c"}],"s":"x","n":null,"t":true,"e":"🚀"}',
  ],
  ["binary-ish control bytes", "\u0000\u0001\u0002\u007f\u0080\u00ff", "\u0000\u0001\u0002\u007f\u0080\u00ff", "\u0000\u0001\u0002\u007f\u0080\u00ff"],
  ["quotes, backslashes, newlines", 'a"b\\c\n\r\td/e', 'a"b\\c\n\r\td/e', 'a"b\\c\n\r\td/e'],
  ['numeric string "8"', "8", 8, "8"],
  ['"1.0" keeps its text', "1.0", "1.0", "1.0"],
  ["big integer string", "12345678901234567890", "12345678901234567890", "12345678901234567890"],
  ['"-0"', "-0", "-0", "-0"],
  ['"1e3"', "1e3", "1e3", "1e3"],
  ['"007"', "007", "007", "007"],
  ["empty string", "", "", ""],
  ['"OK" as a value', "OK", "OK", "OK"],
  ['"PONG" as a value', "PONG", "PONG", "PONG"],
  ["base64-looking value", "T0s=", "T0s=", "T0s="],
  ['"true"', "true", true, "true"],
  ["JS number 8", 8, 8, "8"],
  ["JS float 99.5", 99.5, 99.5, "99.5"],
  ["JS boolean", false, false, "false"],
  ["JS number 1e21 (sent as 1e+21)", 1e21, 1e21, "1e+21"],
  ["JS float 0.1+0.2 keeps every digit", 0.1 + 0.2, 0.30000000000000004, "0.30000000000000004"],
  ["negative integer", -42, -42, "-42"],
  ["max safe integer", Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, "9007199254740991"],
  ["1 MiB value", BIG, BIG, BIG],
];

const ENCODINGS = [
  ["base64 (default)", {}],
  ["responseEncoding: false", { responseEncoding: false }],
];

for (const [encName, encOpts] of ENCODINGS) {
  for (const [deserName, deserOpts, pick] of [
    ["auto-deserialize", {}, (c) => c[2]],
    ["automaticDeserialization: false", { automaticDeserialization: false }, (c) => c[3]],
  ]) {
    describe(`encoding [${encName}, ${deserName}]`, () => {
      const direct = makeRedis({ ...encOpts, ...deserOpts, enableAutoPipelining: false });
      const auto = makeRedis({ ...encOpts, ...deserOpts });

      for (const c of CASES) {
        const [label, value] = c;
        const expected = pick(c);

        it(`set/get round-trips: ${label}`, async () => {
          const k = uniq("enc");
          assert.equal(await direct.set(k, value), "OK");
          same(await direct.get(k), expected);
          // the same value through auto-pipelined batches (the client sends reads and writes in
          // separate, concurrent pipelines, so the write must complete before the reads)
          await Promise.all([auto.set(`${k}:ap1`, value), auto.set(`${k}:ap2`, value)]);
          const got = await Promise.all([auto.get(`${k}:ap1`), auto.get(`${k}:ap2`)]);
          same(got, [expected, expected]);
        });

        it(`inside arrays (lrange, mget, pipeline): ${label}`, async () => {
          const k = uniq("enc");
          await direct.rpush(k, value, "after");
          same(await direct.lrange(k, 0, -1), [expected, "after"]);
          assert.deepEqual(await direct.mget(uniq("missing"), `${k}:nope`), [null, null]);
          const res = await direct.pipeline().set(`${k}:s`, value).get(`${k}:s`).lindex(k, 0).exec();
          same(res, ["OK", expected, expected]);
        });
      }

      it("nested arrays two levels deep (xrange) keep every value", async () => {
        const k = uniq("enc");
        const id = await direct.xadd(k, "*", { emoji: "🚀", eight: "8", empty: "", ok: "OK" });
        const raw = await direct.xread(k, "0-0");
        assert.deepEqual(raw, [
          [k, [[id, ["emoji", "🚀", "eight", pick([0, 0, 8, "8"]), "empty", "", "ok", "OK"]]]],
        ]);
      });

      it("invalid UTF-8 (BITOP NOT output) decodes to U+FFFD", async () => {
        const a = uniq("enc");
        const dest = uniq("enc");
        await direct.set(a, "AB");
        await direct.bitop("not", dest, a);
        assert.equal(await direct.get(dest), "\uFFFD\uFFFD");
        assert.equal(await direct.strlen(dest), 2);
      });

      it("unicode and special characters in keys and fields", async () => {
        const k = `${uniq("enc")}:ключ/with spaces?&#%+=`;
        await direct.hset(k, { "поле 🚀": "значение", "": "empty-field" });
        assert.equal(await direct.hget(k, "поле 🚀"), "значение");
        assert.equal(await direct.hget(k, ""), "empty-field");
        assert.deepEqual(await direct.keys(k), [k]);
      });

      it("status replies and scores", async () => {
        assert.equal(await direct.ping(), "PONG");
        const k = uniq("enc");
        assert.equal(await direct.type(k), "none");
        await direct.zadd(k, { score: 1.5, member: "m" });
        assert.equal(await direct.type(k), "zset");
        assert.deepEqual(await direct.zscore(k, "m"), pick([0, 0, 1.5, "1.5"]));
      });
    });
  }
}
