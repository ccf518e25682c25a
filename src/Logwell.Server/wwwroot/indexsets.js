// The index sets page: counts, size and retention of each; create, change retention, delete; and the cleaning
// pipeline editor with a live preview on sample lines.
import { del, get, patch, post, put } from './api.js';
import { can, canOn } from './session.js';
import { confirmDialog, formatBytes, formatNumber, formatTime, h, replace, toast } from './util.js';

const ExamplePipeline = `{
  "parse": {"type": "grok", "pattern": "%{IP:client} %{WORD:method} %{URIPATHPARAM:path} %{NUMBER:status:int}"},
  "steps": [
    {"type": "add", "fields": {"env": "prod"}}
  ]
}`;
const ExampleLines = '10.0.0.7 GET /api/orders?id=42 200\n10.0.0.9 POST /api/pay 502\nnot an access line';

export function mount(root, params) {
  const table = h('tbody', { id: 'indexset-rows' });
  const name = h('input', { id: 'new-name', required: true, placeholder: 'app-logs', 'aria-label': 'name' });
  const days = h('input', { id: 'new-retention', type: 'number', min: 1, max: 36500, placeholder: 'default', 'aria-label': 'retention days' });
  const createError = h('p', { class: 'error', hidden: true });
  const editor = h('section', { id: 'pipeline-editor', class: 'panel', hidden: true });
  let previewTimer = 0;
  let previewRun = 0;

  root.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Index sets'),
      h('form', { class: 'inline-form', id: 'create-form', hidden: !can('create_indexset'), onsubmit: event => { event.preventDefault(); create(); } },
        h('label', {}, 'Name', name), h('label', {}, 'Retention (days)', days),
        h('button', { type: 'submit', class: 'primary', id: 'create' }, 'Create'))),
    createError,
    h('div', { class: 'table-scroll' }, h('table', { class: 'data-table' },
      h('thead', {}, h('tr', {}, ['Name', 'Events', 'On disk', 'Segments', 'Retention', 'Created', ''].map((c, i) => h('th', { class: i >= 1 && i <= 3 ? 'number' : '' }, c)))),
      table)),
    editor));

  async function load() {
    try {
      const data = await get('/api/v1/indexsets');
      replace(table, data.indexsets.map(row));
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  function row(set) {
    if (set.available === false) {
      // Could not be opened when the node started: shown with the reason, and it can be deleted.
      return h('tr', { dataset: { name: set.name }, class: 'unavailable' },
        h('td', {}, set.name),
        h('td', { colspan: 5, class: 'error' }, `unavailable: ${set.error}`),
        h('td', { class: 'actions' },
          canOn(set, 'manage_indexset') ? h('button', { type: 'button', class: 'danger small', 'aria-label': `delete ${set.name}`, onclick: () => remove(set) }, 'Delete') : null));
    }
    const retention = h('td', { class: 'retention' }, `${formatNumber(set.retention_days)} days`,
      canOn(set, 'manage_indexset') ? h('button', { type: 'button', class: 'link small', 'aria-label': `edit retention of ${set.name}`, onclick: () => editRetention(retention, set) }, 'Edit') : null);
    return h('tr', { dataset: { name: set.name } },
      h('td', {}, h('a', { href: `/?indexset=${encodeURIComponent(set.name)}&from=all`, 'data-link': '' }, set.name)),
      h('td', { class: 'number events' }, formatNumber(set.events)),
      h('td', { class: 'number' }, formatBytes(set.bytes_on_disk)),
      h('td', { class: 'number' }, formatNumber(set.segments)),
      retention,
      h('td', {}, formatTime(set.created)),
      h('td', { class: 'actions' },
        canOn(set, 'manage_pipeline') ? h('button', { type: 'button', class: 'secondary small', onclick: () => openEditor(set.name) }, 'Pipeline') : null,
        canOn(set, 'manage_indexset') ? h('button', { type: 'button', class: 'danger small', 'aria-label': `delete ${set.name}`, onclick: () => remove(set) }, 'Delete') : null));
  }

  function editRetention(cell, set) {
    const input = h('input', { type: 'number', min: 1, max: 36500, value: set.retention_days, class: 'narrow', 'aria-label': 'retention days' });
    replace(cell, h('form', { class: 'inline-form', onsubmit: async event => {
      event.preventDefault();
      try {
        await patch(`/api/v1/indexsets/${encodeURIComponent(set.name)}`, { retention_days: Number(input.value) });
        toast(`${set.name} keeps events for ${input.value} days`);
        load();
      } catch (e) {
        toast(e.message, 'error');
      }
    } }, input, h('button', { type: 'submit', class: 'primary small' }, 'Save'),
    h('button', { type: 'button', class: 'secondary small', onclick: () => load() }, 'Cancel')));
    input.focus();
  }

  async function create() {
    createError.hidden = true;
    try {
      const body = { name: name.value.trim() };
      if (days.value) body.retention_days = Number(days.value);
      await post('/api/v1/indexsets', body);
      toast(`Created ${body.name}`);
      name.value = '';
      days.value = '';
      load();
    } catch (e) {
      createError.textContent = e.message;
      createError.hidden = false;
    }
  }

  async function remove(set) {
    const sure = await confirmDialog(`Delete ${set.name}?`,
      set.available === false ? 'Everything in its directory is removed from disk. This cannot be undone.'
        : `Its ${formatNumber(set.events)} events (${formatBytes(set.bytes_on_disk)}) and its pipeline are removed from disk. This cannot be undone.`, 'Delete');
    if (!sure) return;
    try {
      await del(`/api/v1/indexsets/${encodeURIComponent(set.name)}`);
      toast(`Deleted ${set.name}`);
      if (editor.dataset.name === set.name) editor.hidden = true;
      load();
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  async function openEditor(setName) {
    history.replaceState(null, '', `/indexsets?pipeline=${encodeURIComponent(setName)}`);
    editor.dataset.name = setName;
    let saved;
    try {
      saved = (await get(`/api/v1/indexsets/${encodeURIComponent(setName)}/pipeline`)).pipeline;
    } catch (e) {
      toast(e.message, 'error');
      return;
    }
    const definition = h('textarea', { id: 'pipeline-definition', spellcheck: 'false', rows: 14, 'aria-label': 'pipeline definition' });
    definition.value = saved ? JSON.stringify(saved, null, 2) : ExamplePipeline;
    const lines = h('textarea', { id: 'pipeline-lines', spellcheck: 'false', rows: 6, 'aria-label': 'sample lines' });
    lines.value = ExampleLines;
    const status = h('p', { id: 'pipeline-status', class: 'muted' });
    const preview = h('div', { id: 'pipeline-preview', class: 'preview' });
    replace(editor,
      h('div', { class: 'page-head' }, h('h2', {}, `Cleaning pipeline of ${setName}`),
        h('button', { type: 'button', class: 'icon close', 'aria-label': 'close', onclick: () => { editor.hidden = true; history.replaceState(null, '', '/indexsets'); } }, '×')),
      h('p', { class: 'muted' }, saved ? 'Every event appended to this index set goes through this pipeline.' : 'No pipeline yet: events are stored as they arrive. An example is filled in below.'),
      h('div', { class: 'editor-grid' },
        h('label', {}, 'Definition (JSON)', definition),
        h('div', {}, h('label', {}, 'Sample lines, one event each', lines), status)),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', id: 'pipeline-save', onclick: () => save() }, 'Save pipeline'),
        saved ? h('button', { type: 'button', class: 'danger', onclick: () => removePipeline() }, 'Remove pipeline') : null),
      h('h3', {}, 'Preview'), preview);
    editor.hidden = false;
    const schedule = () => {
      clearTimeout(previewTimer);
      previewTimer = setTimeout(runPreview, 250);
    };
    definition.addEventListener('input', schedule);
    lines.addEventListener('input', schedule);
    runPreview();
    editor.scrollIntoView({ block: 'start' });

    function parse() {
      try {
        return JSON.parse(definition.value);
      } catch (e) {
        status.textContent = `The definition is not JSON: ${e.message}`;
        status.className = 'error';
        return undefined;
      }
    }

    async function runPreview() {
      const pipeline = parse();
      if (pipeline === undefined) return;
      const run = ++previewRun;
      try {
        const sample = lines.value.split('\n').filter(line => line.length > 0).slice(0, 1000);
        const result = await post(`/api/v1/indexsets/${encodeURIComponent(setName)}/pipeline/preview`, { pipeline, lines: sample });
        if (run !== previewRun) return;
        status.textContent = `${sample.length} lines → ${result.failed} failed`;
        status.className = result.failed ? 'warning' : 'muted';
        replace(preview, result.events.map(evt => h('div', { class: `preview-event${evt.fields.pipeline_error ? ' failed' : ''}` },
          h('div', { class: 'message' }, evt.message),
          h('table', { class: 'field-table' }, h('tbody', {},
            h('tr', {}, h('th', {}, 't'), h('td', {}, formatTime(evt.t))),
            Object.entries(evt.fields).map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)))))))));
      } catch (e) {
        if (run !== previewRun) return;
        status.textContent = e.message;
        status.className = 'error';
      }
    }

    async function save() {
      const pipeline = parse();
      if (pipeline === undefined) return;
      try {
        await put(`/api/v1/indexsets/${encodeURIComponent(setName)}/pipeline`, pipeline);
        toast(`Saved the pipeline of ${setName}`);
        openEditor(setName);
      } catch (e) {
        status.textContent = e.message;
        status.className = 'error';
      }
    }

    async function removePipeline() {
      if (!await confirmDialog(`Remove the pipeline of ${setName}?`, 'Events appended afterwards are stored as they arrive.', 'Remove')) return;
      try {
        await del(`/api/v1/indexsets/${encodeURIComponent(setName)}/pipeline`);
        openEditor(setName);
      } catch (e) {
        toast(e.message, 'error');
      }
    }
  }

  load();
  if (params.get('pipeline')) openEditor(params.get('pipeline'));
  const timer = setInterval(() => { if (!document.hidden && !table.querySelector('form')) load(); }, 10_000);
  return { unmount() { clearInterval(timer); clearTimeout(previewTimer); } };
}
