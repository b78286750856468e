'use strict';
// NCMD Node Control/Rebirth=true (encoded by Tahu): NBIRTH (seq 0, same bdSeq), the DBIRTHs,
// then data; no data between the NCMD and the NBIRTH. Garbage on NCMD is counted, not fatal.

const test = require('node:test');
const assert = require('node:assert/strict');
const { withEnv, missingBinaries, promValue } = require('./lib/harness');
const { formatMessage, startPeer } = require('./lib/tap');
const sp = require('./lib/sparkplug');
const { standardPlant } = require('./lib/plant');
const { bootPlant, waitBirths } = require('./lib/scenario');
const { topics, checkNbirth, checkDbirth, assertSeqContiguous } = require('./lib/checks');

const skip = missingBinaries();

function rampsAsAny(p) {
  p.tag('press-3', 'Cycle').value = (v) => Number.isInteger(v) && v >= 0 && v <= 1000;
  p.tag('oven-1', 'Tick').value = (v) => Number.isInteger(v) && v >= 0 && v <= 1000;
}

test('rebirth request: NBIRTH (seq 0, same bdSeq), DBIRTHs, then data', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'rebirth', async (env) => {
    const p = standardPlant();
    rampsAsAny(p);
    const { broker, tap, edge, nbirth } = await bootPlant(env, p);
    const bdSeq = checkNbirth(nbirth);
    const peer = await startPeer(env, broker);
    await env.waitFor(() => tap.find('DDATA').length >= 5, 10000, 'data flowing before the rebirth');

    const before = tap.length;
    await peer.publish(topics.ncmd, sp.rebirthCommand(), { qos: 0, retain: false });
    const { nbirth: nb2, dbirths } = await waitBirths(env, tap, p.devices.map((d) => d.id), before, 'rebirth');
    assert.equal(checkNbirth(nb2), bdSeq, `a rebirth keeps the bdSeq: ${formatMessage(nb2)}`);
    for (const d of p.devices) checkDbirth(dbirths[d.id], d.id, d.tags);

    // After the NBIRTH: the DBIRTHs come first, then data resumes with seq 1, 2, ...
    await env.waitFor(() => tap.find('DDATA', { from: nb2.index }).length >= 3, 10000, 'data after the rebirth');
    const after = tap.edgeMessages(nb2.index);
    assert.deepEqual(after.slice(0, 3).map((m) => m.type), ['NBIRTH', 'DBIRTH', 'DBIRTH'], after.slice(0, 5).map((m) => formatMessage(m)).join('\n'));
    assert.deepEqual(after.slice(0, 4).map((m) => m.decoded.seq), [0, 1, 2, 3], 'seq restarts at 0 with the NBIRTH');
    assertSeqContiguous(tap.edgeMessages());

    // LOG: after the broker sent the NCMD to the edge, the edge stops data and its next
    // messages are the births; no new CONNECT. Data the edge published before the NCMD reached
    // it can still be on the wire when the broker sends the NCMD (both directions at once), so
    // at most one batch (one DDATA per device) may sit between them, never more.
    const id = edge.clientId;
    const lines = broker.logLines();
    const sent = lines.findIndex((l) => l.includes(`Sending PUBLISH to ${id} `) && l.includes(`'${topics.ncmd}'`));
    assert.ok(sent >= 0, 'LOG: the broker sent the NCMD to the edge');
    // Delivery barriers (QoS 1, outside spBv1.0/) may come in between: births wait for them.
    const published = lines.slice(sent + 1).filter((l) => l.includes(`Received PUBLISH from ${id} `) &&
      l.includes(`'spBv1.0/`));
    const birthAt = published.findIndex((l) => l.includes(`'${topics.nbirth}'`));
    assert.ok(birthAt >= 0, 'LOG: an NBIRTH after the NCMD');
    const inFlight = published.slice(0, birthAt);
    const devicesInFlight = inFlight.map((l) => (l.match(/'spBv1\.0\/[^/]+\/DDATA\/[^/]+\/([^']+)'/) || [])[1]);
    assert.ok(devicesInFlight.every((d) => d !== undefined) && new Set(devicesInFlight).size === inFlight.length &&
      inFlight.length <= p.devices.length,
    `LOG: between the NCMD and the NBIRTH at most one DDATA per device (in flight), got:\n${inFlight.join('\n')}`);
    assert.equal(lines.filter((l) => l.includes(`New client connected`) && l.includes(` as ${id} `)).length, 1, 'LOG: no reconnect for a rebirth');
  });
});

test('garbage on NCMD is counted and ignored; the edge keeps running', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'badcmd', async (env) => {
    const p = standardPlant();
    const { broker, tap, edge } = await bootPlant(env, p);
    const peer = await startPeer(env, broker);
    const counted = async () => promValue(await edge.metrics(), 'kiln_edge_bad_commands_total');
    const base = await counted();

    // Not a protobuf message: a length-delimited field running past the end. Tahu rejects it too.
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]);
    assert.throws(() => sp.decode(garbage), 'the independent decoder rejects the garbage as well');
    const before = tap.length;
    await peer.publish(topics.ncmd, garbage, { qos: 0, retain: false });
    await env.waitFor(async () => (await counted()) === base + 1, 10000, `kiln_edge_bad_commands_total to become ${base + 1}`);

    // Still alive: health answers, MQTT still connected, data still flows, no rebirth for garbage.
    const h = await edge.health();
    assert.equal(h.mqtt_connected, true, JSON.stringify(h));
    await env.waitFor(() => tap.find('DDATA', { from: before }).length >= 3, 10000, 'data after the garbage');
    assert.equal(tap.find('NBIRTH', { from: before }).length, 0, 'garbage is no rebirth request');
    assert.equal(tap.find('NDEATH').length, 0, 'no NDEATH: the edge stayed connected');
    assert.ok(edge.proc.running);

    // A second one counts again; a real rebirth still works afterwards.
    await peer.publish(topics.ncmd, Buffer.from('not sparkplug at all \u00ff'), { qos: 0, retain: false });
    await env.waitFor(async () => (await counted()) >= base + 2, 10000, 'second bad command counted');
    const beforeRebirth = tap.length;
    await peer.publish(topics.ncmd, sp.rebirthCommand(), { qos: 0, retain: false });
    await waitBirths(env, tap, p.devices.map((d) => d.id), beforeRebirth, 'rebirth after garbage');
    assertSeqContiguous(tap.edgeMessages());
  });
});
