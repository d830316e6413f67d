// The web console in a real browser: headless Chromium from the OS, driven by playwright-core,
// against the restdis and redis-server that run.sh started. Each test has a fresh browser
// context (so a fresh sessionStorage) and leaves a screenshot in $SCREENSHOTS.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const URL = process.env.RESTDIS_URL;
const TOKEN = process.env.RESTDIS_TOKEN;
const RO_TOKEN = process.env.RESTDIS_READONLY_TOKEN;
const ADMIN_TOKEN = process.env.RESTDIS_ADMIN_TOKEN;
const SHOTS = process.env.SCREENSHOTS || 'screenshots';
const HOSTILE_KEY = 'seed:<img src=x onerror=alert(1)>';
const HOSTILE_VALUE = '</script><script>alert(2)</script><b>bold</b>';

const profiles = [];
const contexts = [];

/** One command over REST, as any client. */
async function redis(args, token = TOKEN) {
  const resp = await fetch(`${URL}/`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: JSON.stringify(args) });
  return resp.json();
}

async function pipeline(cmds) {
  const resp = await fetch(`${URL}/pipeline`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(cmds) });
  const out = await resp.json();
  for (const e of out) assert.ok(!('error' in e), JSON.stringify(e));
  return out;
}

before(async () => {
  assert.ok(URL && TOKEN && RO_TOKEN, 'run through tests/console/run.sh');
  // One key of every type under seed:, a list and sorted set longer than a page, a hash big
  // enough for HSCAN to page, and 100,000 more keys so the first page comes from SCAN paging.
  const cmds = [
    ['FLUSHDB'],
    ['SET', 'seed:string', 'hello console'],
    ['SET', 'seed:json', '{"a":1,"list":[1,2,3],"nested":{"b":"c"}}'],
    ['HSET', 'seed:hash', 'name', 'Ada', 'lang', 'en'],
    ['SADD', 'seed:set', 'red', 'green', 'blue'],
    ['XADD', 'seed:stream', '*', 'event', 'signup', 'user', '42'],
    ['XADD', 'seed:stream', '*', 'event', 'login', 'user', '42'],
    ['SET', HOSTILE_KEY, HOSTILE_VALUE],
    ['EXPIRE', 'seed:string', 3600],
  ];
  const list = ['RPUSH', 'seed:list'];
  for (let i = 0; i < 120; i++) list.push(`item-${i}`);
  const zset = ['ZADD', 'seed:zset'];
  for (let i = 0; i < 75; i++) zset.push(i, `player-${i}`);
  // Values over 64 bytes: a hashtable, so HSCAN pages it by COUNT.
  const bighash = ['HSET', 'seed:bighash'];
  for (let i = 0; i < 300; i++) bighash.push(`f${i}`, `v${i}-${'x'.repeat(70)}`);
  await pipeline([...cmds, list, zset, bighash]);
  // Binary: the bytes 00 ff 10 80 (base64 AP8QgA==) through redis-cli-free means: SETRANGE of escapes is not
  // possible in JSON text, so write it with a Lua string.
  await pipeline([['EVAL', "return redis.call('SET', KEYS[1], string.char(0, 255, 16, 128))", 1, 'seed:binary']]);
  for (let chunk = 0; chunk < 10; chunk++) {
    const mset = ['MSET'];
    for (let i = 0; i < 10000; i++) mset.push(`bulk:${chunk}:${i}`, 'x');
    await pipeline([mset]);
  }
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  for (const p of profiles) rmSync(p, { recursive: true, force: true });
});

/**
 * A new page in a browser of its own with a fresh profile (--user-data-dir; so a fresh
 * sessionStorage). Records dialogs (an alert() would be an XSS) and script errors.
 */
async function newPage(width = 1280, height = 900) {
  const profile = mkdtempSync(join(tmpdir(), 'restdis-chromium-'));
  profiles.push(profile);
  // launchPersistentContext passes the profile as --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width, height },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  contexts.push(context);
  const page = context.pages()[0] || (await context.newPage());
  page.dialogs = [];
  page.on('dialog', async (d) => {
    page.dialogs.push(d.message());
    await d.dismiss();
  });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  // Refused requests (a wrong token, an error reply) are logged by the browser; they are expected.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) page.errors.push(m.text());
  });
  page.setDefaultTimeout(15000);
  return page;
}

