// The console's entry point: sign-in (the token lives in sessionStorage for this tab only),
// the tabs, and the four sections. Each section talks to restdis through the REST protocol
// with the signed-in token, so policy and read-only tokens apply as to any client.

import { $ } from './dom.js';
import { Api } from './api.js';
import { createBrowser } from './browser.js';
import { createCli } from './cli.js';
import { createLive } from './live.js';
import { createUsage } from './usage.js';

const TOKEN_KEY = 'restdis-console-token';

async function signIn(token) {
  const api = new Api(token);
  const session = await api.session();
  sessionStorage.setItem(TOKEN_KEY, token);
  start(api, session);
}

function start(api, session) {
  if (session.admin) return startAdmin(api);
  const readOnly = !!session.read_only;
  document.body.classList.toggle('read-only', readOnly);
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#who').hidden = false;
  $('#who-tenant').textContent = `tenant ${session.tenant}`;
  $('#who-ro').hidden = !readOnly;
  const browser = createBrowser({ api, readOnly });
  createCli({ api });
  createLive({ api, readOnly });
  createUsage({ api }).start();
  tabs();
  browser.scan(true);
}

// The admin token reaches no data (it is no tenant's token): only the Usage tab, with every
// tenant side by side.
function startAdmin(api) {
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#who').hidden = false;
  $('#who-tenant').textContent = 'admin: all tenants';
  for (const tab of document.querySelectorAll('[role=tab]')) {
    tab.hidden = tab.id !== 'tab-usage';
  }
  for (const id of ['usage-bars', 'usage-tenant']) $(`#${id}`).closest('p, div').hidden = true;
  $('.chart').hidden = true;
  $('#usage-all').hidden = false;
  tabs();
  $('#tab-usage').click();
  createUsage({ api, admin: true }).start();
}

function tabs() {
  const list = [...document.querySelectorAll('[role=tab]')];
  const select = (tab, focus) => {
    for (const t of list) {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute('aria-controls')).hidden = !on;
    }
    if (focus) tab.focus();
  };
  list.forEach((tab, i) => {
    tab.addEventListener('click', () => select(tab, false));
    tab.addEventListener('keydown', (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (step) select(list[(i + step + list.length) % list.length], true);
      if (e.key === 'Home') select(list[0], true);
      if (e.key === 'End') select(list[list.length - 1], true);
    });
  });
}

$('#signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const error = $('#signin-error');
  error.textContent = '';
  try {
    await signIn($('#token').value.trim());
  } catch (err) {
    error.textContent = err.status === 401 ? 'That token was refused.' : `Cannot sign in: ${err.message}`;
  }
});

$('#signout').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) {
  signIn(saved).catch(() => {
    sessionStorage.removeItem(TOKEN_KEY);
    $('#token').focus();
  });
} else {
  $('#token').focus();
}
