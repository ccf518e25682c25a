// The audit log page (view_audit): the newest entries of the system index set _audit, which the normal search reads,
// with a query to narrow them (user:alice, outcome:denied, path:*access*) and a time range.
import { get } from './api.js';
import { formatTime, h, replace } from './util.js';

const Ranges = [['now-1h', 'Last hour'], ['now-24h', 'Last 24 hours'], ['now-7d', 'Last 7 days'], ['now-180d', 'Last 180 days']];

export function mount(root, params) {
  const query = h('input', { id: 'audit-query', value: params.get('q') ?? '', placeholder: 'user:alice AND outcome:denied', 'aria-label': 'query' });
  const range = h('select', { id: 'audit-range', 'aria-label': 'time range' }, Ranges.map(([value, label]) => h('option', { value, selected: value === (params.get('from') ?? 'now-24h') }, label)));
  const rows = h('tbody', { id: 'audit-rows' });
  const summary = h('p', { class: 'muted', id: 'audit-summary' });
  root.append(h('section', { class: 'page audit' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Audit log'),
      h('form', { class: 'inline-form', id: 'audit-form', onsubmit: event => { event.preventDefault(); load(); } },
        h('label', {}, 'Query', query), h('label', {}, 'Range', range), h('button', { type: 'submit', class: 'primary' }, 'Show'))),
    summary,
    h('div', { class: 'table-scroll' }, h('table', { class: 'data-table' },
      h('thead', {}, h('tr', {}, ['Time', 'User', 'Client', 'Request', 'Status', 'Outcome', 'Index set', 'Took'].map(c => h('th', {}, c)))), rows))));

  async function load() {
    const q = query.value.trim();
    history.replaceState(null, '', `/audit?${new URLSearchParams({ ...(q ? { q } : {}), from: range.value })}`);
    try {
      const result = await get('/api/v1/search', { indexset: '_audit', q: q || '*', from: range.value, limit: 500, track_total_hits: 'true' });
      summary.textContent = `${result.total ?? result.hits.length} entries${result.hits.length < (result.total ?? 0) ? `, the newest ${result.hits.length} shown` : ''}`;
      replace(rows, result.hits.map(hit => {
        const f = hit.fields ?? {};
        return h('tr', { dataset: { outcome: f.outcome ?? '' } },
          h('td', { class: 'nowrap' }, formatTime(hit.t)), h('td', {}, f.user ?? ''), h('td', { class: 'mono' }, f.client ?? ''),
          h('td', { class: 'mono' }, `${f.method ?? ''} ${f.path ?? ''}`), h('td', {}, f.status ?? ''),
          h('td', {}, h('span', { class: `badge ${f.outcome === 'success' ? 'ok' : 'bad'}` }, f.outcome ?? '')),
          h('td', {}, f.indexset ?? ''), h('td', { class: 'number' }, f.duration_ms !== undefined ? `${f.duration_ms} ms` : ''));
      }));
    } catch (e) {
      summary.textContent = '';
      replace(rows, h('tr', {}, h('td', { colspan: 8, class: 'error' }, e.message)));
    }
  }

  load();
  return {};
}
