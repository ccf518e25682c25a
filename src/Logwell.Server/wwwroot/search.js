// The search page: query, time range, histogram, hits, fields, context, live tail, pipe results, export, saved and
// recent searches. The URL holds the index set, the query and the range, so a link reproduces the view.
import { ApiError, del, get, post } from './api.js';
import { histogram, timechart } from './chart.js';
import { can } from './session.js';
import { copyText, formatBytes, formatNumber, formatTime, h, replace, toast } from './util.js';
import { VirtualList } from './virtual-list.js';

const Presets = [
  ['now-15m', 'Last 15 minutes'],
  ['now-30m', 'Last 30 minutes'],
  ['now-1h', 'Last 1 hour'],
  ['now-4h', 'Last 4 hours'],
  ['now-12h', 'Last 12 hours'],
  ['now-1d', 'Last 1 day'],
  ['now-7d', 'Last 7 days'],
  ['all', 'All time'],
];
const DefaultFrom = 'now-1h';
const PageSize = 500;
const TailLimit = 10_000;
const RecentKey = 'logwell.recent';
const RecentLimit = 20;

/** True when the query has a `|` outside quotes and regular expressions: a pipe query, answered with a table. */
export function hasPipe(query) {
  let quote = null;
  for (let i = 0; i < query.length; i++) {
    const c = query[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"') quote = c;
    else if (c === '/' && (i === 0 || /[\s:(]/.test(query[i - 1]))) quote = '/';
    else if (c === '|') return true;
  }
  return false;
}

/** Whether the query syntax can name the field: letters, digits, `_`, `.`, `@` and `-`. */
export const canFilter = name => /^[\p{L}\p{N}_.@-]+$/u.test(name);

/** `field:="value"`: the whole value equals it (a phrase would also find longer values), escaped for the query syntax. */
export function fieldClause(name, value) {
  return `${name}:="${String(value).replace(/[\\"]/g, m => `\\${m}`)}"`;
}

/** The query narrowed by one more clause. */
export function addClause(query, clause) {
  const base = query.trim();
  if (base === '' || base === '*') return clause;
  return /\bOR\b/.test(base) ? `(${base}) AND ${clause}` : `${base} AND ${clause}`;
}

/** Milliseconds of a relative time (`now-15m`, `now-2d`), or of an ISO time from now; null when it cannot tell. */
function windowStart(text, now) {
  if (!text || text === 'all') return null;
  const relative = /^now-(\d+)([smhdw])$/.exec(text);
  if (relative) return now - Number(relative[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5, w: 6048e5 }[relative[2]];
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : at;
}

/** The `compare=` a patterns view uses for a range: a day before when the range is a day or less, a week when a week or less. */
export function compareFor(from, to, now = Date.now()) {
  const start = windowStart(from, now);
  const end = !to || to === 'now' ? now : windowStart(to, now);
  if (start === null || end === null) return null;
  const length = end - start;
  return length <= 864e5 ? '1d' : length <= 6048e5 ? '1w' : null;
}

/**
 * The example split into the template's constant text and the parts its `<*>` stand for: [{ text, variable }].
 * The whole example as one constant part when the template does not match it.
 */
export function variableParts(template, example) {
  const pieces = template.split('<*>');
  // Lazy groups between anchors backtrack: long lines with many variables are shown plain.
  if (pieces.length === 1 || pieces.length > 16 || example.length > 4000) return [{ text: example, variable: false }];
  const escape = text => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s+');
  const match = new RegExp(`^${pieces.map(escape).join('(.+?)')}$`, 'sd').exec(example);
  if (!match) return [{ text: example, variable: false }];
  const parts = [];
  let at = 0;
  for (let i = 1; i < match.indices.length; i++) {
    const [start, end] = match.indices[i];
    if (start > at) parts.push({ text: example.slice(at, start), variable: false });
    parts.push({ text: example.slice(start, end), variable: true });
    at = end;
  }
  if (at < example.length) parts.push({ text: example.slice(at), variable: false });
  return parts;
}

function sparkline(counts) {
  const width = 96;
  const height = 20;
  const top = Math.max(1, ...counts);
  const step = counts.length > 1 ? width / (counts.length - 1) : width;
  const points = counts.map((c, i) => `${(i * step).toFixed(1)},${(height - 1 - (c / top) * (height - 2)).toFixed(1)}`).join(' ');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `events over the range: ${counts.join(', ')}`);
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', points);
  svg.append(line);
  return svg;
}

function rangeLabel(from, to) {
  const preset = Presets.find(([value]) => value === from);
  if (preset && !to) return preset[1];
  const show = text => (text ? (/^now/.test(text) ? text : formatTime(text)) : 'now');
  return `${from === 'all' ? 'the beginning' : show(from)} → ${show(to)}`;
}

function readRecent() {
  try {
    return JSON.parse(localStorage.getItem(RecentKey) ?? '[]');
  } catch {
    return [];
  }
}

function remember(entry) {
  const key = JSON.stringify([entry.indexset, entry.q, entry.from, entry.to]);
  const list = readRecent().filter(e => JSON.stringify([e.indexset, e.q, e.from, e.to]) !== key);
  list.unshift({ ...entry, at: new Date().toISOString() });
  localStorage.setItem(RecentKey, JSON.stringify(list.slice(0, RecentLimit)));
}

export function mount(root, params) {
  const state = {
    indexset: params.get('indexset') || 'default',
    q: params.get('q') ?? '',
    from: params.get('from') || DefaultFrom,
    to: params.get('to') || '',
    view: params.get('view') === 'patterns' ? 'patterns' : 'events',
  };
  // Whether each index set gives its events pattern ids at ingest (a pattern can then be searched as pattern:ID).
  const patternIds = new Map();
  const expanded = new Set();
  const asJson = new Set();
  let nextCursor = null;
  let loadingMore = false;
  let running = null;
  let tail = null;
  let paused = false;
  let pending = [];
  let exportTimer = 0;
  let chartKind = 'line';
  let lastTable = null;

  // The search bar.
  const indexSelect = h('select', { id: 'indexset', 'aria-label': 'index set', onchange: () => { state.indexset = indexSelect.value; run(); } },
    h('option', { value: state.indexset }, state.indexset));
  const queryInput = h('input', {
    id: 'query', type: 'search', spellcheck: 'false', autocomplete: 'off', value: state.q,
    placeholder: 'Search: level:error AND service:api  |  * | stats count() by level   (press / to focus)',
    'aria-label': 'query',
  });
  const queryError = h('div', { id: 'query-error', class: 'query-error', role: 'alert', hidden: true });
  const rangeButton = h('button', { type: 'button', id: 'range', class: 'secondary', 'aria-haspopup': 'true', onclick: () => toggleRangeMenu() }, rangeLabel(state.from, state.to));
  const customFrom = h('input', { id: 'custom-from', placeholder: 'now-2h or 2026-11-26T10:00:00Z', 'aria-label': 'from' });
  const customTo = h('input', { id: 'custom-to', placeholder: 'now', 'aria-label': 'to' });
  const rangeMenu = h('div', { class: 'range-menu popover', hidden: true },
    h('div', { class: 'presets' }, Presets.map(([value, label]) =>
      h('button', { type: 'button', class: 'link', dataset: { from: value }, onclick: () => setRange(value, '') }, label))),
    h('form', { class: 'custom', onsubmit: event => { event.preventDefault(); setRange(customFrom.value.trim() || 'all', customTo.value.trim()); } },
      h('label', {}, 'From', customFrom), h('label', {}, 'To', customTo),
      h('button', { type: 'submit', class: 'primary', id: 'custom-apply' }, 'Apply')));
  const form = h('form', { class: 'search-bar', onsubmit: event => { event.preventDefault(); state.q = queryInput.value; run(); } },
    indexSelect,
    h('div', { class: 'query-box' }, queryInput, queryError),
    h('div', { class: 'range-box' }, rangeButton, rangeMenu),
    h('button', { type: 'submit', class: 'primary', id: 'run' }, 'Search'));

  // The toolbar.
  const summary = h('span', { id: 'summary', class: 'summary', 'aria-live': 'polite' });
  const liveButton = h('button', { type: 'button', id: 'live', class: 'secondary', 'aria-pressed': 'false', onclick: () => (tail ? stopTail() : startTail()) }, 'Live tail');
  const pauseButton = h('button', { type: 'button', id: 'pause', class: 'secondary', hidden: true, onclick: () => togglePause() }, 'Pause');
  const tailStatus = h('span', { id: 'tail-status', class: 'tail-status' });
  const toolbar = h('div', { class: 'toolbar' }, summary, h('span', { class: 'spacer' }),
    liveButton, pauseButton, tailStatus,
    can('export') ? h('button', { type: 'button', id: 'export', class: 'secondary', onclick: () => openExport() }, 'Export') : null,
    can('manage_saved_search') ? h('button', { type: 'button', id: 'save', class: 'secondary', onclick: () => saveSearch() }, 'Save') : null,
    h('button', { type: 'button', id: 'saved', class: 'secondary', onclick: () => openSaved() }, 'Saved'),
    h('button', { type: 'button', id: 'recent', class: 'secondary', onclick: () => openRecent() }, 'Recent'));

  // The body: fields on the left, chart and hits (or the pipe's table) on the right.
  const fieldsPane = h('aside', { id: 'fields', class: 'fields', 'aria-label': 'fields' });
  const chartBox = h('div', { id: 'histogram', class: 'chart-box' });
  const notice = h('div', { id: 'notice', class: 'notice', hidden: true });
  const hitsViewport = h('div', { id: 'hits', class: 'hits', role: 'list', tabindex: '-1' });
  const patternsBox = h('div', { id: 'patterns', class: 'patterns', role: 'list', hidden: true });
  const tableBox = h('div', { id: 'table', class: 'table-box', hidden: true });
  const viewTab = (view, label) => h('button', { type: 'button', role: 'tab', id: `tab-${view}`, 'aria-selected': String(state.view === view), onclick: () => { state.view = view; run(); } }, label);
  const viewTabs = h('div', { class: 'tabs view-tabs', role: 'tablist' }, viewTab('events', 'Events'), viewTab('patterns', 'Patterns'));
  const results = h('div', { class: 'results' }, chartBox, viewTabs, notice, hitsViewport, patternsBox, tableBox);
  const drawer = h('aside', { id: 'drawer', class: 'drawer', hidden: true, role: 'dialog', 'aria-modal': 'false' });
  root.append(h('section', { class: 'search-page' }, form, toolbar, h('div', { class: 'search-body' }, fieldsPane, results), drawer));

  const list = new VirtualList(hitsViewport, renderHit, hit => hit.id, 30);
  list.onNearEnd = () => loadMore();

  get('/api/v1/indexsets').then(data => {
    for (const set of data.indexsets) patternIds.set(set.name, set.patterns === true);
    const names = data.indexsets.filter(s => s.available !== false).map(s => s.name);
    if (!names.includes(state.indexset)) names.unshift(state.indexset);
    replace(indexSelect, names.map(name => h('option', { value: name, selected: name === state.indexset }, name)));
  }).catch(e => toast(e.message, 'error'));

  function apiParams() {
    return { indexset: state.indexset, q: state.q, from: state.from === 'all' ? '' : state.from, to: state.to };
  }

  function syncUrl() {
    const search = new URLSearchParams();
    search.set('indexset', state.indexset);
    if (state.q) search.set('q', state.q);
    search.set('from', state.from);
    if (state.to) search.set('to', state.to);
    if (state.view === 'patterns') search.set('view', 'patterns');
    const url = `/?${search}`;
    if (location.pathname + location.search !== url) history.pushState(null, '', url);
  }

  function setRange(from, to) {
    state.from = from;
    state.to = to;
    rangeMenu.hidden = true;
    run();
  }

  function toggleRangeMenu(show = rangeMenu.hidden) {
    rangeMenu.hidden = !show;
    if (show) {
      customFrom.value = state.from === 'all' ? '' : state.from;
      customTo.value = state.to;
    }
  }

  function showError(error) {
    if (error instanceof ApiError && typeof error.position === 'number') {
      const at = Math.min(error.position, state.q.length);
      replace(queryError,
        h('div', { class: 'message' }, error.message),
        h('pre', { class: 'caret-line' }, state.q.slice(0, at), h('mark', {}, state.q.slice(at, at + 1) || ' '), state.q.slice(at + 1)),
        h('pre', { class: 'caret-line caret' }, `${' '.repeat(at)}^`));
      queryInput.classList.add('invalid');
      queryInput.focus();
      queryInput.setSelectionRange(at, Math.min(at + 1, state.q.length));
    } else {
      replace(queryError, h('div', { class: 'message' }, error.message));
    }
    queryError.hidden = false;
  }

  function clearError() {
    queryError.hidden = true;
    queryInput.classList.remove('invalid');
  }

  /** Runs the search the state describes and shows it. */
  async function run() {
    queryInput.value = state.q;
    rangeButton.textContent = rangeLabel(state.from, state.to);
    syncUrl();
    running?.abort();
    const controller = new AbortController();
    running = controller;
    const signal = controller.signal;
    clearError();
    notice.hidden = true;
    nextCursor = null;
    remember({ indexset: state.indexset, q: state.q, from: state.from, to: state.to });
    summary.textContent = 'Searching…';
    expanded.clear();
    asJson.clear();
    const pipe = hasPipe(state.q);
    liveButton.disabled = pipe;
    if (tail) startTail();
    try {
      for (const tab of viewTabs.children) tab.setAttribute('aria-selected', String(tab.id === `tab-${state.view}`));
      viewTabs.hidden = pipe;
      patternsBox.hidden = pipe || state.view !== 'patterns';
      if (pipe) {
        hitsViewport.hidden = true;
        chartBox.hidden = true;
        fieldsPane.hidden = true;
        const table = await get('/api/v1/search', apiParams(), signal);
        if (signal.aborted) return;
        showTable(table);
        return;
      }
      tableBox.hidden = true;
      fieldsPane.hidden = false;
      hitsViewport.hidden = state.view === 'patterns';
      chartBox.hidden = false;
      if (state.view === 'patterns') {
        const chart = get('/api/v1/histogram', apiParams(), signal);
        const fields = get('/api/v1/fields', apiParams(), signal);
        chart.then(data => !signal.aborted && histogram(chartBox, data, (from, to) => setRange(new Date(from).toISOString(), new Date(to).toISOString())), () => {});
        fields.then(data => !signal.aborted && showFields(data), () => {});
        await showPatterns(signal);
        return;
      }
      const search = get('/api/v1/search', { ...apiParams(), limit: PageSize, track_total_hits: 'true' }, signal);
      const chart = get('/api/v1/histogram', apiParams(), signal);
      const fields = get('/api/v1/fields', apiParams(), signal);
      chart.then(data => !signal.aborted && histogram(chartBox, data, (from, to) => setRange(new Date(from).toISOString(), new Date(to).toISOString())), () => {});
      fields.then(data => !signal.aborted && showFields(data), () => {});
      const result = await search;
      if (signal.aborted) return;
      nextCursor = result.next_cursor;
      list.setItems(result.hits);
      summary.textContent = `${formatNumber(result.total)}${result.total_is_exact ? '' : '+'} ${result.total === 1 ? 'hit' : 'hits'} · ${Math.round(result.took_ms)} ms`;
      summary.dataset.total = result.total;
      if (result.total === 0) showEmpty();
    } catch (e) {
      if (e.name === 'AbortError') return;
      summary.textContent = '';
      delete summary.dataset.total;
      list.setItems([]);
      replace(chartBox);
      replace(fieldsPane);
      showError(e);
    }
  }

  /** The Patterns tab: the templates of the matching events, with their counts, trend and change against the range before. */
  async function showPatterns(signal) {
    replace(patternsBox);
    const base = `${state.q.trim() || '*'} | patterns 100`;
    const compare = compareFor(state.from, state.to);
    let table;
    try {
      table = await get('/api/v1/search', { ...apiParams(), q: compare ? `${base} compare=${compare}` : base }, signal);
    } catch (e) {
      // Events newer than now can make the range longer than the comparison: without it, then.
      if (!compare || e.name === 'AbortError' || !/compare/.test(e.message)) throw e;
      table = await get('/api/v1/search', { ...apiParams(), q: base }, signal);
    }
    if (signal.aborted) return;
    const at = Object.fromEntries(table.columns.map((c, i) => [c, i]));
    const idsOn = patternIds.get(state.indexset) !== false;
    const total = table.rows.reduce((sum, row) => sum + row[at.count], 0);
    summary.textContent = `${formatNumber(table.rows.length)} ${table.rows.length === 1 ? 'pattern' : 'patterns'} · ${Math.round(table.took_ms)} ms`;
    summary.dataset.total = total;
    if (table.rows.length === 0) {
      showEmpty();
      return;
    }
    replace(patternsBox,
      idsOn ? null : h('p', { class: 'muted pattern-note' }, `Pattern ids are off for ${state.indexset}: turn them on (Index sets) to search a pattern's events by its id.`),
      table.rows.map(row => {
        const id = row[at.pattern];
        const template = row[at.template];
        const isNew = at.new !== undefined && row[at.new] === true;
        const change = at.change !== undefined ? row[at.change] : null;
        const trend = String(row[at.trend] ?? '').split(',').filter(Boolean).map(Number);
        // The ids ingest gave the row's events: one per stage its template went through as events arrived.
        const stored = String(row[at.stored_ids] ?? '').split(' ').filter(id => /^[0-9a-f]{12}$/.test(id));
        const searchable = stored.length > 0;
        const clause = stored.length === 1 ? `pattern:${stored[0]}` : `pattern:(${stored.join(' OR ')})`;
        const open = () => {
          state.q = addClause(state.q, clause);
          state.view = 'events';
          run();
        };
        return h('div', { class: 'pattern-row', role: 'listitem', dataset: { pattern: id } },
          h('div', { class: 'pattern-figures' },
            h('span', { class: 'pattern-count', title: `${row[at.percent]}% of the matches` }, formatNumber(row[at.count])),
            h('span', { class: 'muted' }, `${row[at.percent]}%`),
            isNew ? h('span', { class: 'badge new', title: `none in the ${compare === '1w' ? 'week' : 'day'} before` }, 'new')
              : change !== null && change !== undefined ? h('span', { class: `pattern-change ${change > 0 ? 'up' : change < 0 ? 'down' : ''}`, title: `${formatNumber(row[at.previous])} in the ${compare === '1w' ? 'week' : 'day'} before` }, `${change > 0 ? '+' : ''}${change}%`) : null),
          trend.length ? sparkline(trend) : null,
          h('div', { class: 'pattern-text' },
            searchable
              ? h('button', { type: 'button', class: 'link pattern-template', title: `Search ${clause}`, onclick: open },
                template.split('<*>').flatMap((text, i) => (i === 0 ? [text] : [h('span', { class: 'wildcard' }, '<*>'), text])))
              : h('span', { class: 'pattern-template' }, template.split('<*>').flatMap((text, i) => (i === 0 ? [text] : [h('span', { class: 'wildcard' }, '<*>'), text]))),
            h('div', { class: 'pattern-example', title: 'the newest event of the pattern' },
              variableParts(template, row[at.example]).map(part => (part.variable ? h('mark', { class: 'variable' }, part.text) : part.text)))),
          h('span', { class: 'pattern-id muted' }, id));
      }));
  }

  function showEmpty() {
    replace(notice, 'No events match in this range.',
      state.from !== 'all' ? h('button', { type: 'button', class: 'link', onclick: () => setRange('all', '') }, 'Search all time') : null);
    notice.hidden = false;
  }

  async function loadMore() {
    if (!nextCursor || loadingMore || tail) return;
    loadingMore = true;
    const cursor = nextCursor;
    try {
      const result = await get('/api/v1/search', { ...apiParams(), limit: PageSize, cursor }, running?.signal);
      if (cursor !== nextCursor) return;
      nextCursor = result.next_cursor;
      list.append(result.hits);
    } catch (e) {
      if (e.name !== 'AbortError') toast(e.message, 'error');
    } finally {
      loadingMore = false;
    }
  }

  function levelOf(hit) {
    const level = hit.fields?.level ?? hit.fields?.severity ?? hit.fields?.['@l'];
    return typeof level === 'string' ? level : null;
  }

  function renderHit(hit) {
    const level = levelOf(hit);
    const row = h('div', { class: `hit${expanded.has(hit.id) ? ' expanded' : ''}`, role: 'listitem', dataset: { id: hit.id } },
      h('div', { class: 'hit-line', onclick: () => toggle(hit) },
        h('span', { class: 'time' }, formatTime(hit.t)),
        level ? h('span', { class: `level level-${level.toLowerCase()}` }, level) : null,
        h('span', { class: 'message' }, hit.message)));
    if (expanded.has(hit.id)) row.append(renderDetail(hit));
    return row;
  }

  function toggle(hit) {
    if (expanded.has(hit.id)) expanded.delete(hit.id);
    else expanded.add(hit.id);
    list.refresh(hit);
  }

  function renderDetail(hit) {
    const json = JSON.stringify({ t: hit.t, message: hit.message, ...hit.fields }, null, 2);
    const showJson = asJson.has(hit.id);
    const filterButtons = (name, value) => h('span', { class: 'filter-buttons' },
      h('button', { type: 'button', class: 'icon', title: `Only ${name}: ${value}`, 'aria-label': `filter ${name} is ${value}`, onclick: () => filter(name, value, false) }, '+'),
      h('button', { type: 'button', class: 'icon', title: `Without ${name}: ${value}`, 'aria-label': `filter ${name} is not ${value}`, onclick: () => filter(name, value, true) }, '−'));
    return h('div', { class: 'hit-detail' },
      h('div', { class: 'hit-actions' },
        h('button', { type: 'button', class: 'secondary small', onclick: () => { if (showJson) asJson.delete(hit.id); else asJson.add(hit.id); list.refresh(hit); } }, showJson ? 'Table' : 'JSON'),
        h('button', { type: 'button', class: 'secondary small', onclick: async () => toast(await copyText(json) ? 'Copied the event as JSON' : 'Could not copy', 'info') }, 'Copy'),
        h('button', { type: 'button', class: 'secondary small context-button', onclick: () => openContext(hit) }, 'Context'),
        h('span', { class: 'hit-id' }, `id ${hit.id}`)),
      showJson
        ? h('pre', { class: 'json' }, json)
        : h('table', { class: 'field-table' }, h('tbody', {},
          h('tr', {}, h('th', {}, 'message'), h('td', { class: 'value' }, hit.message), h('td', {})),
          Object.entries(hit.fields ?? {}).map(([name, value]) => {
            const text = typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
            // Objects and arrays are kept as JSON text: a filter on that text would not find them.
            const filterable = value !== null && typeof value !== 'object' && canFilter(name);
            return h('tr', {}, h('th', {}, name), h('td', { class: 'value' }, text), h('td', {}, filterable ? filterButtons(name, text) : null));
          }))));
  }

  function filter(name, value, negate) {
    const clause = fieldClause(name, value);
    state.q = addClause(state.q, negate ? `NOT ${clause}` : clause);
    run();
  }

  function showFields(data) {
    const sampled = data.events > 0 && data.events < data.total;
    replace(fieldsPane,
      h('h3', {}, 'Fields', sampled ? h('span', { class: 'muted', title: `top values of the newest ${formatNumber(data.events)} matches` }, ` (newest ${formatNumber(data.events)})`) : null),
      data.fields.length === 0 ? h('p', { class: 'muted' }, 'No fields in these events.') : null,
      h('ul', { class: 'field-list' }, data.fields.map(field => {
        const filterable = canFilter(field.name);
        const values = h('ul', { class: 'top-values', hidden: true }, field.top.map(top => h('li', {},
          h('span', { class: 'top-value', title: top.value }, top.value === '' ? '(empty)' : top.value),
          h('span', { class: 'count' }, formatNumber(top.count)),
          filterable ? h('button', { type: 'button', class: 'icon', title: `Only ${field.name}: ${top.value}`, 'aria-label': `filter ${field.name} is ${top.value}`, onclick: () => filter(field.name, top.value, false) }, '+') : null,
          filterable ? h('button', { type: 'button', class: 'icon', title: `Without ${field.name}: ${top.value}`, 'aria-label': `filter ${field.name} is not ${top.value}`, onclick: () => filter(field.name, top.value, true) }, '−') : null)));
        const share = data.events ? Math.round((field.count / data.events) * 100) : 0;
        return h('li', { class: 'field', dataset: { field: field.name } },
          h('button', { type: 'button', class: 'field-name', 'aria-expanded': 'false', onclick: event => {
            values.hidden = !values.hidden;
            event.currentTarget.setAttribute('aria-expanded', String(!values.hidden));
          } }, h('span', {}, field.name), h('span', { class: 'count', title: `${formatNumber(field.count)} of ${formatNumber(data.events)} events` }, `${share}%`)),
          values);
      })));
  }

  function showTable(table) {
    lastTable = table;
    tableBox.hidden = false;
    summary.textContent = `${formatNumber(table.rows.length)} ${table.rows.length === 1 ? 'row' : 'rows'}${table.truncated ? ' (truncated)' : ''} · ${Math.round(table.took_ms)} ms`;
    summary.dataset.total = table.rows.length;
    const isTimechart = table.columns[0] === 't' && /\|\s*timechart\b/.test(state.q);
    const chart = h('div', { class: 'chart-box', id: 'timechart' });
    const kindButtons = isTimechart ? h('div', { class: 'segmented', role: 'group', 'aria-label': 'chart kind' },
      ['line', 'bar'].map(kind => h('button', { type: 'button', class: kind === chartKind ? 'selected' : '', 'aria-pressed': String(kind === chartKind), dataset: { kind }, onclick: () => { chartKind = kind; showTable(lastTable); } }, kind === 'line' ? 'Lines' : 'Bars'))) : null;
    // Up to 10,000 rows: only those in view are in the page.
    const template = table.columns.map((c, i) => {
      const widest = Math.max(c.length, ...table.rows.slice(0, 200).map(row => String(row[i] ?? '').length));
      return `minmax(${Math.min(Math.max(widest, 4), 48) + 2}ch, ${i === 0 ? 2 : 1}fr)`;
    }).join(' ');
    const cellText = (cell, i) => cell === null ? '' : table.columns[i] === 't' && isTimechart ? formatTime(cell) : typeof cell === 'number' ? formatNumber(cell) : String(cell);
    const rowsViewport = h('div', { class: 'grid-rows', role: 'rowgroup' });
    replace(tableBox,
      isTimechart ? h('div', { class: 'chart-head' }, kindButtons) : null,
      isTimechart ? chart : null,
      h('div', { class: 'result-grid', role: 'table', 'aria-label': 'result', 'aria-rowcount': table.rows.length + 1 },
        h('div', { class: 'grid-row head', role: 'row', style: `grid-template-columns: ${template}` }, table.columns.map((c, i) => h('div', { role: 'columnheader', class: typeof table.rows[0]?.[i] === 'number' ? 'number' : '' }, c))),
        rowsViewport));
    const rows = table.rows.map((row, index) => ({ row, index }));
    const grid = new VirtualList(rowsViewport, ({ row, index }) => h('div', { class: 'grid-row', role: 'row', 'aria-rowindex': index + 2, style: `grid-template-columns: ${template}` },
      row.map((cell, i) => h('div', { role: 'cell', class: typeof cell === 'number' ? 'number' : '' }, cellText(cell, i)))), item => item.index, 27);
    grid.setItems(rows);
    if (isTimechart) timechart(chart, table.columns, table.rows, chartKind);
  }

  // Drawers: context, export, saved, recent.
  function openDrawer(title, ...content) {
    replace(drawer, h('div', { class: 'drawer-head' }, h('h2', {}, title),
      h('button', { type: 'button', class: 'icon close', 'aria-label': 'close', onclick: () => closeDrawer() }, '×')),
    h('div', { class: 'drawer-body' }, ...content));
    drawer.hidden = false;
  }

  function closeDrawer() {
    drawer.hidden = true;
    clearInterval(exportTimer);
    replace(drawer);
  }

  async function openContext(hit) {
    openDrawer('Context', h('p', { class: 'muted' }, 'Loading…'));
    try {
      const data = await get('/api/v1/context', { indexset: state.indexset, id: hit.id, before: 25, after: 25 });
      const source = Object.entries(data.source).map(([k, v]) => `${k}=${v}`).join(' ');
      const line = (evt, current) => h('div', { class: `context-line${current ? ' current' : ''}`, dataset: { id: evt.id } },
        h('span', { class: 'time' }, formatTime(evt.t)), h('span', { class: 'message' }, evt.message));
      const current = line(data.event, true);
      openDrawer('Context',
        h('p', { class: 'muted' }, source ? `Same source: ${source}` : 'The whole index set, in time order'),
        h('div', { class: 'context-lines', id: 'context-lines' }, data.before.map(e => line(e, false)), current, data.after.map(e => line(e, false))));
      current.scrollIntoView({ block: 'center' });
    } catch (e) {
      openDrawer('Context', h('p', { class: 'error' }, e.message));
    }
  }

  function openExport() {
    const format = h('select', { id: 'export-format', 'aria-label': 'format' }, h('option', { value: 'csv' }, 'CSV'), h('option', { value: 'ndjson' }, 'NDJSON'));
    const fields = h('input', { id: 'export-fields', placeholder: 'all fields (or: level, host, status)', 'aria-label': 'fields' });
    const progress = h('div', { id: 'export-progress', class: 'export-progress' });
    const earlier = h('ul', { class: 'export-list' });
    openDrawer('Export',
      h('p', { class: 'muted' }, `Writes every match of this search (${rangeLabel(state.from, state.to)}) to a compressed file, newest first.`),
      h('form', { class: 'stack', onsubmit: event => { event.preventDefault(); start(); } },
        h('label', {}, 'Format', format), h('label', {}, 'Fields', fields),
        h('button', { type: 'submit', class: 'primary', id: 'export-start' }, 'Start export')),
      progress, h('h3', {}, 'Your exports'), earlier);
    const showList = () => get('/api/v1/exports').then(data => replace(earlier, data.exports.slice(0, 10).map(exportItem)), () => {});
    showList();
    async function start() {
      try {
        const body = { ...apiParams(), format: format.value };
        if (!body.from) delete body.from;
        if (!body.to) delete body.to;
        if (fields.value.trim()) body.fields = fields.value.split(',').map(f => f.trim()).filter(Boolean);
        const created = await post('/api/v1/exports', body);
        replace(progress, exportItem(created));
        clearInterval(exportTimer);
        exportTimer = setInterval(async () => {
          try {
            const now = await get(`/api/v1/exports/${created.id}`);
            replace(progress, exportItem(now));
            if (!['queued', 'running', 'packaging'].includes(now.state)) {
              clearInterval(exportTimer);
              showList();
            }
          } catch (e) {
            clearInterval(exportTimer);
            replace(progress, h('p', { class: 'error' }, e.message));
          }
        }, 700);
      } catch (e) {
        replace(progress, h('p', { class: 'error' }, e.message));
      }
    }
  }

  function exportItem(record) {
    const percent = record.percent ?? (record.state === 'done' ? 100 : 0);
    return h('li', { class: `export-item state-${record.state}`, dataset: { id: record.id, state: record.state } },
      h('div', {}, h('strong', {}, record.format.toUpperCase()), ` ${record.q || '*'} · `, h('span', { class: 'state' }, record.state),
        record.truncated ? ' (truncated)' : ''),
      ['queued', 'running', 'packaging'].includes(record.state) ? h('progress', { max: 100, value: percent }) : null,
      h('div', { class: 'muted' }, `${formatNumber(record.events_written)} events`, record.file_bytes ? ` · ${formatBytes(record.file_bytes)}` : ''),
      record.error ? h('div', { class: 'error' }, record.error) : null,
      record.download ? h('a', { href: record.download, class: 'button primary download', download: '' }, 'Download') : null);
  }

  async function saveSearch() {
    const name = h('input', { id: 'save-name', required: true, maxlength: 200, placeholder: 'errors in checkout', 'aria-label': 'name' });
    const message = h('p', { class: 'error', hidden: true });
    openDrawer('Save search',
      h('p', { class: 'muted' }, `${state.indexset} · ${state.q || '*'} · ${rangeLabel(state.from, state.to)}`),
      h('form', { class: 'stack', onsubmit: async event => {
        event.preventDefault();
        try {
          await post('/api/v1/saved-searches', { name: name.value, indexset: state.indexset, q: state.q, from: state.from === 'all' ? null : state.from, to: state.to || null });
          toast(`Saved “${name.value}”`);
          openSaved();
        } catch (e) {
          message.textContent = e.message;
          message.hidden = false;
        }
      } }, h('label', {}, 'Name', name), h('button', { type: 'submit', class: 'primary', id: 'save-confirm' }, 'Save'), message));
    name.focus();
  }

  function open(entry) {
    closeDrawer();
    state.indexset = entry.indexset;
    state.q = entry.q ?? '';
    state.from = entry.from || 'all';
    state.to = entry.to || '';
    if (![...indexSelect.options].some(o => o.value === state.indexset)) indexSelect.append(h('option', { value: state.indexset }, state.indexset));
    indexSelect.value = state.indexset;
    run();
  }

  async function openSaved() {
    try {
      const data = await get('/api/v1/saved-searches');
      const items = data.saved_searches.map(s => h('li', { class: 'saved-item' },
        h('button', { type: 'button', class: 'link', onclick: () => open(s) }, s.name),
        h('span', { class: 'muted' }, ` ${s.indexset} · ${s.q || '*'} · ${rangeLabel(s.from || 'all', s.to || '')}`),
        h('button', { type: 'button', class: 'icon', 'aria-label': `delete ${s.name}`, title: 'Delete', onclick: async () => { await del(`/api/v1/saved-searches/${s.id}`); openSaved(); } }, '×')));
      openDrawer('Saved searches', items.length ? h('ul', { class: 'plain-list' }, items) : h('p', { class: 'muted' }, 'No saved searches yet: run a search and press Save.'));
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  function openRecent() {
    const items = readRecent().map(entry => h('li', {},
      h('button', { type: 'button', class: 'link', onclick: () => open(entry) }, entry.q || '*'),
      h('span', { class: 'muted' }, ` ${entry.indexset} · ${rangeLabel(entry.from, entry.to)}`)));
    openDrawer('Recent searches', items.length ? h('ul', { class: 'plain-list' }, items) : h('p', { class: 'muted' }, 'Nothing yet.'),
      h('p', { class: 'muted small' }, 'Kept in this browser only.'));
  }

  // Live tail: new matching events stream in at the top.
  function startTail() {
    tail?.close();
    pending = [];
    paused = false;
    const query = new URLSearchParams({ indexset: state.indexset });
    if (state.q) query.set('q', state.q);
    tail = new EventSource(`/api/v1/tail?${query}`);
    let received = 0;
    let frame = 0;
    tail.onmessage = event => {
      pending.push(JSON.parse(event.data));
      received++;
      if (!paused && !frame) {
        // Many events a second arrive as one change to the list per frame.
        frame = requestAnimationFrame(() => {
          frame = 0;
          if (!paused) flushPending();
        });
      }
      tailStatus.textContent = paused ? `paused · ${formatNumber(pending.length)} waiting` : `live · ${formatNumber(received)} new`;
    };
    tail.addEventListener('dropped', () => toast('Live tail fell behind and reconnects', 'error'));
    // The node ended the stream (access changed, the index set closed): the browser reconnects under the rules as they are.
    tail.addEventListener('end', event => toast(`Live tail: ${JSON.parse(event.data).error}`, 'info'));
    tail.onerror = () => {
      if (tail?.readyState !== EventSource.CLOSED) {
        tailStatus.textContent = 'live · reconnecting…';
        return;
      }
      // The node refused to go on: when the session ended, asking who the page works for brings the sign-in form.
      stopTail();
      get('/api/v1/access/session').then(() => toast('Live tail stopped: the node refused it', 'error'), () => {});
    };
    tail.onopen = () => { tailStatus.textContent = 'live · waiting for events'; };
    showLive(true);
  }

  function stopTail() {
    tail?.close();
    tail = null;
    showLive(false);
    tailStatus.textContent = '';
  }

  function showLive(on) {
    liveButton.setAttribute('aria-pressed', String(on));
    liveButton.classList.toggle('active', on);
    liveButton.textContent = on ? 'Stop live' : 'Live tail';
    pauseButton.hidden = !on;
    pauseButton.textContent = 'Pause';
  }

  /** Shows the events that came while the list was not updated, newest on top. */
  function flushPending() {
    if (pending.length === 0) return;
    list.prepend(pending.reverse(), TailLimit);
    pending = [];
  }

  function togglePause() {
    paused = !paused;
    pauseButton.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) flushPending();
    tailStatus.textContent = paused ? 'paused · 0 waiting' : 'live';
  }

  function onKey(event) {
    if (event.key === 'Escape') {
      if (!rangeMenu.hidden) rangeMenu.hidden = true;
      else if (!drawer.hidden) closeDrawer();
      else if (!queryError.hidden) clearError();
      else return false;
      // Closing a panel does not also clear the query box, as Esc in a search field otherwise does.
      event.preventDefault();
      return true;
    }
    if (event.key === '/' && !isTyping(event.target)) {
      event.preventDefault();
      queryInput.focus();
      queryInput.select();
      return true;
    }
    return false;
  }

  document.addEventListener('click', closeMenus);
  function closeMenus(event) {
    if (!rangeMenu.hidden && !rangeMenu.parentElement.contains(event.target)) rangeMenu.hidden = true;
  }

  run();

  return {
    onKey,
    unmount() {
      running?.abort();
      stopTail();
      clearInterval(exportTimer);
      document.removeEventListener('click', closeMenus);
    },
  };
}

export function isTyping(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}
