// The data browser: keys by pattern and type with SCAN (paged by cursor, never KEYS), their
// TTLs with one pipeline of PTTL, and each type shown by its shape, paged. Every read uses
// `Upstash-Encoding: base64` so values arrive as exact bytes; text shows as text, JSON
// pretty-printed, anything else as hex.

import { h, $, guard } from './dom.js';
import { decode, decodeText, short, hexDump, prettyJson, formatTtl } from './values.js';

const PAGE = 50; // keys (and members) per page
const SCAN_COUNT = 200; // SCAN's first COUNT hint; doubled (up to MAX_SCAN_COUNT) while a sparse
const MAX_SCAN_COUNT = 10000; // pattern finds little, so a page needs few round trips
const STRING_CHUNK = 64 * 1024; // bytes of a string per GETRANGE

export function createBrowser({ api, readOnly }) {
  const form = $('#scan-form');
  const tbody = $('#keys-table tbody');
  const status = $('#keys-status');
  const more = $('#keys-more');
  const detail = $('#detail');
  let cursor = '0';
  let shown = 0;
  let scanning = false;
  let generation = 0;

  const edit = (props = {}) => ({ ...props, disabled: readOnly || props.disabled });

  async function scan(reset) {
    if (readOnly) {
      // Read-only tokens may not SCAN (as on Upstash: walking the keyspace is not a read of
      // known keys); they open keys by name.
      status.textContent = 'A read-only token cannot SCAN the keyspace: open a key by its name.';
      return;
    }
    if (scanning && !reset) return;
    const gen = reset ? ++generation : generation;
    scanning = true;
    if (reset) {
      cursor = '0';
      shown = 0;
      tbody.replaceChildren();
    }
    more.hidden = true;
    status.textContent = 'Scanning…';
    const pattern = $('#scan-pattern').value || '*';
    const type = $('#scan-type').value;
    await guard(status, async () => {
      const found = [];
      let calls = 0;
      let count = SCAN_COUNT;
      do {
        const args = ['SCAN', cursor, 'MATCH', pattern, 'COUNT', count];
        if (type) args.push('TYPE', type);
        args.push('WITHTYPE');
        const [next, flat] = await api.cmd(args, { base64: true });
        if (gen !== generation) return;
        cursor = decodeText(next);
        for (let i = 0; i + 1 < flat.length; i += 2) {
          found.push({ name: decodeText(flat[i]), type: decodeText(flat[i + 1]) });
        }
        calls++;
        if (found.length < PAGE / 2) count = Math.min(count * 2, MAX_SCAN_COUNT);
      } while (cursor !== '0' && found.length < PAGE && calls < 25);
      const ttls = found.length ? await api.pipeline(found.map((k) => ['PTTL', k.name])) : [];
      if (gen !== generation) return;
      found.forEach((k, i) => tbody.append(row(k, ttls[i])));
      shown += found.length;
      const end = cursor === '0';
      status.textContent = `${shown} key${shown === 1 ? '' : 's'}${end ? ', scan complete' : ', more to scan'}`;
      more.hidden = end;
    });
    scanning = false;
  }

  function row(k, ttl) {
    return h(
      'tr',
      { dataset: { key: k.name } },
      h('td', {}, h('button', { type: 'button', class: 'link key', text: k.name, onclick: () => open(k.name) })),
      h('td', {}, h('span', { class: `type type-${k.type}`, text: k.type })),
      h('td', { class: 'ttl', text: formatTtl(ttl) }),
    );
  }

  function dropRow(name) {
    for (const tr of tbody.rows) if (tr.dataset.key === name) tr.remove();
  }

  async function open(name) {
    detail.setAttribute('aria-busy', 'true');
    detail.replaceChildren(h('p', { class: 'muted', text: 'Loading…' }));
    const err = h('p', { class: 'error', role: 'alert' });
    await guard(err, async () => {
      const [typeB64, ttl] = await api.pipeline([['TYPE', name], ['PTTL', name]], { base64: true });
      const type = decodeText(typeB64);
      if (type === 'none') {
        detail.replaceChildren(h('p', { class: 'muted', text: 'This key no longer exists.' }));
        dropRow(name);
        return;
      }
      const body = h('div', { class: 'body' });
      detail.replaceChildren(
        h('h2', { class: 'key-name', text: name }),
        h('p', { class: 'meta muted' }, h('span', { class: `type type-${type}`, text: type }), ` TTL: ${formatTtl(ttl)}`),
        actions(name),
        err,
        body,
      );
      // On a narrow screen the detail is below the list: bring it into view.
      if (window.matchMedia('(max-width: 899px)').matches) detail.scrollIntoView({ block: 'start' });
      const view = VIEWS[type];
      if (view) await view({ api, name, body, edit, err, readOnly });
      else body.append(h('p', { class: 'muted', text: `No viewer for the type ${type}; use the command line.` }));
    });
    if (!err.isConnected && err.textContent) detail.replaceChildren(err);
    detail.setAttribute('aria-busy', 'false');
  }

  function actions(name) {
    const box = h('div', { class: 'actions' });
    const ttlInput = h('input', edit({ type: 'number', min: '1', placeholder: 'seconds', 'aria-label': 'TTL in seconds', required: true }));
    const renameInput = h('input', edit({ placeholder: 'new name', 'aria-label': 'New name', spellcheck: 'false', required: true }));
    const done = (p) => p.then(() => open(name));
    box.append(
      h(
        'form',
        { onsubmit: (e) => (e.preventDefault(), done(api.cmd(['EXPIRE', name, ttlInput.value]))) },
        ttlInput,
        h('button', edit({ type: 'submit', class: 'small', text: 'Set TTL' })),
      ),
      h('button', edit({ type: 'button', class: 'small', text: 'Remove TTL', onclick: () => done(api.cmd(['PERSIST', name])) })),
      h(
        'form',
        {
          onsubmit: async (e) => {
            e.preventDefault();
            await guard(detail.querySelector('.error'), async () => {
              await api.cmd(['RENAME', name, renameInput.value]);
              dropRow(name);
              open(renameInput.value);
            });
          },
        },
        renameInput,
        h('button', edit({ type: 'submit', class: 'small', text: 'Rename' })),
      ),
      h('button', edit({ type: 'button', class: 'small danger', text: 'Delete…', onclick: () => confirmDelete(name, box) })),
    );
    return box;
  }

  function confirmDelete(name, box) {
    const cancel = h('button', { type: 'button', class: 'small ghost', text: 'Cancel' });
    const yes = h('button', { type: 'button', class: 'small danger', text: 'Delete' });
    const bar = h('div', { class: 'confirm', role: 'alertdialog', 'aria-label': 'Confirm delete' }, h('span', { text: `Delete the key ${name}?` }), yes, cancel);
    cancel.addEventListener('click', () => bar.remove());
    yes.addEventListener('click', async () => {
      await guard(detail.querySelector('.error'), async () => {
        await api.cmd(['DEL', name]);
        dropRow(name);
        detail.replaceChildren(h('p', { class: 'ok', text: `Deleted ${name}.` }));
      });
    });
    box.after(bar);
    cancel.focus();
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    scan(true);
  });
  more.addEventListener('click', () => scan(false));
  $('#open-form').addEventListener('submit', (e) => {
    e.preventDefault();
    open($('#open-name').value);
  });
  return { scan, open };
}

