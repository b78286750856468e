'use strict';
// Store-and-forward helpers: a plant of counters driven by a SetRamp, a start-up whose tap
// survives broker restarts, /metrics of the journal, and the series checks over what the tap
// saw (every value, in order, with its original timestamp; duplicates tolerated).

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { promValue } = require('./harness');
const { startTap, formatMessage } = require('./tap');
const { Plant } = require('./plant');
const { waitBirths } = require('./scenario');
const { RampWindowSlackMs } = require('./ramp');
const { isGood, qualityOf } = require('./checks');

// The broker keeps the tap's session (and the QoS 0 messages for it) over a restart, so the
// tap gets everything the edge publishes after the restart even if the edge reconnects before
// the tap does. Mosquitto drops QoS 0 messages for a subscriber with max_queued_messages
// (default 1000) packets waiting, online or not: a replay is a burst, so lift the limit.
const BROKER_OPTS = {
  persistence: true,
  extra: ['queue_qos0_messages true', 'autosave_interval 0', 'max_queued_messages 1000000'],
};

// Two devices with a counter each (uint32, holding:10, driven by the ramp) and a constant.
function counterPlant({ pollMs = 50 } = {}) {
  return new Plant([
    {
      id: 'press-3',
      tags: [
        { name: 'Counter', register: 'holding:10', type: 'uint32', sim: { value: 0 } },
        { name: 'Temperature', register: 'holding:0', type: 'float32', word_order: 'ABCD', unit: 'degC', sim: { value: 21.5 } },
      ],
    },
    {
      id: 'oven-1',
      tags: [
        { name: 'Counter', register: 'holding:10', type: 'uint32', sim: { value: 0 } },
      ],
    },
  ], { pollMs });
}

// Starts Mosquitto (BROKER_OPTS), a persistent tap, kiln-sim and kiln-edge with `store` keys
// added to [store] (path: <temp dir>/store), and waits for the first births.
async function bootStorePlant(env, plant, { store = {}, extra = {}, tapOpts = {} } = {}) {
  const broker = await env.startMosquitto(BROKER_OPTS);
  const tap = await startTap(env, broker, { persistent: true, ...tapOpts });
  const sim = await env.startSim(plant.simConfig());
  const config = env.edgeConfig({ broker, devices: plant.edgeDevices(sim), extra });
  Object.assign(config.store, store);
  const edge = await env.startEdge(config);
  const births = await waitBirths(env, tap, plant.devices.map((d) => d.id), 0, 'first births');
  return { broker, tap, sim, edge, storeDir: config.store.path, ...births };
}

const QUEUE_METRICS = [
  'kiln_edge_queue_depth', 'kiln_edge_queue_bytes', 'kiln_edge_queue_appended_total', 'kiln_edge_queue_sent_total',
  'kiln_edge_queue_dropped_total', 'kiln_edge_queue_write_errors_total', 'kiln_edge_queue_oldest_unsent_age_seconds',
  'kiln_edge_queue_fsync_seconds_count', 'kiln_edge_replayed_samples_total', 'kiln_edge_replay_rate',
  'kiln_edge_mqtt_connected',
];

// The journal's /metrics as { name: value }; `missing` lists those not exposed at all.
async function queueMetrics(edge) {
  const text = await edge.metrics();
  const out = { missing: [] };
  for (const name of QUEUE_METRICS) {
    if (!new RegExp(`^${name}(\\{| )`, 'm').test(text)) out.missing.push(name);
    out[name] = promValue(text, name);
  }
  return out;
}

// One metric of an edge's /metrics (summed over its series; 0 when absent).
async function metricValue(edge, name) {
  return promValue(await edge.metrics(), name);
}

// Waits until pred(metrics) holds; the timeout message shows the last /metrics read.
async function waitMetrics(env, edge, pred, timeoutMs, what) {
  let last = null;
  try {
    return await env.waitFor(async () => {
      last = await queueMetrics(edge);
      return pred(last) ? last : null;
    }, timeoutMs, what);
  } catch (e) {
    e.message = `${e.message}\nlast /metrics: ${last ? formatMetrics(last) : '(none read)'}`;
    throw e;
  }
}

