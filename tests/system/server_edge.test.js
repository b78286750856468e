'use strict';
// kiln-edge into kiln-server through real Mosquitto, checked over REST: the registry shows
// what the births declared; every value the edge published (as an independent subscriber saw
// it) is stored once, at its source timestamp, with its quality; a broker outage is replayed
// by the edge as late, out-of-order history and lands in the historian without duplicates,
// while the latest value stays the newest one.

const test = require('node:test');
const assert = require('node:assert/strict');
const { withEnv, missingBinaries, promValue } = require('./lib/harness');
const { startTap } = require('./lib/tap');
const { standardPlant } = require('./lib/plant');
const { waitBirths } = require('./lib/scenario');
const { SetRamp } = require('./lib/ramp');
const { DataType } = require('./lib/sparkplug');
const S = require('./lib/store');

const skip = missingBinaries(['kiln-edge', 'kiln-sim', 'kiln-server']);
const TYPE_NAMES = Object.fromEntries(Object.entries(DataType).map(([k, v]) => [v, k]));
const enc = encodeURIComponent;
const UNCERTAIN_NO_COMM_LAST_USABLE = 0x408f0000;

// Distinct (timestamp, value) pairs the tap saw for one metric, sorted by time. Duplicates
// (at-least-once delivery) must agree.
function tapSeries(obs) {
  const byTs = new Map();
  for (const o of obs) {
    const prev = byTs.get(o.ts);
    if (prev) assert.equal(prev.value, o.value, `two values at ${o.ts}: ${S.fmtObs(prev)} and ${S.fmtObs(o)}`);
    else byTs.set(o.ts, o);
  }
  return [...byTs.values()].sort((a, b) => a.ts - b.ts);
}

async function stored(server, path, from, to) {
  return (await server.api(`/api/v1/query?metric=${enc(path)}&from=${from}&to=${to}`)).points;
}

test('kiln-edge into kiln-server: registry from the births, every published value stored once', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'server-edge', async (env) => {
    const plant = standardPlant();
    const broker = await env.startMosquitto();
    const server = await env.startServer(env.serverConfig({ broker }));
    const tap = await startTap(env, broker);
    const sim = await env.startSim(plant.simConfig());
    await env.startEdge(env.edgeConfig({ broker, devices: plant.edgeDevices(sim) }));
    const { dbirths } = await waitBirths(env, tap, ['press-3', 'oven-1']);

    // The registry: node and devices online, metrics with the births' datatypes and units.
    const node = await env.waitFor(async () => {
      const n = await server.api('/api/v1/nodes/Plant1/gw-01');
      return n.online && n.devices.length === 2 && n.devices.every((d) => d.online) && n;
    }, 10000, 'Plant1/gw-01 and both devices online in the registry');
    for (const d of plant.devices) {
      const dev = node.devices.find((x) => x.device === d.id);
      assert.deepEqual(dev.metrics.map((m) => m.name), d.tags.map((x) => x.name), `${d.id} metrics in birth order`);
      for (const tag of d.tags) {
        const m = dev.metrics.find((x) => x.name === tag.name);
        assert.equal(m.path, `Plant1/gw-01/${d.id}/${tag.name}`);
        assert.equal(m.datatype, TYPE_NAMES[tag.datatype], `${m.path} datatype`);
        assert.equal(m.unit, tag.unit, `${m.path} unit`);
      }
    }
    assert.ok(node.metrics.find((m) => m.name === 'bdSeq'), 'node metrics from the NBIRTH');
    const list = await server.api('/api/v1/nodes');
    assert.deepEqual(list.nodes.map((n) => [n.group, n.node, n.online, n.devices, n.devices_online]), [['Plant1', 'gw-01', true, 2, 2]]);

    // The ramps run for a while; then every value the tap saw must be in the historian.
    const cycle = { name: 'Cycle', alias: S.aliasIn(dbirths['press-3'], 'Cycle') };
    await env.waitFor(() => S.observations(tap, 'press-3', cycle).length >= 15, 10000, '15 Cycle values');
    await tap.sync();
    const seen = tapSeries(S.observations(tap, 'press-3', cycle));
    const from = seen[0].ts;
    const to = seen[seen.length - 1].ts + 1;
    const path = 'Plant1/gw-01/press-3/Cycle';
    const points = await env.waitFor(async () => {
      const p = await stored(server, path, from, to);
      return p.length >= seen.length && p;
    }, 5000, `${seen.length} Cycle points over REST`);
    assert.deepEqual(points.map((p) => [p.t, p.v, p.q === 0]), seen.map((o) => [o.ts, o.value, o.good]), 'stored = published');
    const temp = await server.api(`/api/v1/latest?metric=${enc('Plant1/gw-01/press-3/Temperature')}`);
    assert.equal(temp.v, 21.5);
    assert.equal(temp.q, 0);

    // Aggregates over the same range: count and min/max agree with the raw points.
    const step = 1000;
    const counts = await server.api(`/api/v1/query?metric=${enc(path)}&from=${from}&to=${to}&step=${step}&agg=count`);
    assert.equal(counts.points.reduce((s, b) => s + b.count, 0), seen.length);
    const maxes = await server.api(`/api/v1/query?metric=${enc(path)}&from=${from}&to=${to}&step=${step}&agg=max`);
    for (const b of maxes.points) {
      const inBucket = seen.filter((o) => o.ts >= b.t && o.ts < b.t + step).map((o) => o.value);
      assert.equal(b.v, Math.max(...inBucket), `max of bucket ${b.t}`);
      assert.equal(b.count, inBucket.length);
    }
  });
});

