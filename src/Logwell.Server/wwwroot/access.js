// The access page (manage_access): users, groups, roles, grants and API keys, one tab each, over /api/v1/access.
// A new key's secret is shown once, here, and never again.
import { del, get, post, put } from './api.js';
import { confirmDialog, formatTime, h, replace, toast } from './util.js';

const Tabs = [['users', 'Users'], ['groups', 'Groups'], ['roles', 'Roles'], ['grants', 'Grants'], ['keys', 'API keys']];

export function mount(root, params) {
  let newKey = null;
  let tab = Tabs.some(([id]) => id === params.get('tab')) ? params.get('tab') : 'users';
  const body = h('div', { id: 'access-body', class: 'stack' });
  const tabs = h('div', { class: 'tabs', role: 'tablist' }, Tabs.map(([id, label]) =>
    h('button', { type: 'button', role: 'tab', id: `tab-${id}`, 'aria-selected': String(id === tab), onclick: () => select(id) }, label)));
  root.append(h('section', { class: 'page access' }, h('div', { class: 'page-head' }, h('h1', {}, 'Access')), tabs, body));

  function select(id) {
    tab = id;
    history.replaceState(null, '', `/access?tab=${id}`);
    for (const button of tabs.children) button.setAttribute('aria-selected', String(button.id === `tab-${id}`));
    load();
  }

  const table = (headers, rows) => h('div', { class: 'table-scroll' }, h('table', { class: 'data-table', id: `${tab}-table` },
    h('thead', {}, h('tr', {}, headers.map(c => h('th', {}, c)))), h('tbody', {}, rows)));
  const grantList = grants => grants.map(g => `${g.role} on ${g.scope}${g.filter ? ` where ${g.filter}` : ''}`).join('; ');
  const input = (id, label, attributes = {}) => h('label', {}, label, h('input', { id, 'aria-label': label, ...attributes }));
  const value = id => document.getElementById(id).value.trim();
  const remover = (label, path, what) => h('button', { type: 'button', class: 'danger small', 'aria-label': `${label} ${what}`, onclick: async () => {
    if (!(await confirmDialog(`${label[0].toUpperCase()}${label.slice(1)} ${what}?`, 'This takes effect on every process of the node within a second.', label))) return;
    try {
      await del(path);
      toast(`${label[0].toUpperCase()}${label.slice(1)}d ${what}`);
      load();
    } catch (e) {
      toast(e.message, 'error');
    }
  } }, label[0].toUpperCase() + label.slice(1));

  /** A form that posts what build() returns, then reloads; errors show under it. */
  function form(id, fields, submitLabel, build, after) {
    const error = h('p', { class: 'error', hidden: true });
    return h('div', {}, h('form', { class: 'inline-form', id, onsubmit: async event => {
      event.preventDefault();
      error.hidden = true;
      try {
        const [path, data] = build();
        const result = await post(path, data);
        after?.(result);
        load();
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
      }
    } }, fields, h('button', { type: 'submit', class: 'primary' }, submitLabel)), error);
  }

  const roleSelect = (id, roles) => h('label', {}, 'Role', h('select', { id, 'aria-label': 'role' }, roles.map(r => h('option', { value: r.name }, r.name))));

  async function load() {
    try {
      const roles = await get('/api/v1/access/roles');
      replace(body, ...await views[tab](roles));
    } catch (e) {
      replace(body, h('p', { class: 'error' }, e.message));
    }
  }

  const views = {
    async users(roles) {
      const users = await get('/api/v1/access/users');
      return [
        form('user-form', [input('user-name', 'Name', { required: true }), input('user-password', 'Password', { type: 'password', required: true, minlength: 8, autocomplete: 'new-password' }),
          roleSelect('user-role', roles), input('user-scope', 'Scope', { value: '*', placeholder: '*, space:NAME or indexset:NAME' })],
        'Create user', () => ['/api/v1/access/users', { name: value('user-name'), password: value('user-password'), role: value('user-role'), scope: value('user-scope') || '*' }]),
        table(['Name', 'Groups', 'Grants', 'Created', ''], users.map(u => h('tr', { dataset: { name: u.name } },
          h('td', {}, u.name, u.disabled ? ' (disabled)' : ''), h('td', {}, u.groups.join(', ')), h('td', {}, grantList(u.grants)),
          h('td', { class: 'nowrap' }, formatTime(u.created_at)), h('td', { class: 'actions' },
            h('button', { type: 'button', class: 'secondary small', 'aria-label': `${u.disabled ? 'enable' : 'disable'} ${u.name}`, onclick: async () => {
              try {
                await put(`/api/v1/access/users/${encodeURIComponent(u.name)}/disabled`, { disabled: !u.disabled });
                load();
              } catch (e) {
                toast(e.message, 'error');
              }
            } }, u.disabled ? 'Enable' : 'Disable'),
            remover('delete', `/api/v1/access/users/${encodeURIComponent(u.name)}`, u.name))))),
      ];
    },
    async groups() {
      const groups = await get('/api/v1/access/groups');
      return [
        form('group-form', [input('group-name', 'Name', { required: true })], 'Create group', () => ['/api/v1/access/groups', { name: value('group-name') }]),
        form('member-form', [input('member-group', 'Group', { required: true }), input('member-user', 'User', { required: true })], 'Add member',
          () => [`/api/v1/access/groups/${encodeURIComponent(value('member-group'))}/members`, { user: value('member-user') }]),
        table(['Name', 'Members', 'Grants', ''], groups.map(g => h('tr', { dataset: { name: g.name } },
          h('td', {}, g.name), h('td', {}, g.members.join(', ')), h('td', {}, grantList(g.grants)),
          h('td', { class: 'actions' }, remover('delete', `/api/v1/access/groups/${encodeURIComponent(g.name)}`, g.name))))),
      ];
    },
    async roles(roles) {
      const actions = roles.find(r => r.name === 'admin')?.actions ?? [];
      const boxes = actions.map(a => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: a, 'data-action': a }), a));
      return [
        form('role-form', [input('role-name', 'Name', { required: true }), h('div', { class: 'checks' }, boxes)], 'Create role',
          () => ['/api/v1/access/roles', { name: value('role-name'), actions: boxes.map(b => b.firstChild).filter(b => b.checked).map(b => b.value) }]),
        table(['Name', 'Actions', ''], roles.map(r => h('tr', { dataset: { name: r.name } },
          h('td', {}, r.name, r.built_in ? h('span', { class: 'muted' }, ' built in') : null), h('td', {}, r.actions.join(', ')),
          h('td', { class: 'actions' }, r.built_in ? null : remover('delete', `/api/v1/access/roles/${encodeURIComponent(r.name)}`, r.name))))),
      ];
    },
    async grants(roles) {
      const grants = await get('/api/v1/access/grants');
      return [
        form('grant-form', [
          h('label', {}, 'To', h('select', { id: 'grant-kind', 'aria-label': 'principal kind' }, ['user', 'group', 'key'].map(k => h('option', { value: k }, k)))),
          input('grant-principal', 'Name or key id', { required: true }), roleSelect('grant-role', roles),
          input('grant-scope', 'Scope', { value: '*', placeholder: '*, space:NAME or indexset:NAME' }),
          input('grant-filter', 'Filter (optional)', { placeholder: 'service:payments' })],
        'Add grant', () => ['/api/v1/access/grants', { [value('grant-kind')]: value('grant-principal'), role: value('grant-role'), scope: value('grant-scope') || '*', filter: value('grant-filter') || null }]),
        table(['To', 'Role', 'Scope', 'Filter', ''], grants.map(g => h('tr', { dataset: { id: g.id } },
          h('td', {}, `${g.principal_kind} ${g.principal}`), h('td', {}, g.role), h('td', {}, g.scope), h('td', { class: 'mono' }, g.filter ?? ''),
          h('td', { class: 'actions' }, remover('remove', `/api/v1/access/grants/${encodeURIComponent(g.id)}`, `${g.role} of ${g.principal}`))))),
      ];
    },
    async keys(roles) {
      const keys = await get('/api/v1/access/keys');
      // The secret of the key just made, in this rendering only.
      const shown = newKey ? h('div', { class: 'panel', id: 'new-secret' }, h('p', {}, `The secret of ${newKey.name} (${newKey.id}), shown this once:`),
        h('div', { class: 'secret' }, newKey.secret)) : null;
      newKey = null;
      return [
        form('key-form', [input('key-name', 'Name', { required: true }), roleSelect('key-role', roles),
          input('key-scope', 'Scope', { value: '*', placeholder: '*, space:NAME or indexset:NAME' }), input('key-expires', 'Expires in (optional)', { placeholder: '90d' })],
        'Create key', () => ['/api/v1/access/keys', { name: value('key-name'), role: value('key-role'), scope: value('key-scope') || '*', expires_in: value('key-expires') || null }],
        created => { newKey = created; }),
        shown,
        table(['Name', 'Id', 'Owner', 'Created', 'Expires', 'State', 'Grants', ''], keys.map(k => h('tr', { dataset: { id: k.id } },
          h('td', {}, k.name), h('td', { class: 'mono' }, k.id), h('td', {}, k.owner ?? ''), h('td', { class: 'nowrap' }, formatTime(k.created_at)),
          h('td', { class: 'nowrap' }, k.expires_at ? formatTime(k.expires_at) : 'never'), h('td', {}, k.revoked_at ? 'revoked' : 'active'),
          h('td', {}, grantList(k.grants)),
          h('td', { class: 'actions' }, k.revoked_at ? null : remover('revoke', `/api/v1/access/keys/${encodeURIComponent(k.id)}`, k.name))))),
      ];
    },
  };

  load();
  return {};
}
