// The local console: topology, live figures, the latest events and their traces, DLQs, replay, cost.
// Everything comes from the running stack's /_local/ endpoints; text goes into the page through
// textContent only (the web app's h() helper), never as HTML.

import { byId, h } from '/js/dom.js';

const FIGURES_MS = 1000; // the figures refresh at least every 2 s: every second
const STREAM_MS = 500; // a POSTed event is on the page within a second or so
const TOPOLOGY_MS = 2000; // follows live reload of the stack config
const COST_MS = 5000;
const STATES = ['processed', 'running', 'retrying', 'dlq', 'filtered', 'pending'];
const FIGURES = [
  ['delivered', 'delivered'],
  ['inQueue', 'in queue'],
  ['inFlight', 'in flight'],
  ['processed', 'processed'],
  ['failed', 'failed'],
  ['dlq', 'in the DLQ'],
];

const state = {
  topology: null,
  topologyKey: '',
  selected: null,
  types: new Set(),
  failures: 0,
};

async function getJson(path) {
  const response = await fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || `${path} answered ${response.status}`);
  return body;
}

async function postJson(path, doc) {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(doc || {}),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || `${path} answered ${response.status}`);
  return body;
}

function showError(error) {
  const el = byId('console-error');
  if (!error) {
    el.hidden = true;
    el.textContent = '';
    return;
  }
  el.textContent = `The stack did not answer: ${error.message}`;
  el.hidden = false;
}

function stateBadge(name) {
  return h('span', { class: `badge state state-${name}` }, name);
}

function policyText(policy) {
  return policy ? JSON.stringify(policy) : 'every event';
}

// ---------------------------------------------------------------------- topology and figures

function renderTopology(topo) {
  const topic = topo.consumers.filter((c) => c.source !== 'bus');
  const bus = topo.consumers.filter((c) => c.source === 'bus');
  byId('topology-summary').replaceChildren(
    h('span', {}, `${topo.producers.join(' and ')} → topic `),
    h('code', {}, topo.topic),
    h('span', {}, ` → ${topic.length} consumer${topic.length === 1 ? '' : 's'}; persister → bus `),
    h('code', {}, topo.bus),
    h('span', {}, ` → ${bus.length} bus consumer${bus.length === 1 ? '' : 's'}`),
  );
  const lane = (c) =>
    h(
      'li',
      { class: 'lane', 'data-consumer': c.name },
      h(
        'div',
        { class: 'lane-flow' },
        h('span', { class: 'node node-source' }, c.source === 'bus' ? 'bus' : 'topic'),
        h('span', { class: 'arrow', 'aria-hidden': 'true' }, '→'),
        h(
          'span',
          { class: 'node node-filter', title: c.source === 'bus' ? 'event pattern' : 'filter policy' },
          h('span', { class: 'visually-hidden' }, c.source === 'bus' ? 'event pattern ' : 'filter policy '),
          h('code', {}, policyText(c.source === 'bus' ? c.eventPattern : c.filterPolicy)),
        ),
        h('span', { class: 'arrow', 'aria-hidden': 'true' }, '→'),
        h('span', { class: 'node node-queue' }, h('span', { class: 'visually-hidden' }, 'queue '), c.queue || '–'),
        h('span', { class: 'arrow', 'aria-hidden': 'true' }, '→'),
        h(
          'span',
          { class: 'node node-function' },
          h('strong', {}, c.name),
          h(
            'span',
            { class: 'muted' },
            c.removed
              ? ' (removed from the stack config: its queues are kept while they hold messages)'
              : c.handler
                ? ` ${c.handler}`
                : ' (no handler: messages wait)',
          ),
        ),
        h(
          'span',
          { class: 'node node-dlq' },
          h('span', { class: 'visually-hidden' }, 'dead-letter queue '),
          c.missing && c.missing.length ? `DLQ ${c.missing[0]} missing` : `DLQ ${c.dlq || '–'}`,
        ),
      ),
      c.loadError
        ? h('p', { class: 'lane-error', role: 'alert' }, `${c.name} does not load: ${c.loadError}; its messages wait until a fix is saved.`)
        : null,
      h(
        'dl',
        { class: 'figures', 'aria-label': `${c.name} figures` },
        FIGURES.map(([key, label]) =>
          h('div', { class: `figure figure-${key}` }, h('dt', {}, label), h('dd', { 'data-figure': key }, '–')),
        ),
      ),
    );
  byId('topology').replaceChildren(
    h('h3', { class: 'lane-group' }, 'From the topic'),
    h('ul', { class: 'lanes' }, topic.map(lane)),
    h('h3', { class: 'lane-group' }, 'From the bus'),
    bus.length
      ? h('ul', { class: 'lanes' }, bus.map(lane))
      : h('p', { class: 'muted' }, 'No bus consumer (add one with source: bus in the stack config).'),
  );
  for (const select of [byId('dlq-consumer'), byId('replay-consumer')]) {
    const keep = select.value;
    const first = select.id === 'replay-consumer' ? [h('option', { value: '' }, 'the topic (every consumer)')] : [];
    select.replaceChildren(
      ...first,
      ...topo.consumers.filter((c) => c.dlq || select.id === 'replay-consumer').map((c) => h('option', { value: c.name }, c.name)),
    );
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  }
}

