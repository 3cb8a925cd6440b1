// fanout web app: sign in, add data, watch it be stored, page through it, see it charted.

import { createApi } from './api.js';
import {
  AuthError,
  beginOidcSignIn,
  clearSession,
  completeOidcSignIn,
  isExpired,
  loadConfig,
  restoreSession,
  signInLocal,
  signOut,
} from './auth.js';
import { bucketize, defaultBucket, drawChart, periodLabel, summarize } from './chart.js';
import { announce, byId, h, setMessage, show } from './dom.js';
import { formatDateTime, formatDateTimeFull, plural } from './format.js';
import { FIELDS, MAX_LENGTH, charCount, validateData, validateField, validateUserName } from './validate.js';

const PAGE_SIZE = 25;
const CHART_PAGE_SIZE = 100;
const CHART_MAX_PAGES = 5;
const POLL_FOR_MS = 30000;
const VIEWS = ['loading', 'fatal', 'signin', 'home', 'detail'];

const app = {
  config: null,
  session: null,
  // Bumped on every sign-in and sign-out: answers to requests of an older epoch are dropped.
  epoch: 0,
  expiryTimer: null,
  lastUser: '',
  list: null,
  chart: null,
  pending: new Map(),
  draftKey: null,
  detailId: null,
};

function freshState() {
  app.list = { items: [], ids: new Set(), cursor: null, loaded: false, loading: false, loadingMore: false, error: null };
  app.chart = { items: [], ids: new Set(), truncated: false, loaded: false, error: null, bucket: null };
  app.justStored = new Set();
  app.pending = new Map();
  app.detailId = null;
}
freshState();

const api = createApi({
  getToken: () => app.session?.token,
  onUnauthorized: () => expireSession(),
});

// ---- views ------------------------------------------------------------------------------

function showView(name, { focus } = {}) {
  for (const view of VIEWS) show(byId(`view-${view}`), view === name);
  show(byId('session'), Boolean(app.session) && (name === 'home' || name === 'detail'));
  if (focus) focus.focus();
}

function fatal(message) {
  byId('fatal-message').textContent = message;
  showView('fatal', { focus: byId('fatal-title') });
}

function showSignIn({ reason = '', kind = 'info', error = '' } = {}) {
  const local = app.config.mode === 'local';
  show(byId('local-signin'), local);
  show(byId('oidc-signin'), !local);
  const note = byId('signin-reason');
  note.className = `notice ${kind === 'error' ? 'notice-error' : 'notice-info'}`;
  setMessage(note, reason);
  setMessage(byId(local ? 'signin-error' : 'oidc-error'), error);
  if (local && app.lastUser && !byId('signin-user').value) byId('signin-user').value = app.lastUser;
  document.title = 'Sign in · fanout';
  showView('signin', { focus: local ? byId('signin-user') : byId('oidc-button') });
}

function route({ focus = true } = {}) {
  if (!app.session) return;
  const match = /^#\/items\/([^/]+)$/.exec(window.location.hash);
  if (match) {
    showDetail(decodeURIComponent(match[1]), { focus });
  } else {
    // Coming back from an item, keyboard focus returns to that item's row.
    const from = app.detailId;
    app.detailId = null;
    document.title = 'Your data · fanout';
    showView('home');
    const row = from && document.querySelector(`#items-body tr[data-id="${CSS.escape(from)}"] a`);
    if (row) row.focus();
    else if (focus) byId('home-title').focus();
    renderChart();
  }
}

// ---- session ----------------------------------------------------------------------------

function enterApp(session) {
  app.epoch += 1;
  freshState();
  app.session = session;
  app.lastUser = session.user;
  byId('session-user').textContent = session.user;
  clearTimeout(app.expiryTimer);
  const left = session.expiresAt - Date.now() - 10000;
  if (left < 2 ** 31 - 1) app.expiryTimer = setTimeout(() => expireSession(), Math.max(0, left));
  renderList();
  renderChart();
  loadList();
  loadChart();
}

function leaveApp() {
  app.epoch += 1;
  clearTimeout(app.expiryTimer);
  app.session = null;
  freshState();
  byId('items-body').replaceChildren();
}

function expireSession() {
  if (!app.session) return;
  app.lastUser = app.session.user;
  clearSession();
  leaveApp();
  showSignIn({ reason: 'Your session has expired or is no longer valid. Sign in again to continue.' });
  announce('Your session has expired. Sign in again.');
}

