'use strict';
// NBIRTH / DBIRTH content and order, values of several Modbus types and word orders decoded by
// Tahu, aliases, units, QoS 0 / retain false, one contiguous seq counter, and a register change
// producing exactly one DDATA with the new value.

const test = require('node:test');
const assert = require('node:assert/strict');
const { withEnv, missingBinaries } = require('./lib/harness');
const { formatMessage } = require('./lib/tap');
const { DataType } = require('./lib/sparkplug');
const { Plant } = require('./lib/plant');
const { waitBirths } = require('./lib/scenario');
const { startTap } = require('./lib/tap');
const {
  topics, assertSeqContiguous, checkNbirth, checkDbirth, checkDataMetric, metricByAlias, assertRecent, isGood,
} = require('./lib/checks');

const skip = missingBinaries();

function plant() {
  return new Plant([
    {
      id: 'press-3',
      tags: [
        { name: 'Temperature', register: 'holding:0', type: 'float32', word_order: 'ABCD', unit: 'degC', sim: { value: 21.5 } },
        { name: 'Pressure', register: 'holding:2', type: 'float32', word_order: 'CDAB', unit: 'bar', sim: { value: 123.456 }, expect: Math.fround(123.456) },
        { name: 'Level', register: 'holding:4', type: 'int16', unit: 'mm', sim: { value: -5 } },
        { name: 'Count', register: 'holding:6', type: 'uint32', word_order: 'ABCD', sim: { value: 4000000000 } },
        { name: 'Running', register: 'coil:0', type: 'bool', sim: { value: 1 }, expect: true },
        { name: 'Speed', register: 'input:0', type: 'int16', scale: 0.1, unit: 'rpm', sim: { value: 1234 }, expect: 123.4 },
        { name: 'Cycle', register: 'holding:10', type: 'uint16', sim: { signal: 'ramp', min: 0, max: 1000, period_s: 10 } },
      ],
    },
    {
      id: 'oven-1',
      tags: [
        { name: 'ZoneTemperature', register: 'holding:0', type: 'float32', word_order: 'CDAB', unit: 'degC', sim: { value: 180.5 } },
        { name: 'Offset', register: 'holding:2', type: 'int32', word_order: 'BADC', sim: { value: -123456 } },
        { name: 'Setpoint', register: 'holding:4', type: 'float32', word_order: 'DCBA', unit: 'degC', sim: { value: -2.5 } },
        { name: 'Door', register: 'discrete:3', type: 'bool', sim: { value: 0 }, expect: false },
        { name: 'Tick', register: 'holding:10', type: 'uint16', sim: { signal: 'ramp', min: 0, max: 1000, period_s: 10 } },
      ],
    },
  ]);
}