async function refreshTopology() {
  const topo = await getJson('/_local/topology');
  const key = JSON.stringify(topo);
  if (key !== state.topologyKey) {
    state.topologyKey = key;
    state.topology = topo;
    renderTopology(topo);
  }
}

async function refreshFigures() {
  const doc = await getJson('/_local/figures');
  byId('rate').textContent = `${doc.publishedPerSecond.toFixed(1)} events published per second (${doc.published} since start)`;
  for (const [name, figures] of Object.entries(doc.consumers)) {
    const lane = document.querySelector(`.lane[data-consumer="${CSS.escape(name)}"]`);
    if (!lane) continue;
    for (const [key] of FIGURES) {
      const cell = lane.querySelector(`[data-figure="${key}"]`);
      if (cell && cell.textContent !== String(figures[key])) cell.textContent = String(figures[key]);
      cell?.classList.toggle('nonzero', figures[key] > 0); // failures and DLQ drawn red only when there are some
    }
    lane.classList.toggle('lane-dlq', figures.dlq > 0);
    if (name === dlqConsumer()) markRedrive(figures.dlq);
  }
}

// ---------------------------------------------------------------------- the stream and traces

function filters() {
  const params = new URLSearchParams({ limit: '50' });
  const type = byId('filter-type').value;
  const subject = byId('filter-subject').value.trim();
  if (type) params.set('type', type);
  if (subject) params.set('subject', subject);
  return params;
}

async function refreshStream() {
  const doc = await getJson(`/_local/events?${filters()}`);
  const body = byId('stream-body');
  // Newest first by publish time: the ledger lists events in the order it saw them, which concurrent
  // publishers can interleave. Events never seen on the topic (no time) come last.
  const events = [...doc.events].sort((a, b) => (b.published || '').localeCompare(a.published || ''));
  const rows = events.map((e) => {
    if (e.type && !state.types.has(e.type)) {
      state.types.add(e.type);
      byId('filter-type').append(h('option', { value: e.type }, e.type));
    }
    const selected = e.id === state.selected;
    return h(
      'tr',
      { class: selected ? 'row-selected' : null, 'data-event': e.id },
      h(
        'td',
        { class: 'cell-text' },
        h('span', { class: 'cell-time stream-time' }, (e.published || '').replace('T', ' ').replace('Z', ' UTC')),
        h(
          'button',
          {
            type: 'button',
            class: 'linkish',
            'aria-pressed': selected ? 'true' : 'false',
            'aria-label': `Trace ${e.type} ${e.id}`,
            onclick: () => select(e.id),
          },
          h('code', {}, e.id),
        ),
        h('span', { class: 'muted type' }, e.type || ''),
      ),
      h('td', { class: 'cell-text' }, e.subject || ''),
      h(
        'td',
        {},
        Object.entries(e.states)
          .sort()
          .map(([name, s]) => h('span', { class: `badge state state-${s}`, title: `${name}: ${s}` }, `${name} ${s}`)),
      ),
    );
  });
  // Keep the focused row's button focused across refreshes (keyboard users).
  const focused = document.activeElement?.closest?.('tr')?.dataset?.event;
  body.replaceChildren(...rows);
  if (focused) body.querySelector(`tr[data-event="${CSS.escape(focused)}"] button`)?.focus();
  byId('stream-empty').hidden = rows.length > 0;
  byId('stream-count').textContent = rows.length ? `newest ${rows.length}` : '';
  if (state.selected) await refreshTrace(false);
}

