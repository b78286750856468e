'use strict';
// [sparkplug] primary_host_id: the edge subscribes to spBv1.0/STATE/<host> and publishes no
// births until that host's STATE says online; an offline STATE (not older than the last one)
// makes it publish NDEATH, disconnect and start over with the next bdSeq; an older one is
// ignored. STATE messages come from a PEER as a real host would send them (retained, QoS 1).

const test = require('node:test');
const assert = require('node:assert/strict');
const { withEnv, missingBinaries } = require('./lib/harness');
const { startTap, startPeer } = require('./lib/tap');
const { standardPlant } = require('./lib/plant');
const { waitBirths } = require('./lib/scenario');
const { bdSeqOf } = require('./lib/checks');

const skip = missingBinaries();
const STATE = 'spBv1.0/STATE/kiln';

test('births wait for the primary host; its offline STATE restarts the session', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'primary', async (env) => {
    const broker = await env.startMosquitto();
    const tap = await startTap(env, broker);
    const peer = await startPeer(env, broker);
    const plant = standardPlant();
    const sim = await env.startSim(plant.simConfig());
    const edge = await env.startEdge(env.edgeConfig({
      broker, devices: plant.edgeDevices(sim), extra: { sparkplug: { primary_host_id: 'kiln' } },
    }));
    const id = edge.clientId;
    await env.waitFor(() => {
      const lines = broker.logLines();
      const sub = lines.findIndex((l) => l.includes(`Received SUBSCRIBE from ${id}`));
      return sub >= 0 && lines.slice(sub).some((l) => l.includes(STATE));
    }, 10000, `LOG: the edge subscribes to ${STATE}`);
    // Devices answer and data waits: still no birth without the host.
    await env.waitFor(async () => (await edge.health()).devices['press-3'] === 'online', 10000, 'devices online');
    assert.equal(tap.find('NBIRTH').length, 0, 'no NBIRTH before the primary host is online');

    const t0 = Date.now();
    await peer.publish(STATE, JSON.stringify({ online: true, timestamp: t0 }), { qos: 1, retain: true });
    const first = await waitBirths(env, tap, ['press-3', 'oven-1'], 0, 'births after STATE online');
    const bd = bdSeqOf(first.nbirth);

    // An offline STATE older than the online one is stale: ignored.
    await peer.publish(STATE, JSON.stringify({ online: false, timestamp: t0 - 1 }), { qos: 1, retain: false });
    const before = tap.length;
    await env.waitFor(() => tap.find('DDATA', { from: before }).length >= 3, 10000, 'data goes on after a stale offline STATE');
    assert.equal(tap.find('NDEATH').length, 0, 'a stale offline STATE is ignored');

    // A current offline STATE: NDEATH (same bdSeq), a new connection, no births until online.
    await peer.publish(STATE, JSON.stringify({ online: false, timestamp: t0 + 1 }), { qos: 1, retain: true });
    const death = await env.waitFor(() => tap.first('NDEATH'), 10000, 'NDEATH after the host went offline');
    assert.equal(bdSeqOf(death), bd, 'the NDEATH belongs to the session that ends');
    await env.waitFor(() => broker.logLines().filter((l) => l.includes('New client connected') && l.includes(` as ${id} `)).length >= 2,
      10000, 'LOG: the edge connects again');
    assert.equal(tap.find('NBIRTH', { from: death.index }).length, 0, 'no NBIRTH while the host is offline');

    await peer.publish(STATE, JSON.stringify({ online: true, timestamp: t0 + 2 }), { qos: 1, retain: true });
    const second = await waitBirths(env, tap, ['press-3', 'oven-1'], death.index, 'births after the host is back');
    assert.equal(bdSeqOf(second.nbirth), (bd + 1) % 256, 'the new session uses the next bdSeq');
  });
});
