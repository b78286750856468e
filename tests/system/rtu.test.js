'use strict';
// Modbus RTU end to end: kiln-sim serves an RTU slave on a pseudo-terminal, kiln-edge reads
// it with driver "modbus-rtu", and the values arrive on the broker as Sparkplug B; a register
// change gives a DDATA, and a dropped unit id (silent slave) turns the tags BadTimeout + DDEATH.

const test = require('node:test');
const assert = require('node:assert/strict');
const { withEnv, missingBinaries } = require('./lib/harness');
const { startTap, formatMessage } = require('./lib/tap');
const { DataType, StatusCode, hex } = require('./lib/sparkplug');
const { waitBirths } = require('./lib/scenario');
const { metricByAlias, statusOf, isGood } = require('./lib/checks');

const skip = missingBinaries();

test('modbus-rtu over a pseudo-terminal: births, values, change, timeout', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'rtu', async (env) => {
    const broker = await env.startMosquitto();
    const tap = await startTap(env, broker);
    const sim = await env.startSim({
      servers: [{
        id: 'meter-7', protocol: 'rtu', serial: 'pty', baud: 19200, parity: 'E', unit_id: 7,
        registers: [
          { register: 'holding:0', type: 'float32', word_order: 'CDAB', signal: 'constant', value: 230.5 },
          { register: 'input:5', type: 'int32', signal: 'constant', value: -123456 },
          { register: 'coil:3', type: 'bool', signal: 'constant', value: true },
        ],
      }],
    });
    const serial = sim.serials['meter-7'];
    assert.ok(serial && serial.startsWith('/dev/'), `pty path from the ready line: ${serial}`);
    await env.startEdge(env.edgeConfig({
      broker,
      devices: [{
        id: 'meter-7', driver: 'modbus-rtu', serial, baud: 19200, parity: 'E', unit_id: 7,
        poll_ms: 100, timeout_ms: 300,
        tags: [
          { name: 'Voltage', register: 'holding:0', type: 'float32', word_order: 'CDAB', unit: 'V' },
          { name: 'Energy', register: 'input:5', type: 'int32' },
          { name: 'Breaker', register: 'coil:3', type: 'bool' },
        ],
      }],
    }));
    const { dbirths } = await waitBirths(env, tap, ['meter-7']);
    const birth = dbirths['meter-7'];
    const byName = Object.fromEntries(birth.decoded.metrics.map((m) => [m.name, m]));
    const ctx = formatMessage(birth);
    assert.equal(byName.Voltage.datatype, DataType.Float, ctx);
    assert.equal(byName.Voltage.value, 230.5, ctx);
    assert.equal(byName.Energy.datatype, DataType.Int32, ctx);
    assert.equal(byName.Energy.value, -123456, ctx);
    assert.equal(byName.Breaker.value, true, ctx);

    const before = tap.length;
    await sim.cmd('set meter-7 holding:0 231.25');
    const changed = await env.waitFor(() => tap.first('DDATA', { device: 'meter-7', from: before, where: (m) => {
      const v = metricByAlias(m, byName.Voltage.alias);
      return v && v.value === 231.25;
    } }), 10000, 'DDATA with Voltage 231.25');
    assert.ok(isGood(metricByAlias(changed, byName.Voltage.alias)), formatMessage(changed));

    const beforeSilent = tap.length;
    await sim.cmd('fault meter-7 silent');
    const death = await env.waitFor(() => tap.first('DDEATH', { device: 'meter-7', from: beforeSilent }), 10000,
      'DDEATH of meter-7 after it stopped answering');
    const bad = tap.find('DDATA', { device: 'meter-7', from: beforeSilent }).filter((m) => m.index < death.index);
    // The last Voltage value before DDEATH: one DDATA may carry a stale mark (Uncertain) and
    // then the timeout (Bad) of the same metric, in time order.
    const last = bad.length ? bad[bad.length - 1].decoded.metrics.filter((m) => m.alias === byName.Voltage.alias).pop() : null;
    assert.ok(last, 'Bad values before DDEATH');
    assert.equal(hex(statusOf(last)), hex(StatusCode.BadTimeout), formatMessage(bad[bad.length - 1]));

    await sim.cmd('clear meter-7');
    await env.waitFor(() => tap.first('DBIRTH', { device: 'meter-7', from: death.index + 1 }), 10000,
      'DBIRTH of meter-7 when it answers again');
  });
});
