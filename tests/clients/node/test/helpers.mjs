// Shared helpers for the @upstash/redis compatibility tests. Not a test file itself
// (run.sh only runs test/*.test.mjs).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe } from "node:test";
import { Redis, errors } from "@upstash/redis";

export const { UpstashError } = errors;

export const URL = process.env.UPSTASH_REDIS_REST_URL;
export const TOKEN = process.env.UPSTASH_REDIS_REST_TOKEN;
export const READONLY_TOKEN = process.env.RESTDIS_READONLY_TOKEN;

/** Set when run.sh runs the suites as a tenant that shares its Redis (TENANCY=shared): the
 * commands that act on the whole server (SCRIPT FLUSH, FUNCTION LOAD/FLUSH) are refused to
 * such a tenant by design (docs/security.md), so the tests that need them are skipped with
 * this reason. */
export const SHARED_TENANCY =
  process.env.RESTDIS_TENANCY === "shared" &&
  "a tenant on a shared Redis may not run server-wide SCRIPT FLUSH / FUNCTION writes (docs/security.md)";

if (!URL || !TOKEN) {
  throw new Error(
    "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set (run tests/clients/run.sh)",
  );
}

/**
 * A client as a user would build it. Retries are disabled so that a server that drops the
 * connection fails fast instead of after ~4 s of backoff.
 */
export function makeRedis(opts = {}) {
  return new Redis({ url: URL, token: TOKEN, retry: false, ...opts });
}

/** Client modes every command family runs under: the default (auto-pipelining through
 * POST /pipeline) and one command per POST / request. */
export const MODES = [
  ["auto-pipelining (default)", {}],
  ["one request per command", { enableAutoPipelining: false }],
];

/** describe() once per client mode; fn receives a factory for a fresh client. */
export function describeModes(name, fn) {
  for (const [mode, opts] of MODES) {
    describe(`${name} [${mode}]`, () => fn(() => makeRedis(opts), mode));
  }
}

/** A unique key prefix, so that tests never see each other's keys. */
export function uniq(label = "k") {
  return `restdis-test:${label}:${randomUUID()}`;
}

/**
 * Awaits `promise` and asserts that it rejects with an UpstashError whose message matches
 * `pattern` (a RegExp or a substring). Returns the error.
 */
export async function assertUpstashError(promise, pattern) {
  let err;
  try {
    const value = await promise;
    const shown = JSON.stringify(value) ?? String(value);
    assert.fail(
      `expected an UpstashError matching ${pattern}, got result ${shown.length > 200 ? `${shown.slice(0, 200)}...` : shown}`,
    );
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    err = e;
  }
  assert.ok(
    err instanceof UpstashError,
    `expected UpstashError, got ${err?.constructor?.name}: ${err?.message}`,
  );
  if (pattern instanceof RegExp) {
    assert.match(err.message, pattern);
  } else if (pattern !== undefined) {
    assert.ok(err.message.includes(pattern), `"${err.message}" does not contain "${pattern}"`);
  }
  return err;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
