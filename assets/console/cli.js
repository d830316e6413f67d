// The command line: one command (POST /), or a /pipeline or /multi-exec batch of one command
// per line. Shows what is sent in its JSON form and the reply as redis-cli would; errors as
// errors. History with the arrow keys, kept for this tab.

import { h, $ } from './dom.js';
import { parseCommandLine, formatReply } from './values.js';

const HISTORY_KEY = 'restdis-console-history';

export function createCli({ api }) {
  const form = $('#cli-form');
  const input = $('#cli-input');
  const mode = $('#cli-mode');
  const log = $('#cli-log');
  let history = [];
  try {
    history = JSON.parse(sessionStorage.getItem(HISTORY_KEY) || '[]');
  } catch {
    history = [];
  }
  let at = history.length;

  const fit = () => {
    input.rows = Math.min(12, Math.max(1, input.value.split('\n').length));
  };

  function entry(sent, replyNode) {
    const e = h('div', { class: 'entry' }, h('div', { class: 'sent' }, h('code', { text: sent })), replyNode);
    log.append(e);
    log.scrollTop = log.scrollHeight;
  }

  async function run() {
    const text = input.value.trim();
    if (!text) return;
    history = history.filter((x) => x !== text).concat(text).slice(-100);
    sessionStorage.setItem(HISTORY_KEY, JSON.stringify(history));
    at = history.length;
    const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
    let cmds;
    try {
      cmds = lines.map(parseCommandLine).filter((c) => c.length);
    } catch (e) {
      entry(text, h('pre', { class: 'reply error', text: `(error) ${e.message}` }));
      return;
    }
    input.value = '';
    fit();
    const kind = mode.value;
    if (kind === 'single') {
      if (cmds.length !== 1) {
        entry(text, h('pre', { class: 'reply error', text: '(error) one command at a time here: choose /pipeline or /multi-exec for several lines' }));
        return;
      }
      const sent = `POST / ${JSON.stringify(cmds[0])}`;
      try {
        const { data } = await api.post('/', cmds[0]);
        if (data && 'error' in data) entry(sent, h('pre', { class: 'reply error', text: `(error) ${data.error}` }));
        else entry(sent, h('pre', { class: 'reply', text: formatReply(data.result) }));
      } catch (e) {
        entry(sent, h('pre', { class: 'reply error', text: `(error) ${e.message}` }));
      }
      return;
    }
    const path = kind === 'multi' ? '/multi-exec' : '/pipeline';
    const sent = `POST ${path} ${JSON.stringify(cmds)}`;
    try {
      const entries = await api.batch(kind, cmds);
      const list = h('ol', { class: 'reply batch' });
      entries.forEach((e) => {
        list.append('error' in e ? h('li', {}, h('pre', { class: 'error', text: `(error) ${e.error}` })) : h('li', {}, h('pre', { text: formatReply(e.result) })));
      });
      entry(sent, list);
    } catch (e) {
      entry(sent, h('pre', { class: 'reply error', text: `(error) ${e.message}` }));
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    run();
  });
  input.addEventListener('input', fit);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      run();
    } else if (e.key === 'ArrowUp' && !input.value.slice(0, input.selectionStart).includes('\n')) {
      if (at > 0) {
        e.preventDefault();
        input.value = history[--at];
        fit();
      }
    } else if (e.key === 'ArrowDown' && !input.value.slice(input.selectionEnd).includes('\n')) {
      if (at < history.length) {
        e.preventDefault();
        at++;
        input.value = at < history.length ? history[at] : '';
        fit();
      }
    }
  });
  mode.addEventListener('change', () => input.focus());
  return { run };
}
