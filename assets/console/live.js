// Live pub/sub: /subscribe and /psubscribe read with fetch and a ReadableStream (so the token
// travels in the Authorization header, not the URL), messages as they arrive, and PUBLISH.

import { h, $, guard } from './dom.js';

const MAX_ROWS = 500;

export function createLive({ api, readOnly }) {
  const subs = $('#subs');
  const tbody = $('#live-table tbody');
  const status = $('#pub-status');

  function show(channel, message, cls) {
    const time = new Date().toLocaleTimeString();
    tbody.prepend(h('tr', { class: cls || '' }, h('td', { class: 'muted', text: time }), h('td', { class: 'field', text: channel }), h('td', { class: 'value', text: message })));
    while (tbody.rows.length > MAX_ROWS) tbody.lastElementChild.remove();
  }

  function onFrame(frame) {
    const parts = frame.split(',');
    const kind = parts[0];
    if (kind === 'message') {
      show(parts[1], parts.slice(2).join(','));
    } else if (kind === 'pmessage') {
      show(`${parts[2]} (${parts[1]})`, parts.slice(3).join(','));
    } else if (kind === 'subscribe' || kind === 'psubscribe') {
      status.textContent = `Subscribed: ${parts.slice(1, -1).join(',')}`;
    } else if (kind === 'error') {
      show('(stream)', frame, 'error');
    }
  }

  async function subscribe(kind, names) {
    const ctrl = new AbortController();
    const stop = h('button', { type: 'button', class: 'small ghost', text: 'Stop', 'aria-label': `Stop ${names.join(' ')}` });
    const item = h('li', {}, h('span', { text: `${kind === 'psubscribe' ? 'pattern' : 'channel'}: ${names.join(' ')}` }), stop);
    stop.addEventListener('click', () => {
      ctrl.abort();
      item.remove();
    });
    await guard(status, async () => {
      await api.stream(kind, names, onFrame, ctrl.signal, (e) => {
        item.remove();
        if (e) status.textContent = `Stream ended: ${e.message}`;
      });
      subs.append(item);
    });
  }

  $('#sub-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const names = $('#sub-names').value.split(/\s+/).filter(Boolean);
    if (names.length) subscribe($('#sub-kind').value, names);
  });
  const send = $('#pub-send');
  if (readOnly) {
    send.disabled = true;
    send.title = 'A read-only token cannot publish';
  }
  $('#pub-form').addEventListener('submit', (e) => {
    e.preventDefault();
    guard(status, async () => {
      const n = await api.cmd(['PUBLISH', $('#pub-channel').value, $('#pub-message').value]);
      status.textContent = `Published to ${n} subscriber${n === 1 ? '' : 's'}.`;
    });
  });
  return { subscribe };
}