function formatMetrics(m) {
  return QUEUE_METRICS.map((n) => `${n}=${m[n]}`).join(' ') + (m.missing.length ? ` (not exposed: ${m.missing.join(', ')})` : '');
}

// The journal's directory of an edge: <[store] path>/queue.
function storeQueueDir(edge) {
  return path.join(edge.config.store.path, 'queue');
}

// Apparent size of every file under `dir` (recursively). Files that vanish while it looks
// (a segment dropped or recycled meanwhile) count as 0.
function dirBytes(dir) {
  let sum = 0;
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (e.code === 'ENOENT') return 0;
    throw e;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      sum += dirBytes(p);
    } else if (e.isFile()) {
      try {
        sum += fs.statSync(p).size;
      } catch (err) {
        if (err.code !== 'ENOENT') throw err;
      }
    }
  }
  return sum;
}

function listDir(dir) {
  const lines = [];
  const walk = (d) => {
    let entries;
    try { entries = fs.readdirSync(d, { withFileTypes: true }); } catch (e) { lines.push(`${d}: ${e.code || e.message}`); return; }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) { walk(p); continue; }
      let size = '?';
      try { size = fs.statSync(p).size; } catch { /* vanished */ }
      lines.push(`${path.relative(dir, p)} ${size}`);
    }
  };
  walk(dir);
  return lines.join('\n');
}

// Sessions seen by the tap: the index of each NBIRTH.
function nbirthIndexes(tap) {
  return tap.find('NBIRTH').map((m) => m.index);
}

// The alias of metric `name` in a DBIRTH.
function aliasIn(dbirth, name) {
  const m = dbirth.decoded.metrics.find((x) => x.name === name);
  assert.ok(m, `no metric ${name} in ${formatMessage(dbirth)}`);
  assert.equal(typeof m.alias, 'number', `metric ${name} without alias in ${formatMessage(dbirth)}`);
  return m.alias;
}

// The highest value of a metric seen so far (undefined when none).
function highest(tap, device, sel) {
  let best;
  for (const o of observations(tap, device, sel)) if (typeof o.value === 'number' && (best === undefined || o.value > best)) best = o.value;
  return best;
}

function observation(msg, m) {
  return {
    value: m.value, ts: m.timestamp, historical: m.isHistorical === true, good: isGood(m), quality: qualityOf(m),
    type: msg.type, index: msg.index, t: msg.t, isNull: m.isNull, msg,
  };
}

// Every value of one metric of `device` the tap saw, in arrival order: DBIRTH metrics (by
// name) and DDATA metrics (by alias).
//   { value, ts, historical, good, quality, type, index (message), t (arrival), isNull, msg }
// good: Good quality. A device runner that misses polls for 3 poll periods marks its values
// stale (Uncertain, same value, new timestamp) and the next good poll publishes them again.
function observations(tap, device, { name, alias }) {
  const out = [];
  for (const msg of tap.messages) {
    if (msg.device !== device || !msg.decoded) continue;
    if (msg.type !== 'DBIRTH' && msg.type !== 'DDATA') continue;
    for (const m of msg.decoded.metrics) {
      const hit = msg.type === 'DBIRTH' ? m.name === name : m.alias === alias;
      if (!hit) continue;
      out.push(observation(msg, m));
    }
  }
  return out;
}

// observations() for many metrics of one device at once, kept up to date incrementally:
// byAlias: alias -> observations in arrival order. names: { name -> alias } (from the DBIRTH).
class ObsIndex {
  constructor(tap, device, names) {
    this.tap = tap;
    this.device = device;
    this.names = names;
    this.byAlias = new Map(Object.values(names).map((a) => [a, []]));
    this.highest = new Map();
    this.scanned = 0;
  }

  update() {
    const msgs = this.tap.messages;
    for (; this.scanned < msgs.length; this.scanned++) {
      const msg = msgs[this.scanned];
      if (msg.device !== this.device || !msg.decoded || (msg.type !== 'DBIRTH' && msg.type !== 'DDATA')) continue;
      for (const m of msg.decoded.metrics) {
        const alias = msg.type === 'DBIRTH' ? this.names[m.name] : m.alias;
        const list = this.byAlias.get(alias);
        if (!list) continue;
        list.push(observation(msg, m));
        if (typeof m.value === 'number' && !(this.highest.get(alias) >= m.value)) this.highest.set(alias, m.value);
      }
    }
    return this;
  }

