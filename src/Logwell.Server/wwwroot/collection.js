// The collection page (operate): the collection configs that `logwell agent`s poll for — which paths on which hosts go
// to which index set, with which multiline rule, fields and line filters — listed, created, changed and deleted over
// /api/v1/collection-configs. An agent applies a change within its poll interval; the operations page shows the
// agents and their lag.
import { del, get, put } from './api.js';
import { confirmDialog, formatTime, h, replace, toast } from './util.js';

// Paths and globs are trimmed; patterns are kept as typed (a space may matter), only empty lines dropped.
const lines = text => text.split('\n').map(l => l.trim()).filter(l => l.length > 0);
const patterns = text => text.split('\n').map(l => l.replace(/\r$/, '')).filter(l => l.length > 0);
const names = text => text.split(',').map(l => l.trim()).filter(l => l.length > 0);
const Encodings = [['utf-8', 'UTF-8'], ['gbk', 'GBK'], ['gb18030', 'GB18030'], ['utf-16', 'UTF-16 (by byte order mark)'], ['utf-16le', 'UTF-16 LE'], ['utf-16be', 'UTF-16 BE']];

export function mount(root) {
  const table = h('tbody', { id: 'config-rows' });
  const editor = h('section', { id: 'config-editor', class: 'panel', hidden: true });
  root.append(h('section', { class: 'page collection' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Collection'),
      h('button', { type: 'button', class: 'primary', id: 'new-config', onclick: () => edit(null) }, 'New config')),
    h('p', { class: 'muted' }, 'Files that agents read, and where their lines go. An agent takes the configs for its name or one of its tags, for the index sets its API key may ingest into, within its poll interval.'),
    h('div', { class: 'table-scroll' }, h('table', { class: 'data-table' },
      h('thead', {}, h('tr', {}, ['Name', 'Paths', 'Index set', 'Multiline', 'Fields', 'For', 'Updated', ''].map(c => h('th', {}, c)))),
      table)),
    editor));

  let indexSets = [];

  async function load() {
    try {
      const [configs, sets] = await Promise.all([get('/api/v1/collection-configs'), get('/api/v1/indexsets').catch(() => ({ indexsets: [] }))]);
      indexSets = sets.indexsets.map(s => s.name);
      replace(table, configs.collection_configs.length === 0
        ? h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No collection config yet: agents read only the inputs of their own agent.yaml.'))
        : configs.collection_configs.map(row));
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  function row(config) {
    const multiline = config.multiline ? (config.multiline.start ? `starts with /${config.multiline.start}/` : 'indented lines continue') : '';
    const fields = Object.entries(config.fields ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');
    const targets = [...config.hosts, ...config.tags.map(t => `tag ${t}`)];
    return h('tr', { dataset: { name: config.name } },
      h('th', {}, config.name),
      h('td', { class: 'paths' }, (config.paths ?? []).map(p => h('div', { class: 'mono' }, p))),
      h('td', {}, config.index_set),
      h('td', { class: 'mono' }, multiline),
      h('td', { class: 'mono' }, fields),
      h('td', { class: 'targets' }, targets.length === 0 ? h('span', { class: 'muted' }, 'every agent') : targets.join(', ')),
      h('td', { class: 'nowrap' }, formatTime(config.updated_at)),
      h('td', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary small', 'aria-label': `edit ${config.name}`, onclick: () => edit(config) }, 'Edit'),
        h('button', { type: 'button', class: 'danger small', 'aria-label': `delete ${config.name}`, onclick: () => remove(config) }, 'Delete')));
  }

  function edit(config) {
    const c = config ?? {};
    const field = (id, label, control) => h('label', {}, label, control);
    const text = (id, label, value, attributes = {}) => field(id, label, h('input', { id, 'aria-label': label, value: value ?? '', ...attributes }));
    const area = (id, label, value, rows = 3) => {
      const control = h('textarea', { id, 'aria-label': label, rows, spellcheck: 'false' });
      control.value = value ?? '';
      return field(id, label, control);
    };
    const select = (id, label, options, value) => field(id, label, h('select', { id, 'aria-label': label },
      options.map(([v, t]) => h('option', { value: v, selected: v === value }, t))));
    const setList = h('datalist', { id: 'index-set-names' }, indexSets.map(n => h('option', { value: n })));
    const multiline = c.multiline ?? {};
    const error = h('p', { class: 'error', id: 'config-error', hidden: true });
    replace(editor,
      h('div', { class: 'page-head' }, h('h2', {}, config ? `Collection config ${config.name}` : 'New collection config'),
        h('button', { type: 'button', class: 'icon close', 'aria-label': 'close', onclick: () => { editor.hidden = true; } }, '×')),
      h('form', { id: 'config-form', onsubmit: event => { event.preventDefault(); save(); } },
        h('div', { class: 'editor-grid' },
          text('config-name', 'Name', c.name, { required: true, readonly: Boolean(config), placeholder: 'nginx' }),
          text('config-index-set', 'Index set', c.index_set, { required: true, list: 'index-set-names', placeholder: 'nginx' }),
          area('config-paths', 'Paths, one absolute glob a line (** for any depth)', (c.paths ?? []).join('\n')),
          area('config-exclude', 'Exclude, one glob a line', (c.exclude ?? []).join('\n')),
          text('config-hosts', 'Agents by name, comma separated (none: every agent)', (c.hosts ?? []).join(', ')),
          text('config-tags', 'Or by tag, comma separated', (c.tags ?? []).join(', ')),
          area('config-fields', 'Fields added to each event, one name=value a line', Object.entries(c.fields ?? {}).map(([k, v]) => `${k}=${v}`).join('\n')),
          h('div', { class: 'stack' },
            // A name the list does not hold (utf8, say, written through the API) is offered as it is, so saving keeps it.
            select('config-encoding', 'Encoding', Encodings.some(([v]) => v === (c.encoding ?? 'utf-8')) ? Encodings : [...Encodings, [c.encoding, c.encoding]], c.encoding ?? 'utf-8'),
            select('config-start-at', 'Files seen the first time', [['end', 'start at their end'], ['beginning', 'start at their beginning']], (c.start_at ?? 'end').toLowerCase())),
          text('config-multiline-start', 'Multiline: a pattern that starts an event', multiline.start, { placeholder: '^\\d{4}-\\d{2}-\\d{2}' }),
          h('div', { class: 'stack' },
            h('label', { class: 'check' }, h('input', { type: 'checkbox', id: 'config-multiline-indent', checked: multiline.indent === true }), 'Indented lines continue the event before them'),
            text('config-multiline-max-lines', 'Multiline: at most lines', multiline.max_lines, { type: 'number', min: 1, placeholder: '500' })),
          area('config-include', 'Keep only lines matching, one pattern a line', (c.include_lines ?? []).join('\n'), 2),
          area('config-exclude-lines', 'Drop lines matching, one pattern a line', (c.exclude_lines ?? []).join('\n'), 2)),
        setList,
        error,
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'config-save' }, 'Save'))));
    editor.hidden = false;
    editor.scrollIntoView({ block: 'start' });

    async function save() {
      error.hidden = true;
      const value = id => document.getElementById(id).value.trim();
      const body = { paths: lines(value('config-paths')), index_set: value('config-index-set') };
      const exclude = lines(value('config-exclude'));
      if (exclude.length) body.exclude = exclude;
      const fields = {};
      for (const line of lines(value('config-fields'))) {
        const at = line.indexOf('=');
        if (at <= 0) {
          error.textContent = `Fields: '${line}' is not name=value`;
          error.hidden = false;
          return;
        }
        fields[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      }
      if (Object.keys(fields).length) body.fields = fields;
      if (value('config-encoding') !== 'utf-8') body.encoding = value('config-encoding');
      body.start_at = value('config-start-at');
      const start = document.getElementById('config-multiline-start').value;
      const indent = document.getElementById('config-multiline-indent').checked;
      if (start || indent) {
        body.multiline = {};
        if (start) body.multiline.start = start;
        if (indent) body.multiline.indent = true;
        if (value('config-multiline-max-lines')) body.multiline.max_lines = Number(value('config-multiline-max-lines'));
        // A size the form does not show is kept as it was.
        if (multiline.max_bytes) body.multiline.max_bytes = multiline.max_bytes;
      }
      const include = patterns(document.getElementById('config-include').value);
      if (include.length) body.include_lines = include;
      const drop = patterns(document.getElementById('config-exclude-lines').value);
      if (drop.length) body.exclude_lines = drop;
      body.hosts = names(value('config-hosts'));
      body.tags = names(value('config-tags'));
      const name = value('config-name');
      if (!config && table.querySelector(`tr[data-name="${CSS.escape(name)}"]`)
        && !(await confirmDialog(`Replace ${name}?`, 'A collection config by that name exists; saving replaces it.', 'Replace'))) return;
      try {
        await put(`/api/v1/collection-configs/${encodeURIComponent(name)}`, body);
        toast(`Saved ${name}: agents take it within their poll interval`);
        editor.hidden = true;
        load();
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
      }
    }
  }

  async function remove(config) {
    if (!(await confirmDialog(`Delete ${config.name}?`, 'Agents stop reading its files within their poll interval; what they read before stays in its index set.', 'Delete'))) return;
    try {
      await del(`/api/v1/collection-configs/${encodeURIComponent(config.name)}`);
      toast(`Deleted ${config.name}`);
      editor.hidden = true;
      load();
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  load();
}
