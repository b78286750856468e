'use strict';
// Mosquitto stops and comes back on the same port: the edge reconnects by itself, with
// bdSeq + 1, and births again (NBIRTH seq 0, DBIRTHs) before any data.
//
// The tap keeps a persistent session on a broker with persistence and queue_qos0_messages, so
// it also gets what the edge publishes before the tap itself has reconnected.

const test = require('node:test');
const assert = require('node:assert/strict');
const { withEnv, missingBinaries } = require('./lib/harness');
const { formatMessage, startTap } = require('./lib/tap');
const { standardPlant } = require('./lib/plant');
const { bootPlant, waitBirths } = require('./lib/scenario');
const { checkNbirth, checkDbirth, assertSeqContiguous, bdSeqOf } = require('./lib/checks');

const skip = missingBinaries();

// How kiln-edge logs a connection attempt the broker's port refused.
const CONNECT_REFUSED = /cannot connect to MQTT broker.*refused/i;

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

    await broker.stop();
    const before = tap.length; // what comes from here on went through the new broker run
    const mark = edge.proc.stderrLines.length;
    await env.waitFor(async () => (await edge.health()).mqtt_connected === false, 10000, 'health: mqtt_connected false while the broker is down');
    // Keep the broker down until the edge has had at least one attempt refused (TCP refused:
    // no CONNECT was sent, so it must not count for bdSeq). Only the edge's log shows attempts.
    await env.waitFor(() => edge.proc.stderrLines.slice(mark).some((l) => CONNECT_REFUSED.test(l)), 15000,
      `a refused reconnect attempt in the edge's log (${CONNECT_REFUSED})`);
    await broker.start();

    const { nbirth: nb2, dbirths } = await waitBirths(env, tap, p.devices.map((d) => d.id), before, 'births after the broker restart');
    const bdSeq2 = checkNbirth(nb2);
    assert.equal(bdSeq2, (bdSeq + 1) % 256, `a reconnect uses bdSeq + 1: ${formatMessage(nb2)}`);
    for (const d of p.devices) checkDbirth(dbirths[d.id], d.id, d.tags);

    // The first message of the new connection is the NBIRTH; the DBIRTHs precede all data.
    // (NDEATHs are the old session's Will, sent by the broker: they must carry the old bdSeq.)
    const after = tap.edgeMessages(before).filter((m) => m.type !== 'NDEATH');
    assert.equal(after[0].index, nb2.index, `first message after the restart must be the NBIRTH, got:\n${after.slice(0, 5).map((m) => formatMessage(m)).join('\n')}`);
    for (const nd of tap.find('NDEATH')) assert.equal(bdSeqOf(nd), bdSeq, `an NDEATH must carry the bdSeq of the session it ends: ${formatMessage(nd)}`);
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

test('edge started before the broker: the first NBIRTH has bdSeq 0 and nothing precedes it', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'broker-late', async (env) => {
    const p = standardPlant();
    // The tap's persistent session exists before the edge can connect (see the top).
    const broker = await env.startMosquitto({ persistence: true, extra: ['queue_qos0_messages true', 'autosave_interval 0'] });
    const tap = await startTap(env, broker, { persistent: true });
    await broker.stop();
    const sim = await env.startSim(p.simConfig());
    const edge = await env.startEdge(env.edgeConfig({ broker, devices: p.edgeDevices(sim) }));
    await env.waitFor(() => edge.proc.stderrLines.some((l) => CONNECT_REFUSED.test(l)), 15000,
      `a refused connection attempt in the edge's log (${CONNECT_REFUSED})`);
    await broker.start();
    const { nbirth } = await waitBirths(env, tap, p.devices.map((d) => d.id), 0, 'first births');
    // bdSeq counts CONNECT packets (Sparkplug 3.0 tck-id topics-nbirth-bdseq-increment: starts at 0,
    // +1 per new CONNECT); refused TCP connections carry none.
    assert.equal(checkNbirth(nbirth), 0, `empty store, first CONNECT: bdSeq must be 0: ${formatMessage(nbirth)}`);
    const lines = broker.logLines({ thisRun: true });
    const id = edge.clientId;
    const connack = lines.findIndex((l) => l.includes(`Sending CONNACK to ${id} `));
    const firstPub = lines.findIndex((l) => l.includes(`Received PUBLISH from ${id} `));
    assert.ok(connack >= 0 && firstPub > connack, 'LOG: CONNACK before the first PUBLISH');
    assert.ok(lines[firstPub].includes('/NBIRTH/'), `LOG: the first PUBLISH must be the NBIRTH: ${lines[firstPub]}`);
    assert.equal(tap.edgeMessages()[0].index, nbirth.index, 'the NBIRTH is the first message');
    assertSeqContiguous(tap.edgeMessages());
  });
});