  // The lowest of the metrics' highest values (-1 while one has none).
  minHighest() {
    let min = Infinity;
    for (const a of this.byAlias.keys()) min = Math.min(min, this.highest.has(a) ? this.highest.get(a) : -1);
    return min;
  }
}

function fmtObs(o) {
  const iso = typeof o.ts === 'number' ? new Date(o.ts).toISOString().slice(11, 23) : String(o.ts);
  return `${o.value}@${iso}${o.historical ? ' hist' : ''}${o.good ? '' : ` quality=${o.quality}`} (${o.type} #${o.index})`;
}

function fmtWindow(w) {
  const f = (x) => (Number.isFinite(x) ? new Date(x).toISOString().slice(11, 23) : String(x));
  return `[${f(w.from)}, ${f(w.to)}]`;
}

// Checks the observations of one ramp-driven metric against the ramp. Returns a list of
// problems (empty: all well), the distinct values seen, and the number of non-Good samples.
//   lo, hi:        every value in [lo, hi] must have been seen, unless excused(v)
//   excused(v):    a value allowed to be missing (say why in the test)
//   repolled(v):   a value allowed to appear with more than one timestamp (a restarted edge
//                  reads the current value again); otherwise one value = one sample, and
//                  duplicates must be identical (at-least-once replay), except that a stale
//                  mark (non-Good, see observations()) may come between two reads of a value
// A Good sample's timestamp must lie in the window of its value; a stale mark only needs a
// value that was set and a timestamp in order.
function seriesProblems(obs, ramp, { lo, hi, excused = () => false, repolled = () => false, what = 'series' }) {
  const problems = [];
  const byValue = new Map(); // value -> Set(ts) of Good samples
  const staleStamps = [];
  const distinct = []; // { v, ts } of every distinct sample
  const seen = new Set();
  for (const o of obs) {
    if (typeof o.ts !== 'number') { problems.push(`${what}: metric without timestamp ${fmtObs(o)}`); continue; }
    if (o.isNull || typeof o.value !== 'number') { problems.push(`${what}: null or non-numeric value ${fmtObs(o)}`); continue; }
    if (!ramp.has(o.value)) { problems.push(`${what}: value ${o.value} was never set (ramp at ${ramp.last}): ${fmtObs(o)}`); continue; }
    const key = `${o.ts}|${o.value}|${o.good}`;
    if (!seen.has(key)) { seen.add(key); distinct.push({ v: o.value, ts: o.ts }); }
    if (!o.good) { staleStamps.push(o.ts); continue; }
    const w = ramp.window(o.value);
    if (o.ts < w.from - RampWindowSlackMs || o.ts > w.to + RampWindowSlackMs) {
      problems.push(`${what}: timestamp of ${fmtObs(o)} is outside the time the value was in the register ${fmtWindow(w)}`);
    }
    if (!byValue.has(o.value)) byValue.set(o.value, new Set());
    byValue.get(o.value).add(o.ts);
  }
  for (const [v, stampSet] of byValue) {
    if (stampSet.size < 2 || repolled(v)) continue;
    const stamps = [...stampSet].sort((a, b) => a - b);
    for (let i = 1; i < stamps.length; i++) {
      if (!staleStamps.some((s) => s > stamps[i - 1] && s <= stamps[i])) {
        problems.push(`${what}: value ${v} came with ${stamps.length} different timestamps (${stamps.map((s) => new Date(s).toISOString()).join(', ')}) and no stale mark between: a duplicate must be identical`);
        break;
      }
    }
  }
  // Order: distinct samples sorted by timestamp must have non-decreasing values.
  distinct.sort((a, b) => a.ts - b.ts || a.v - b.v);
  for (let i = 1; i < distinct.length; i++) {
    if (distinct[i].v < distinct[i - 1].v) {
      problems.push(`${what}: out of order by timestamp: ${distinct[i - 1].v}@${new Date(distinct[i - 1].ts).toISOString()} then ${distinct[i].v}@${new Date(distinct[i].ts).toISOString()}`);
    }
  }
  const missing = [];
  for (let v = lo; v <= hi; v++) if (!byValue.has(v) && !excused(v)) missing.push(v);
  if (missing.length) problems.push(`${what}: ${missing.length} value(s) missing in [${lo}, ${hi}]: ${compactRanges(missing)}`);
  return { problems, values: new Set(byValue.keys()), stale: staleStamps.length };
}

