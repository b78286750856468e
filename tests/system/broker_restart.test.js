'use strict';
// Mosquitto stops and comes back on the same port: the edge reconnects by itself, with
// bdSeq + 1, and births again (NBIRTH seq 0, DBIRTHs) before any data.
//
// The tap keeps a persistent session on a broker with persistence and queue_qos0_messages, so
// it also gets what the edge publishes before the tap itself has reconnected.

const test = require('node:test');
const assert = require('node:assert/strict');
const { withEnv, missingBinaries } = require('./lib/harness');
const { formatMessage } = require('./lib/tap');
const { standardPlant } = require('./lib/plant');
const { bootPlant, waitBirths } = require('./lib/scenario');
const { checkNbirth, checkDbirth, assertSeqContiguous } = require('./lib/checks');

const skip = missingBinaries();

test('broker restart: reconnect with bdSeq + 1 and new births', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'broker-restart', async (env) => {
    const p = standardPlant();
    p.tag('press-3', 'Cycle').value = (v) => Number.isInteger(v) && v >= 0 && v <= 1000;
    p.tag('oven-1', 'Tick').value = (v) => Number.isInteger(v) && v >= 0 && v <= 1000;
    const { broker, tap, edge, nbirth } = await bootPlant(env, p, {
      brokerOpts: { persistence: true, extra: ['queue_qos0_messages true', 'autosave_interval 0'] },
      tapOpts: { persistent: true },
    });
    const bdSeq = checkNbirth(nbirth);
    await env.waitFor(() => tap.find('DDATA').length >= 3, 10000, 'data before the restart');
    await tap.sync();

    const before = tap.length;
    await broker.stop();
    await env.waitFor(async () => (await edge.health()).mqtt_connected === false, 10000, 'health: mqtt_connected false while the broker is down');
    await broker.start();

    const { nbirth: nb2, dbirths } = await waitBirths(env, tap, p.devices.map((d) => d.id), before, 'births after the broker restart');
    const bdSeq2 = checkNbirth(nb2);
    assert.equal(bdSeq2, (bdSeq + 1) % 256, `a reconnect uses bdSeq + 1: ${formatMessage(nb2)}`);
    for (const d of p.devices) checkDbirth(dbirths[d.id], d.id, d.tags);

    // The first message of the new connection is the NBIRTH; the DBIRTHs precede all data.
    const after = tap.edgeMessages(before);
    assert.equal(after[0], nb2, `first message after the restart must be the NBIRTH, got:\n${after.slice(0, 5).map((m) => formatMessage(m)).join('\n')}`);
    await env.waitFor(() => tap.find('DDATA', { from: nb2.index }).length >= 3, 10000, 'data after the reconnect');
    const lastBirth = Math.max(...Object.values(dbirths).map((m) => m.index));
    const early = tap.find('DDATA', { from: nb2.index }).filter((m) => m.index < lastBirth);
    assert.deepEqual(early.map((m) => formatMessage(m)), [], 'no data before the DBIRTHs of the new session');
    assertSeqContiguous(tap.edgeMessages());
    await env.waitFor(async () => (await edge.health()).mqtt_connected === true, 5000, 'health: mqtt_connected true again');

    // LOG of the new broker run: a clean 3.1.1 connect with the Will, and the NBIRTH as the first PUBLISH.
    const lines = broker.logLines({ thisRun: true });
    const id = edge.clientId;
    const conn = lines.findIndex((l) => l.includes(`New client connected`) && l.includes(` as ${id} (p2, c1,`));
    assert.ok(conn >= 0, `LOG: no clean-session connect of ${id} after the restart:\n${lines.slice(0, 20).join('\n')}`);
    assert.match(lines[conn + 1] || '', /Will message specified \(\d+ bytes\) \(r0, q1\)\./, 'LOG: Will on the reconnect');
    const firstPub = lines.slice(conn).find((l) => l.includes(`Received PUBLISH from ${id} `));
    assert.ok(firstPub && firstPub.includes('/NBIRTH/'), `LOG: first PUBLISH of the new connection must be NBIRTH, got: ${firstPub}`);
    assert.ok(!/\(d1, q/.test(lines.filter((l) => l.includes(`Received PUBLISH from ${id} `)).join('\n')), 'LOG: nothing re-sent (d1) from the old connection');
  });
});