async function onLocalSignIn(event) {
  event.preventDefault();
  const input = byId('signin-user');
  const problem = validateUserName(input.value);
  setFieldError(input, byId('signin-user-error'), problem);
  setMessage(byId('signin-error'), '');
  if (problem) {
    input.focus();
    return;
  }
  const roles = [...document.querySelectorAll('#local-signin input[name="roles"]:checked')].map((el) => el.value);
  const button = byId('signin-submit');
  button.disabled = true;
  button.textContent = 'Signing in…';
  try {
    const session = await signInLocal(input.value.trim(), roles);
    enterApp(session);
    route({ focus: false });
    byId('info-one').focus();
    announce(`Signed in as ${session.user}.`);
  } catch (error) {
    setMessage(byId('signin-error'), error instanceof AuthError ? error.message : 'Signing in failed.');
  } finally {
    button.disabled = false;
    button.textContent = 'Sign in';
  }
}

async function onOidcSignIn() {
  const button = byId('oidc-button');
  button.disabled = true;
  try {
    await beginOidcSignIn(app.config);
  } catch {
    button.disabled = false;
    setMessage(byId('oidc-error'), 'Could not start signing in. Please try again.');
  }
}

function onSignOut() {
  const session = app.session;
  leaveApp();
  resetAddForm();
  if (signOut(app.config, session)) return; // the identity provider takes over
  window.history.replaceState(null, '', window.location.pathname);
  showSignIn({ reason: 'You have signed out.' });
  announce('You have signed out.');
}

// ---- errors -----------------------------------------------------------------------------

/** A panel that says what went wrong and what to do about it. */
function errorPanel(error, { what, retry }) {
  let title;
  let text;
  if (error.kind === 'forbidden') {
    title = 'Missing permission';
    text = `The API says: “${error.message}”. ${
      app.config.mode === 'local'
        ? 'Sign out and sign in again with the data.read role.'
        : 'Ask an administrator for the data.read role.'
    }`;
  } else if (error.kind === 'server') {
    title = 'The server ran into a problem';
    text = `Could not load ${what} (HTTP ${error.status}): ${error.message}`;
  } else if (error.kind === 'network') {
    title = 'No answer from the server';
    text = `Could not load ${what}: ${error.message}`;
  } else {
    title = `Could not load ${what}`;
    text = `HTTP ${error.status}: ${error.message}`;
  }
  return h(
    'div',
    { class: 'notice notice-error state-panel', role: 'alert' },
    h('p', { class: 'state-title' }, title),
    h('p', {}, text),
    retry && error.kind !== 'forbidden' ? h('button', { type: 'button', class: 'btn', onclick: retry }, 'Try again') : null,
  );
}

// ---- the list ---------------------------------------------------------------------------

