'use strict';
// kiln-server as a Sparkplug primary host, driven by a hand-rolled edge node (a raw MQTT
// client publishing Tahu-encoded payloads), with real Mosquitto: STATE birth and death,
// births and data into the registry and the historian over REST, seq gaps and data before
// birth leading to rebirth requests, bdSeq matching, stale values on death, and garbage that
// leaves the server running and counted.

const test = require('node:test');
const assert = require('node:assert/strict');
const { withEnv, missingBinaries, promValue } = require('./lib/harness');
const { startTap, startPeer } = require('./lib/tap');
const { encode, hex } = require('./lib/sparkplug');

const skip = missingBinaries(['kiln-server']);
const G = 'Line7';
const N = 'peer-01';
const UNCERTAIN_NO_COMM_LAST_USABLE = 0x408f0000;

// A minimal Sparkplug edge node: seq and bdSeq by hand, so tests can break the rules.
class FakeNode {
  constructor(peer, { group = G, node = N, bdSeq = 0 } = {}) {
    this.peer = peer;
    this.group = group;
    this.node = node;
    this.bdSeq = bdSeq;
    this.seq = 0;
  }
  topic(type, device) {
    return `spBv1.0/${this.group}/${type}/${this.node}${device ? '/' + device : ''}`;
  }
  send(type, device, metrics, { seq, timestamp = Date.now() } = {}) {
    const payload = { timestamp, metrics };
    if (type !== 'NDEATH') {
      payload.seq = seq === undefined ? this.seq : seq;
      this.seq = (payload.seq + 1) % 256;
    }
    return this.peer.publish(this.topic(type, device), encode(payload));
  }
  nbirth(metrics = [], opts = {}) {
    this.seq = 0;
    return this.send('NBIRTH', undefined, [{ name: 'bdSeq', type: 'Int64', value: this.bdSeq }, ...metrics], opts);
  }
  ndeath(bdSeq = this.bdSeq) {
    return this.send('NDEATH', undefined, [{ name: 'bdSeq', type: 'Int64', value: bdSeq }]);
  }
}

const unit = (u) => ({ engUnit: { type: 'String', value: u } });

async function bootHost(env, sparkplug = {}) {
  const broker = await env.startMosquitto();
  const tap = await startTap(env, broker);
  const server = await env.startServer(env.serverConfig({ broker, sparkplug: { reorder_timeout: '300ms', rebirth_debounce: '2s', ...sparkplug } }));
  const peer = await startPeer(env, broker);
  return { broker, tap, server, peer };
}

async function birthPlant(env, server, node, t0) {
  await node.nbirth([{ name: 'Uptime', alias: 1, type: 'Int64', value: 5, timestamp: t0 }]);
  await node.send('DBIRTH', 'press', [
    { name: 'Temperature', alias: 10, type: 'Float', value: 20.5, timestamp: t0, properties: unit('degC') },
    { name: 'Mode', alias: 11, type: 'String', value: 'auto', timestamp: t0 },
    { name: 'Running', alias: 12, type: 'Boolean', value: true, timestamp: t0 },
  ]);
  await env.waitFor(async () => {
    const r = await server.get(`/api/v1/nodes/${G}/${N}`);
    return r.status === 200 && r.json.online && r.json.devices.length === 1 && r.json.devices[0].online;
  }, 5000, 'node and device online in the registry');
}

const encodeURI2 = (p) => encodeURIComponent(p);