// The distinct samples a host received: (timestamp, value, quality) identifies one. A DBIRTH
// metric counts too: it carries the current value with its sample's timestamp (a device's first
// poll may reach the host only that way, when the DBIRTH comes after the sample was taken).
function distinctSamples(obs) {
  const keys = new Set();
  for (const o of obs) keys.add(`${o.ts}|${o.isNull ? 'null' : o.value}|${o.quality}`);
  return keys.size;
}

// [1,2,3,7,9,10] -> "1-3, 7, 9-10"
function compactRanges(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const parts = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

// Within one session (arrival indexes [from, to)), historical observations must arrive oldest
// first, and so must live ones. Returns problems.
function arrivalOrderProblems(obs, from, to, what) {
  const problems = [];
  for (const historical of [true, false]) {
    const lane = obs.filter((o) => o.type === 'DDATA' && o.historical === historical && o.index >= from && o.index < to);
    for (let i = 1; i < lane.length; i++) {
      if (lane[i].ts < lane[i - 1].ts) {
        problems.push(`${what}: ${historical ? 'historical' : 'live'} data not oldest first: ${fmtObs(lane[i - 1])} then ${fmtObs(lane[i])}`);
      }
    }
  }
  return problems;
}

// The metric `Store/Dropped Samples` of an NBIRTH or NDATA, or undefined.
function storeDroppedIn(msg) {
  if ((msg.type !== 'NBIRTH' && msg.type !== 'NDATA') || !msg.decoded) return undefined;
  return msg.decoded.metrics.find((x) => x.name === 'Store/Dropped Samples');
}

// Historical data may only follow the births of its session: for each historical DDATA
// observation, a DBIRTH of the device after the last NBIRTH before it. Returns problems.
function historyAfterBirthsProblems(tap, device, obs, what) {
  const problems = [];
  const births = tap.messages.filter((m) => m.type === 'NBIRTH' || (m.type === 'DBIRTH' && m.device === device));
  for (const o of obs) {
    if (o.type !== 'DDATA' || !o.historical) continue;
    let nb = -1;
    let db = -1;
    for (const b of births) {
      if (b.index >= o.index) break;
      if (b.type === 'NBIRTH') { nb = b.index; db = -1; } else { db = b.index; }
    }
    if (nb < 0 || db < 0) problems.push(`${what}: historical data without an NBIRTH and DBIRTH before it in its session: ${fmtObs(o)}`);
  }
  return problems;
}

// The value of the node metric `Store/Dropped Samples` last reported (NBIRTH or NDATA), with
// its message; undefined when never reported.
function lastStoreDropped(tap) {
  let last;
  for (const msg of tap.messages) {
    const m = storeDroppedIn(msg);
    if (m) last = { value: m.value, datatype: m.datatype, msg };
  }
  return last;
}

function assertNoProblems(problems, what, max = 60) {
  if (!problems.length) return;
  const shown = problems.slice(0, max);
  if (problems.length > max) shown.push(`... and ${problems.length - max} more`);
  assert.fail(`${what}: ${problems.length} problem(s):\n${shown.join('\n')}`);
}

module.exports = {
  BROKER_OPTS, counterPlant, bootStorePlant, queueMetrics, metricValue, waitMetrics, formatMetrics, aliasIn, highest, storeQueueDir, dirBytes, listDir, nbirthIndexes,
  observations, ObsIndex, distinctSamples, fmtObs, fmtWindow, seriesProblems, arrivalOrderProblems, historyAfterBirthsProblems, compactRanges, lastStoreDropped, storeDroppedIn,
  assertNoProblems, formatMessage,
};