async function select(eventId) {
  state.selected = eventId;
  for (const row of byId('stream-body').children) {
    const on = row.dataset.event === eventId;
    row.classList.toggle('row-selected', on);
    row.querySelector('button')?.setAttribute('aria-pressed', on ? 'true' : 'false');
  }
  await refreshTrace(true);
}

async function refreshTrace(announce) {
  const id = state.selected;
  if (!id) return;
  let doc;
  try {
    doc = await getJson(`/_local/trace?id=${encodeURIComponent(id)}`); // any id, "/" and a trailing "/" included
  } catch (error) {
    byId('trace').replaceChildren(h('p', { class: 'notice notice-error' }, error.message));
    return;
  }
  byId('trace-hint').hidden = true;
  byId('trace').replaceChildren(
    h('p', {}, h('code', { class: 'trace-id' }, doc.id), ` ${doc.type || ''} · subject ${doc.subject || '?'}`),
    h(
      'dl',
      { class: 'trace-facts' },
      h('dt', {}, 'published'),
      h('dd', {}, doc.published || 'not seen on the topic'),
      h('dt', {}, 'stored'),
      h('dd', {}, doc.stored ? 'yes' : 'no'),
      h('dt', {}, 'announced on the bus'),
      h('dd', {}, doc.announced ? 'yes' : 'no'),
    ),
    h(
      'table',
      { class: 'items trace-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Consumer'), h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Attempts'), h('th', { scope: 'col' }, 'Last error'))),
      h(
        'tbody',
        {},
        Object.entries(doc.consumers).map(([name, c]) =>
          h(
            'tr',
            { 'data-consumer': name },
            h('td', {}, name),
            h('td', {}, stateBadge(STATES.includes(c.state) ? c.state : 'pending')),
            h('td', {}, String(c.attempts)),
            h('td', { class: 'cell-error' }, c.error || ''),
          ),
        ),
      ),
    ),
  );
  if (announce) byId('trace-title').focus({ preventScroll: false });
}

// ---------------------------------------------------------------------- DLQs

function dlqConsumer() {
  return byId('dlq-consumer').value;
}

// Redrive is the primary action only while the DLQ holds something to redrive.
function markRedrive(count) {
  byId('dlq-redrive').classList.toggle('btn-primary', count > 0);
}

function traceLink(id) {
  return h(
    'button',
    { type: 'button', class: 'linkish', 'aria-label': `Trace ${id}`, onclick: () => select(id) },
    h('code', {}, id),
  );
}

function dlqEvent(body) {
  if (typeof body !== 'object' || !body) return String(body);
  return h('span', {}, body.id ? traceLink(String(body.id)) : '', h('span', { class: 'muted type' }, body.type || ''));
}

async function showDlq() {
  const name = dlqConsumer();
  if (!name) return;
  const status = byId('dlq-status');
  status.textContent = `Reading ${name}'s DLQ…`;
  try {
    const doc = await getJson(`/_local/consumers/${encodeURIComponent(name)}/dlq`);
    const rows = doc.messages.map((m) =>
      h(
        'tr',
        {},
        h('td', { class: 'cell-text' }, h('code', {}, m.messageId)),
        h('td', {}, String(m.receiveCount)),
        h('td', { class: 'cell-error' }, m.error || '–'),
        h('td', { class: 'cell-text', title: m.bodyProblem || '' }, dlqBody(m)),
      ),
    );
    byId('dlq-body').replaceChildren(...rows);
    byId('dlq-table').hidden = rows.length === 0;
    markRedrive(rows.length);
    status.textContent = `${rows.length} message${rows.length === 1 ? '' : 's'} in ${name}'s DLQ`;
  } catch (error) {
    status.textContent = error.message;
  }
}

async function redrive() {
  const name = dlqConsumer();
  const status = byId('dlq-status');
  status.textContent = `Redriving ${name}'s DLQ…`;
  try {
    const doc = await postJson(`/_local/consumers/${encodeURIComponent(name)}/dlq/redrive`);
    status.textContent = `${doc.moved} message${doc.moved === 1 ? '' : 's'} moved back to ${name}'s queue`;
    byId('dlq-body').replaceChildren();
    byId('dlq-table').hidden = true;
    markRedrive(0);
  } catch (error) {
    status.textContent = error.message;
  }
}

function purge() {
  const name = dlqConsumer();
  const dialog = byId('confirm');
  byId('confirm-text').textContent = `Every message in ${name}'s DLQ will be deleted. This cannot be undone.`;
  dialog.returnValue = '';
  dialog.showModal();
}

