'use strict';
// Store and forward over budget: [store] max_bytes = "1MiB", segment_bytes = "64KiB", and
// TAGS tags that all read one float64 counter register the test steps every PERIOD_MS (TAGS
// samples per step, ~13000 samples/s; the journal stores a sample in ~13 bytes: tag and time
// deltas as varints, a type byte, the 8-byte double), so a broker outage of a few seconds
// overflows the journal and whole oldest segments are dropped. Then the ramp stops (the
// sequence ends cleanly), the broker comes back, the rest is replayed, and the accounting
// must agree exactly:
//   Store/Dropped Samples last reported on the tap (NBIRTH/NDATA)
//   == kiln_edge_queue_dropped_total at /metrics
//   == the ramp values missing on the tap (sum over tags of the holes in 0..last)  > 0,
// the missing values are the oldest of the outage (drop-oldest), everything after them arrives
// as history, and the journal never exceeds its budget (bytes at /metrics and on disk).
//
// For an exact count, nothing may be dropped that the tap already has: before the outage the
// ramp pauses until the journal is drained (depth 0: every sample confirmed), so no sample is in
// the at-least-once window when the broker stops; and the ramp stops, and the edge polls the
// last value, before the broker comes back, so no drop happens while the backlog is replayed.
// The edge polls every 100 ms a value held 300 ms, so normally it stores exactly one sample
// per tag and value (kiln_edge_queue_appended_total = TAGS x values). On a starved machine a
// poll can come late; after 3 poll periods the edge marks the values stale and the next poll
// publishes them again: extra samples that are not ramp values. Then the ramp view cannot be
// exact and the test checks the sample view, exact in every case:
//   dropped == appended - distinct samples (tag, timestamp, value, quality) on the tap.

const test = require('node:test');
const assert = require('node:assert/strict');
const { withEnv, missingBinaries } = require('./lib/harness');
const { startTap } = require('./lib/tap');
const { SetRamp } = require('./lib/ramp');
const { waitBirths } = require('./lib/scenario');
const { checkNbirth, assertSeqContiguous } = require('./lib/checks');
const { DataType } = require('./lib/sparkplug');
const S = require('./lib/store');

const skip = missingBinaries();

const TAGS = 4000;
const POLL_MS = 100;
const PERIOD_MS = 300;
const MAX_BYTES = 1 << 20;
const DEVICE = 'bulk';

// Mosquitto, a persistent tap, kiln-sim with one float64 register, kiln-edge with TAGS tags on
// it and a 1MiB journal (plus `store` keys), and the first births.
async function bootBulk(env, store = {}) {
  const broker = await env.startMosquitto(S.BROKER_OPTS);
  const tap = await startTap(env, broker, { persistent: true, describeMetrics: 4 });
  const sim = await env.startSim({
    servers: [{
      id: DEVICE, protocol: 'tcp', listen: '127.0.0.1:0', unit_id: 1,
      registers: [{ register: 'holding:0', type: 'float64', word_order: 'ABCD', signal: 'constant', value: 0 }],
    }],
  });
  const names = Array.from({ length: TAGS }, (_, i) => `C${String(i).padStart(4, '0')}`);
  const config = env.edgeConfig({
    broker,
    devices: [{
      id: DEVICE, driver: 'modbus-tcp', address: sim.address(DEVICE), unit_id: 1, poll_ms: POLL_MS, timeout_ms: 500,
      tags: names.map((name) => ({ name, register: 'holding:0', type: 'float64' })),
    }],
  });
  Object.assign(config.store, { max_bytes: '1MiB', segment_bytes: '64KiB' }, store);
  const edge = await env.startEdge(config);
  const { nbirth, dbirths } = await waitBirths(env, tap, [DEVICE], 0, 'first births');
  checkNbirth(nbirth);
  const nameToAlias = {};
  for (const m of dbirths[DEVICE].decoded.metrics) nameToAlias[m.name] = m.alias;
  assert.equal(Object.keys(nameToAlias).length, TAGS, `the DBIRTH must hold ${TAGS} metrics`);
  const idx = new S.ObsIndex(tap, DEVICE, nameToAlias);
  return { broker, tap, sim, edge, names, nameToAlias, idx, nbirth, queueDir: S.storeQueueDir(edge) };
}