test('STATE: retained online birth with the Will timestamp; SIGTERM publishes offline', { skip }, async (t) => {
  await withEnv(t, 'host-state', async (env) => {
    const { tap, server } = await bootHost(env);
    const birth = await env.waitFor(() => tap.messages.find((m) => m.topic === 'spBv1.0/STATE/kiln'), 5000, 'STATE birth');
    const b = JSON.parse(birth.payload.toString());
    assert.equal(b.online, true, birth.payload.toString());
    assert.equal(typeof b.timestamp, 'number');
    assert.equal(birth.qos, 1);
    server.expectRunning = false;
    await server.stop('SIGTERM');
    const death = await env.waitFor(() => tap.messages.find((m) => m.topic === 'spBv1.0/STATE/kiln' && m.index > birth.index), 5000, 'STATE death');
    const d = JSON.parse(death.payload.toString());
    assert.equal(d.online, false);
    assert.ok(d.timestamp >= b.timestamp, `death ${d.timestamp} >= birth ${b.timestamp}`);
  });
});

test('births and data reach the registry and the historian; history never replaces the latest value', { skip }, async (t) => {
  await withEnv(t, 'host-ingest', async (env) => {
    const { server, peer } = await bootHost(env);
    const node = new FakeNode(peer);
    const t0 = Date.now() - 10000;
    await birthPlant(env, server, node, t0);

    const nodes = await server.api('/api/v1/nodes');
    const entry = nodes.nodes.find((n) => n.group === G && n.node === N);
    assert.ok(entry, JSON.stringify(nodes));
    assert.equal(entry.online, true);
    assert.equal(entry.devices, 1);
    assert.equal(entry.devices_online, 1);

    const detail = await server.api(`/api/v1/nodes/${G}/${N}`);
    const temp = detail.devices[0].metrics.find((m) => m.name === 'Temperature');
    assert.equal(temp.path, `${G}/${N}/press/Temperature`);
    assert.equal(temp.datatype, 'Float');
    assert.equal(temp.unit, 'degC');
    assert.ok(detail.metrics.find((m) => m.name === 'Uptime'), JSON.stringify(detail.metrics));

    // Live values by alias, then the same point again (an at-least-once duplicate), then a
    // late historical point older than the latest.
    const path = `${G}/${N}/press/Temperature`;
    for (let i = 1; i <= 5; i++) {
      await node.send('DDATA', 'press', [{ alias: 10, type: 'Float', value: 20.5 + i, timestamp: t0 + i * 1000 }]);
    }
    await node.send('DDATA', 'press', [{ alias: 10, type: 'Float', value: 25.5, timestamp: t0 + 5000 }]);
    await node.send('DDATA', 'press', [{ alias: 10, type: 'Float', value: 99.5, timestamp: t0 + 2500, isHistorical: true }]);
    await node.send('DDATA', 'press', [{ name: 'Mode', type: 'String', value: 'manual', timestamp: t0 + 3000 }]);

    const q = await env.waitFor(async () => {
      const r = await server.api(`/api/v1/query?metric=${encodeURI2(path)}&from=${t0}&to=${t0 + 60000}`);
      return r.points.length >= 7 && r;
    }, 5000, 'seven Temperature points');
    assert.deepEqual(q.points.map((p) => [p.t - t0, p.v, p.q]),
      [[0, 20.5, 0], [1000, 21.5, 0], [2000, 22.5, 0], [2500, 99.5, 0], [3000, 23.5, 0], [4000, 24.5, 0], [5000, 25.5, 0]]);
    const latest = await server.api(`/api/v1/latest?metric=${encodeURI2(path)}`);
    assert.deepEqual(latest, { metric: path, t: t0 + 5000, v: 25.5, q: 0 });
    const mode = await server.api(`/api/v1/latest?metric=${encodeURI2(`${G}/${N}/press/Mode`)}`);
    assert.equal(mode.v, 'manual');

    // Buckets of 2 s aligned to the epoch: counts add up to the raw points.
    const b = await server.api(`/api/v1/query?metric=${encodeURI2(path)}&from=${t0}&to=${t0 + 60000}&step=2s&agg=count`);
    assert.equal(b.points.reduce((s, p) => s + p.count, 0), 7, JSON.stringify(b));
    for (const p of b.points) assert.equal(p.t % 2000, 0, `bucket start ${p.t} aligned to 2 s`);

    const metrics = await server.api(`/api/v1/metrics?prefix=${encodeURI2(`${G}/${N}/press/`)}`);
    assert.deepEqual(metrics.metrics.map((m) => m.path), [`${G}/${N}/press/Mode`, `${G}/${N}/press/Running`, `${G}/${N}/press/Temperature`]);

    // Errors are JSON with a code and a message.
    const bad = await server.get(`/api/v1/query?metric=${encodeURI2(path)}&from=yesterday`);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'INVALID_ARGUMENT', bad.body);
    assert.match(bad.json.error.message, /from/);
    const missing = await server.get('/api/v1/latest?metric=No/Such/metric');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'NOT_FOUND', missing.body);
  });
});

