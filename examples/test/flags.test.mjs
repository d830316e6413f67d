import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Redis } from "@upstash/redis";
import { createFlags, killSwitch } from "../flags.mjs";
import { TOKEN, closedPort, makeRedis, uniq } from "../test-support/helpers.mjs";

describe("feature flags and kill switches", () => {
  it("a toggle by an operator is seen by the next request", async () => {
    const key = uniq("flags");
    const app = createFlags(makeRedis(), { key, defaults: { search: true } });
    const admin = createFlags(makeRedis({ enableAutoPipelining: false }), { key });

    let f = await app.load();
    assert.equal(f.isEnabled("new-checkout"), false, "unknown flags are off");
    assert.equal(f.isEnabled("search"), true, "defaults apply until set");

    await admin.set("new-checkout", "on");
    await admin.set("search", "off");
    f = await app.load();
    assert.equal(f.isEnabled("new-checkout"), true);
    assert.equal(f.isEnabled("search"), false);
    assert.equal(await app.isEnabled("new-checkout"), true);

    await admin.set("new-checkout", "off");
    assert.equal((await app.load()).isEnabled("new-checkout"), false);
    assert.equal(await app.isEnabled("new-checkout"), false);

    await admin.remove("search");
    assert.equal((await app.load()).isEnabled("search"), true, "back to the default");
  });

  it("values written as 1/0/true/false by other tools are understood", async () => {
    const key = uniq("flags");
    const redis = makeRedis();
    await redis.hset(key, { a: "1", b: "0", c: "true", d: "FALSE", e: "On", f: "garbage" });
    const f = await createFlags(redis, { key }).load();
    assert.deepEqual(
      ["a", "b", "c", "d", "e", "f"].map((n) => f.isEnabled(n)),
      [true, false, true, false, true, false],
    );
  });

  it("percentage rollout: stable per user, about N%, and raising N only adds users", async () => {
    const key = uniq("flags");
    const flags = createFlags(makeRedis(), { key });
    const users = Array.from({ length: 1000 }, (_, i) => `user-${i}`);

    await flags.set("beta", "30%");
    const f30 = await flags.load();
    const in30 = users.filter((user) => f30.isEnabled("beta", { user }));
    assert.ok(in30.length > 230 && in30.length < 370, `${in30.length} of 1000 at 30%`);
    assert.deepEqual(users.filter((user) => f30.isEnabled("beta", { user })), in30, "stable");
    assert.equal(f30.isEnabled("beta"), false, "no user, no rollout");

    await flags.set("beta", "60%");
    const f60 = await flags.load();
    const in60 = new Set(users.filter((user) => f60.isEnabled("beta", { user })));
    assert.ok(in60.size > in30.length);
    for (const user of in30) assert.ok(in60.has(user), `${user} dropped out when the rollout grew`);

    await flags.set("beta", "0%");
    const f0 = await flags.load();
    assert.equal(users.filter((user) => f0.isEnabled("beta", { user })).length, 0);
    await flags.set("beta", "100%");
    const f100 = await flags.load();
    assert.equal(users.filter((user) => f100.isEnabled("beta", { user })).length, 1000);
  });

  it("kill switch: flipping it turns the route into 503 at once, and back", async () => {
    const key = uniq("flags");
    const flags = createFlags(makeRedis(), { key });
    const operator = makeRedis();
    let handled = 0;
    const checkout = killSwitch(flags, "checkout", async (req) => {
      handled++;
      return { status: 200, headers: {}, body: `order for ${req.cart}` };
    });

    assert.equal((await checkout({ cart: "c1" })).status, 200);
    await operator.hset(key, { "kill:checkout": "on" });
    const refused = await checkout({ cart: "c2" });
    assert.equal(refused.status, 503);
    assert.equal(refused.headers["retry-after"], "30");
    assert.equal(handled, 1, "the handler did not run while killed");
    await operator.hset(key, { "kill:checkout": "off" });
    assert.equal((await checkout({ cart: "c3" })).status, 200);
    assert.equal(handled, 2);
  });

  it("Redis unreachable: defaults apply and the error is reported", async () => {
    const port = await closedPort();
    const errors = [];
    const flags = createFlags(new Redis({ url: `http://127.0.0.1:${port}`, token: TOKEN, retry: false }), {
      key: uniq("flags"),
      defaults: { search: true },
      onError: (e) => errors.push(e),
    });
    const f = await flags.load();
    assert.equal(f.isEnabled("search"), true);
    assert.equal(f.isEnabled("kill:checkout"), false, "kill switches fail open");
    assert.equal(errors.length, 1);
  });
});
