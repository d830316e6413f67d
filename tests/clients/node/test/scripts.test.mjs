// Lua scripts (EVAL / EVALSHA / SCRIPT *, createScript) and functions (FUNCTION LOAD / FCALL via
// redis.functions) through @upstash/redis.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { it } from "node:test";
import { SHARED_TENANCY, assertUpstashError, describeModes, uniq } from "./helpers.mjs";

const sha1 = (s) => createHash("sha1").update(s).digest("hex");

describeModes("scripts", (client) => {
  const redis = client();

  it("eval returns strings, integers, nil and tables", async () => {
    assert.equal(await redis.eval("return ARGV[1]", [], ["hello"]), "hello");
    assert.equal(await redis.eval("return 42", [], []), 42);
    assert.equal(await redis.eval("return nil", [], []), null);
    // Lua numbers are truncated to integers by Redis
    assert.equal(await redis.eval("return 3.99", [], []), 3);
    assert.deepEqual(await redis.eval("return {1, 'two', {3, 'four'}}", [], []), [
      1,
      "two",
      [3, "four"],
    ]);
  });

  it("eval with keys writes and reads", async () => {
    const k = uniq("lua");
    assert.equal(
      await redis.eval("return redis.call('SET', KEYS[1], ARGV[1])", [k], ["from-lua"]),
      "OK",
    );
    assert.equal(await redis.get(k), "from-lua");
    assert.equal(await redis.eval("return redis.call('GET', KEYS[1])", [k], []), "from-lua");
  });

  it("status replies nested in a table are encoded like any string", async () => {
    // A raw "OK" inside an array would decode to "8" in base64 mode.
    const res = await redis.eval(
      "return {redis.status_reply('OK'), redis.status_reply('PONG'), 'OK'}",
      [],
      [],
    );
    assert.deepEqual(res, ["OK", "PONG", "OK"]);
    assert.equal(await redis.eval("return redis.status_reply('QUEUED-ISH')", [], []), "QUEUED-ISH");
  });

  it("an error nested in a script's table comes back as its text", async () => {
    const k = uniq("lua");
    await redis.set(k, "not-a-number");
    const res = await redis.eval("return {redis.pcall('INCR', KEYS[1]), 1}", [k], []);
    assert.equal(res.length, 2);
    assert.match(String(res[0]), /ERR value is not an integer or out of range/);
    assert.equal(res[1], 1);
  });

  it("script errors surface as UpstashError with the Lua error text", async () => {
    await assertUpstashError(
      redis.eval("return redis.error_reply('MYERR custom failure')", [], []),
      "MYERR custom failure",
    );
    await assertUpstashError(redis.eval("this is not lua", [], []), /ERR.*(compil|syntax|script)/i);
  });

  it("evalsha of an unknown script fails with Redis's NOSCRIPT text", async () => {
    const err = await assertUpstashError(
      redis.evalsha(sha1(`return '${uniq("nosuch")}'`), [], []),
      "NOSCRIPT",
    );
    assert.match(err.message, /NOSCRIPT No matching script\. Please use EVAL\./);
  });

  it("scriptLoad / scriptExists / evalsha / evalshaRo / evalRo", async () => {
    const script = `return {ARGV[1], '${uniq("tag")}'}`;
    const sha = await redis.scriptLoad(script);
    assert.equal(sha, sha1(script));
    assert.deepEqual(await redis.scriptExists(sha, sha1("nope")), [1, 0]);
    const res = await redis.evalsha(sha, [], ["x"]);
    assert.equal(res[0], "x");
    const ro = await redis.evalshaRo(sha, [], ["y"]);
    assert.equal(ro[0], "y");
    const k = uniq("lua");
    await redis.set(k, "ro-value");
    assert.equal(await redis.evalRo("return redis.call('GET', KEYS[1])", [k], []), "ro-value");
    await assertUpstashError(
      redis.evalRo("return redis.call('SET', KEYS[1], 'x')", [k], []),
      /ERR.*(Write commands are not allowed from read-only scripts|write)/i,
    );
  });

  it("createScript: EVALSHA first, EVAL fallback after SCRIPT FLUSH", { skip: SHARED_TENANCY }, async () => {
    assert.equal(await redis.scriptFlush(), "OK");
    const body = `return ARGV[1] .. '${uniq("s")}'`;
    const script = redis.createScript(body);
    const expected = `hi${body.match(/'(.*)'/)[1]}`;
    // not loaded: EVALSHA fails with NOSCRIPT, the client falls back to EVAL (which loads it)
    assert.equal(await script.exec([], ["hi"]), expected);
    assert.deepEqual(await redis.scriptExists(sha1(body)), [1]);
    // now EVALSHA succeeds directly
    assert.equal(await script.evalsha([], ["hi"]), expected);
    assert.equal(await script.eval([], ["hi"]), expected);
    const roScript = redis.createScript("return ARGV[1]", { readonly: true });
    assert.equal(await roScript.exec([], ["ro"]), "ro");
  });
});

describeModes("functions", (client) => {
  const redis = client();
  const lib = `lib_${uniq("f").replace(/[^a-zA-Z0-9]/g, "_")}`;
  const code = [
    `#!lua name=${lib}`,
    `redis.register_function('${lib}_echo', function(keys, args) return args[1] end)`,
    `redis.register_function('${lib}_set', function(keys, args) return redis.call('SET', keys[1], args[1]) end)`,
    `redis.register_function{function_name='${lib}_get', callback=function(keys, args) return redis.call('GET', keys[1]) end, flags={'no-writes'}}`,
  ].join("\n");

  it("functions.load / call / callRo / list / stats / delete", { skip: SHARED_TENANCY }, async () => {
    assert.equal(await redis.functions.load({ code, replace: true }), lib);
    await assertUpstashError(redis.functions.load({ code }), /already exists/);
    assert.equal(await redis.functions.call(`${lib}_echo`, [], ["ping!"]), "ping!");
    const k = uniq("fn");
    assert.equal(await redis.functions.call(`${lib}_set`, [k], ["fval"]), "OK");
    assert.equal(await redis.functions.callRo(`${lib}_get`, [k]), "fval");

    const list = await redis.functions.list({ libraryName: lib, withCode: true });
    assert.equal(list.length, 1);
    assert.equal(list[0].libraryName, lib);
    assert.equal(list[0].engine, "LUA");
    assert.equal(list[0].libraryCode, code);
    assert.deepEqual(list[0].functions.map((f) => f.name).sort(), [
      `${lib}_echo`,
      `${lib}_get`,
      `${lib}_set`,
    ]);
    const getFn = list[0].functions.find((f) => f.name === `${lib}_get`);
    assert.deepEqual(getFn.flags, ["no-writes"]);

    const stats = await redis.functions.stats();
    assert.ok(stats.engines.LUA.librariesCount >= 1, JSON.stringify(stats));
    assert.ok(stats.engines.LUA.functionsCount >= 3, JSON.stringify(stats));

    assert.equal(await redis.functions.delete(lib), "OK");
    await assertUpstashError(redis.functions.call(`${lib}_echo`, [], ["x"]), /Function not found/i);
  });

  it("functions.flush removes every library", { skip: SHARED_TENANCY }, async () => {
    await redis.functions.load({ code, replace: true });
    assert.equal(await redis.functions.flush(), "OK");
    assert.deepEqual(await redis.functions.list(), []);
  });
});
