'use strict';
// Store and forward through a broker outage ([store] journal): Mosquitto stops for ~3 s while
// two counters keep changing (a ramp the test drives through kiln-sim's `set`, one step every
// 300 ms, polled every 100 ms, so the edge sees every value). When the broker is back:
// NBIRTH + DBIRTHs first, then the outage's values as is_historical DDATA with their original
// timestamps, oldest first, rate-limited ([store] replay_rate = 20/s) with live DDATA in
// between; on the tap every value from before the outage to after it, in order, none missing;
// the journal drains to depth 0. Also: `kiln-edge check` on bad [store] keys.
//
// The tap keeps a persistent session on a broker with persistence (lib/store.js BROKER_OPTS),
// so it is subscribed before the edge can reconnect to the restarted broker. Data flows while
// the broker stops, so samples published but not yet confirmed may come twice (at-least-once):
// duplicates must be identical (metric, timestamp, value).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { withEnv, missingBinaries, runSync } = require('./lib/harness');
const { SetRamp } = require('./lib/ramp');
const { waitBirths } = require('./lib/scenario');
const { checkNbirth, assertSeqContiguous } = require('./lib/checks');
const { DataType } = require('./lib/sparkplug');
const S = require('./lib/store');

const skip = missingBinaries();

const POLL_MS = 100;
const PERIOD_MS = 300; // one ramp step: a value is polled 3 times, so a late poll misses none
const OUTAGE_STEPS = 12; // ~3.6 s
const REPLAY_RATE = 20; // samples/s: the ~40 samples of the outage take ~2 s to replay, with live data between
const DEVICES = ['press-3', 'oven-1'];

