// The index sets page: counts, size and retention of each; create, change retention, delete; the cleaning
// pipeline editor with a live preview on sample lines; and each index set's archive (archived days, restores into
// search, the index sets restored from it).
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
  const archivePanel = h('section', { id: 'archive-panel', class: 'panel', hidden: true });
  let archiveTimer = 0;
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
    archivePanel,
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
    const retention = h('td', { class: 'retention' },
      set.restored ? 'until it expires' : `${formatNumber(set.retention_days)} days`,
      set.archive_after_days ? h('span', { class: 'muted archive-after' }, ` · archive after ${formatNumber(set.archive_after_days)} days`) : null,
      canOn(set, 'manage_indexset') ? h('button', { type: 'button', class: 'link small', 'aria-label': `edit retention of ${set.name}`, onclick: () => editRetention(retention, set) }, 'Edit') : null);
    return h('tr', { dataset: { name: set.name } },
      h('td', {}, h('a', { href: `/?indexset=${encodeURIComponent(set.name)}&from=all`, 'data-link': '' }, set.name),
        set.restored ? h('span', { class: 'badge restored', title: `${set.restored.first_day} to ${set.restored.last_day} of ${set.restored.from}, deleted ${formatTime(set.restored.expires)}` },
          `restored from ${set.restored.from}`) : null),
      h('td', { class: 'number events' }, formatNumber(set.events)),
      h('td', { class: 'number' }, formatBytes(set.bytes_on_disk)),
      h('td', { class: 'number' }, formatNumber(set.segments)),
      retention,
      h('td', {}, formatTime(set.created)),
      h('td', { class: 'actions' },
        // The archive: for whoever may change the index set, or may view it and it moves days there.
        !set.restored && (canOn(set, 'manage_indexset') || set.archive_after_days)
          ? h('button', { type: 'button', class: 'secondary small', 'aria-label': `archive of ${set.name}`, onclick: () => openArchive(set) }, 'Archive') : null,
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

  // The index set's archive: its archived days, the restores in progress (refreshed while there are any) and the
  // index sets restored from it; a form to restore a range of days into search.
  async function openArchive(set, keepForm = false) {
    clearTimeout(archiveTimer);
    archivePanel.dataset.name = set.name;
    let archive;
    try {
      archive = await get(`/api/v1/indexsets/${encodeURIComponent(set.name)}/archive`);
    } catch (e) {
      toast(e.message, 'error');
      return;
    }
    if (archivePanel.dataset.name !== set.name) return;
    const days = archive.archived;
    const status = !archive.archive_set_up ? 'No archive is set up on this node (ArchiveTo).'
      : archive.archive_after_days ? `Whole days older than ${formatNumber(archive.archive_after_days)} days move here from the hot disk.`
        : 'This index set does not move days to the archive (archive after: not set).';
    const form = keepForm && archivePanel.querySelector('#restore-form');
    replace(archivePanel,
      h('div', { class: 'page-head' }, h('h2', {}, `Archive of ${set.name}`),
        h('button', { type: 'button', class: 'icon close', 'aria-label': 'close archive', onclick: () => { clearTimeout(archiveTimer); archivePanel.hidden = true; } }, '×')),
      h('p', { class: 'muted' }, status),
      days.length === 0 ? h('p', { id: 'archived-none', class: 'muted' }, 'No day is archived.')
        : h('table', { class: 'data-table', id: 'archived-days' },
          h('thead', {}, h('tr', {}, ['Day (UTC)', 'Segments', 'Events', 'Size'].map((c, i) => h('th', { class: i ? 'number' : '' }, c)))),
          h('tbody', {}, days.map(day => h('tr', { dataset: { day: day.day } },
            h('td', {}, day.day), h('td', { class: 'number' }, formatNumber(day.segments)),
            h('td', { class: 'number' }, formatNumber(day.events)), h('td', { class: 'number' }, formatBytes(day.bytes)))))),
      h('ul', { id: 'archive-restores', class: 'plain-list' },
        archive.restoring.map(r => h('li', { dataset: { as: r.as }, class: 'restoring' },
          `Restoring ${r.first_day} to ${r.last_day} as ${r.as}: ${r.percent}% `, h('progress', { max: 100, value: r.percent }))),
        archive.restored.map(r => h('li', { dataset: { as: r.name }, class: 'restored' },
          h('a', { href: `/?indexset=${encodeURIComponent(r.name)}&from=all`, 'data-link': '' }, r.name),
          ` holds ${r.first_day} to ${r.last_day} (${formatNumber(r.events)} events), deleted ${formatTime(r.expires)}`))),
      form || (canOn(set, 'manage_indexset') && days.length > 0 ? restoreForm(set, days) : null));
    archivePanel.hidden = false;
    if (archive.restoring.length > 0) {
      archiveTimer = setTimeout(() => openArchive(set, true), 1000);
    } else if (keepForm) {
      load();
    }
  }

  function restoreForm(set, days) {
    const from = h('input', { id: 'restore-from', type: 'date', value: days[0].day, required: true, 'aria-label': 'first day' });
    const to = h('input', { id: 'restore-to', type: 'date', value: days[days.length - 1].day, required: true, 'aria-label': 'last day' });
    const as = h('input', { id: 'restore-as', placeholder: `${set.name}-restored`, 'aria-label': 'restore as' });
    const expire = h('input', { id: 'restore-expire', type: 'number', min: 1, max: 3650, value: 7, class: 'narrow', 'aria-label': 'expire after days' });
    const error = h('p', { class: 'error', hidden: true });
    return h('form', { id: 'restore-form', class: 'inline-form', onsubmit: async event => {
      event.preventDefault();
      error.hidden = true;
      try {
        const body = { from: from.value, to: to.value, expire_days: Number(expire.value) };
        if (as.value.trim()) body.as = as.value.trim();
        const started = await post(`/api/v1/indexsets/${encodeURIComponent(set.name)}/archive/restore`, body);
        toast(`Restoring ${started.from} to ${started.to} as ${started.as}`);
        watchRestore(set, started);
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
      }
    } }, h('label', {}, 'From', from), h('label', {}, 'To', to), h('label', {}, 'As', as), h('label', {}, 'Expires after (days)', expire),
    h('button', { type: 'submit', class: 'primary', id: 'restore-start' }, 'Restore into search'), error);
  }

  // Follows a restore task until it is done (the archive panel and the table show the new index set) or has failed.
  async function watchRestore(set, started) {
    try {
      const task = await get(`/api/v1/indexsets/${encodeURIComponent(set.name)}/archive/restore/${started.task}`);
      if (task.state === 'dead') {
        toast(`The restore as ${started.as} failed: ${task.error}`, 'error');
        return;
      }
      await openArchive(set, task.state !== 'done');
      if (task.state === 'done') {
        load();
        return;
      }
    } catch (e) {
      toast(e.message, 'error');
      return;
    }
    setTimeout(() => watchRestore(set, started), 1000);
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
  return { unmount() { clearInterval(timer); clearTimeout(previewTimer); clearTimeout(archiveTimer); } };
}
