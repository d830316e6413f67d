// Streams and consumer groups through @upstash/redis. These replies are nested arrays, so they
// also check that base64 encoding is applied at every depth.
import assert from "node:assert/strict";
import { it } from "node:test";
import { describeModes, uniq } from "./helpers.mjs";

const ID = /^\d+-\d+$/;

/** Turns a flat [k1, v1, k2, v2, ...] array into an object. */
function kv(flat) {
  const o = {};
  for (let i = 0; i < flat.length; i += 2) o[flat[i]] = flat[i + 1];
  return o;
}

describeModes("streams", (client) => {
  const redis = client();

  it("xadd / xlen / xrange / xrevrange", async () => {
    const k = uniq("stream");
    const id1 = await redis.xadd(k, "*", { name: "alice", n: 1 });
    const id2 = await redis.xadd(k, "*", { name: "bob", meta: { x: 1 } });
    assert.match(id1, ID);
    assert.match(id2, ID);
    assert.equal(await redis.xlen(k), 2);
    assert.deepEqual(await redis.xrange(k, "-", "+"), {
      [id1]: { name: "alice", n: 1 },
      [id2]: { name: "bob", meta: { x: 1 } },
    });
    assert.deepEqual(await redis.xrange(k, "-", "+", 1), { [id1]: { name: "alice", n: 1 } });
    const rev = await redis.xrevrange(k, "+", "-", 1);
    assert.deepEqual(Object.keys(rev), [id2]);
  });

  it("xadd with explicit ids, nomkStream and trim", async () => {
    const k = uniq("stream");
    assert.equal(await redis.xadd(k, "1-1", { a: "1" }, { nomkStream: true }), null);
    assert.equal(await redis.xadd(k, "1-1", { a: "1" }), "1-1");
    assert.equal(await redis.xadd(k, "2-1", { a: "2" }), "2-1");
    await redis.xadd(k, "3-1", { a: "3" }, {
      trim: { type: "MAXLEN", comparison: "=", threshold: 2 },
    });
    assert.equal(await redis.xlen(k), 2);
    assert.equal(await redis.xtrim(k, { strategy: "MAXLEN", exactness: "=", threshold: 1 }), 1);
    assert.equal(await redis.xdel(k, "3-1"), 1);
    assert.equal(await redis.xlen(k), 0);
  });

  it("xread returns nested stream entries", async () => {
    const k = uniq("stream");
    const id = await redis.xadd(k, "*", { field: "value" });
    const res = await redis.xread(k, "0-0");
    assert.deepEqual(res, [[k, [[id, ["field", "value"]]]]]);
    assert.deepEqual(await redis.xread(k, "0-0", { count: 1 }), res);
    assert.equal(await redis.xread(k, id), null);
  });

  it("consumer groups: xgroup / xreadgroup / xpending / xack", async () => {
    const k = uniq("stream");
    assert.equal(
      await redis.xgroup(k, { type: "CREATE", group: "g1", id: "$", options: { MKSTREAM: true } }),
      "OK",
    );
    const id1 = await redis.xadd(k, "*", { job: "one" });
    const id2 = await redis.xadd(k, "*", { job: "two" });
    const read = await redis.xreadgroup("g1", "c1", k, ">", { count: 10 });
    assert.deepEqual(read, [
      [
        k,
        [
          [id1, ["job", "one"]],
          [id2, ["job", "two"]],
        ],
      ],
    ]);
    // nothing new for the group
    assert.equal(await redis.xreadgroup("g1", "c1", k, ">"), null);

    const summary = await redis.xpending(k, "g1", "-", "+", 10);
    assert.equal(summary.length, 2);
    assert.equal(summary[0][0], id1);
    assert.equal(summary[0][1], "c1");
    assert.equal(typeof summary[0][2], "number");
    assert.equal(summary[0][3], 1);
    const forC1 = await redis.xpending(k, "g1", "-", "+", 10, { consumer: "c1" });
    assert.equal(forC1.length, 2);

    assert.equal(await redis.xack(k, "g1", id1), 1);
    assert.equal(await redis.xack(k, "g1", id1), 0);
    assert.equal((await redis.xpending(k, "g1", "-", "+", 10)).length, 1);
  });

  it("xclaim / xautoclaim move pending entries", async () => {
    const k = uniq("stream");
    await redis.xgroup(k, { type: "CREATE", group: "g", id: "0", options: { MKSTREAM: true } });
    const id1 = await redis.xadd(k, "*", { n: "1x" });
    const id2 = await redis.xadd(k, "*", { n: "2x" });
    await redis.xreadgroup("g", "c1", k, ">");

    const claimed = await redis.xclaim(k, "g", "c2", 0, id1);
    assert.deepEqual(claimed, [[id1, ["n", "1x"]]]);
    const justId = await redis.xclaim(k, "g", "c2", 0, id1, { justId: true });
    assert.deepEqual(justId, [id1]);

    const auto = await redis.xautoclaim(k, "g", "c3", 0, "0-0", { count: 10 });
    assert.equal(auto[0], "0-0");
    assert.deepEqual(auto[1], [
      [id1, ["n", "1x"]],
      [id2, ["n", "2x"]],
    ]);
    assert.deepEqual(auto[2], []);
    const pending = await redis.xpending(k, "g", "-", "+", 10);
    assert.deepEqual(
      pending.map((p) => p[1]),
      ["c3", "c3"],
    );
  });

  it("xinfo groups / consumers and xgroup management", async () => {
    const k = uniq("stream");
    await redis.xgroup(k, { type: "CREATE", group: "grp", id: "$", options: { MKSTREAM: true } });
    assert.equal(
      await redis.xgroup(k, { type: "CREATECONSUMER", group: "grp", consumer: "worker" }),
      1,
    );
    await redis.xadd(k, "*", { a: "b" });
    await redis.xreadgroup("grp", "worker", k, ">");

    const groups = await redis.xinfo(k, { type: "GROUPS" });
    assert.equal(groups.length, 1);
    const g = kv(groups[0]);
    assert.equal(g.name, "grp");
    assert.equal(g.consumers, 1);
    assert.equal(g.pending, 1);

    const consumers = await redis.xinfo(k, { type: "CONSUMERS", group: "grp" });
    assert.equal(consumers.length, 1);
    const c = kv(consumers[0]);
    assert.equal(c.name, "worker");
    assert.equal(c.pending, 1);

    assert.equal(await redis.xgroup(k, { type: "SETID", group: "grp", id: "0" }), "OK");
    assert.equal(
      await redis.xgroup(k, { type: "DELCONSUMER", group: "grp", consumer: "worker" }),
      1,
    );
    assert.equal(await redis.xgroup(k, { type: "DESTROY", group: "grp" }), 1);
    assert.deepEqual(await redis.xinfo(k, { type: "GROUPS" }), []);
  });
});
