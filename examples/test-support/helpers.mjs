// Shared test helpers. Kept out of test/: `node --test examples/test/` runs every .mjs file there.
import { randomUUID } from "node:crypto";
import net from "node:net";
import { Redis } from "@upstash/redis";

export const URL = process.env.UPSTASH_REDIS_REST_URL;
export const TOKEN = process.env.UPSTASH_REDIS_REST_TOKEN;

if (!URL || !TOKEN) {
  throw new Error(
    "set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN (see examples/README.md)",
  );
}

/**
 * A client as an application would build it (`Redis.fromEnv()` reads the same two variables).
 * Retries are off so that a broken server fails a test fast instead of after seconds of backoff.
 */
export function makeRedis(opts = {}) {
  return new Redis({ url: URL, token: TOKEN, retry: false, ...opts });
}

/** A unique key prefix, so that tests never see each other's keys. */
export function uniq(label) {
  return `restdis-example:${label}:${randomUUID()}`;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A loopback port that nothing listens on (bound, read, released). */
export async function closedPort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/**
 * A TCP server that accepts connections and never answers: an overloaded or partitioned
 * restdis. `close()` drops the held connections so that pending requests fail and the test
 * process can exit.
 */
export async function blackHole() {
  const sockets = new Set();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => srv.close(resolve));
    },
  };
}