test('broker outage: births first, then the outage replayed as history, every value in order', { skip, timeout: 90000 }, async (t) => {
  await withEnv(t, 'sf-outage', async (env) => {
    const plant = S.counterPlant({ pollMs: POLL_MS });
    const { broker, tap, sim, edge, nbirth, dbirths } = await S.bootStorePlant(env, plant, { store: { replay_rate: REPLAY_RATE } });
    checkNbirth(nbirth);
    const dropped0 = S.lastStoreDropped(tap);
    assert.ok(dropped0 && dropped0.msg.index === nbirth.index, `NBIRTH must carry Store/Dropped Samples: ${S.formatMessage(nbirth)}`);
    assert.equal(dropped0.datatype, DataType.UInt64, `Store/Dropped Samples must be UInt64: ${S.formatMessage(nbirth)}`);
    assert.equal(dropped0.value, 0, `nothing dropped yet: ${S.formatMessage(nbirth)}`);
    const sel = Object.fromEntries(DEVICES.map((d) => [d, { name: 'Counter', alias: S.aliasIn(dbirths[d], 'Counter') }]));

    const ramp = new SetRamp(sim, DEVICES.map((d) => ({ server: d, register: 'holding:10' })), { periodMs: PERIOD_MS });
    env.onClose(() => ramp.stop().catch(() => {}));
    ramp.start();
    await env.waitFor(() => { ramp.assertOk(); return DEVICES.every((d) => S.highest(tap, d, sel[d]) >= 5); }, 10000,
      'live counter values (>= 5) before the outage');

    // Outage: the broker process ends; the port stays ours.
    await broker.stop();
    const stoppedAt = Date.now();
    await env.waitFor(async () => (await edge.health()).mqtt_connected === false, 10000, 'health: mqtt_connected false while the broker is down');
    await ramp.waitSteps(OUTAGE_STEPS, 15000, `${OUTAGE_STEPS} ramp steps during the outage`);
    // The journal holds them: at least one sample per step and counter, the oldest > 1 s old.
    const during = await S.waitMetrics(env, edge, (m) => m.missing.length === 0 &&
      m.kiln_edge_queue_depth >= 2 * (OUTAGE_STEPS - 2) && m.kiln_edge_queue_oldest_unsent_age_seconds >= 1, 5000,
      `/metrics: kiln_edge_queue_depth >= ${2 * (OUTAGE_STEPS - 2)} and oldest_unsent_age >= 1 s during the outage`);
    const startAt = Date.now();
    const before = tap.length;
    await broker.start();
    const { nbirth: nb2, dbirths: db2 } = await waitBirths(env, tap, DEVICES, before, 'births after the outage');
    checkNbirth(nb2);

    // Live data after the births, while the backlog is replayed; then the ramp ends cleanly.
    await ramp.waitSteps(Math.ceil(3000 / PERIOD_MS), 15000, 'ramp steps after the reconnect');
    const last = await ramp.stop();
    await env.waitFor(() => DEVICES.every((d) => S.highest(tap, d, sel[d]) === last), 15000, `the last ramp value ${last} on the tap`);
    const end = await S.waitMetrics(env, edge, (m) => m.kiln_edge_queue_depth === 0, 15000,
      '/metrics: kiln_edge_queue_depth back to 0 after the replay');
    await tap.sync();

    const problems = [];
    const outageValues = ramp.valuesWithin(stoppedAt, startAt);
    assert.ok(outageValues.length >= OUTAGE_STEPS - 2,
      `only ${outageValues.length} ramp values lie wholly inside the outage (${stoppedAt}..${startAt}): the outage was too short to test anything`);
    let historicalSeen = 0;
    for (const d of DEVICES) {
      const obs = S.observations(tap, d, sel[d]);
      const first = obs[0];
      assert.ok(first && first.type === 'DBIRTH', `${d}: the first Counter value comes in the DBIRTH`);
      // Every value from the first birth to the last step, in order, original timestamps.
      problems.push(...S.seriesProblems(obs, ramp, { lo: first.value, hi: last, what: `${d}/Counter` }).problems);
      // Values polled only while the broker was down: historical DDATA after this device's new
      // DBIRTH, never live.
      for (const v of outageValues) {
        const mine = obs.filter((o) => o.value === v);
        const hist = mine.filter((o) => o.type === 'DDATA' && o.historical && o.index > db2[d].index);
        if (!hist.length) problems.push(`${d}/Counter: outage value ${v} never came as historical DDATA after the new DBIRTH (seen: ${mine.map(S.fmtObs).join(', ') || 'nothing'})`);
        for (const o of mine) {
          if (o.type === 'DDATA' && !o.historical) problems.push(`${d}/Counter: outage value ${v} came as live data: ${S.fmtObs(o)}`);
        }
      }
      // Replayed data only after its session's births; in the new session older than them.
      problems.push(...S.historyAfterBirthsProblems(tap, d, obs, `${d}/Counter`));
      for (const o of obs.filter((x) => x.historical && x.index > nb2.index)) {
        historicalSeen += 1;
        if (o.index < db2[d].index) problems.push(`${d}/Counter: historical data before the DBIRTH #${db2[d].index} of the new session: ${S.fmtObs(o)}`);
        if (o.ts >= nb2.t) problems.push(`${d}/Counter: historical value newer than the births (${new Date(nb2.t).toISOString()}): ${S.fmtObs(o)}`);
      }
      // Values set after the births arrived are live.
      const liveValues = ramp.valuesWithin(nb2.t, Infinity);
      assert.ok(liveValues.length >= 5, `only ${liveValues.length} ramp values after the reconnect`);
      for (const v of liveValues) {
        if (!obs.some((o) => o.value === v && o.type === 'DDATA' && !o.historical)) {
          problems.push(`${d}/Counter: value ${v}, set after the births, never came as live DDATA: ${obs.filter((o) => o.value === v).map(S.fmtObs).join(', ') || 'nothing'}`);
        }
      }
      problems.push(...S.arrivalOrderProblems(obs, nb2.index, Infinity, `${d}/Counter (new session)`));
    }
    S.assertNoProblems(problems, 'what the tap saw');

    // Rate-limited replay with live data in between.
    const histMsgs = tap.find('DDATA', { from: nb2.index }).filter((m) => m.decoded.metrics.some((x) => x.isHistorical));
    assert.ok(histMsgs.length > 0, 'no historical DDATA after the reconnect');
    const liveBetween = tap.find('DDATA', { from: histMsgs[0].index })
      .filter((m) => m.index < histMsgs[histMsgs.length - 1].index && m.decoded.metrics.some((x) => !x.isHistorical));
    assert.ok(liveBetween.length > 0, `no live DDATA between the first (#${histMsgs[0].index}) and last (#${histMsgs[histMsgs.length - 1].index}) replayed DDATA`);
    const histSamples = histMsgs.reduce((n, m) => n + m.decoded.metrics.filter((x) => x.isHistorical).length, 0);
    const spanMs = histMsgs[histMsgs.length - 1].t - histMsgs[0].t;
    const minSpanMs = ((histSamples - REPLAY_RATE) / REPLAY_RATE) * 1000 * 0.8;
    t.diagnostic(`outage ${startAt - stoppedAt} ms: ${outageValues.length} values per counter wholly inside it; after the reconnect ` +
      `${histSamples} historical samples in ${histMsgs.length} DDATA over ${spanMs} ms, ${liveBetween.length} live DDATA in between`);
    assert.ok(spanMs >= minSpanMs, `${histSamples} historical samples at replay_rate ${REPLAY_RATE}/s arrived within ${spanMs} ms (expected >= ${Math.round(minSpanMs)} ms)`);

    assertSeqContiguous(tap.edgeMessages(nb2.index), 'seq after the reconnect');
    const d2 = S.lastStoreDropped(tap);
    assert.equal(d2.value, 0, `Store/Dropped Samples after the outage: ${S.formatMessage(d2.msg)}`);
    assert.ok(tap.find('NBIRTH').every((m) => S.storeDroppedIn(m) !== undefined), 'every NBIRTH carries Store/Dropped Samples');

    // The journal: drained, nothing dropped or failed, every replayed sample reached the tap.
    const ctx = `during the outage: ${S.formatMetrics(during)}\nat the end: ${S.formatMetrics(end)}`;
    assert.equal(end.kiln_edge_queue_dropped_total, 0, ctx);
    assert.equal(end.kiln_edge_queue_write_errors_total, 0, ctx);
    assert.equal(end.kiln_edge_queue_sent_total, end.kiln_edge_queue_appended_total, `appended = sent once drained:\n${ctx}`);
    assert.equal(end.kiln_edge_queue_oldest_unsent_age_seconds, 0, ctx);
    assert.ok(end.kiln_edge_queue_fsync_seconds_count > 0, `the journal syncs: ${ctx}`);
    const allHistorical = tap.find('DDATA').reduce((n, m) => n + m.decoded.metrics.filter((x) => x.isHistorical).length, 0);
    assert.ok(historicalSeen >= 2 * outageValues.length, `historical counter samples ${historicalSeen} < 2 x ${outageValues.length} outage values`);
    assert.equal(end.kiln_edge_replayed_samples_total, allHistorical,
      `every replayed sample (kiln_edge_replayed_samples_total) reached the tap as historical data (${allHistorical}):\n${ctx}`);

    // LOG, over both broker runs (SPARKPLUG-CONFORMANCE.md, QoS 1 section): data stays at QoS 0,
    // live and replayed alike; only the delivery barrier (outside spBv1.0/) is QoS 1; nothing
    // is re-sent from an old connection (d1); every connection's first PUBLISH is NBIRTH.
    const id = edge.clientId;
    const lines = broker.logLines();
    const pubs = lines.filter((l) => l.includes(`Received PUBLISH from ${id} `));
    const data = pubs.filter((l) => /'spBv1\.0\/[^/]+\/DDATA\//.test(l));
    assert.ok(data.length > 0, 'LOG: DDATA received');
    assert.deepEqual(data.filter((l) => !l.includes('(d0, q0, r0,')), [], 'LOG: every DDATA at QoS 0, not retained, no DUP');
    const barriers = pubs.filter((l) => l.includes("'kiln/edge/"));
    assert.ok(barriers.length > 0, 'LOG: delivery barriers received');
    assert.deepEqual(barriers.filter((l) => !l.includes('(d0, q1, r0,') || !/'kiln\/edge\/[^/]+\/[^/]+\/barrier'/.test(l)), [],
      'LOG: barriers at QoS 1 on kiln/edge/<group>/<node>/barrier, not retained, no DUP');
    assert.deepEqual(pubs.filter((l) => /\(d1,/.test(l)), [], 'LOG: nothing re-sent from an old connection');
    const connects = lines.map((l, i) => (l.includes('New client connected') && l.includes(` as ${id} `) ? i : -1)).filter((i) => i >= 0);
    assert.ok(connects.length >= 2, `LOG: a connection before and after the outage (${connects.length})`);
    for (const c of connects) {
      const first = lines.slice(c).find((l) => l.includes(`Received PUBLISH from ${id} `));
      if (first) assert.match(first, /'spBv1\.0\/[^/]+\/NBIRTH\//, `LOG: first PUBLISH of the connection at line ${c} must be NBIRTH: ${first}`);
    }
  });
});

// ---------------------------------------------------------------------------------------
// kiln-edge check on [store] keys: exit 2, each error as file:line:column: key: message.

const HEAD = [
  '[node]',
  'group_id = "Plant1"',
  'edge_node_id = "gw-01"',
  '',
  '[mqtt]',
  'url = "mqtt://127.0.0.1:1883"',
  '',
  '[store]',
  'path = "STORE"', // line 9; the store's own keys start at line 10
];
const TAIL = [
  '',
  '[[devices]]',
  'id = "press-3"',
  'driver = "modbus-tcp"',
  'address = "127.0.0.1:5020"',
  '  [[devices.tags]]',
  '  name = "Temperature"',
  '  register = "holding:0"',
  '  type = "float32"',
  '',
];

// store: the lines after `path`; errors: [{ line (within `store`, from 0), key }].
const CASES = [
  {
    what: 'bad max_bytes, fsync and compression',
    store: ['max_bytes = "lots"', 'fsync = "sometimes"', 'compression = "lz4"'],
    errors: [{ line: 0, key: 'max_bytes' }, { line: 1, key: 'fsync' }, { line: 2, key: 'compression' }],
  },
  { what: 'max_bytes below 1MiB', store: ['max_bytes = "512KiB"'], errors: [{ line: 0, key: 'max_bytes' }] },
  { what: 'segment_bytes below 64KiB', store: ['segment_bytes = "32KiB"'], errors: [{ line: 0, key: 'segment_bytes' }] },
  {
    what: 'max_bytes holding fewer than 3 segments',
    store: ['max_bytes = "1MiB"', 'segment_bytes = "512KiB"'],
    errors: [{ line: 1, key: 'segment_bytes' }],
  },
];

function show(r) {
  return `exit ${r.code} signal ${r.signal}${r.error ? ` error ${r.error.message}` : ''}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function writeConfig(env, name, storeLines) {
  const file = path.join(env.dir, name);
  const head = HEAD.map((l) => l.replace('STORE', path.join(env.dir, 'store')));
  fs.writeFileSync(file, [...head, ...storeLines, ...TAIL].join('\n'));
  return file;
}

test('check: bad [store] keys exit 2 naming file:line and the key', { skip: missingBinaries(['kiln-edge']) }, async (t) => {
  await withEnv(t, 'sf-check', async (env) => {
    CASES.forEach((c, i) => {
      const file = writeConfig(env, `store-${i}.toml`, c.store);
      const r = runSync('kiln-edge', ['check', '--config', file]);
      assert.equal(r.code, 2, `${c.what}: check must exit 2:\n${show(r)}`);
      const out = r.stdout + r.stderr;
      const re = new RegExp(`^\\s*${escapeRe(file)}:(\\d+):(\\d+): ([^:]+): (.*)$`, 'gm');
      const errors = [];
      for (let m = re.exec(out); m; m = re.exec(out)) errors.push({ line: Number(m[1]), key: m[3], message: m[4] });
      for (const e of c.errors) {
        const line = HEAD.length + 1 + e.line;
        const keyRe = new RegExp(`(^|[.\\]\\s])${e.key}$`);
        assert.ok(errors.some((x) => x.line === line && keyRe.test(x.key)),
          `${c.what}: expected an error at ${path.basename(file)}:${line} for key ${e.key}; got:\n${show(r)}`);
      }
    });

    // Every key with a valid value passes.
    const good = writeConfig(env, 'store-good.toml', [
      'max_bytes = "2GiB"', 'max_age = "7d"', 'segment_bytes = "64MiB"', 'fsync = "batch"', 'fsync_interval = "100ms"',
      'fsync_batch = 500', 'compression = "zstd"', 'replay_rate = 5000',
    ]);
    const r = runSync('kiln-edge', ['check', '--config', good]);
    assert.equal(r.code, 0, `a valid [store] must pass:\n${show(r)}`);
    assert.match(r.stdout, /\bOK\b/, show(r));
    const r2 = runSync('kiln-edge', ['check', '--config', writeConfig(env, 'store-int.toml', ['max_bytes = 1048576', 'fsync = "always"', 'compression = "none"'])]);
    assert.equal(r2.code, 0, `max_bytes as an integer, fsync always, compression none must pass:\n${show(r2)}`);
  });
});
