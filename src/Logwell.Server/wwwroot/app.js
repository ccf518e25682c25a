// The web UI's entry: the sign-in, the page router (the URL is the state: path for the page, query string for its
// view), the theme and the keys every page shares.
import { del, request, setCsrf } from './api.js';
import * as search from './search.js';
import { can, session, setSession } from './session.js';
import { h, replace, toast } from './util.js';

const pages = {
  '/': () => Promise.resolve(search),
  '/indexsets': () => import('./indexsets.js'),
  '/operations': () => import('./operations.js'),
  '/collection': () => import('./collection.js'),
  '/access': () => import('./access.js'),
  '/audit': () => import('./audit.js'),
};
const titles = { '/': 'Search', '/indexsets': 'Index sets', '/operations': 'Operations', '/collection': 'Collection', '/access': 'Access', '/audit': 'Audit log' };
const ThemeKey = 'logwell.theme';

let current = null;
let generation = 0;

async function show() {
  if (!session()) return;
  const load = pages[location.pathname] ?? pages['/'];
  const mine = ++generation;
  const module = await load();
  if (mine !== generation || !session()) return;
  current?.unmount?.();
  const main = document.getElementById('main');
  main.replaceChildren();
  const page = location.pathname in pages ? location.pathname : '/';
  for (const link of document.querySelectorAll('nav a')) {
    link.toggleAttribute('aria-current', link.getAttribute('href') === page);
  }
  document.title = titles[page] + ' · Logwell';
  current = module.mount(main, new URLSearchParams(location.search));
}

export function navigate(url) {
  history.pushState(null, '', url);
  show();
}

/** Starts the pages for a session: the links and the user's menu show what the user may use. */
function signedIn(answer) {
  setSession(answer);
  setCsrf(answer.csrf);
  document.body.classList.remove('signed-out');
  const visible = { search: can('search'), indexsets: can('view_space'), operations: can('view_metrics') || can('operate'), collection: can('operate'), access: can('manage_access'), audit: can('view_audit') };
  for (const link of document.querySelectorAll('nav a[data-page]')) link.hidden = !visible[link.dataset.page];
  const account = document.getElementById('account');
  // Before the first user exists the node serves loopback without sign-in: there is no one to sign out.
  replace(account, answer.kind === 'local' ? null : [
    h('span', { id: 'user', class: 'muted', title: `signed in as ${answer.user ?? answer.name}` }, answer.user ?? answer.name),
    answer.csrf ? h('button', { type: 'button', id: 'sign-out', class: 'secondary small', onclick: signOut }, 'Sign out') : null,
  ]);
  show();
}

async function signOut() {
  try {
    await del('/api/v1/access/session');
  } catch (e) {
    // Still signed in on the node (it could not be reached, or refused): say so rather than pretend otherwise.
    if (e.status !== 401) {
      toast(`Not signed out: ${e.message}`, 'error');
      return;
    }
  }
  signIn({ notice: 'You are signed out.' });
}

/** The sign-in form, in place of the page; after it, the page the URL names. */
function signIn({ error, notice } = {}) {
  ++generation;
  current?.unmount?.();
  current = null;
  setSession(null);
  setCsrf(null);
  document.body.classList.add('signed-out');
  replace(document.getElementById('account'));
  const user = h('input', { id: 'login-user', name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const message = h('p', { id: 'login-message', class: error ? 'error' : 'muted', hidden: !(error || notice) }, error ?? notice ?? '');
  const button = h('button', { type: 'submit', class: 'primary', id: 'login-submit' }, 'Sign in');
  const form = h('form', { class: 'panel login', id: 'login-form', onsubmit: async event => {
    event.preventDefault();
    button.disabled = true;
    try {
      signedIn(await request('POST', '/api/v1/access/session', { body: { user: user.value, password: password.value }, quiet: true }));
    } catch (e) {
      message.className = 'error';
      message.textContent = e.message;
      message.hidden = false;
      password.select();
    } finally {
      button.disabled = false;
    }
  } }, h('h1', {}, 'Sign in to Logwell'), h('label', {}, 'User', user), h('label', {}, 'Password', password), message, button);
  replace(document.getElementById('main'), h('section', { class: 'page login-page' }, form));
  document.title = 'Sign in · Logwell';
  user.focus();
}

// Any request answered 401 while signed in: the session ended (expired, signed out elsewhere, password changed).
window.addEventListener('logwell:signed-out', event => {
  if (session()) signIn({ error: event.detail ?? 'The session has ended: sign in again.' });
});

async function start() {
  try {
    signedIn(await request('GET', '/api/v1/access/session', { quiet: true }));
  } catch (e) {
    if (e.status === 401) signIn();
    else replace(document.getElementById('main'), h('p', { class: 'error page' }, e.message));
  }
}

document.addEventListener('click', event => {
  const link = event.target.closest?.('a[data-link]');
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(link.getAttribute('href'));
});

window.addEventListener('popstate', () => show());

document.addEventListener('keydown', event => {
  if (current?.onKey?.(event)) return;
  if (event.key === 'Escape') {
    for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
  }
});

function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

applyTheme(localStorage.getItem(ThemeKey));
document.getElementById('theme').addEventListener('click', () => {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === 'dark'
    : matchMedia('(prefers-color-scheme: dark)').matches;
  const next = dark ? 'light' : 'dark';
  localStorage.setItem(ThemeKey, next);
  applyTheme(next);
});

start();
