// Kiln dashboard: the tree of groups, edge nodes and devices with their status and counts
// of Bad and Uncertain values; an overview, or the metrics of the selected node or device
// with live values; a chart of one metric. Data comes from kiln-server's REST API
// (/api/v1) and its server-sent event stream, which also keeps the page current.
//
// Every string from the server reaches the DOM as text (textContent), never as HTML.
// Elements that tests look for carry data-testid attributes (see web/README.md).
import {ChartPanel} from './chart.js';
import {
  BAD, GOOD, UNCERTAIN, formatTime, formatTimeFull, formatValue, qualityClass, qualityHex,
  qualityName, severity,
} from './format.js';

const RELOAD_NODE_DELAY_MS = 500;  // births come in bursts (NBIRTH, then each DBIRTH)
const RECONNECT_DELAY_MS = 5000;   // after the server refused the stream outright
const PARALLEL_FETCHES = 4;        // the stream holds one of the browser's connections

// ---------------------------------------------------------------------------------------
// The plant as last fetched, kept current by the stream.
const state = {
  nodes: new Map(),    // "group/node" -> Node (see nodeFromSummary)
  metrics: new Map(),  // path -> {path, name, datatype, unit, latest: {t, v, q}, owner}
  loaded: false,
};
let selection = {kind: 'overview'};  // or {kind: 'node'|'device', key}
let view = null;                      // what the main panel shows: {rows: Map path -> cells}
const dirtyPaths = new Set();         // metrics whose value changed since the last frame
let structureDirty = false;           // nodes, devices or status changed: rebuild
let treeShape = null;                 // what the tree's links were built from (renderTree)
let frameQueued = false;

const $ = (id) => document.getElementById(id);
const chart = new ChartPanel(
  {panel: $('chart-panel'), title: $('chart-title'), note: $('chart-note'), keys: $('chart-keys'),
    ranges: $('chart-ranges'), chart: $('chart'), close: $('chart-close')},
  getJSON, () => markSelectedRow(null));

// ---------------------------------------------------------------------------------------
// API

async function getJSON(url) {
  const res = await fetch(url, {headers: {Accept: 'application/json'}});
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(body?.error?.message ?? `${res.status} ${res.statusText}`);
  return body;
}

const segment = encodeURIComponent;

function showError(message) {
  const banner = $('error');
  banner.textContent = message;
  banner.hidden = !message;
}

// A node from GET /api/v1/nodes. Its metrics and devices come with its details.
function nodeFromSummary(s) {
  return {
    key: `${s.group}/${s.node}`, group: s.group, node: s.node, online: s.online, since: s.since,
    bdseq: s.bdseq, summary: s, metrics: [], devices: new Map(), detailed: false,
  };
}

// Reads the node list, then every node's details. Nodes that are gone are dropped.
async function loadAll() {
  let list;
  try {
    list = await getJSON('/api/v1/nodes');
  } catch (err) {
    showError(`Cannot read the node list: ${err.message}`);
    return;
  }
  const seen = new Set();
  for (const s of list.nodes ?? []) {
    const key = `${s.group}/${s.node}`;
    seen.add(key);
    const known = state.nodes.get(key);
    if (known) Object.assign(known, {online: s.online, since: s.since, bdseq: s.bdseq, summary: s});
    else state.nodes.set(key, nodeFromSummary(s));
  }
  for (const key of [...state.nodes.keys()]) {
    if (!seen.has(key)) forgetNode(state.nodes.get(key));
  }
  state.loaded = true;
  markStructure();
  const queue = [...state.nodes.values()];
  const worker = async () => {
    for (let n = queue.shift(); n; n = queue.shift()) await loadNode(n);
  };
  await Promise.all(Array.from({length: PARALLEL_FETCHES}, worker));
  showError('');
}

function forgetNode(n) {
  for (const path of n.metrics) state.metrics.delete(path);
  for (const d of n.devices.values()) for (const path of d.metrics) state.metrics.delete(path);
  state.nodes.delete(n.key);
}

// Reads one node's details: its metrics with their latest values, and its devices.
async function loadNode(n) {
  let details;
  try {
    details = await getJSON(`/api/v1/nodes/${segment(n.group)}/${segment(n.node)}`);
  } catch (err) {
    showError(`Cannot read ${n.key}: ${err.message}`);
    return;
  }
  const oldPaths = [...n.metrics];
  for (const d of n.devices.values()) oldPaths.push(...d.metrics);
  for (const path of oldPaths) state.metrics.delete(path);

  Object.assign(n, {online: details.online, since: details.since, bdseq: details.bdseq, detailed: true});
  n.metrics = addMetrics(details.metrics, n);
  n.devices = new Map();
  for (const d of details.devices ?? []) {
    const device = {key: `${n.key}/${d.device}`, device: d.device, node: n, online: d.online, since: d.since};
    device.metrics = addMetrics(d.metrics, device);
    n.devices.set(d.device, device);
  }
  markStructure();
}

