'use strict';
// A Modbus exception on one register makes only that metric Bad (Quality 0, kiln.statusCode
// BadNodeIdUnknown, is_null without value); its neighbours stay Good; `clear` makes it Good.

const test = require('node:test');
const assert = require('node:assert/strict');
const { withEnv, missingBinaries } = require('./lib/harness');
const { formatMessage } = require('./lib/tap');
const { StatusCode, Quality, DataType, hex } = require('./lib/sparkplug');
const { standardPlant } = require('./lib/plant');
const { bootPlant } = require('./lib/scenario');
const { assertSeqContiguous, metricByAlias, checkDataMetric, qualityOf, statusOf, isGood } = require('./lib/checks');

const skip = missingBinaries();

test('exception 02 on holding:0 makes Temperature Bad and only it; clear makes it Good again', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'quality', async (env) => {
    const p = standardPlant();
    const { tap, sim, edge } = await bootPlant(env, p);
    const temp = p.tag('press-3', 'Temperature');
    const neighbours = p.device('press-3').tags.filter((x) => x !== temp);
    const cycle = p.tag('press-3', 'Cycle');

    const before = tap.length;
    await sim.cmd('fault press-3 exception holding:0 2');
    const bad = await env.waitFor(() => tap.first('DDATA', { device: 'press-3', from: before, where: (m) => {
      const x = metricByAlias(m, temp.alias);
      return x && !isGood(x);
    } }), 10000, 'DDATA with Temperature not Good');
    const m = metricByAlias(bad, temp.alias);
    const ctx = formatMessage(bad);
    checkDataMetric(bad, m);
    assert.equal(m.datatype, DataType.Float, `datatype stays Float: ${ctx}`);
    assert.equal(qualityOf(m), Quality.Bad, `Quality property must be 0 (Bad): ${ctx}`);
    assert.equal(m.properties.Quality.type, DataType.Int32, `Quality must be an Int32 property: ${ctx}`);
    assert.equal(hex(statusOf(m)), hex(StatusCode.BadNodeIdUnknown), `kiln.statusCode for exception 02: ${ctx}`);
    assert.equal(m.properties['kiln.statusCode'].type, DataType.UInt32, `kiln.statusCode must be a UInt32 property: ${ctx}`);
    assert.equal(m.isNull, true, `is_null must be set: ${ctx}`);
    assert.equal(m.hasValue, false, `no value field with is_null: ${ctx}`);

    // The device keeps being read: the ramp next to it goes on changing, Good, for 10 more DDATA.
    await env.waitFor(() => tap.find('DDATA', { device: 'press-3', from: bad.index + 1, where: (x) => !!metricByAlias(x, cycle.alias) }).length >= 10,
      10000, '10 more DDATA of the press ramp while the exception lasts');
    const during = tap.find('DDATA', { device: 'press-3', from: before });
    for (const msg of during) {
      for (const n of neighbours) {
        const x = metricByAlias(msg, n.alias);
        if (x) assert.ok(isGood(x), `neighbour ${n.name} must stay Good: ${formatMessage(msg)}`);
      }
    }
    assert.equal(tap.find('DDEATH', { from: before }).length, 0, 'an exception is not a device loss');
    const health = await edge.health();
    assert.equal(health.devices['press-3'], 'online', `health: ${JSON.stringify(health)}`);
    // The Bad value is reported once, not on every poll.
    const badAgain = during.filter((msg) => msg.index > bad.index && metricByAlias(msg, temp.alias));
    assert.deepEqual(badAgain.map((x) => formatMessage(x)), [], 'an unchanged Bad state is not republished');

    // clear: Good again with the simulator's value, without quality properties.
    const beforeClear = tap.length;
    await sim.cmd('clear press-3');
    const good = await env.waitFor(() => tap.first('DDATA', { device: 'press-3', from: beforeClear, where: (x) => !!metricByAlias(x, temp.alias) }),
      10000, 'DDATA with Temperature after clear');
    const g = metricByAlias(good, temp.alias);
    assert.ok(isGood(g), `Temperature Good after clear: ${formatMessage(good)}`);
    assert.equal(g.value, 21.5, formatMessage(good));
    assert.equal(g.properties && g.properties.Quality, undefined, `Good values carry no Quality property: ${formatMessage(good)}`);
    assert.equal(g.properties && g.properties['kiln.statusCode'], undefined, `Good values carry no kiln.statusCode: ${formatMessage(good)}`);

    assertSeqContiguous(tap.edgeMessages());
  });
});