test('a broker outage: the edge replays history late and out of order; the server stores every value once', { skip, timeout: 90000 }, async (t) => {
  await withEnv(t, 'server-edge-outage', async (env) => {
    const plant = S.counterPlant({ pollMs: 100 });
    const broker = await env.startMosquitto(S.BROKER_OPTS);
    const server = await env.startServer(env.serverConfig({ broker }));
    const tap = await startTap(env, broker, { persistent: true });
    const sim = await env.startSim(plant.simConfig());
    // The edge follows the server as its primary host: births wait for its STATE.
    const edgeConfig = env.edgeConfig({ broker, devices: plant.edgeDevices(sim), extra: { sparkplug: { primary_host_id: 'kiln' } } });
    edgeConfig.store.replay_rate = 50;
    const edge = await env.startEdge(edgeConfig);
    const { dbirths } = await waitBirths(env, tap, ['press-3', 'oven-1']);
    const sel = { name: 'Counter', alias: S.aliasIn(dbirths['press-3'], 'Counter') };
    const ramp = new SetRamp(sim, [{ server: 'press-3', register: 'holding:10' }], { periodMs: 300 });
    env.onClose(() => ramp.stop().catch(() => {}));
    ramp.start();
    await env.waitFor(() => { ramp.assertOk(); return S.highest(tap, 'press-3', sel) >= 4; }, 10000, 'counter >= 4 before the outage');

    await broker.stop();
    await ramp.waitSteps(8, 15000, '8 ramp steps during the outage');
    const before = tap.length;
    await broker.start();
    await waitBirths(env, tap, ['press-3', 'oven-1'], before, 'births after the outage');
    await ramp.waitSteps(4, 10000, 'ramp steps after the reconnect');
    const last = await ramp.stop();
    await env.waitFor(() => S.highest(tap, 'press-3', sel) === last, 15000, `the last ramp value ${last} on the tap`);
    await S.waitMetrics(env, edge, (m) => m.kiln_edge_queue_depth === 0, 15000, 'edge queue drained');
    await tap.sync();

    const obs = S.observations(tap, 'press-3', sel);
    assert.ok(obs.some((o) => o.historical), 'the outage came back as history');
    const seen = tapSeries(obs);
    const path = 'Plant1/gw-01/press-3/Counter';
    const from = seen[0].ts;
    const to = seen[seen.length - 1].ts + 1;
    // Besides what the edge sent, the server adds one point when the node dies (its NDEATH
    // came when the broker stopped): the last value, marked no longer refreshed.
    const isStaleMark = (p) => p.q === UNCERTAIN_NO_COMM_LAST_USABLE;
    const all = await env.waitFor(async () => {
      const p = await stored(server, path, from, to);
      return p.filter((x) => !isStaleMark(x)).length >= seen.length && p;
    }, 10000, `${seen.length} Counter points over REST`);
    const points = all.filter((p) => !isStaleMark(p));
    assert.deepEqual(points.map((p) => [p.t, p.v]), seen.map((o) => [o.ts, o.value]), 'every value once, at its source time');
    const marks = all.filter(isStaleMark);
    assert.ok(marks.length <= 1, `at most one stale mark per death: ${JSON.stringify(marks)}`);
    // Every ramp value from the first stored one to the last is there.
    const values = new Set(points.map((p) => p.v));
    for (let v = points[0].v; v <= last; v++) assert.ok(values.has(v), `ramp value ${v} missing from the historian`);
    const latest = await server.api(`/api/v1/latest?metric=${enc(path)}`);
    assert.equal(latest.v, last, 'the latest value is the newest, not the last replayed');
    assert.equal(latest.t, seen[seen.length - 1].ts);
    const text = await server.metrics();
    t.diagnostic(`stored ${points.length} points, ${obs.length} received (duplicates ${promValue(text, 'kiln_historian_duplicates_total')})`);
  });
});
