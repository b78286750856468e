'use strict';
// A device that stops answering: its tags are published Bad, then DDEATH (with seq); the other
// device is unaffected; when it answers again, a DBIRTH with current values comes before any
// DDATA of it. Two ways to lose it: the simulator drops connections, or goes silent (timeouts).

const test = require('node:test');
const assert = require('node:assert/strict');
const { withEnv, missingBinaries } = require('./lib/harness');
const { formatMessage } = require('./lib/tap');
const { StatusCode, Quality, hex } = require('./lib/sparkplug');
const { standardPlant } = require('./lib/plant');
const { bootPlant } = require('./lib/scenario');
const {
  topics, assertSeqContiguous, metricByAlias, qualityOf, statusOf, isGood, assertRecent, checkDbirth,
} = require('./lib/checks');

const skip = missingBinaries();

function isBadSeverity(code) {
  return typeof code === 'number' && (code >>> 30) === 2; // top two bits 10 = Bad
}

async function lossAndReturn(t, name, fault, expectedStatus) {
  await withEnv(t, name, async (env) => {
    const p = standardPlant();
    const { tap, sim, edge } = await bootPlant(env, p);
    const pressAliases = p.aliases('press-3');
    const tick = p.tag('oven-1', 'Tick');

    const before = tap.length;
    await sim.cmd(`fault press-3 ${fault}`);
    const ddeath = await env.waitFor(() => tap.first('DDEATH', { device: 'press-3', from: before }), 15000, 'DDEATH of press-3');
    const ctx = formatMessage(ddeath);
    assert.equal(ddeath.topic, topics.ddeath('press-3'));
    assert.equal(ddeath.qos, 0, `DDEATH QoS 0: ${ctx}`);
    assert.equal(ddeath.retain, false, `DDEATH not retained: ${ctx}`);
    assert.equal(ddeath.decoded.hasSeq, true, `DDEATH must carry a seq: ${ctx}`);
    assertRecent(ddeath.decoded.timestamp, ddeath.t, 'DDEATH payload');

    // Before the DDEATH every press-3 tag was published Bad.
    const badData = tap.find('DDATA', { device: 'press-3', from: before }).filter((m) => m.index < ddeath.index);
    const firstBad = {};
    const last = {};
    for (const msg of badData) {
      for (const a of pressAliases) {
        const x = metricByAlias(msg, a);
        if (!x) continue;
        last[a] = { msg, x };
        if (!firstBad[a] && !isGood(x)) firstBad[a] = { msg, x };
      }
    }
    const seen = () => badData.map((m) => formatMessage(m)).join('\n');
    for (const tag of p.device('press-3').tags) {
      assert.ok(firstBad[tag.alias], `press-3/${tag.name} was not published Bad before the DDEATH:\n${seen()}`);
      // The state at the DDEATH is Bad (Quality 0) with the expected code. On the way it may
      // pass through Uncertain (Quality 500: not refreshed for a while), never back to Good.
      const { msg, x } = last[tag.alias];
      const mctx = formatMessage(msg);
      assert.equal(qualityOf(x), Quality.Bad, `press-3/${tag.name} Quality at the DDEATH: ${mctx}`);
      const code = statusOf(x);
      if (expectedStatus !== undefined) {
        assert.equal(hex(code), hex(expectedStatus), `press-3/${tag.name} kiln.statusCode: ${mctx}`);
      } else {
        assert.ok(isBadSeverity(code), `press-3/${tag.name} kiln.statusCode ${hex(code)} is not Bad: ${mctx}`);
      }
      const after = badData.filter((m) => m.index > firstBad[tag.alias].msg.index).map((m) => metricByAlias(m, tag.alias)).filter(Boolean);
      assert.ok(after.every((y) => !isGood(y)), `press-3/${tag.name} went back to Good before the DDEATH:\n${seen()}`);
      for (const y of [firstBad[tag.alias].x, ...after]) {
        assert.ok([Quality.Bad, Quality.Stale].includes(qualityOf(y)), `press-3/${tag.name} Quality ${qualityOf(y)}:\n${seen()}`);
      }
    }

    // The other device goes on: data after the DDEATH, no Bad value, no DDEATH.
    await env.waitFor(() => tap.find('DDATA', { device: 'oven-1', from: ddeath.index + 1 }).length >= 3, 5000, 'oven-1 data after the DDEATH');
    for (const msg of tap.find('DDATA', { device: 'oven-1', from: before })) {
      for (const x of msg.decoded.metrics) assert.ok(isGood(x), `oven-1 must be unaffected: ${formatMessage(msg)}`);
    }
    assert.equal(tap.find('DDEATH', { device: 'oven-1' }).length, 0, 'no DDEATH of oven-1');
    const h = await env.waitFor(async () => { const x = await edge.health(); return x.devices['press-3'] === 'offline' && x; }, 5000, 'health: press-3 offline');
    assert.equal(h.devices['oven-1'], 'online', JSON.stringify(h));
    assert.equal(h.status, 'degraded', JSON.stringify(h));

    // The value changes while the device is away; after `clear` the DBIRTH must carry it.
    await sim.cmd('set press-3 holding:0 30.5');
    p.tag('press-3', 'Temperature').value = 30.5;
    p.tag('press-3', 'Cycle').value = (v) => Number.isInteger(v) && v >= 0 && v <= 1000;
    const beforeClear = tap.length;
    await sim.cmd('clear press-3');
    const dbirth = await env.waitFor(() => tap.first('DBIRTH', { device: 'press-3', from: beforeClear }), 15000, 'DBIRTH of press-3 after clear');
    checkDbirth(dbirth, 'press-3', p.device('press-3').tags);
    const between = tap.find('DDATA', { device: 'press-3', from: ddeath.index + 1 }).filter((m) => m.index < dbirth.index);
    assert.deepEqual(between.map((m) => formatMessage(m)), [], 'no DDATA of press-3 between its DDEATH and DBIRTH');
    assert.equal(tap.find('NBIRTH', { from: before }).length, 0, 'a device return is no node rebirth');
    await env.waitFor(() => tap.find('DDATA', { device: 'press-3', from: dbirth.index + 1 }).length >= 2, 5000, 'press-3 data after its DBIRTH');
    await env.waitFor(async () => (await edge.health()).devices['press-3'] === 'online', 5000, 'health: press-3 online again');

    assertSeqContiguous(tap.edgeMessages());
  });
}

test('fault drop: Bad values, DDEATH, then DBIRTH with current values after clear', { skip, timeout: 60000 }, async (t) => {
  await lossAndReturn(t, 'loss-drop', 'drop', undefined);
});

test('fault silent: BadTimeout values, DDEATH, then DBIRTH after clear', { skip, timeout: 60000 }, async (t) => {
  await lossAndReturn(t, 'loss-silent', 'silent', StatusCode.BadTimeout);
});
