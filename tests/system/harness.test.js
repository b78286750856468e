'use strict';
// Self-test of the harness with the real Mosquitto only (no Kiln binaries): the things the
// kiln-edge tests rely on — the tap sees QoS/retain as published, a persistent tap keeps
// QoS 0 messages over a broker restart on the same port, the sync barrier, teardown.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { withEnv, toToml, waitFor } = require('./lib/harness');
const { startTap, startPeer } = require('./lib/tap');
const sp = require('./lib/sparkplug');

test('toToml writes tables and nested arrays of tables', () => {
  const text = toToml({
    node: { group_id: 'G', edge_node_id: 'E' },
    devices: [{ id: 'd', poll_ms: 100, tags: [{ name: 'T', scale: 0.1 }, { name: 'U', values: [1, 2] }] }],
  });
  assert.equal(text.trim(), [
    '[node]', 'group_id = "G"', 'edge_node_id = "E"', '',
    '[[devices]]', '  id = "d"', '  poll_ms = 100', '',
    '  [[devices.tags]]', '    name = "T"', '    scale = 0.1', '',
    '  [[devices.tags]]', '    name = "U"', '    values = [1, 2]',
  ].join('\n'));
});

test('tap records qos and retain as published; persistent tap survives a broker restart', async (t) => {
  await withEnv(t, 'harness', async (env) => {
    const broker = await env.startMosquitto({ persistence: true, extra: ['queue_qos0_messages true', 'autosave_interval 0'] });
    const tap = await startTap(env, broker, { persistent: true });
    const peer = await startPeer(env, broker);
    const payload = sp.encode({ timestamp: Date.now(), seq: 0, metrics: [{ name: 'bdSeq', type: 'Int64', value: 7 }] });
    await peer.publish('spBv1.0/G/NBIRTH/E', payload, { qos: 0, retain: false });
    await peer.publish('spBv1.0/G/NDATA/E', payload, { qos: 1, retain: true });
    await env.waitFor(() => tap.length >= 2, 5000, 'two messages');
    assert.deepEqual(tap.messages.map((m) => [m.type, m.qos, m.retain]), [['NBIRTH', 0, false], ['NDATA', 1, true]]);
    assert.equal(tap.messages[0].decoded.metrics[0].value, 7);
    assert.equal(tap.messages[0].decoded.hasSeq, true);
    await peer.publish('spBv1.0/G/NDATA/E', Buffer.alloc(0), { qos: 0, retain: true }); // clear the retained one
    await tap.sync();

    await broker.stop();
    await broker.start();
    // A publisher that is faster than the tap's reconnect: its QoS 0 message must be queued.
    await env.waitFor(() => peer.client.connected, 5000, 'peer reconnect');
    await peer.publish('spBv1.0/G/NBIRTH/E', payload, { qos: 0, retain: false });
    await env.waitFor(() => tap.length >= 4, 10000, 'message published before the tap reconnected');
    assert.equal(tap.messages[3].type, 'NBIRTH');
    assert.ok(fs.readFileSync(broker.logFile, 'utf8').includes('mosquitto version'));
  });
});

test('waitFor times out with the description', async () => {
  await assert.rejects(waitFor(() => false, 200, 'nothing'), /timed out after 200 ms waiting for nothing/);
});