test('budget: drop-oldest, and Store/Dropped Samples = /metrics = values missing on the tap', { skip, timeout: 150000 }, async (t) => {
  await withEnv(t, 'sf-budget', async (env) => {
    const { broker, tap, sim, edge, names, nameToAlias, idx, queueDir } = await bootBulk(env);

    const ramp = new SetRamp(sim, [{ server: DEVICE, register: 'holding:0' }], { periodMs: PERIOD_MS });
    env.onClose(() => ramp.stop().catch(() => {}));
    ramp.start();
    await env.waitFor(() => { ramp.assertOk(); return idx.update().minHighest() >= 3; }, 15000, 'live values (>= 3) of every tag');
    // Drain: no sample may be unconfirmed when the broker stops (see the top).
    const paused = await ramp.pause();
    await env.waitFor(() => idx.update().minHighest() === paused, 10000, `the value ${paused} of every tag on the tap`);
    await S.waitMetrics(env, edge, (m) => m.kiln_edge_queue_depth === 0, 10000, '/metrics: the journal drained before the outage');
    await tap.sync();

    await broker.stop();
    const stoppedAt = Date.now();
    await env.waitFor(async () => (await edge.health()).mqtt_connected === false, 10000, 'health: mqtt_connected false while the broker is down');
    const firstOutageValue = ramp.next;
    ramp.start();
    // The budget holds at every look, on /metrics and on disk.
    const overBudget = [];
    const budgetCheck = (m) => {
      const disk = S.dirBytes(queueDir);
      if (m.kiln_edge_queue_bytes > MAX_BYTES) overBudget.push(`kiln_edge_queue_bytes ${m.kiln_edge_queue_bytes} > ${MAX_BYTES}`);
      if (disk > MAX_BYTES) overBudget.push(`${queueDir} holds ${disk} bytes > ${MAX_BYTES}:\n${S.listDir(queueDir)}`);
    };
    const firstDrop = await S.waitMetrics(env, edge, (m) => { ramp.assertOk(); budgetCheck(m); return m.kiln_edge_queue_dropped_total > 0; },
      60000, '/metrics: kiln_edge_queue_dropped_total > 0 (the journal over its 1MiB budget drops its oldest segments)');
    t.diagnostic(`first drop after ${Date.now() - stoppedAt} ms of outage, ${ramp.last - firstOutageValue + 1} steps (${TAGS} samples each): ${S.formatMetrics(firstDrop)}`);
    // Some more steps: several segments dropped.
    const more = ramp.log.length + 5;
    await S.waitMetrics(env, edge, (m) => { ramp.assertOk(); budgetCheck(m); return ramp.log.length >= more; }, 10000, '5 more ramp steps');
    const last = await ramp.stop();
    // The edge polls the last value (two polls completed after it was set) and stores it.
    const polls0 = await S.metricValue(edge, 'kiln_edge_device_polls_total');
    await env.waitFor(async () => (await S.metricValue(edge, 'kiln_edge_device_polls_total')) >= polls0 + 2, 10000,
      'two polls after the last ramp step');
    const stored = await S.queueMetrics(edge);
    budgetCheck(stored);
    const dropped = stored.kiln_edge_queue_dropped_total;

    const before = tap.length;
    await broker.start();
    const { nbirth: nb2 } = await waitBirths(env, tap, [DEVICE], before, 'births after the outage');
    const end = await S.waitMetrics(env, edge, (m) => { budgetCheck(m); return m.kiln_edge_queue_depth === 0; }, 30000,
      '/metrics: kiln_edge_queue_depth back to 0 after the replay');
    await tap.sync();
    idx.update();
    const ctx = `when the ramp stopped: ${S.formatMetrics(stored)}\nat the end: ${S.formatMetrics(end)}`;

    // The three numbers.
    assert.ok(dropped > 0, `the journal must have dropped samples:\n${ctx}`);
    assert.equal(end.kiln_edge_queue_dropped_total, dropped, `no drop after the broker came back:\n${ctx}`);
    await env.waitFor(() => { const l = S.lastStoreDropped(tap); return l && l.value === dropped; }, 5000,
      `Store/Dropped Samples = ${dropped} on the tap`);
    const nb2Dropped = S.storeDroppedIn(nb2);
    assert.ok(nb2Dropped, `the NBIRTH after the outage carries Store/Dropped Samples: ${S.formatMessage(nb2, undefined, 5)}`);
    assert.equal(nb2Dropped.value, dropped, `Store/Dropped Samples in the NBIRTH after the outage:\n${ctx}`);
    const missingPerTag = new Map();
    const problems = [];
    let missingTotal = 0;
    let staleTotal = 0;
    let delivered = 0;
    for (const [name, alias] of Object.entries(nameToAlias)) {
      const obs = idx.byAlias.get(alias);
      const r = S.seriesProblems(obs, ramp, { lo: 0, hi: last, excused: () => true, what: `${DEVICE}/${name}` });
      problems.push(...r.problems);
      staleTotal += r.stale;
      delivered += S.distinctSamples(obs);
      const missing = [];
      for (let v = 0; v <= last; v++) if (!r.values.has(v)) missing.push(v);
      missingPerTag.set(name, missing);
      missingTotal += missing.length;
      // What survived of the outage came as history.
      for (let v = firstOutageValue; v <= last; v++) {
        if (r.values.has(v) && !obs.some((o) => o.value === v && o.type === 'DDATA' && o.historical && o.index > nb2.index)) {
          problems.push(`${DEVICE}/${name}: outage value ${v} never came as historical DDATA after the new births`);
        }
      }
    }
    const runs = [...missingPerTag.values()].map((m) => m.length);
    const exactRamp = end.kiln_edge_queue_appended_total === TAGS * (last + 1) && staleTotal === 0;
    t.diagnostic(`dropped ${dropped}; missing per tag ${Math.min(...runs)}..${Math.max(...runs)} of ${last - firstOutageValue + 1} outage values; ` +
      `appended ${end.kiln_edge_queue_appended_total} (${TAGS} x ${last + 1} values = ${TAGS * (last + 1)}), stale marks seen ${staleTotal}`);
    S.assertNoProblems(problems, 'what the tap saw');
    // The sample view: every stored sample arrived or was counted as dropped.
    const trace = idx.byAlias.get(nameToAlias[names[0]]).map(S.fmtObs).join('\n');
    assert.equal(end.kiln_edge_queue_appended_total - delivered, dropped,
      `samples stored (${end.kiln_edge_queue_appended_total}) - distinct samples on the tap (${delivered}) must equal the samples dropped (${dropped}):\n${ctx}\n` +
      `what the tap saw of ${names[0]}:\n${trace}`);
    if (exactRamp) {
      // The ramp view: one sample per tag and value, so a dropped sample is a missing value.
      assert.equal(missingTotal, dropped, `values missing on the tap (${missingTotal}) must equal the samples the journal dropped (${dropped}):\n${ctx}`);
      const bad = [...missingPerTag].filter(([, m]) => m.length && (m[0] !== firstOutageValue || m[m.length - 1] !== firstOutageValue + m.length - 1));
      assert.deepEqual(bad.slice(0, 5).map(([n, m]) => `${n}: missing ${S.compactRanges(m)}`), [],
        `drop-oldest: the holes must be one run from the first outage value ${firstOutageValue} (${bad.length} tags differ)`);
      assert.ok(Math.max(...runs) - Math.min(...runs) <= 1, `whole segments are dropped: every tag misses the same values, give or take the one step a segment boundary splits (runs ${Math.min(...runs)}..${Math.max(...runs)})`);
    } else {
      t.diagnostic('the edge published stale marks or missed a step (a starved machine): the exact ramp-view check is skipped, the sample view above holds');
      assert.ok(missingTotal > 0, `values must be missing on the tap after ${dropped} drops`);
    }
    assert.deepEqual(overBudget.slice(0, 5), [], `the journal exceeded max_bytes (${overBudget.length} times)`);
    assert.equal(end.kiln_edge_queue_write_errors_total, 0, ctx);
  });
});

