// The web UI's entry: the page router (the URL is the state: path for the page, query string for its view), the
// theme and the keys every page shares.
import * as search from './search.js';

const pages = {
  '/': () => Promise.resolve(search),
  '/indexsets': () => import('./indexsets.js'),
  '/operations': () => import('./operations.js'),
};
const ThemeKey = 'logwell.theme';

let current = null;
let generation = 0;

async function show() {
  const load = pages[location.pathname] ?? pages['/'];
  const mine = ++generation;
  const module = await load();
  if (mine !== generation) return;
  current?.unmount?.();
  const main = document.getElementById('main');
  main.replaceChildren();
  const page = location.pathname in pages ? location.pathname : '/';
  for (const link of document.querySelectorAll('nav a')) {
    link.toggleAttribute('aria-current', link.getAttribute('href') === page);
  }
  document.title = { '/': 'Search', '/indexsets': 'Index sets', '/operations': 'Operations' }[page] + ' · Logwell';
  current = module.mount(main, new URLSearchParams(location.search));
}

export function navigate(url) {
  history.pushState(null, '', url);
  show();
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

show();
