// The console's pure helpers (assets/console/values.js), run in Node: the command-line parser,
// the reply formatter, base64 decoding and hex dumps.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommandLine, formatReply, decode, hexDump, prettyJson, formatTtl } from '../../../assets/console/values.js';

test('command lines split on spaces and honour quotes and escapes', () => {
  assert.deepEqual(parseCommandLine('SET k v'), ['SET', 'k', 'v']);
  assert.deepEqual(parseCommandLine('  SET   "a b"  \'c d\' '), ['SET', 'a b', 'c d']);
  assert.deepEqual(parseCommandLine('SET k "line\\nnext \\"q\\" \\\\"'), ['SET', 'k', 'line\nnext "q" \\']);
  assert.deepEqual(parseCommandLine("SET k 'no \\n escape'"), ['SET', 'k', 'no \\n escape']);
  assert.deepEqual(parseCommandLine('SET k ""'), ['SET', 'k', '']);
  assert.deepEqual(parseCommandLine('GET "<img src=x onerror=alert(1)>"'), ['GET', '<img src=x onerror=alert(1)>']);
  assert.throws(() => parseCommandLine('SET "k v'), /unbalanced/);
});

test('replies are formatted as redis-cli shows them', () => {
  assert.equal(formatReply('OK'), '"OK"');
  assert.equal(formatReply(3), '(integer) 3');
  assert.equal(formatReply(null), '(nil)');
  assert.equal(formatReply([]), '(empty array)');
  assert.equal(formatReply(['a', null, ['b', 2]]), '1) "a"\n2) (nil)\n3) 1) "b"\n   2) (integer) 2');
});

test('base64 values decode to exact bytes, text only when UTF-8', () => {
  assert.equal(decode(Buffer.from('héllo').toString('base64')).text, 'héllo');
  const bin = decode(Buffer.from([0, 255, 16, 128]).toString('base64'));
  assert.equal(bin.text, null);
  assert.deepEqual([...bin.bytes], [0, 255, 16, 128]);
  assert.match(hexDump(bin.bytes), /^00000000 {2}00 ff 10 80 +\.\.\.\.$/);
  assert.equal(prettyJson('{"a":[1]}'), '{\n  "a": [\n    1\n  ]\n}');
  assert.equal(prettyJson('"just a string"'), null);
  assert.equal(prettyJson('{broken'), null);
  assert.equal(formatTtl(-1), 'none');
  assert.equal(formatTtl(90_000), '90 s');
});