test('a seq gap leads to one rebirth request after the reorder timeout; a late arrival does not', { skip }, async (t) => {
  await withEnv(t, 'host-seq-gap', async (env) => {
    const { tap, server, peer } = await bootHost(env);
    const node = new FakeNode(peer);
    await birthPlant(env, server, node, Date.now());
    const ncmds = () => tap.find('NCMD').filter((m) => m.node === N);

    // seq 3 is late but arrives within the reorder timeout: no rebirth.
    await node.send('NDATA', undefined, [{ alias: 1, type: 'Int64', value: 6 }], { seq: 4 });
    await node.send('NDATA', undefined, [{ alias: 1, type: 'Int64', value: 7 }], { seq: 2 });
    await node.send('NDATA', undefined, [{ alias: 1, type: 'Int64', value: 8 }], { seq: 3 });
    await new Promise((r) => setTimeout(r, 800)); // longer than the 300 ms reorder timeout
    await tap.sync();
    assert.equal(ncmds().length, 0, 'no rebirth when the missing seqs arrive in time');

    // seq 5 never comes: after the reorder timeout, one NCMD Node Control/Rebirth.
    const sentAt = Date.now();
    await node.send('NDATA', undefined, [{ alias: 1, type: 'Int64', value: 9 }], { seq: 6 });
    const ncmd = await env.waitFor(() => ncmds()[0], 5000, 'NCMD rebirth request');
    const waited = ncmd.t - sentAt;
    assert.ok(waited >= 250, `the request came ${waited} ms after the gap: the reorder timeout is 300 ms`);
    assert.equal(ncmd.topic, `spBv1.0/${G}/NCMD/${N}`);
    assert.equal(ncmd.qos, 0);
    assert.equal(ncmd.retain, false);
    const m = ncmd.decoded.metrics.find((x) => x.name === 'Node Control/Rebirth');
    assert.ok(m && m.value === true, JSON.stringify(ncmd.decoded.metrics));
    // A second gap within the debounce window: no second request.
    await node.send('NDATA', undefined, [{ alias: 1, type: 'Int64', value: 10 }], { seq: 9 });
    await new Promise((r) => setTimeout(r, 800));
    await tap.sync();
    assert.equal(ncmds().length, 1, 'debounced');
    const text = await server.metrics();
    assert.ok(promValue(text, 'kiln_server_seq_gaps_total') >= 1, text);
    assert.ok(promValue(text, 'kiln_server_rebirths_debounced_total') >= 1, text);
  });
});

