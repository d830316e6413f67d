// Pure helpers: base64 replies to bytes and text, hex dumps, JSON pretty-printing, the
// command-line parser and the redis-cli-like reply formatter.

const strict = new TextDecoder('utf-8', { fatal: true });
const lossy = new TextDecoder('utf-8');

export function b64ToBytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A base64 reply string as { bytes, text } (text null for bytes that are not UTF-8). */
export function decode(b64) {
  if (b64 === null || b64 === undefined) return null;
  if (typeof b64 !== 'string') return { bytes: new Uint8Array(), text: String(b64) };
  const bytes = b64ToBytes(b64);
  let text = null;
  try {
    text = strict.decode(bytes);
  } catch {
    text = null;
  }
  return { bytes, text };
}

/** The text of a base64 reply, lossy for non-UTF-8 bytes (for names and numbers). */
export function decodeText(b64) {
  if (typeof b64 !== 'string') return String(b64);
  return lossy.decode(b64ToBytes(b64));
}

/** A hex dump: offset, 16 bytes in hex, and their printable ASCII. */
export function hexDump(bytes) {
  const lines = [];
  for (let off = 0; off < bytes.length; off += 16) {
    const row = bytes.subarray(off, off + 16);
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(row, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join('\n');
}

/** A short one-line form of a value for tables: its text, or 0x… hex for binary. */
export function short(v) {
  if (!v) return '(nil)';
  if (v.text !== null) return v.text;
  return '0x' + Array.from(v.bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** JSON text pretty-printed, or null when it is not a JSON object or array. */
export function prettyJson(text) {
  const t = text.trim();
  if (!(t.startsWith('{') || t.startsWith('['))) return null;
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch {
    return null;
  }
}

/** Splits a command line into arguments: spaces separate, "..." and '...' quote, \ escapes in "". */
export function parseCommandLine(line) {
  const args = [];
  let cur = '';
  let inArg = false;
  let quote = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) {
        quote = null;
      } else if (c === '\\' && quote === '"' && i + 1 < line.length) {
        const n = line[++i];
        cur += { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\' }[n] ?? '\\' + n;
      } else {
        cur += c;
      }
    } else if (c === '"' || c === "'") {
      quote = c;
      inArg = true;
    } else if (/\s/.test(c)) {
      if (inArg) args.push(cur);
      cur = '';
      inArg = false;
    } else {
      cur += c;
      inArg = true;
    }
  }
  if (quote) throw new Error(`unbalanced ${quote} quote`);
  if (inArg) args.push(cur);
  return args;
}

/** A reply as redis-cli shows it. */
export function formatReply(v, indent = '') {
  if (v === null || v === undefined) return '(nil)';
  if (typeof v === 'number') return `(integer) ${v}`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) {
    if (v.length === 0) return '(empty array)';
    const width = String(v.length).length;
    return v
      .map((item, i) => {
        const label = `${String(i + 1).padStart(width)}) `;
        const inner = formatReply(item, indent + ' '.repeat(label.length));
        return (i === 0 ? '' : indent) + label + inner;
      })
      .join('\n');
  }
  return JSON.stringify(v);
}

/** A TTL in milliseconds (PTTL's answer) for people. */
export function formatTtl(ms) {
  if (ms === -1) return 'none';
  if (ms === -2) return 'gone';
  if (typeof ms !== 'number') return '?';
  const s = Math.ceil(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}
