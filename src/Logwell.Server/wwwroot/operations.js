// The operations page: registered nodes, this node's health components, its supervisor's processes and API
// workers, the task queues (retry or purge dead tasks), the scheduler's active holder, and the file agents that
// report to the node with their lag. Refreshed every 5 s.
import { del, get, post } from './api.js';
import { can } from './session.js';
import { confirmDialog, formatBytes, formatDuration, formatNumber, formatTime, h, replace, toast } from './util.js';

export function mount(root) {
  const nodes = h('div', { id: 'nodes' });
  const health = h('div', { id: 'health' });
  const processes = h('div', { id: 'processes' });
  const queues = h('div', { id: 'queues' });
  const scheduler = h('div', { id: 'scheduler' });
  const agents = h('div', { id: 'agents' });
  const updated = h('span', { class: 'muted small', id: 'updated' });
  root.append(h('section', { class: 'page operations' },
    h('div', { class: 'page-head' }, h('h1', {}, 'Operations'), updated),
    h('div', { class: 'cards' },
      h('section', { class: 'card' }, h('h2', {}, 'Health of this node'), health),
      h('section', { class: 'card' }, h('h2', {}, 'Scheduler'), scheduler)),
    h('section', { class: 'card' }, h('h2', {}, 'Nodes'), nodes),
    h('section', { class: 'card' }, h('h2', {}, 'Task queues'), queues),
    can('operate') ? h('section', { class: 'card' }, h('h2', {}, 'Agents'), agents) : null,
    h('section', { class: 'card' }, h('h2', {}, 'Supervised processes'), processes)));

  const badge = (ok, text) => h('span', { class: `badge ${ok ? 'ok' : 'bad'}` }, text);
  const failure = e => h('p', { class: 'error' }, e.message);

  async function load() {
    const [healthData, nodeData, queueData, supervisorData, agentData] = await Promise.allSettled([
      get('/healthz', { format: 'json' }).catch(e => (e.status === 503 ? e.body : Promise.reject(e))),
      get('/api/v1/nodes'),
      get('/api/v1/queues'),
      get('/api/v1/supervisor'),
      can('operate') ? get('/api/v1/agents') : Promise.resolve(null),
    ]);
    showHealth(healthData);
    showNodes(nodeData);
    showQueues(queueData);
    showSupervisor(supervisorData);
    if (agentData.value !== null) showAgents(agentData);
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  function showHealth(result) {
    if (result.status === 'rejected') return replace(health, failure(result.reason));
    const data = result.value;
    replace(health, h('p', {}, badge(data.status === 'healthy', data.status)),
      h('table', { class: 'data-table compact' }, h('tbody', {}, data.components.map(check => h('tr', { dataset: { component: check.name } },
        h('td', {}, badge(check.status === 'healthy', check.status === 'healthy' ? 'ok' : 'failed')), h('th', {}, check.name), h('td', {}, check.detail))))));
  }

  function showNodes(result) {
    if (result.status === 'rejected') return replace(nodes, failure(result.reason));
    const list = result.value.nodes;
    replace(nodes, list.length === 0 ? h('p', { class: 'muted' }, 'No node is registered.') : h('div', { class: 'table-scroll' }, h('table', { class: 'data-table' },
      h('thead', {}, h('tr', {}, ['Health', 'Node', 'Role', 'Components', 'Address', 'Version', 'Last heartbeat'].map(c => h('th', {}, c)))),
      h('tbody', {}, list.map(node => h('tr', { dataset: { node: node.id } },
        h('td', {}, badge(node.health === 'passing', node.health)), h('td', {}, node.id), h('td', {}, node.role),
        h('td', {}, h('div', { class: 'components' }, node.checks.length === 0 ? h('span', { class: 'muted' }, 'none reported')
          : node.checks.map(check => h('span', { class: `component ${check.status === 'healthy' ? 'ok' : 'bad'}`, title: check.detail, dataset: { component: check.name } },
            check.status === 'healthy' ? '✓ ' : '✗ ', check.name)))),
        h('td', {}, node.port ? `${node.address}:${node.port}` : node.address), h('td', {}, node.version),
        h('td', { class: 'nowrap' }, formatTime(node.heartbeat_at))))))));
  }

  function showQueues(result) {
    if (result.status === 'rejected') {
      replace(queues, failure(result.reason));
      replace(scheduler, failure(result.reason));
      return;
    }
    const data = result.value;
    replace(scheduler, data.scheduler
      ? h('dl', { class: 'facts' }, h('dt', {}, 'Active holder'), h('dd', { id: 'scheduler-holder' }, data.scheduler.holder),
        h('dt', {}, 'Fencing token'), h('dd', {}, formatNumber(data.scheduler.token)),
        h('dt', {}, 'Lease until'), h('dd', {}, formatTime(data.scheduler.lease_until)))
      : h('p', {}, badge(false, 'none'), ' No scheduler holds the lease: periodic tasks are not issued.'));
    replace(queues, data.queues.length === 0 ? h('p', { class: 'muted' }, 'No task has been queued yet.') : h('div', { class: 'table-scroll' }, h('table', { class: 'data-table' },
      h('thead', {}, h('tr', {}, ['Queue', 'Pending', 'Delayed', 'Running', 'Failed', 'Dead', 'Done', 'Done/min', 'Oldest pending', ''].map((c, i) => h('th', { class: i >= 1 && i <= 7 ? 'number' : '' }, c)))),
      h('tbody', {}, data.queues.map(queue => h('tr', { dataset: { queue: queue.name } },
        h('th', {}, queue.name),
        ['pending', 'delayed', 'running', 'failed', 'dead', 'done', 'done_last_minute'].map(k => h('td', { class: `number ${k}${k === 'dead' && queue.dead ? ' bad' : ''}` }, formatNumber(queue[k]))),
        h('td', {}, formatDuration(queue.oldest_pending_seconds)),
        h('td', { class: 'actions' }, can('operate') ? [
          h('button', { type: 'button', class: 'secondary small', disabled: queue.dead === 0, onclick: () => act(queue.name, 'retry') }, 'Retry dead'),
          h('button', { type: 'button', class: 'danger small', disabled: queue.dead === 0, onclick: () => act(queue.name, 'purge') }, 'Purge dead')] : null)))))));
  }

  async function act(queue, action) {
    if (action === 'purge' && !await confirmDialog(`Purge the dead tasks of ${queue}?`, 'They are removed and will not run.', 'Purge')) return;
    try {
      const result = await post(`/api/v1/queues/${encodeURIComponent(queue)}/dead/${action}`);
      const count = action === 'retry' ? result.retried : result.purged;
      toast(`${formatNumber(count)} ${count === 1 ? 'task' : 'tasks'} ${action === 'retry' ? 'queued again' : 'purged'}`);
      load();
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  // An agent is late when it missed three reports; its lag is what it has not read plus what it has not shipped.
  function showAgents(result) {
    if (result.status === 'rejected') return replace(agents, failure(result.reason));
    const list = result.value.agents;
    replace(agents, list.length === 0 ? h('p', { class: 'muted' }, 'No agent has reported. Agents report when their agent.yaml sets management.poll_interval (docs/agent.md).') : h('div', { class: 'table-scroll' }, h('table', { class: 'data-table' },
      h('thead', {}, h('tr', {}, ['State', 'Agent', 'Tags', 'Files', 'Not read', 'Not shipped', 'Last report', 'Version', 'Last error', ''].map((c, i) => h('th', { class: i >= 3 && i <= 5 ? 'number' : '' }, c)))),
      h('tbody', {}, list.map(agent => {
        const health = agent.health ?? {};
        const late = agent.seen_seconds_ago > 3 * (health.poll_interval_seconds ?? 30);
        return h('tr', { dataset: { agent: agent.name } },
          h('td', {}, badge(!late && !health.last_error, late ? 'late' : health.last_error ? 'error' : 'ok')),
          h('th', { title: `id ${agent.id}, from ${agent.address}` }, agent.name),
          h('td', {}, agent.tags.join(', ')),
          h('td', { class: 'number files' }, formatNumber(health.files)),
          h('td', { class: 'number behind' }, formatBytes(health.bytes_behind ?? 0)),
          h('td', { class: 'number buffered' }, formatBytes(health.buffer_bytes ?? 0)),
          h('td', { class: 'nowrap', title: formatTime(agent.last_seen) }, `${formatDuration(agent.seen_seconds_ago)} ago`),
          h('td', {}, agent.version),
          h('td', { class: 'error-text' }, health.last_error ?? ''),
          h('td', { class: 'actions' }, h('button', { type: 'button', class: 'secondary small', 'aria-label': `forget ${agent.name}`, onclick: () => forget(agent.name) }, 'Forget')));
      })))));
  }

  async function forget(name) {
    if (!await confirmDialog(`Forget agent ${name}?`, 'It is listed again when it next reports.', 'Forget')) return;
    try {
      await del(`/api/v1/agents/${encodeURIComponent(name)}`);
      toast(`Forgot ${name}`);
      load();
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  function showSupervisor(result) {
    if (result.status === 'rejected') return replace(processes, failure(result.reason));
    const data = result.value;
    const master = data.api_master
      ? h('p', {}, `API master: ${data.api_master.workers} workers serving (${data.api_master.target} wanted); `,
        `${formatNumber(data.api_master.recycles)} recycled, ${formatNumber(data.api_master.deaths)} died, ${formatNumber(data.api_master.timeouts)} killed for time`)
      : null;
    replace(processes, data.processes === null
      ? h('p', { class: 'muted' }, 'This node does not run under logwell supervise: no process list.')
      : h('div', { class: 'table-scroll' }, h('table', { class: 'data-table' },
        h('thead', {}, h('tr', {}, ['Process', 'State', 'Starts', 'Description'].map(c => h('th', { class: c === 'Starts' ? 'number' : '' }, c)))),
        h('tbody', {}, data.processes.map(p => h('tr', { dataset: { process: p.name } },
          h('th', {}, p.name), h('td', {}, h('span', { class: `badge ${p.state === 'RUNNING' ? 'ok' : ['FATAL', 'BACKOFF', 'EXITED'].includes(p.state) ? 'bad' : 'neutral'}` }, p.state)),
          h('td', { class: 'number' }, formatNumber(p.spawns)), h('td', {}, p.description ?? '')))))),
    master);
  }

  load();
  const timer = setInterval(() => { if (!document.hidden) load(); }, 5000);
  return { unmount() { clearInterval(timer); } };
}