function sortNewestFirst(items) {
  items.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

async function loadList({ more = false } = {}) {
  const { list } = app;
  const epoch = app.epoch;
  if (list.loading) return;
  list.loading = true;
  list.loadingMore = more;
  list.error = null;
  renderList();
  try {
    const page = await api.list({ limit: PAGE_SIZE, cursor: more ? list.cursor : undefined });
    if (epoch !== app.epoch) return;
    if (!more) {
      list.items = [];
      list.ids.clear();
    }
    const added = [];
    for (const item of page.items) {
      if (list.ids.has(item.id)) continue;
      list.items.push(item);
      list.ids.add(item.id);
      added.push(item);
      const entry = app.pending.get(item.id);
      if (entry) settle(entry, item);
    }
    list.cursor = page.nextCursor || null;
    list.loaded = true;
    list.loading = false;
    renderList();
    if (more) {
      announce(`Loaded ${plural(added.length, 'more item')}.`);
      const first = added.length && document.querySelector(`#items-body tr[data-id="${CSS.escape(added[0].id)}"] a`);
      if (first) first.focus();
    }
  } catch (error) {
    if (epoch !== app.epoch) return;
    list.error = error;
    list.loading = false;
    renderList();
  }
}

function statusBadge(status, id) {
  if (status === 'pending') {
    return h('span', { class: 'badge badge-pending' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Pending');
  }
  if (status === 'unverifiable') {
    return h('span', { class: 'badge badge-muted', title: 'Checking needs the data.read role, which this sign-in lacks.' }, 'Accepted (not checked)');
  }
  if (status === 'slow' || status === 'failed') {
    const entry = app.pending.get(id);
    return h(
      'span',
      { class: 'status-slow' },
      h('span', { class: 'badge badge-warn' }, status === 'slow' ? 'Not stored yet' : 'Unknown'),
      h(
        'button',
        { type: 'button', class: 'btn btn-small', onclick: () => entry && track(entry), 'aria-label': 'Check again whether this item is stored' },
        'Check again',
      ),
    );
  }
  if (status === 'new') return h('span', { class: 'badge badge-stored' }, '✓ Stored');
  return h('span', { class: 'badge badge-muted' }, 'Stored');
}

function itemRow(item, status) {
  return h(
    'tr',
    { 'data-id': item.id, class: status === 'pending' ? 'row-pending' : status === 'new' ? 'row-new' : null },
    h(
      'td',
      { 'data-label': 'Created', class: 'cell-time' },
      h('time', { datetime: item.createdAt, title: item.createdAt }, formatDateTime(item.createdAt)),
    ),
    h(
      'td',
      { 'data-label': 'Information one', class: 'cell-text' },
      h('a', { href: `#/items/${encodeURIComponent(item.id)}`, class: 'item-link' }, item.informationOne),
    ),
    h('td', { 'data-label': 'Information two', class: 'cell-text' }, item.informationTwo),
    h('td', { 'data-label': 'Status', class: 'cell-status' }, statusBadge(status, item.id)),
  );
}

function renderList() {
  const { list } = app;
  const state = byId('list-state');
  const waiting = [...app.pending.values()].filter((e) => e.status !== 'stored');
  waiting.sort((a, b) => (a.item.id < b.item.id ? 1 : -1));
  const rows = [
    ...waiting.map((e) => itemRow(e.item, e.status)),
    ...list.items.map((item) => itemRow(item, app.justStored.has(item.id) ? 'new' : 'stored')),
  ];

  // Keep keyboard focus on the same row's link across a re-render.
  const focusedId = document.activeElement?.closest?.('#items-body tr')?.dataset.id;
  byId('items-body').replaceChildren(...rows);
  if (focusedId) document.querySelector(`#items-body tr[data-id="${CSS.escape(focusedId)}"] a, #items-body tr[data-id="${CSS.escape(focusedId)}"] button`)?.focus();
  show(byId('items-table'), rows.length > 0);

  let panel = null;
  if (list.error) {
    panel = errorPanel(list.error, {
      what: 'your items',
      retry: () => {
        loadList({ more: list.loaded && list.loadingMore });
        if (app.chart.error) reloadChart();
      },
    });
  } else if (list.loading && !list.loadingMore) {
    panel = h('p', { class: 'muted', 'aria-busy': 'true' }, 'Loading your items…');
  } else if (list.loaded && rows.length === 0) {
    panel = h(
      'div',
      { class: 'empty' },
      h('p', { class: 'state-title' }, 'No data yet'),
      h('p', { class: 'muted' }, 'Add your first item with the form above; it will show up here.'),
    );
  }
  state.replaceChildren(...(panel ? [panel] : []));

  const more = byId('load-more');
  show(more, Boolean(list.cursor) && !(list.error && !list.loadingMore));
  more.disabled = list.loading;
  more.textContent = list.loading && list.loadingMore ? 'Loading…' : 'Load more';
  // The rows shown: stored items and the ones still pending, so the count matches the table.
  const count = rows.length;
  const pending = waiting.length ? `, ${waiting.length} of them pending` : '';
  byId('list-count').textContent =
    !list.loaded || count === 0
      ? ''
      : list.cursor
        ? `Showing your newest ${plural(count, 'item')}${pending}. There are more.`
        : `Showing all ${plural(count, 'item')}${pending}.`;
}

// ---- adding data ------------------------------------------------------------------------

const FIELD_IDS = { informationOne: 'info-one', informationTwo: 'info-two' };

function setFieldError(input, errorEl, message) {
  setMessage(errorEl, message || '');
  if (message) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

function updateCount(name) {
  const input = byId(FIELD_IDS[name]);
  const count = byId(`${FIELD_IDS[name]}-count`);
  const n = charCount(input.value);
  count.textContent = `${n} / ${MAX_LENGTH}`;
  count.classList.toggle('count-over', n > MAX_LENGTH);
}

function formData() {
  const data = {};
  for (const [name, id] of Object.entries(FIELD_IDS)) data[name] = byId(id).value;
  return data;
}

function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

function resetAddForm() {
  byId('add-form').reset();
  for (const [name, id] of Object.entries(FIELD_IDS)) {
    setFieldError(byId(id), byId(`${id}-error`), null);
    updateCount(name);
  }
  setMessage(byId('add-error'), '');
  app.draftKey = null;
}

function onFieldInput(name) {
  updateCount(name);
  // The same text re-sent after a failure reuses its Idempotency-Key; new text gets a new one.
  app.draftKey = null;
  const input = byId(FIELD_IDS[name]);
  if (input.getAttribute('aria-invalid') === 'true') {
    setFieldError(input, byId(`${FIELD_IDS[name]}-error`), validateField(name, input.value));
  }
}

function addErrorText(error) {
  switch (error.kind) {
    case 'forbidden':
      return `Not allowed: ${error.message}. Adding data needs the data.write role, which this sign-in lacks; the item was not added.`;
    case 'server':
      return `The server ran into a problem (HTTP ${error.status}): ${error.message}. Your item was not added; try again.`;
    case 'network':
      return `${error.message} Your item was not added; try again.`;
    default:
      return `The server did not accept the item: ${error.message}`;
  }
}

async function onAdd(event) {
  event.preventDefault();
  const data = formData();
  const errors = validateData(data);
  let firstInvalid = null;
  for (const [name, id] of Object.entries(FIELD_IDS)) {
    setFieldError(byId(id), byId(`${id}-error`), errors[name]);
    if (errors[name] && !firstInvalid) firstInvalid = byId(id);
  }
  setMessage(byId('add-error'), '');
  if (firstInvalid) {
    firstInvalid.focus();
    return;
  }
  const epoch = app.epoch;
  const button = byId('add-submit');
  button.disabled = true;
  button.textContent = 'Adding…';
  app.draftKey = app.draftKey || newKey();
  try {
    const { id } = await api.add(data, app.draftKey);
    if (epoch !== app.epoch) return;
    const entry = {
      status: 'pending',
      item: { id, ...data, createdAt: new Date().toISOString() },
    };
    app.pending.set(id, entry);
    resetAddForm();
    renderList();
    byId('info-one').focus();
    announce('Item added. It shows as pending until it is stored.');
    track(entry);
  } catch (error) {
    if (epoch !== app.epoch || error.kind === 'unauthorized') return;
    setMessage(byId('add-error'), addErrorText(error));
    // When the server names a field, mark that field too.
    for (const [name, id] of Object.entries(FIELD_IDS)) {
      if (error.kind === 'client' && error.message.includes(name)) {
        setFieldError(byId(id), byId(`${id}-error`), `${FIELDS[name]}: ${error.message}`);
      }
    }
  } finally {
    button.disabled = false;
    button.textContent = 'Add item';
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll GET /data/{id} until the item is stored, or give up after a while (it may still come). */
async function track(entry) {
  const epoch = app.epoch;
  const { id } = entry.item;
  entry.status = 'pending';
  entry.run = (entry.run || 0) + 1;
  const run = entry.run;
  renderList();
  if (app.detailId === id) renderDetailPending(entry);
  const deadline = Date.now() + POLL_FOR_MS;
  let delay = 500;
  while (Date.now() < deadline) {
    await sleep(delay);
    delay = Math.min(2000, delay * 1.5);
    if (epoch !== app.epoch || entry.run !== run || entry.status === 'stored') return;
    try {
      const item = await api.get(id);
      if (epoch !== app.epoch || entry.status === 'stored') return;
      settle(entry, item);
      return;
    } catch (error) {
      if (epoch !== app.epoch) return;
      if (['not-found', 'network', 'server'].includes(error.kind)) continue; // not stored yet, or a blip
      // Without data.read the item cannot be looked at; the API did accept it.
      entry.status = error.kind === 'forbidden' ? 'unverifiable' : 'failed';
      entry.error = error;
      renderList();
      return;
    }
  }
  if (epoch !== app.epoch || entry.status === 'stored') return;
  entry.status = 'slow';
  renderList();
  if (app.detailId === id) renderDetailPending(entry);
  announce('An item you added is not stored yet.');
}

function settle(entry, item) {
  entry.status = 'stored';
  entry.item = item;
  app.pending.delete(item.id);
  app.justStored.add(item.id);
  if (!app.list.ids.has(item.id)) {
    app.list.items.push(item);
    app.list.ids.add(item.id);
    sortNewestFirst(app.list.items);
  }
  addToChart([item]);
  renderList();
  if (app.detailId === item.id) renderDetail(item, 'stored');
  announce('Your item is stored.');
}

// ---- the chart --------------------------------------------------------------------------

function addToChart(items) {
  for (const item of items) {
    if (app.chart.ids.has(item.id)) continue;
    app.chart.ids.add(item.id);
    app.chart.items.push(item);
  }
  renderChart();
}

async function loadChart() {
  const epoch = app.epoch;
  app.chart.error = null;
  try {
    let cursor;
    let pages = 0;
    do {
      const page = await api.list({ limit: CHART_PAGE_SIZE, cursor });
      if (epoch !== app.epoch) return;
      for (const item of page.items) {
        if (app.chart.ids.has(item.id)) continue;
        app.chart.ids.add(item.id);
        app.chart.items.push(item);
      }
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor && pages < CHART_MAX_PAGES);
    app.chart.truncated = Boolean(cursor);
    app.chart.loaded = true;
  } catch (error) {
    if (epoch !== app.epoch) return;
    app.chart.error = error;
  }
  renderChart();
}

function reloadChart() {
  app.chart.items = [];
  app.chart.ids.clear();
  app.chart.loaded = false;
  app.chart.error = null;
  renderChart();
  loadChart();
}

let chartFrame = 0;
function renderChart() {
  const { chart } = app;
  const container = byId('chart');
  const summary = byId('chart-summary');
  if (!chart || byId('view-home').hidden) return;
  const drawable = chart.loaded && !chart.error && chart.items.length > 0;
  show(document.querySelector('.chart-numbers'), drawable);
  container.classList.toggle('chart-empty', !drawable);
  if (chart.error) {
    summary.textContent =
      chart.error.kind === 'forbidden'
        ? `Nothing to chart: ${chart.error.message}.`
        : `Could not load your activity: ${chart.error.message}`;
    container.replaceChildren();
    byId('chart-numbers').replaceChildren();
    return;
  }
  if (!chart.loaded) {
    summary.textContent = 'Loading your activity…';
    return;
  }
  if (!drawable) {
    summary.textContent = summarize(null, null, { total: 0 });
    container.replaceChildren();
    byId('chart-numbers').replaceChildren();
    return;
  }
  const bucket = chart.bucket || defaultBucket(chart.items);
  byId(`bucket-${bucket}`).checked = true;
  const result = bucketize(chart.items, bucket);
  const text = summarize(result, bucket, { truncated: chart.truncated, total: chart.items.length });
  summary.textContent = text;
  cancelAnimationFrame(chartFrame);
  chartFrame = requestAnimationFrame(() => drawChart(container, result, bucket, `Bar chart of your items per ${bucket}. ${text}`));
  byId('numbers-period').textContent = bucket === 'hour' ? 'Hour' : 'Day';
  byId('chart-numbers').replaceChildren(
    ...result.buckets
      .slice()
      .reverse()
      .map((b) => h('tr', {}, h('td', {}, periodLabel(bucket, b.start, true)), h('td', {}, String(b.count)))),
  );
}

// ---- the detail view --------------------------------------------------------------------

function detailList(item, statusNode) {
  return h(
    'dl',
    { class: 'detail' },
    h('dt', {}, 'Information one'),
    h('dd', { class: 'detail-text' }, item.informationOne),
    h('dt', {}, 'Information two'),
    h('dd', { class: 'detail-text' }, item.informationTwo),
    h('dt', {}, 'Created'),
    h('dd', {}, h('time', { datetime: item.createdAt }, formatDateTimeFull(item.createdAt)), h('span', { class: 'muted utc' }, item.createdAt)),
    h('dt', {}, 'Status'),
    h('dd', {}, statusNode),
    h('dt', {}, 'Id'),
    h('dd', {}, h('code', { class: 'item-id' }, item.id)),
  );
}

function renderDetail(item, status) {
  byId('detail-title').textContent = item.informationOne.length > 80 ? `${item.informationOne.slice(0, 80)}…` : item.informationOne;
  byId('detail-body').replaceChildren(detailList(item, statusBadge(status === 'stored' ? 'stored' : status, item.id)));
}

function renderDetailPending(entry) {
  renderDetail(entry.item, entry.status);
  byId('detail-body').prepend(
    h(
      'p',
      { class: 'notice notice-info' },
      entry.status === 'pending'
        ? 'The API accepted this item and it is on its way to storage. This page updates when it is stored.'
        : 'This item is not stored yet. It may still arrive; check again in a moment.',
    ),
  );
}

async function showDetail(id, { focus }) {
  const epoch = app.epoch;
  app.detailId = id;
  document.title = 'Item · fanout';
  byId('detail-title').textContent = 'Item';
  showView('detail', { focus: focus ? byId('detail-title') : null });
  const entry = app.pending.get(id);
  if (entry && entry.status !== 'stored') {
    renderDetailPending(entry);
    return;
  }
  byId('detail-body').replaceChildren(h('p', { class: 'muted', 'aria-busy': 'true' }, 'Loading the item…'));
  try {
    const item = await api.get(id);
    if (epoch !== app.epoch || app.detailId !== id) return;
    renderDetail(item, 'stored');
  } catch (error) {
    if (epoch !== app.epoch || app.detailId !== id || error.kind === 'unauthorized') return;
    byId('detail-title').textContent = error.kind === 'not-found' ? 'Item not found' : 'Item';
    byId('detail-body').replaceChildren(
      error.kind === 'not-found'
        ? h(
            'div',
            { class: 'notice notice-info', role: 'alert' },
            h('p', {}, 'There is no item with this id among your data.'),
            h('p', { class: 'muted' }, 'It may belong to another user, or the link may be mistyped.'),
          )
        : errorPanel(error, { what: 'this item', retry: () => showDetail(id, { focus: false }) }),
    );
  }
}

// ---- start ------------------------------------------------------------------------------

function wire() {
  byId('local-signin').addEventListener('submit', onLocalSignIn);
  byId('signin-user').addEventListener('input', () => {
    const input = byId('signin-user');
    if (input.getAttribute('aria-invalid') === 'true') {
      setFieldError(input, byId('signin-user-error'), validateUserName(input.value));
    }
  });
  byId('oidc-button').addEventListener('click', onOidcSignIn);
  byId('sign-out').addEventListener('click', onSignOut);
  byId('fatal-retry').addEventListener('click', () => window.location.reload());
  byId('add-form').addEventListener('submit', onAdd);
  for (const name of Object.keys(FIELD_IDS)) byId(FIELD_IDS[name]).addEventListener('input', () => onFieldInput(name));
  byId('load-more').addEventListener('click', () => loadList({ more: true }));
  byId('refresh').addEventListener('click', () => {
    app.justStored.clear();
    loadList();
    reloadChart();
  });
  for (const radio of document.querySelectorAll('input[name="bucket"]')) {
    radio.addEventListener('change', () => {
      app.chart.bucket = radio.value;
      renderChart();
    });
  }
  let chartWidth = 0;
  new ResizeObserver((entries) => {
    const width = Math.round(entries[0].contentRect.width);
    if (width === chartWidth) return; // only a new width needs a redraw
    chartWidth = width;
    renderChart();
  }).observe(byId('chart'));
  window.addEventListener('hashchange', () => route());
}

async function boot() {
  wire();
  try {
    app.config = await loadConfig();
  } catch (error) {
    fatal(error instanceof AuthError ? error.message : 'The app could not start.');
    return;
  }
  let session = null;
  if (app.config.mode === 'oidc') {
    try {
      session = await completeOidcSignIn(app.config);
    } catch (error) {
      showSignIn({ error: error instanceof AuthError ? error.message : 'Signing in failed. Please try again.' });
      return;
    }
  }
  session = session || restoreSession(app.config.mode);
  if (session && isExpired(session)) {
    app.lastUser = session.user;
    clearSession();
    showSignIn({ reason: 'Your session has expired. Sign in again to continue.' });
    return;
  }
  if (!session) {
    showSignIn();
    return;
  }
  enterApp(session);
  route({ focus: false });
}

boot();