async function confirmed() {
  if (byId('confirm').returnValue !== 'purge') {
    byId('dlq-purge').focus();
    return;
  }
  const name = dlqConsumer();
  const status = byId('dlq-status');
  try {
    const doc = await postJson(`/_local/consumers/${encodeURIComponent(name)}/dlq/purge`);
    status.textContent = `purged ${doc.purged} message${doc.purged === 1 ? '' : 's'} from ${name}'s DLQ`;
    byId('dlq-body').replaceChildren();
    byId('dlq-table').hidden = true;
    markRedrive(0);
  } catch (error) {
    status.textContent = error.message;
  }
  byId('dlq-purge').focus();
}

// ---------------------------------------------------------------------- replay and cost

function dlqBody(m) {
  // Anyone's bytes: a body the stack could not read as JSON comes as text, with the reason.
  if (m.bodyProblem) return h('span', { class: 'body-raw' }, `(body is ${m.bodyProblem}) ${String(m.body).slice(0, 200)}`);
  return dlqEvent(m.body);
}

async function replay(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const status = byId('replay-status');
  const doc = Object.fromEntries([...new FormData(form).entries()].filter(([, v]) => String(v).trim()));
  status.className = '';
  status.textContent = 'Replaying…';
  try {
    const answer = await postJson('/_local/replay', doc);
    const to = answer.consumer ? ` to ${answer.consumer}'s queue` : ' on the topic';
    const skipped = answer.skipped ? `; skipped ${answer.skipped} archive line${answer.skipped === 1 ? '' : 's'} that are not events (${answer.skips[0]}${answer.skipped > 1 ? ', …' : ''})` : '';
    status.textContent = `replayed ${answer.replayed} event${answer.replayed === 1 ? '' : 's'}${to}${skipped}`;
  } catch (error) {
    status.className = 'field-error';
    status.textContent = error.message;
  }
}

function money(value) {
  return value >= 0.01 || value === 0 ? `$${value.toFixed(2)}` : `$${value.toPrecision(2)}`;
}

async function refreshCost() {
  const doc = await getJson('/_local/cost');
  const lines = Object.entries(doc.dollarsPerMillionEvents).filter(([, v]) => v > 0);
  byId('cost-body').replaceChildren(
    ...lines.map(([name, v]) => h('tr', {}, h('th', { scope: 'row' }, name), h('td', { class: 'num' }, money(v)))),
  );
  byId('cost-total').textContent = doc.events ? money(doc.totalPerMillionEvents) : '–';
  byId('cost-idle').textContent = `Idle, whatever the traffic: ${money(doc.idle.dollarsPerMonth)} a month on AWS for the ${doc.idle.consumers} consumers' queue polling (${doc.idle.emptyReceivesCounted} empty receives here, not in the figures above).`;
  byId('cost-date').textContent = `${doc.events} events counted in this run; AWS list prices ${doc.region} as of ${doc.pricesAsOf} (fanout/cost.py, the model make bench uses).`;
}

// ---------------------------------------------------------------------- the loop

function every(ms, fn) {
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      await fn();
      state.failures = 0;
      showError(null);
      byId('live').textContent = `Live · updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      state.failures += 1;
      if (state.failures > 1) showError(error);
      byId('live').textContent = 'Not connected';
    } finally {
      busy = false;
    }
  };
  tick();
  return setInterval(tick, ms);
}

function start() {
  const since = new Date(Date.now() - 3600 * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  byId('replay-since').value = since;
  byId('stream-filter').addEventListener('submit', (e) => e.preventDefault());
  byId('filter-type').addEventListener('change', () => refreshStream().catch(showError));
  byId('filter-subject').addEventListener('input', () => refreshStream().catch(showError));
  byId('dlq-refresh').addEventListener('click', showDlq);
  byId('dlq-redrive').addEventListener('click', redrive);
  byId('dlq-purge').addEventListener('click', purge);
  byId('confirm').addEventListener('close', confirmed);
  byId('replay-form').addEventListener('submit', replay);
  every(TOPOLOGY_MS, refreshTopology);
  every(FIGURES_MS, async () => {
    if (!state.topology) await refreshTopology();
    await refreshFigures();
  });
  every(STREAM_MS, refreshStream);
  every(COST_MS, refreshCost);
}

start();