// Drops while connected: the broker hangs (SIGSTOP: the TCP connection stays up, no PUBACK
// comes), so the edge stays in its session but gets no barrier confirmed; it stops taking data
// once four barriers are outstanding, and the journal fills up and drops its oldest segments.
// Each change of the count goes out as NDATA `Store/Dropped Samples`, at most once a second
// (they reach the broker when it resumes), and the last one matches /metrics.
test('budget while connected: drops reported by NDATA Store/Dropped Samples, at most once a second', { skip, timeout: 150000 }, async (t) => {
  await withEnv(t, 'sf-budget-ndata', async (env) => {
    const { broker, tap, sim, edge, idx, nbirth } = await bootBulk(env);
    const ramp = new SetRamp(sim, [{ server: DEVICE, register: 'holding:0' }], { periodMs: PERIOD_MS });
    env.onClose(() => ramp.stop().catch(() => {}));
    ramp.start();
    await env.waitFor(() => { ramp.assertOk(); return idx.update().minHighest() >= 2; }, 15000, 'live values (>= 2) of every tag');

    const before = tap.length;
    broker.pause();
    const first = await S.waitMetrics(env, edge, (m) => { ramp.assertOk(); return m.kiln_edge_queue_dropped_total > 0; }, 60000,
      '/metrics: kiln_edge_queue_dropped_total > 0 while the broker hangs');
    assert.equal(first.kiln_edge_mqtt_connected, 1, `the session stays up while the broker hangs: ${S.formatMetrics(first)}`);
    // Some seconds of drops: several changes of the count, at most one report a second.
    await S.waitMetrics(env, edge, (m) => m.kiln_edge_queue_dropped_total >= first.kiln_edge_queue_dropped_total + 4 * TAGS, 20000,
      'more drops while the broker hangs');
    await ramp.waitSteps(4, 10000, 'four more ramp steps while the broker hangs');
    broker.resume();
    const reports = () => tap.find('NDATA', { from: before }).filter((m) => S.storeDroppedIn(m));
    await env.waitFor(() => { ramp.assertOk(); return reports().length >= 2; }, 15000, 'NDATA Store/Dropped Samples reports once the broker resumes');
    await ramp.stop();
    // No more samples, no more drops: the last report catches up with /metrics within a second.
    const end = await S.waitMetrics(env, edge, (m) => {
      const last = S.lastStoreDropped(tap);
      return last && last.value === m.kiln_edge_queue_dropped_total;
    }, 10000, 'the last Store/Dropped Samples on the tap = kiln_edge_queue_dropped_total');
    await tap.sync();

    const list = reports();
    const lines = list.map((m) => `${S.formatMessage(m)} ts=${S.storeDroppedIn(m).timestamp}`).join('\n');
    const atBirth = S.storeDroppedIn(nbirth);
    let prev = { value: atBirth.value, ts: atBirth.timestamp };
    for (const m of list) {
      const d = S.storeDroppedIn(m);
      assert.equal(d.datatype, DataType.UInt64, `Store/Dropped Samples must be UInt64:\n${lines}`);
      assert.equal(m.decoded.metrics.length, 1, `an NDATA of Store/Dropped Samples holds that metric only: ${S.formatMessage(m)}`);
      assert.ok(d.value > prev.value, `each NDATA reports a changed, larger count:\n${lines}`);
      assert.ok(typeof d.timestamp === 'number' && d.timestamp - prev.ts >= 900,
        `at most one NDATA a second (${d.timestamp - prev.ts} ms after the previous report):\n${lines}`);
      prev = { value: d.value, ts: d.timestamp };
    }
    assert.equal(S.lastStoreDropped(tap).value, end.kiln_edge_queue_dropped_total, S.formatMetrics(end));
    assert.equal(tap.find('NBIRTH').length, 1, 'one session throughout: the hang did not end it');
    assertSeqContiguous(tap.edgeMessages(), 'seq');
    t.diagnostic(`${list.length} NDATA reports, dropped ${end.kiln_edge_queue_dropped_total} at the end`);
  });
});