async function signIn(page, token = TOKEN) {
  await page.goto(`${URL}/console`);
  await page.fill('#token', token);
  await page.press('#token', 'Enter');
  await page.waitForSelector('#app:not([hidden])');
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Scans for `pattern` and pages ("Next page") until the scan is complete. */
async function scanFor(page, pattern) {
  await page.fill('#scan-pattern', pattern);
  await page.click('#scan-form button[type=submit]');
  for (;;) {
    await page.waitForFunction(() => /scan complete|more to scan/.test(document.querySelector('#keys-status').textContent));
    if (/scan complete/.test(await page.textContent('#keys-status'))) return;
    await page.click('#keys-more');
  }
}

async function openKey(page, name) {
  await page.locator('#keys-table button.key', { hasText: name }).first().click();
  await opened(page, name);
}

/** Waits until the detail shows `name` with its value's first page in (aria-busy false). */
async function opened(page, name) {
  await page.waitForFunction(
    (n) => document.querySelector('#detail h2')?.textContent === n && document.querySelector('#detail').getAttribute('aria-busy') === 'false',
    name,
  );
}

test('sign in: a wrong token is refused, the right one opens the console', async () => {
  const page = await newPage();
  await page.goto(`${URL}/console`);
  await shot(page, '01-sign-in');
  await page.fill('#token', 'not-a-token');
  await page.press('#token', 'Enter');
  await page.waitForFunction(() => document.querySelector('#signin-error').textContent.includes('refused'));
  await page.fill('#token', TOKEN);
  await page.press('#token', 'Enter');
  await page.waitForSelector('#app:not([hidden])');
  assert.equal(await page.textContent('#who-tenant'), 'tenant default');
  assert.equal(await page.isHidden('#who-ro'), true);
  // The token is in sessionStorage, never in a cookie.
  assert.deepEqual(await page.context().cookies(), []);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('restdis-console-token')), TOKEN);
  // The first page of 100,000+ keys comes from SCAN paging.
  await page.waitForFunction(() => /\d+ keys/.test(document.querySelector('#keys-status').textContent));
  const rows = await page.locator('#keys-table tbody tr').count();
  assert.ok(rows >= 50 && rows < 1000, `first page has ${rows} rows`);
  assert.match(await page.textContent('#keys-status'), /more to scan/);
  await page.click('#keys-more');
  await page.waitForFunction((n) => document.querySelectorAll('#keys-table tbody tr').length > n, rows);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('data browser: every type by its shape, paged', async () => {
  const page = await newPage();
  await signIn(page);
  await scanFor(page, 'seed:*');
  const names = await page.locator('#keys-table button.key').allTextContents();
  for (const k of ['seed:string', 'seed:json', 'seed:hash', 'seed:list', 'seed:set', 'seed:zset', 'seed:stream', 'seed:binary', 'seed:bighash']) {
    assert.ok(names.includes(k), `${k} listed in ${names}`);
  }
  const typeOf = async (k) => page.locator('#keys-table tr', { has: page.locator('button.key', { hasText: k }) }).locator('.type').first().textContent();
  assert.equal(await typeOf('seed:zset'), 'zset');
  assert.equal(await typeOf('seed:stream'), 'stream');

  // Filter by type.
  await page.selectOption('#scan-type', 'hash');
  await scanFor(page, 'seed:*');
  const hashes = await page.locator('#keys-table button.key').allTextContents();
  assert.deepEqual(hashes.sort(), ['seed:bighash', 'seed:hash']);
  await page.selectOption('#scan-type', '');
  await scanFor(page, 'seed:*');

  await openKey(page, 'seed:string');
  assert.equal(await page.textContent('#detail .value-box'), 'hello console');
  assert.match(await page.textContent('#detail .meta'), /TTL: (60|59) min/);

  await openKey(page, 'seed:json');
  assert.equal(await page.textContent('#detail .value-box'), JSON.stringify({ a: 1, list: [1, 2, 3], nested: { b: 'c' } }, null, 2));

  await openKey(page, 'seed:binary');
  assert.match(await page.textContent('#detail .value-box'), /^00000000 {2}00 ff 10 80/);

  await openKey(page, 'seed:list');
  assert.equal(await page.locator('#detail table.members tbody tr').count(), 50);
  assert.match(await page.textContent('#detail .pager'), /1–50 of 120/);
  await page.click('#detail .pager button:has-text("Next")');
  await page.waitForFunction(() => document.querySelector('#detail .pager').textContent.includes('51–100 of 120'));
  assert.equal(await page.locator('#detail table.members tbody tr').first().locator('td.value').textContent(), 'item-50');

  await openKey(page, 'seed:zset');
  assert.match(await page.textContent('#detail .pager'), /1–50 of 75/);
  assert.equal(await page.locator('#detail td.score').first().textContent(), '0');
  await page.click('#detail .pager button:has-text("Next")');
  await page.waitForFunction(() => document.querySelector('#detail .pager').textContent.includes('51–75 of 75'));

  await openKey(page, 'seed:set');
  assert.deepEqual((await page.locator('#detail td.value').allTextContents()).sort(), ['blue', 'green', 'red']);

  await openKey(page, 'seed:bighash');
  const first = await page.locator('#detail table.members tbody tr').count();
  assert.ok(first < 300, `HSCAN pages (${first} fields first)`);
  // Page until the cursor is back at 0 (the last call may bring no field: SCAN's cursor can
  // end after the last field was returned).
  const more = page.locator('#detail button:has-text("More fields")');
  for (let n = first; await more.isVisible(); ) {
    await more.click();
    await page.waitForFunction(
      (before) => document.querySelectorAll('#detail table.members tbody tr').length > before || [...document.querySelectorAll('#detail button')].some((b) => b.textContent === 'More fields' && b.hidden),
      n,
    );
    n = await page.locator('#detail table.members tbody tr').count();
  }
  assert.equal(await page.locator('#detail table.members tbody tr').count(), 300);

  await openKey(page, 'seed:stream');
  const entries = await page.locator('#detail td.value').allTextContents();
  assert.deepEqual(entries, ['event = login\nuser = 42', 'event = signup\nuser = 42']);
  await shot(page, '02-data-browser');

  // Small screens: the page stays usable at 375 px.
  await page.setViewportSize({ width: 375, height: 800 });
  await openKey(page, 'seed:hash');
  await shot(page, '03-data-browser-375px');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('edit a hash field, set a TTL, rename and delete: seen through the API', async () => {
  await redis(['HSET', 'edit:hash', 'name', 'Ada', 'lang', 'en']);
  const page = await newPage();
  await signIn(page);
  await scanFor(page, 'edit:*');
  await openKey(page, 'edit:hash');
  const row = page.locator('#detail tr[data-field="name"]');
  await row.locator('button:has-text("Edit")').click();
  await row.locator('input').fill('Grace');
  await row.locator('input').press('Enter');
  await page.waitForFunction(() => document.querySelector('#detail tr[data-field="name"] td.value')?.textContent === 'Grace');
  assert.deepEqual(await redis(['HGET', 'edit:hash', 'name']), { result: 'Grace' });

  await page.fill('#detail .add input[placeholder=field]', 'city');
  await page.fill('#detail .add input[placeholder=value]', 'London');
  await page.click('#detail .add button');
  await page.waitForSelector('#detail tr[data-field="city"]');
  assert.deepEqual(await redis(['HGET', 'edit:hash', 'city']), { result: 'London' });

  await page.fill('#detail input[aria-label="TTL in seconds"]', '500');
  await page.click('#detail button:has-text("Set TTL")');
  await page.waitForFunction(() => /TTL: \d+ min/.test((document.querySelector('#detail .meta')?.textContent ?? '')));
  const ttl = (await redis(['TTL', 'edit:hash'])).result;
  assert.ok(ttl > 400 && ttl <= 500, `ttl ${ttl}`);
  await page.click('#detail button:has-text("Remove TTL")');
  await page.waitForFunction(() => (document.querySelector('#detail .meta')?.textContent ?? '').includes('TTL: none'));
  assert.deepEqual(await redis(['TTL', 'edit:hash']), { result: -1 });

  await page.fill('#detail input[aria-label="New name"]', 'edit:renamed');
  await page.click('#detail button:has-text("Rename")');
  await opened(page, 'edit:renamed');
  assert.deepEqual(await redis(['EXISTS', 'edit:hash']), { result: 0 });
  await shot(page, '04-edit');

  await page.click('#detail button:has-text("Delete…")');
  await page.click('#detail .confirm button:has-text("Delete")');
  await page.waitForFunction(() => document.querySelector('#detail').textContent.includes('Deleted'));
  assert.deepEqual(await redis(['EXISTS', 'edit:renamed']), { result: 0 });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('command line: a command, errors, history, a pipeline and a transaction', async () => {
  const page = await newPage();
  await signIn(page);
  await page.click('#tab-cli');
  const input = page.locator('#cli-input');
  await input.fill('SET cli:greeting "hello world"');
  await input.press('Enter');
  await input.fill('GET cli:greeting');
  await input.press('Enter');
  await input.fill('HGET cli:greeting x');
  await input.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('#cli-log .entry').length === 3);
  const sent = await page.locator('#cli-log .entry .sent').allTextContents();
  assert.equal(sent[0], 'POST / ["SET","cli:greeting","hello world"]');
  const replies = await page.locator('#cli-log .entry .reply').allTextContents();
  assert.equal(replies[0], '"OK"');
  assert.equal(replies[1], '"hello world"');
  assert.match(replies[2], /^\(error\) WRONGTYPE/);
  assert.equal(await page.locator('#cli-log .entry .reply.error').count(), 1);
  // History: up twice is the GET.
  await input.press('ArrowUp');
  await input.press('ArrowUp');
  assert.equal(await input.inputValue(), 'GET cli:greeting');
  await input.fill('');

  await page.selectOption('#cli-mode', 'pipeline');
  await input.fill('INCR cli:n');
  await input.press('Shift+Enter');
  await input.type('INCR cli:n');
  await input.press('Shift+Enter');
  await input.type('LPOP cli:greeting');
  await input.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('#cli-log .entry').length === 4);
  const last = page.locator('#cli-log .entry').last();
  assert.equal(await last.locator('.sent').textContent(), 'POST /pipeline [["INCR","cli:n"],["INCR","cli:n"],["LPOP","cli:greeting"]]');
  const items = await last.locator('li').allTextContents();
  assert.deepEqual(items.slice(0, 2), ['(integer) 1', '(integer) 2']);
  assert.match(items[2], /^\(error\) WRONGTYPE/);

  await page.selectOption('#cli-mode', 'multi');
  await input.fill('SET cli:a 1\nINCRBY cli:a 41\nMGET cli:a cli:missing');
  await input.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('#cli-log .entry').length === 5);
  const tx = await page.locator('#cli-log .entry').last().locator('li').allTextContents();
  assert.deepEqual(tx, ['"OK"', '(integer) 42', '1) "42"\n2) (nil)']);
  await shot(page, '05-command-line');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a read-only token gets a read-only console, and the server refuses writes anyway', async () => {
  const page = await newPage();
  await signIn(page, RO_TOKEN);
  assert.equal(await page.isVisible('#who-ro'), true);
  // Read-only tokens may not SCAN (Upstash's rule); keys open by name.
  assert.match(await page.textContent('#keys-status'), /cannot SCAN/);
  await page.fill('#open-name', 'seed:hash');
  await page.press('#open-name', 'Enter');
  await opened(page, 'seed:hash');
  assert.equal(await page.locator('#detail button:has-text("Edit")').first().isDisabled(), true);
  assert.equal(await page.locator('#detail button:has-text("Delete…")').isDisabled(), true);
  assert.equal(await page.locator('#detail .add button').isDisabled(), true);
  assert.equal(await page.locator('#detail input[aria-label="New name"]').isDisabled(), true);
  await page.click('#tab-live');
  assert.equal(await page.locator('#pub-send').isDisabled(), true);
  await shot(page, '06-read-only');
  // Whatever the page disables, the token itself cannot write.
  await page.click('#tab-cli');
  await page.fill('#cli-input', 'HSET seed:hash name Mallory');
  await page.press('#cli-input', 'Enter');
  await page.waitForSelector('#cli-log .entry .reply.error');
  assert.match(await page.textContent('#cli-log .entry .reply.error'), /NOPERM|read-only|READONLY/i);
  assert.deepEqual(await redis(['HGET', 'seed:hash', 'name']), { result: 'Ada' });
  await page.context().close();
});

test('live: subscribe to a channel and a pattern, publish, see the messages arrive', async () => {
  const page = await newPage();
  await signIn(page);
  await page.click('#tab-live');
  await page.fill('#sub-names', 'news');
  await page.press('#sub-names', 'Enter');
  await page.waitForFunction(() => document.querySelector('#pub-status').textContent.includes('Subscribed: news'));
  await page.selectOption('#sub-kind', 'psubscribe');
  await page.fill('#sub-names', 'alerts:*');
  await page.press('#sub-names', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('#subs li').length === 2);
  await page.fill('#pub-channel', 'news');
  await page.fill('#pub-message', 'hello, subscribers <b>!</b>');
  await page.press('#pub-message', 'Enter');
  await page.waitForFunction(() => document.querySelector('#live-table tbody td.value')?.textContent === 'hello, subscribers <b>!</b>');
  assert.match(await page.textContent('#pub-status'), /Published to 1 subscriber/);
  // From another client.
  assert.deepEqual(await redis(['PUBLISH', 'alerts:disk', 'disk 91% full']), { result: 1 });
  await page.waitForFunction(() => document.querySelector('#live-table tbody tr td.value')?.textContent === 'disk 91% full');
  assert.equal(await page.textContent('#live-table tbody tr td.field'), 'alerts:disk (alerts:*)');
  await shot(page, '07-live');
  await page.click('#subs li button');
  assert.equal(await page.locator('#subs li').count(), 1);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('hostile key and value are shown as text, never run as markup', async () => {
  const page = await newPage();
  await signIn(page);
  await scanFor(page, 'seed:*');
  await openKey(page, HOSTILE_KEY);
  assert.equal(await page.textContent('#detail h2'), HOSTILE_KEY);
  assert.equal(await page.textContent('#detail .value-box'), HOSTILE_VALUE);
  assert.equal(await page.locator('#detail textarea').inputValue(), HOSTILE_VALUE);
  assert.equal(await page.locator('img').count(), 0, 'no <img> element was made from the key');
  assert.equal(await page.locator('#detail b').count(), 0, 'no <b> element was made from the value');
  assert.equal(await page.locator('script').count(), 1, 'only the console\'s own script');
  await page.click('#tab-cli');
  await page.fill('#cli-input', `GET "${HOSTILE_KEY}"`);
  await page.press('#cli-input', 'Enter');
  await page.waitForSelector('#cli-log .entry .reply');
  assert.equal(await page.textContent('#cli-log .entry .reply'), JSON.stringify(HOSTILE_VALUE));
  await page.click('#tab-browser');
  await shot(page, '08-hostile-key');
  assert.deepEqual(page.dialogs, [], 'no alert() ran');
  await page.context().close();
});

test('usage: quota bars and a chart of sampled points', async () => {
  const page = await newPage();
  await signIn(page);
  await page.click('#tab-usage');
  await page.waitForFunction(() => document.querySelectorAll('#usage-chart circle.point').length >= 3, null, { timeout: 30000 });
  assert.equal(await page.textContent('#usage-tenant'), 'default');
  assert.equal(await page.locator('#usage-bars .bar').count(), 5);
  // run.sh sets daily_commands = 10000 and no monthly bandwidth quota.
  assert.match(await page.textContent('#usage-bars [data-quota="Commands today"]'), /[\d,]+ of 10,000 \([\d.]+ %\)/);
  assert.match(await page.textContent('#usage-bars [data-quota="Bandwidth this month"]'), /\(no quota\)/);
  const fill = Number(await page.getAttribute('#usage-bars [data-quota="Commands today"] rect.fill', 'width'));
  assert.ok(fill > 0 && fill < 100, `bar filled to ${fill} %`);
  assert.equal(await page.locator('#usage-bars [data-quota="Commands today"] line.mark[x1="80"]').count(), 1, 'the 80 % line');
  assert.equal(await page.locator('#usage-chart polyline.series').count(), 1);
  await shot(page, '09-usage');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('usage with the admin token: every tenant side by side, and nothing else', async () => {
  const page = await newPage();
  await signIn(page, ADMIN_TOKEN);
  assert.equal(await page.textContent('#who-tenant'), 'admin: all tenants');
  await page.waitForSelector('#usage-all-table tbody tr[data-tenant="default"]');
  assert.equal(await page.isVisible('#tab-browser'), false, 'no data browser for the admin token');
  assert.equal(await page.isVisible('#usage-chart'), false);
  assert.match(await page.textContent('#usage-all-table tr[data-tenant="default"]'), /of 10,000/);
  await shot(page, '11-usage-admin');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('dark mode renders', async () => {
  const page = await newPage();
  await page.emulateMedia({ colorScheme: 'dark' });
  await signIn(page);
  await scanFor(page, 'seed:*');
  await openKey(page, 'seed:zset');
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(20, 21, 24)');
  await shot(page, '10-dark');
  await page.context().close();
});