test('births carry every tag with type, value, alias and unit; a register change gives one DDATA', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'births', async (env) => {
    const p = plant();
    // The ramp tags are only checked for type and range.
    for (const name of ['Cycle', 'Tick']) {
      const dev = name === 'Cycle' ? 'press-3' : 'oven-1';
      p.tag(dev, name).value = (v) => Number.isInteger(v) && v >= 0 && v <= 1000;
    }
    p.tag('press-3', 'Speed').approx = 1e-9;

    // The devices answer before the edge reaches the broker: start the broker only once
    // /health says both are online, so the births must carry their current values. The tap's
    // session (persistent, on a broker with persistence and queue_qos0_messages) exists from
    // before, so it gets everything from the edge's first PUBLISH on.
    const broker = await env.startMosquitto({ persistence: true, extra: ['queue_qos0_messages true', 'autosave_interval 0'] });
    const tap = await startTap(env, broker, { persistent: true });
    await broker.stop();
    const sim = await env.startSim(p.simConfig());
    const edge = await env.startEdge(env.edgeConfig({ broker, devices: p.edgeDevices(sim) }));
    await env.waitFor(async () => {
      const h = await edge.health();
      return h.mqtt_connected === false && h.devices['press-3'] === 'online' && h.devices['oven-1'] === 'online';
    }, 10000, 'health: both devices online, MQTT not connected');
    await broker.start();
    const { nbirth, dbirths } = await waitBirths(env, tap, p.devices.map((d) => d.id), 0, 'first births');
    const lines = broker.logLines({ thisRun: true });
    const firstPub = lines.find((l) => l.includes(`Received PUBLISH from ${edge.clientId} `));
    assert.ok(firstPub && firstPub.includes(`'${topics.nbirth}'`), `LOG: the first PUBLISH of the edge must be its NBIRTH, got: ${firstPub}`);

    // --- NBIRTH is the edge's first message, then the DBIRTHs, before any DDATA.
    const edgeMsgs = tap.edgeMessages();
    assert.equal(edgeMsgs[0], nbirth, `first message of the edge must be NBIRTH, got ${formatMessage(edgeMsgs[0])}`);
    checkNbirth(nbirth); // its bdSeq value is checked in broker_restart.test.js
    assert.deepEqual(nbirth.decoded.metrics.map((m) => m.name).sort(),
      ['Node Control/Rebirth', 'Store/Dropped Samples', 'bdSeq'], `NBIRTH metrics: ${formatMessage(nbirth)}`);
    const dropped = nbirth.decoded.metrics.find((m) => m.name === 'Store/Dropped Samples');
    assert.equal(dropped.type, 'UInt64', `Store/Dropped Samples datatype: ${formatMessage(nbirth)}`);
    assert.equal(Number(dropped.value), 0, 'nothing dropped on a fresh start');
    const lastBirth = Math.max(...Object.values(dbirths).map((m) => m.index));
    const earlyData = tap.messages.filter((m) => m.index < lastBirth && ['DDATA', 'NDATA'].includes(m.type));
    assert.deepEqual(earlyData.map((m) => formatMessage(m)), [], 'no data before every DBIRTH is out');
    const birthsInOrder = edgeMsgs.slice(0, 3).map((m) => m.type);
    assert.deepEqual(birthsInOrder, ['NBIRTH', 'DBIRTH', 'DBIRTH'], 'NBIRTH then one DBIRTH per device');

    // --- DBIRTH content: names, aliases, datatypes, values from the simulator, units.
    for (const d of p.devices) checkDbirth(dbirths[d.id], d.id, d.tags);
    // Aliases unique across the node and equal to tag id + 1 in file order.
    const aliases = Object.values(dbirths).flatMap((m) => m.decoded.metrics.map((x) => x.alias));
    assert.equal(new Set(aliases).size, aliases.length, `aliases must be unique: ${aliases}`);
    assert.deepEqual([...aliases].sort((a, b) => a - b), Array.from({ length: aliases.length }, (_, i) => i + 1));
    // Scaled int16 is published as Double; UInt32 above 2^31 survives.
    assert.equal(p.tag('press-3', 'Speed').datatype, DataType.Double);

    // --- Let data flow (the ramps), then change a constant register.
    await env.waitFor(() => tap.find('DDATA', { device: 'press-3' }).length >= 3 && tap.find('DDATA', { device: 'oven-1' }).length >= 3,
      10000, 'DDATA of both ramps');
    const temp = p.tag('press-3', 'Temperature');
    const before = tap.length;
    const setAt = Date.now();
    await sim.cmd('set press-3 holding:0 42.5');
    const withNew = () => tap.find('DDATA', { device: 'press-3', from: before, where: (m) => !!metricByAlias(m, temp.alias) });
    await env.waitFor(() => withNew().length >= 1, 5000, 'DDATA with the new Temperature');
    // Wait for 10 more polls of the device (its ramp keeps publishing), then count.
    const first = withNew()[0];
    await env.waitFor(() => tap.find('DDATA', { device: 'press-3', from: first.index + 1 }).length >= 10, 10000,
      '10 more DDATA of press-3 after the change');
    const carrying = withNew();
    assert.equal(carrying.length, 1, `exactly one DDATA carries Temperature after one change:\n${carrying.map((m) => formatMessage(m)).join('\n')}`);
    const m = metricByAlias(first, temp.alias);
    checkDataMetric(first, m);
    assert.equal(m.datatype, DataType.Float, formatMessage(first));
    assert.equal(m.value, 42.5, formatMessage(first));
    assert.ok(isGood(m), formatMessage(first));
    assertRecent(m.timestamp, first.t, 'Temperature metric (source time)');
    assert.ok(m.timestamp >= setAt - 1000, `metric timestamp ${m.timestamp} precedes the change at ${setAt}`);
    assertRecent(first.decoded.timestamp, first.t, 'DDATA payload');
    // Only the changed tag (and the ramp) in it: the other constants are not repeated (RBE).
    const others = first.decoded.metrics.filter((x) => x.alias !== temp.alias && x.alias !== p.tag('press-3', 'Cycle').alias);
    assert.deepEqual(others.map((x) => x.alias), [], `unchanged tags repeated: ${formatMessage(first)}`);

    // --- Every DDATA: alias-only metrics with datatype and timestamp; births and data QoS 0, not retained.
    const all = tap.edgeMessages();
    for (const msg of all) {
      assert.ok(msg.decoded, `undecodable: ${formatMessage(msg)}`);
      assert.equal(msg.qos, 0, `QoS must be 0: ${formatMessage(msg)}`);
      assert.equal(msg.retain, false, `retain must be false: ${formatMessage(msg)}`);
      if (msg.type === 'DDATA') {
        assert.equal(msg.topic, topics.ddata(msg.device));
        for (const metric of msg.decoded.metrics) {
          checkDataMetric(msg, metric);
          assert.equal(p.deviceOfAlias(metric.alias), msg.device, `alias ${metric.alias} does not belong to ${msg.device}: ${formatMessage(msg)}`);
        }
      }
    }
    assert.deepEqual(all.filter((x) => !['NBIRTH', 'DBIRTH', 'DDATA'].includes(x.type)).map((x) => formatMessage(x)), [],
      'no other message types in a quiet run');
    assertSeqContiguous(all);
  });
});