test('data before birth is dropped and answered with a rebirth request; NDEATH needs the matching bdSeq', { skip }, async (t) => {
  await withEnv(t, 'host-birth-death', async (env) => {
    const { tap, server, peer } = await bootHost(env);
    const stranger = new FakeNode(peer, { node: 'stranger' });
    for (let i = 0; i < 5; i++) await stranger.send('NDATA', undefined, [{ alias: 1, type: 'Int64', value: i }], { seq: i });
    await env.waitFor(() => tap.find('NCMD').find((m) => m.node === 'stranger'), 5000, 'rebirth request to the unborn node');
    await tap.sync();
    assert.equal(tap.find('NCMD').filter((m) => m.node === 'stranger').length, 1, 'one request, not one per message');

    const node = new FakeNode(peer, { bdSeq: 7 });
    const t0 = Date.now();
    await birthPlant(env, server, node, t0);
    const path = `${G}/${N}/press/Temperature`;
    // An NDEATH of another session (a stale Will) is ignored.
    await node.ndeath(6);
    await node.send('DDATA', 'press', [{ alias: 10, type: 'Float', value: 30.5, timestamp: t0 + 1 }]);
    await env.waitFor(async () => (await server.api(`/api/v1/latest?metric=${encodeURI2(path)}`)).v === 30.5, 5000, 'value after the stale NDEATH');
    assert.equal((await server.api(`/api/v1/nodes/${G}/${N}`)).online, true);
    // The matching NDEATH: node and device offline, values stale at host time.
    const before = Date.now();
    await node.ndeath(7);
    const detail = await env.waitFor(async () => {
      const d = await server.api(`/api/v1/nodes/${G}/${N}`);
      return !d.online && d;
    }, 5000, 'node offline');
    assert.equal(detail.devices[0].online, false);
    assert.ok(detail.since >= before - 5, `offline since ${detail.since} (host time, after ${before})`);
    const latest = await server.api(`/api/v1/latest?metric=${encodeURI2(path)}`);
    assert.equal(latest.v, 30.5);
    assert.equal(hex(latest.q), hex(UNCERTAIN_NO_COMM_LAST_USABLE), JSON.stringify(latest));
    const good = await server.api(`/api/v1/latest?metric=${encodeURI2(path)}&good_only=true`);
    assert.equal(good.q, 0);
    assert.equal(good.t, t0 + 1);
  });
});

test('garbage payloads and topics are counted and logged; the server keeps running', { skip }, async (t) => {
  await withEnv(t, 'host-garbage', async (env) => {
    const { server, peer } = await bootHost(env);
    const junk = [
      ['spBv1.0/G1/NDATA/n1', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])],
      ['spBv1.0/G1/NBIRTH/n1', Buffer.from('not protobuf at all')],
      ['spBv1.0/G1/DDATA/n1', Buffer.alloc(0)], // DDATA without a device level
      ['spBv1.0/G1/DDATA/n1/d1', encode({ timestamp: 1, seq: 0, metrics: [{ name: 'x', type: 'Int32', value: 1 }] })], // before any birth
      ['spBv1.0/G1/NDATA/n1/extra/levels', encode({ timestamp: 1, seq: 0, metrics: [] })],
      ['spBv1.0/G1/NBIRTH/n1', encode({ timestamp: 1, seq: 0, metrics: [] })], // no bdSeq
      ['spBv1.0/G1/BOGUS/n1', Buffer.from([1, 2, 3])],
    ];
    for (let round = 0; round < 20; round++) {
      for (const [topic, payload] of junk) await peer.publish(topic, payload);
    }
    // (messages_total also counts the server's own NCMD coming back: wait for the outcomes.)
    const text = await env.waitFor(async () => {
      const m = await server.metrics();
      return promValue(m, 'kiln_server_malformed_total') + promValue(m, 'kiln_server_data_before_birth_total') >= 140 && m;
    }, 10000, 'all 140 messages processed');
    assert.equal(promValue(text, 'kiln_server_malformed_total'), 120, text);
    assert.equal(promValue(text, 'kiln_server_data_before_birth_total'), 20, text);
    assert.equal(promValue(text, 'kiln_server_rebirth_requests_total'), 1, `one request (debounced): ${text}`);
    const h = await server.get('/health');
    assert.equal(h.status, 200, h.body);
    // Still a working host: a proper node is stored.
    const node = new FakeNode(peer);
    await birthPlant(env, server, node, Date.now());
    const log = server.proc.tail(200);
    const warnings = log.split('\n').filter((l) => /malformed/.test(l)).length;
    assert.ok(warnings > 0 && warnings < 40, `malformed messages are logged, rate-limited (${warnings} lines):\n${log}`);
  });
});