function addMetrics(list, owner) {
  const paths = [];
  for (const m of list ?? []) {
    state.metrics.set(m.path, {...m, name: m.name ?? m.path, latest: m.latest ?? null, owner});
    paths.push(m.path);
  }
  return paths.sort((a, b) => state.metrics.get(a).name.localeCompare(state.metrics.get(b).name));
}

// Births come as a burst of events: read the node once, shortly after the first.
const pendingReloads = new Map();
function reloadNodeSoon(n) {
  if (pendingReloads.has(n.key)) return;
  pendingReloads.set(n.key, setTimeout(() => {
    pendingReloads.delete(n.key);
    if (state.nodes.get(n.key) === n) loadNode(n);
  }, RELOAD_NODE_DELAY_MS));
}
let listReloadQueued = false;
function reloadAllSoon() {
  if (listReloadQueued) return;
  listReloadQueued = true;
  setTimeout(() => {
    listReloadQueued = false;
    loadAll();
  }, RELOAD_NODE_DELAY_MS);
}

// ---------------------------------------------------------------------------------------
// Live stream

let everConnected = false;

function connect() {
  const stream = new EventSource('/api/v1/stream');
  stream.addEventListener('open', () => {
    setConnection('connected');
    // After a break, what the stream missed is read again.
    if (everConnected) reloadAllSoon();
    everConnected = true;
  });
  stream.addEventListener('error', () => {
    setConnection('reconnecting');
    // EventSource retries by itself unless the server refused the stream (e.g. HTTP 503).
    if (stream.readyState === EventSource.CLOSED) setTimeout(connect, RECONNECT_DELAY_MS);
  });
  stream.addEventListener('value', (e) => onEvent(e, onValue));
  stream.addEventListener('status', (e) => onEvent(e, onStatus));
  // The server dropped events because this page fell behind: read everything again.
  stream.addEventListener('dropped', reloadAllSoon);
}

function onEvent(event, handler) {
  let data;
  try {
    data = JSON.parse(event.data);
  } catch {
    return;  // not ours to fix; the next event is independent
  }
  handler(data);
}

function setConnection(s) {
  const el = $('connection');
  el.dataset.state = s;
  el.textContent = s === 'connected' ? 'Live' : 'Reconnecting…';
  el.title = s === 'connected' ? 'Receiving live values' : 'Live stream lost; reconnecting';
}

function onValue({metric, t, v, q}) {
  chart.addLive(metric, {t, v, q});
  const m = state.metrics.get(metric);
  if (!m) {
    // A metric we have not read yet (a birth we missed?): read its node again.
    const n = [...state.nodes.values()].find((x) => metric.startsWith(`${x.key}/`));
    if (n) reloadNodeSoon(n);
    return;
  }
  // Values stored at the edge during an outage arrive late: they are history, not latest.
  if (m.latest && m.latest.t > t) return;
  m.latest = {t, v, q};
  dirtyPaths.add(metric);
  scheduleFrame();
}

function onStatus({group, node, device, online, t}) {
  const n = state.nodes.get(`${group}/${node}`);
  if (!n) {
    reloadAllSoon();
    return;
  }
  if (device == null) {
    n.online = online;
    n.since = t;
    // A node's death ends its devices' sessions too.
    if (!online) for (const d of n.devices.values()) Object.assign(d, {online: false, since: t});
  } else {
    const d = n.devices.get(device);
    if (d) Object.assign(d, {online, since: t});
  }
  // A birth may declare new metrics or devices.
  if (online || (device != null && !n.devices.has(device))) reloadNodeSoon(n);
  markStructure();
}

// ---------------------------------------------------------------------------------------
// Counts and small DOM helpers

// Bad and Uncertain counts over a list of metric paths.
function issues(paths) {
  const c = {bad: 0, uncertain: 0};
  for (const path of paths) {
    const sev = severity(state.metrics.get(path)?.latest?.q);
    if (sev === BAD) c.bad++;
    else if (sev === UNCERTAIN) c.uncertain++;
  }
  return c;
}

function allPaths(n) {
  const paths = [...n.metrics];
  for (const d of n.devices.values()) paths.push(...d.metrics);
  return paths;
}

// h('td', {class: 'num', 'data-testid': 'x'}, child...): children are nodes or text.
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : value);
  }
  el.append(...children.flat().filter((c) => c != null && c !== false));
  return el;
}

