'use strict';
// NDEATH: kill -9 makes the broker publish the Will (bdSeq = the session's NBIRTH bdSeq, QoS 1,
// not retained, no seq); a restart with the same store continues with bdSeq + 1. SIGTERM makes
// the edge publish NDEATH itself before its DISCONNECT.

const test = require('node:test');
const assert = require('node:assert/strict');
const { withEnv, missingBinaries } = require('./lib/harness');
const { formatMessage } = require('./lib/tap');
const { DataType } = require('./lib/sparkplug');
const { standardPlant } = require('./lib/plant');
const { bootPlant, waitBirths } = require('./lib/scenario');
const { topics, checkNbirth, bdSeqOf, assertSeqContiguous } = require('./lib/checks');

const skip = missingBinaries();

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function checkNdeath(msg, bdSeq) {
  const ctx = formatMessage(msg);
  assert.equal(msg.topic, topics.ndeath, ctx);
  assert.ok(msg.decoded, `NDEATH undecodable: ${ctx}`);
  assert.equal(msg.retain, false, `NDEATH must not be retained: ${ctx}`);
  assert.equal(msg.decoded.hasSeq, false, `NDEATH must carry no seq: ${ctx}`);
  assert.equal(msg.decoded.metrics.length, 1, `NDEATH holds only bdSeq: ${ctx}`);
  const [m] = msg.decoded.metrics;
  assert.equal(m.name, 'bdSeq', ctx);
  assert.equal(m.datatype, DataType.Int64, `bdSeq must be Int64: ${ctx}`);
  assert.equal(m.value, bdSeq, `NDEATH bdSeq must equal the session's NBIRTH bdSeq: ${ctx}`);
}

test('kill -9: the Will NDEATH matches the NBIRTH bdSeq; a restart uses bdSeq + 1', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'kill9', async (env) => {
    const p = standardPlant();
    const { broker, tap, edge, nbirth } = await bootPlant(env, p);
    const bdSeq = checkNbirth(nbirth);
    assert.equal(bdSeq, 0, 'an empty store starts with bdSeq 0');

    // The broker has the Will: QoS 1, not retained, on the NDEATH topic (LOG).
    const id = escapeRe(edge.clientId);
    const log = broker.log();
    assert.match(log, new RegExp(`New client connected from 127\\.0\\.0\\.1:\\d+ as ${id} \\(p2, c1, k\\d+\\)\\.`),
      'MQTT 3.1.1 with clean session');
    assert.match(log, new RegExp(`as ${id} .*\\n.*Will message specified \\(\\d+ bytes\\) \\(r0, q1\\)\\.\\n.*\\t${escapeRe(topics.ndeath)}\\n`),
      'Will on the NDEATH topic, QoS 1, retain 0');
    assert.match(log, new RegExp(`Received SUBSCRIBE from ${id}\\n(.*\\t.*\\n)*.*\\t${escapeRe(topics.ncmd)} \\(QoS 1\\)`), 'NCMD subscribed at QoS 1');

    const before = tap.length;
    edge.expectRunning = false;
    await edge.stop('SIGKILL');
    const ndeath = await env.waitFor(() => tap.first('NDEATH', { from: before }), 10000, 'NDEATH after kill -9');
    checkNdeath(ndeath, bdSeq);
    assert.equal(ndeath.qos, 1, `the Will is published at QoS 1: ${formatMessage(ndeath)}`);
    assert.doesNotMatch(broker.log(), new RegExp(`Received PUBLISH from ${id} .*NDEATH`), 'the edge did not publish NDEATH itself');
    await tap.sync();
    assert.equal(tap.find('NDEATH').length, 1, 'exactly one NDEATH');

    // Restart with the same store: bdSeq + 1.
    const restartFrom = tap.length;
    edge.expectRunning = true;
    await edge.start();
    const { nbirth: nbirth2 } = await waitBirths(env, tap, p.devices.map((d) => d.id), restartFrom, 'births after restart');
    const bdSeq2 = checkNbirth(nbirth2);
    assert.equal(bdSeq2, (bdSeq + 1) % 256, `restart with the same store: bdSeq must be previous + 1: ${formatMessage(nbirth2)}`);
    assertSeqContiguous(tap.edgeMessages(restartFrom));
  });
});

test('SIGTERM: the edge publishes NDEATH itself before DISCONNECT', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'sigterm', async (env) => {
    const p = standardPlant();
    const { broker, tap, edge, nbirth } = await bootPlant(env, p);
    const bdSeq = bdSeqOf(nbirth);

    const before = tap.length;
    edge.expectRunning = false;
    const exit = await edge.stop('SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, 'SIGTERM is a clean stop with exit code 0');
    const ndeath = await env.waitFor(() => tap.first('NDEATH', { from: before }), 10000, 'NDEATH after SIGTERM');
    checkNdeath(ndeath, bdSeq);

    const id = escapeRe(edge.clientId);
    // The broker may log the end of the connection a moment after the tap got the NDEATH.
    const ended = (l) => l.includes(`Received DISCONNECT from ${edge.clientId}`) || l.includes(`Client ${edge.clientId} closed its connection`) ||
      l.includes(`Client ${edge.clientId} disconnected`);
    await env.waitFor(() => broker.logLines().some(ended), 10000, 'LOG: the edge connection ended');
    const lines = broker.logLines();
    const pub = lines.findIndex((l) => new RegExp(`Received PUBLISH from ${id} \\(d0, q\\d, r0, m\\d+, '${escapeRe(topics.ndeath)}'`).test(l));
    const disc = lines.findIndex((l) => l.includes(`Received DISCONNECT from ${edge.clientId}`));
    assert.ok(pub >= 0, `LOG: no PUBLISH of NDEATH from the edge:\n${lines.slice(-20).join('\n')}`);
    assert.ok(disc >= 0, `LOG: no DISCONNECT from the edge:\n${lines.slice(-20).join('\n')}`);
    assert.ok(pub < disc, `LOG: NDEATH must be published before DISCONNECT:\n${lines.slice(-20).join('\n')}`);
    await tap.sync();
    assert.equal(tap.find('NDEATH').length, 1, 'exactly one NDEATH (the Will is discarded on DISCONNECT)');
    assertSeqContiguous(tap.edgeMessages());
  });
});