/** A table of rows with a "More" or prev/next pager below it. */
function table(headers) {
  const tbody = h('tbody');
  const el = h('div', { class: 'scroll' }, h('table', { class: 'members' }, h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col', text: t })))), tbody));
  return { el, tbody };
}

function valueCell(v, cls = 'value') {
  return h('td', { class: v && v.text === null ? `${cls} binary` : cls, text: short(v) });
}

/** A cell whose value can be edited in place: Edit → input → Save runs `save(text)`. */
function editable(td, v, { edit, readOnly, save }) {
  const button = h('button', edit({ type: 'button', class: 'small', text: 'Edit', disabled: readOnly || (v && v.text === null) }));
  button.addEventListener('click', () => {
    const input = h('input', { value: v ? v.text : '', 'aria-label': 'New value', spellcheck: 'false' });
    const f = h(
      'form',
      {
        class: 'inline-edit',
        onsubmit: async (e) => {
          e.preventDefault();
          await save(input.value);
          td.textContent = input.value;
          td.classList.remove('binary');
        },
      },
      input,
      h('button', { type: 'submit', class: 'small', text: 'Save' }),
    );
    td.replaceChildren(f);
    input.focus();
  });
  return button;
}

function addForm(fields, label, { edit, err }, run) {
  const inputs = fields.map((f) => h('input', edit({ placeholder: f, 'aria-label': f, spellcheck: 'false' })));
  return h(
    'form',
    {
      class: 'add',
      onsubmit: async (e) => {
        e.preventDefault();
        await guard(err, () => run(inputs.map((i) => i.value)));
      },
    },
    inputs,
    h('button', edit({ type: 'submit', class: 'small', text: label })),
  );
}

function pager(onPrev, onNext) {
  const info = h('span', { class: 'muted' });
  const prev = h('button', { type: 'button', class: 'small', text: 'Previous', onclick: onPrev });
  const next = h('button', { type: 'button', class: 'small', text: 'Next', onclick: onNext });
  return { el: h('div', { class: 'pager' }, info, h('span', {}, prev, ' ', next)), info, prev, next };
}

const VIEWS = {
  async string({ api, name, body, edit, err, readOnly }) {
    let len = await api.cmd(['STRLEN', name]);
    let bytes = new Uint8Array();
    const box = h('pre', { class: 'value-box' });
    const info = h('p', { class: 'muted' });
    const more = h('button', { type: 'button', class: 'small', text: 'Load more' });
    const editor = h('div');
    const load = async () => {
      const start = bytes.length;
      const end = Math.min(len, start + STRING_CHUNK) - 1;
      const chunk = decode(await api.cmd(['GETRANGE', name, start, end], { base64: true }));
      const all = new Uint8Array(bytes.length + chunk.bytes.length);
      all.set(bytes);
      all.set(chunk.bytes, bytes.length);
      bytes = all;
      render();
    };
    const render = () => {
      const whole = bytes.length >= len;
      // A chunk may end inside a UTF-8 sequence: try without its last few bytes too.
      let v = decode(btoaBytes(bytes));
      for (let cut = 1; !whole && v.text === null && cut <= 3 && cut < bytes.length; cut++) {
        v = decode(btoaBytes(bytes.subarray(0, bytes.length - cut)));
      }
      let kind;
      if (v.text !== null) {
        const pretty = whole ? prettyJson(v.text) : null;
        kind = pretty !== null ? 'JSON' : 'text';
        box.textContent = pretty !== null ? pretty : v.text;
      } else {
        kind = 'binary, hex';
        box.textContent = hexDump(bytes);
      }
      box.dataset.kind = kind;
      info.textContent = `${len} bytes (${kind})${whole ? '' : `; showing the first ${bytes.length}`}`;
      more.hidden = whole;
      editor.replaceChildren();
      if (whole && v.text !== null) {
        const area = h('textarea', edit({ rows: 6, 'aria-label': 'Value', spellcheck: 'false' }));
        area.value = v.text;
        editor.append(
          h(
            'form',
            {
              class: 'add',
              onsubmit: async (e) => {
                e.preventDefault();
                await guard(err, async () => {
                  await api.cmd(['SET', name, area.value, 'KEEPTTL']);
                  bytes = new TextEncoder().encode(area.value);
                  len = bytes.length;
                  render();
                });
              },
            },
            area,
            h('button', edit({ type: 'submit', class: 'small', text: 'Save value' })),
          ),
        );
      } else if (!readOnly && whole) {
        editor.append(h('p', { class: 'muted', text: 'Binary values are not edited here; use the command line.' }));
      }
    };
    more.addEventListener('click', () => guard(err, load));
    body.append(info, box, more, editor);
    if (len > 0) await load();
    else render();
  },

  async hash({ api, name, body, edit, err, readOnly }) {
    const t = table(['Field', 'Value', '']);
    let cursor = '0';
    const more = h('button', { type: 'button', class: 'small', text: 'More fields' });
    const count = await api.cmd(['HLEN', name]);
    const info = h('p', { class: 'muted', text: `${count} field${count === 1 ? '' : 's'}` });
    const add = (field, value) => {
      const td = valueCell(value);
      const tr = h('tr', { dataset: { field: short(field) } }, h('td', { class: 'field', text: short(field) }), td);
      tr.append(
        h(
          'td',
          { class: 'row-actions' },
          editable(td, value, { edit, readOnly, save: (text) => guard(err, () => api.cmd(['HSET', name, short(field), text])) }),
          ' ',
          h('button', edit({ type: 'button', class: 'small', text: 'Remove', onclick: () => guard(err, async () => (await api.cmd(['HDEL', name, short(field)]), tr.remove())) })),
        ),
      );
      t.tbody.append(tr);
    };
    const page = async () => {
      const [next, flat] = await api.cmd(['HSCAN', name, cursor, 'COUNT', PAGE], { base64: true });
      cursor = decodeText(next);
      for (let i = 0; i + 1 < flat.length; i += 2) add(decode(flat[i]), decode(flat[i + 1]));
      more.hidden = cursor === '0';
    };
    more.addEventListener('click', () => guard(err, page));
    body.append(
      info,
      t.el,
      more,
      addForm(['field', 'value'], 'Set field', { edit, err }, async ([f, v]) => {
        await api.cmd(['HSET', name, f, v]);
        for (const tr of t.tbody.rows) if (tr.dataset.field === f) tr.remove();
        add({ text: f, bytes: null }, { text: v, bytes: null });
      }),
    );
    await page();
  },

  async list({ api, name, body, edit, err, readOnly }) {
    const t = table(['#', 'Element', '']);
    let start = 0;
    let len = 0;
    const p = pager(() => guard(err, () => go(Math.max(0, start - PAGE))), () => guard(err, () => go(start + PAGE)));
    const go = async (s) => {
      const [n, items] = await api.pipeline([['LLEN', name], ['LRANGE', name, s, s + PAGE - 1]], { base64: true });
      len = n;
      start = s;
      t.tbody.replaceChildren();
      items.forEach((b64, i) => {
        const v = decode(b64);
        const td = valueCell(v);
        const index = s + i;
        t.tbody.append(
          h(
            'tr',
            {},
            h('td', { class: 'muted', text: index }),
            td,
            h('td', { class: 'row-actions' }, editable(td, v, { edit, readOnly, save: (text) => guard(err, () => api.cmd(['LSET', name, index, text])) })),
          ),
        );
      });
      p.info.textContent = len ? `${start + 1}–${start + items.length} of ${len}` : 'empty';
      p.prev.disabled = start === 0;
      p.next.disabled = start + PAGE >= len;
    };
    body.append(t.el, p.el, addForm(['element'], 'Append (RPUSH)', { edit, err }, async ([v]) => {
      const n = await api.cmd(['RPUSH', name, v]);
      await go(Math.floor((n - 1) / PAGE) * PAGE);
    }));
    await go(0);
  },

  async set({ api, name, body, edit, err }) {
    const t = table(['Member', '']);
    let cursor = '0';
    const more = h('button', { type: 'button', class: 'small', text: 'More members' });
    const count = await api.cmd(['SCARD', name]);
    const add = (v) => {
      const tr = h('tr', {}, valueCell(v));
      tr.append(h('td', { class: 'row-actions' }, h('button', edit({ type: 'button', class: 'small', text: 'Remove', disabled: v.text === null, onclick: () => guard(err, async () => (await api.cmd(['SREM', name, v.text]), tr.remove())) }))));
      t.tbody.append(tr);
    };
    const page = async () => {
      const [next, members] = await api.cmd(['SSCAN', name, cursor, 'COUNT', PAGE], { base64: true });
      cursor = decodeText(next);
      members.forEach((m) => add(decode(m)));
      more.hidden = cursor === '0';
    };
    more.addEventListener('click', () => guard(err, page));
    body.append(h('p', { class: 'muted', text: `${count} member${count === 1 ? '' : 's'}` }), t.el, more, addForm(['member'], 'Add (SADD)', { edit, err }, async ([m]) => {
      if (await api.cmd(['SADD', name, m])) add({ text: m, bytes: null });
    }));
    await page();
  },

  async zset({ api, name, body, edit, err, readOnly }) {
    const t = table(['#', 'Member', 'Score', '']);
    let start = 0;
    const p = pager(() => guard(err, () => go(Math.max(0, start - PAGE))), () => guard(err, () => go(start + PAGE)));
    const go = async (s) => {
      const [len, flat] = await api.pipeline([['ZCARD', name], ['ZRANGE', name, s, s + PAGE - 1, 'WITHSCORES']], { base64: true });
      start = s;
      t.tbody.replaceChildren();
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const member = decode(flat[i]);
        const score = decode(flat[i + 1]);
        const td = valueCell(score, 'value score');
        t.tbody.append(
          h(
            'tr',
            {},
            h('td', { class: 'muted', text: s + i / 2 }),
            valueCell(member),
            td,
            h(
              'td',
              { class: 'row-actions' },
              editable(td, score, { edit, readOnly: readOnly || member.text === null, save: (text) => guard(err, () => api.cmd(['ZADD', name, text, member.text])) }),
              ' ',
              h('button', edit({ type: 'button', class: 'small', text: 'Remove', disabled: member.text === null, onclick: () => guard(err, async () => (await api.cmd(['ZREM', name, member.text]), go(start))) })),
            ),
          ),
        );
      }
      const shownNow = flat.length / 2;
      p.info.textContent = len ? `${start + 1}–${start + shownNow} of ${len} (by score)` : 'empty';
      p.prev.disabled = start === 0;
      p.next.disabled = start + PAGE >= len;
    };
    body.append(t.el, p.el, addForm(['score', 'member'], 'Add (ZADD)', { edit, err }, async ([score, m]) => {
      await api.cmd(['ZADD', name, score, m]);
      await go(start);
    }));
    await go(0);
  },

  async stream({ api, name, body, edit, err }) {
    const t = table(['ID', 'Fields', '']);
    const STREAM_PAGE = 20;
    let pages = []; // the first ID of each page shown, newest first
    const p = pager(
      () => guard(err, () => go(pages.length > 1 ? (pages.pop(), pages.pop()) : '+')),
      () => guard(err, () => go(null)),
    );
    let last = null;
    const go = async (from) => {
      const startAt = from === null ? `(${last}` : from;
      const [len, entries] = await api.pipeline([['XLEN', name], ['XREVRANGE', name, startAt, '-', 'COUNT', STREAM_PAGE]], { base64: true });
      t.tbody.replaceChildren();
      for (const [idB64, fields] of entries) {
        const id = decodeText(idB64);
        const lines = [];
        for (let i = 0; i + 1 < fields.length; i += 2) lines.push(`${short(decode(fields[i]))} = ${short(decode(fields[i + 1]))}`);
        const tr = h('tr', {}, h('td', { class: 'field', text: id }), h('td', { class: 'value', text: lines.join('\n') }));
        tr.append(h('td', { class: 'row-actions' }, h('button', edit({ type: 'button', class: 'small', text: 'Remove', onclick: () => guard(err, async () => (await api.cmd(['XDEL', name, id]), tr.remove())) }))));
        t.tbody.append(tr);
      }
      if (entries.length) {
        pages.push(decodeText(entries[0][0]));
        last = decodeText(entries[entries.length - 1][0]);
      }
      p.info.textContent = `${len} entries, newest first; page ${pages.length}`;
      p.prev.disabled = pages.length <= 1;
      p.next.disabled = entries.length < STREAM_PAGE;
    };
    body.append(t.el, p.el, addForm(['field', 'value'], 'Add entry (XADD *)', { edit, err }, async ([f, v]) => {
      await api.cmd(['XADD', name, '*', f, v]);
      pages = [];
      await go('+');
    }));
    await go('+');
  },
};

function btoaBytes(bytes) {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}