const statusBadge = (online, testid) =>
  h('span', {class: `badge ${online ? 'online' : 'offline'}`, 'data-testid': testid},
    online ? 'online' : 'offline');

// "2 bad" and "1 uncertain" pills; hidden when zero.
function countPills(c, prefix) {
  return [
    h('span', {class: 'count count-bad', 'data-testid': `${prefix}-bad`, hidden: !c.bad}, `${c.bad} bad`),
    h('span', {class: 'count count-uncertain', 'data-testid': `${prefix}-uncertain`, hidden: !c.uncertain},
      `${c.uncertain} uncertain`),
  ];
}

const hrefOf = (kind, key) => `#/${kind}/${key.split('/').map(segment).join('/')}`;

// ---------------------------------------------------------------------------------------
// Rendering. Structure changes (nodes, devices, status) rebuild the tree and the view;
// value changes update the cells in place, at most once per frame.

function markStructure() {
  structureDirty = true;
  scheduleFrame();
}

function scheduleFrame() {
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(() => {
    frameQueued = false;
    if (structureDirty) {
      structureDirty = false;
      dirtyPaths.clear();
      renderTree();
      renderView();
    } else if (dirtyPaths.size > 0) {
      updateValues();
    }
  });
}

function renderTree() {
  const groups = new Map();
  for (const n of [...state.nodes.values()].sort((a, b) => a.key.localeCompare(b.key))) {
    if (!groups.has(n.group)) groups.set(n.group, []);
    groups.get(n.group).push(n);
  }
  const tree = $('tree');
  const focused = document.activeElement?.closest?.('#tree [data-key]')?.dataset.key;
  if (groups.size === 0) {
    treeShape = null;
    tree.replaceChildren(h('p', {class: 'muted tree-empty'},
      state.loaded ? 'No edge nodes yet.' : 'Loading…'));
    return;
  }
  // Rebuilding the links under a pointer that is clicking one loses the click (the press and
  // the release land on different elements): leave them alone unless what they show changed.
  // Issue counts are updated in place.
  const shape = JSON.stringify([...groups].map(([group, nodes]) => [group, nodes.map((n) => [
    n.key, n.online, n.detailed, isCurrent('node', n.key),
    [...n.devices.values()].map((d) => [d.key, d.online, isCurrent('device', d.key)])])]));
  if (shape === treeShape) {
    updateTreeCounts();
    return;
  }
  treeShape = shape;
  tree.replaceChildren(...[...groups].map(([group, nodes]) => {
    const online = nodes.filter((n) => n.online).length;
    return h('section', {class: 'tree-group', 'data-testid': `group-${group}`},
      h('h2', {class: 'group-name'}, h('span', {}, group),
        h('span', {class: 'muted'}, `${online}/${nodes.length} online`)),
      h('ul', {}, nodes.map(renderTreeNode)));
  }));
  // Keep keyboard focus on the entry it was on.
  if (focused) tree.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

function renderTreeNode(n) {
  const devices = [...n.devices.values()].sort((a, b) => a.device.localeCompare(b.device));
  return h('li', {},
    treeLink('node', n.key, n.node, n.online, n.detailed ? issues(allPaths(n)) : {bad: 0, uncertain: 0}),
    devices.length > 0 && h('ul', {}, devices.map((d) =>
      h('li', {}, treeLink('device', d.key, d.device, d.online, issues(d.metrics))))));
}

const isCurrent = (kind, key) => selection.kind === kind && selection.key === key;

function treeLink(kind, key, label, online, counts) {
  const current = isCurrent(kind, key);
  return h('a', {class: `tree-item ${kind}`, href: hrefOf(kind, key), 'data-testid': `${kind}-${key}`,
    'aria-current': current ? 'page' : null, 'data-key': key},
  h('span', {class: 'tree-label'}, label),
  h('span', {class: 'tree-badges'}, countPills(counts, `${kind}-issues-${key}`),
    statusBadge(online, `${kind}-status-${key}`)));
}

// Refreshes the counts in the tree after value changes.
function updateTreeCounts() {
  for (const n of state.nodes.values()) {
    setPills(`node-issues-${n.key}`, issues(allPaths(n)));
    for (const d of n.devices.values()) setPills(`device-issues-${d.key}`, issues(d.metrics));
  }
}

function setPills(prefix, c) {
  for (const [kind, count] of [['bad', c.bad], ['uncertain', c.uncertain]]) {
    const el = document.querySelector(`[data-testid="${CSS.escape(`${prefix}-${kind}`)}"]`);
    if (!el) continue;
    el.textContent = `${count} ${kind}`;
    el.hidden = count === 0;
  }
}

function renderView() {
  const n = selection.key && state.nodes.get(selection.key.split('/').slice(0, 2).join('/'));
  const d = selection.kind === 'device' && n ? n.devices.get(selection.key.split('/')[2]) : null;
  view = {rows: new Map(), attention: null, cards: null};
  let content;
  if (selection.kind === 'node' && n) content = renderNodeView(n);
  else if (selection.kind === 'device' && d) content = renderDeviceView(d);
  else if (selection.kind !== 'overview' && state.loaded && (!n || n.detailed)) {
    content = h('div', {class: 'empty-state'}, h('h1', {}, 'Not found'),
      h('p', {}, `${selection.key} is not known to the server.`), h('a', {href: '#/'}, 'Back to the overview'));
  } else if (selection.kind !== 'overview') {
    content = h('p', {class: 'muted'}, 'Loading…');
  } else {
    content = renderOverview();
  }
  $('view').replaceChildren(content);
  if (chart.path) {
    if (view.rows.has(chart.path)) markSelectedRow(chart.path);
    else chart.close();
  }
}

function renderOverview() {
  const nodes = [...state.nodes.values()];
  const devices = nodes.flatMap((n) => [...n.devices.values()]);
  const c = issues(state.metrics.keys());
  const attention = attentionList();
  view.attention = attention.join('\n');
  const offline = [
    ...nodes.filter((n) => !n.online).map((n) => ['node', n]),
    ...devices.filter((d) => !d.online && d.node.online).map((d) => ['device', d]),
  ];
  const card = (testid, label, value, cls = '') =>
    h('div', {class: `card ${cls}`, 'data-testid': testid}, h('div', {class: 'card-value'}, value),
      h('div', {class: 'card-label'}, label));
  view.cards = {
    bad: card('summary-bad', 'Bad values', String(c.bad), c.bad ? 'card-bad' : ''),
    uncertain: card('summary-uncertain', 'Uncertain values', String(c.uncertain),
      c.uncertain ? 'card-uncertain' : ''),
  };
  return h('div', {},
    h('div', {class: 'view-head'}, h('h1', {}, 'Overview')),
    h('div', {class: 'cards'},
      card('summary-nodes', 'edge nodes online', `${nodes.filter((n) => n.online).length} / ${nodes.length}`,
        nodes.some((n) => !n.online) ? 'card-offline' : ''),
      card('summary-devices', 'devices online', `${devices.filter((d) => d.online).length} / ${devices.length}`,
        devices.some((d) => !d.online) ? 'card-offline' : ''),
      view.cards.bad, view.cards.uncertain),
    h('h2', {}, 'Offline'),
    offline.length === 0 ?
      h('p', {class: 'muted'}, 'Every edge node and device is online.') :
      h('ul', {class: 'offline-list', 'data-testid': 'offline-list'}, offline.map(([kind, x]) =>
        h('li', {}, h('a', {href: hrefOf(kind, x.key)}, x.key), ' ',
          statusBadge(false), h('span', {class: 'muted'}, ` since ${formatTime(x.since)}`)))),
    h('h2', {}, 'Values needing attention'),
    attention.length === 0 ?
      h('p', {class: 'muted'}, state.loaded ? 'All values are Good.' : 'Loading…') :
      metricTable(attention, {showPath: true}));
}

function renderNodeView(n) {
  const devices = [...n.devices.values()].sort((a, b) => a.device.localeCompare(b.device));
  return h('div', {},
    viewHead([n.group], n.node, n.online, n.since,
      [`bdSeq ${n.bdseq ?? '–'}`, `${devices.length} device${devices.length === 1 ? '' : 's'}`]),
    h('h2', {}, 'Node metrics'),
    metricTable(n.metrics, {stale: !n.online}),
    devices.map((d) => h('section', {class: 'device-section', 'data-testid': `section-${d.key}`},
      h('h2', {class: 'device-heading'}, h('a', {href: hrefOf('device', d.key)}, d.device),
        statusBadge(d.online), h('span', {class: 'muted'}, ` since ${formatTime(d.since)}`)),
      metricTable(d.metrics, {stale: !d.online}))));
}

function renderDeviceView(d) {
  const n = d.node;
  return h('div', {},
    viewHead([n.group, h('a', {href: hrefOf('node', n.key)}, n.node)], d.device, d.online, d.since,
      [`node ${n.online ? 'online' : 'offline'}`]),
    metricTable(d.metrics, {stale: !d.online}));
}

// Breadcrumb, title with status badge, and a line of facts.
function viewHead(crumbs, title, online, since, facts) {
  return h('div', {class: 'view-head'},
    h('div', {class: 'crumbs'}, crumbs.flatMap((c, i) => (i ? [' / ', c] : [c]))),
    h('h1', {}, h('span', {'data-testid': 'view-title'}, title), statusBadge(online, 'view-status')),
    h('p', {class: 'facts muted'}, [`${online ? 'online' : 'offline'} since ${formatTime(since)}`, ...facts]
      .join(' · ')),
    !online && h('p', {class: 'stale-note'}, 'Offline: the values below are the last ones received.'));
}

function metricTable(paths, {showPath = false, stale = false} = {}) {
  if (paths.length === 0) return h('p', {class: 'muted'}, 'No metrics.');
  return h('table', {class: `metrics${stale ? ' stale' : ''}`},
    h('thead', {}, h('tr', {},
      h('th', {scope: 'col'}, showPath ? 'Metric' : 'Name'), h('th', {scope: 'col', class: 'num'}, 'Value'),
      h('th', {scope: 'col'}, 'Unit'), h('th', {scope: 'col'}, 'Quality'), h('th', {scope: 'col'}, 'Time'))),
    h('tbody', {}, paths.map((p) => metricRow(state.metrics.get(p), showPath))));
}

function metricRow(m, showPath) {
  const cells = {
    value: h('td', {class: 'num', 'data-testid': `value-${m.path}`}),
    quality: h('td', {class: 'quality', 'data-testid': `quality-${m.path}`}),
    time: h('td', {class: 'time', 'data-testid': `time-${m.path}`}),
  };
  const open = () => openChart(m.path);
  cells.row = h('tr', {'data-testid': `metric-${m.path}`, onclick: open},
    h('td', {class: 'name'}, h('button', {type: 'button', class: 'link', title: m.path},
      showPath ? m.path : m.name)),
    cells.value, h('td', {class: 'unit'}, m.unit ?? ''), cells.quality, cells.time);
  view.rows.set(m.path, cells);
  fillRow(cells, m);
  return cells.row;
}

function fillRow(cells, m) {
  const {t, v, q} = m.latest ?? {};
  cells.value.textContent = m.latest ? formatValue(v, m.datatype) : '—';
  cells.quality.textContent = m.latest ? qualityName(q) : '';
  cells.quality.title = m.latest ? qualityHex(q) : '';
  cells.time.textContent = formatTime(t);
  cells.time.title = formatTimeFull(t);
  cells.row.classList.remove('quality-bad', 'quality-uncertain');
  const cls = m.latest ? qualityClass(q) : '';
  if (cls) cells.row.classList.add(cls);
}

function updateValues() {
  for (const path of dirtyPaths) {
    const cells = view?.rows.get(path);
    const m = state.metrics.get(path);
    if (cells && m) fillRow(cells, m);
  }
  dirtyPaths.clear();
  updateTreeCounts();
  // The overview lists the non-Good values: rebuild it when that list changes, else only
  // its counts.
  if (view?.cards) {
    if (attentionList().join('\n') !== view.attention) {
      const scroll = $('view').scrollTop;
      renderView();
      $('view').scrollTop = scroll;
    } else {
      const c = issues(state.metrics.keys());
      setCard(view.cards.bad, c.bad, 'card-bad');
      setCard(view.cards.uncertain, c.uncertain, 'card-uncertain');
    }
  }
}

function setCard(card, count, cls) {
  card.querySelector('.card-value').textContent = String(count);
  card.classList.toggle(cls, count > 0);
}

// Paths of the metrics whose latest value is not Good, sorted.
function attentionList() {
  return [...state.metrics.values()].filter((m) => severity(m.latest?.q) !== GOOD)
    .map((m) => m.path).sort();
}

function openChart(path) {
  const m = state.metrics.get(path);
  if (!m) return;
  markSelectedRow(path);
  chart.open(m);
}

function markSelectedRow(path) {
  for (const [p, cells] of view?.rows ?? []) cells.row.classList.toggle('selected', p === path);
}

// ---------------------------------------------------------------------------------------
// Navigation: "#/", "#/node/<group>/<node>", "#/device/<group>/<node>/<device>".

function readLocation() {
  let kind, parts;
  try {
    [kind, ...parts] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  } catch {
    parts = [];  // a malformed %-escape: show the overview
  }
  const want = kind === 'node' ? 2 : kind === 'device' ? 3 : -1;
  selection = parts.length === want ? {kind, key: parts.join('/')} : {kind: 'overview'};
  markStructure();
}

window.addEventListener('hashchange', readLocation);
readLocation();
connect();
loadAll();
