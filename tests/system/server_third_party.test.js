'use strict';
// A third-party Sparkplug B edge node (npm sparkplug-client, Eclipse Tahu's JavaScript client)
// feeds kiln-server through real Mosquitto: its births land in the registry, its data (by
// name, no aliases) in the historian, a rebirth request from the server is answered, and its
// NDEATH takes it offline.

const test = require('node:test');
const assert = require('node:assert/strict');
const { withEnv, missingBinaries } = require('./lib/harness');
const sparkplugClient = require('sparkplug-client');

const skip = missingBinaries(['kiln-server']);
const enc = encodeURIComponent;

test('a sparkplug-client edge node feeds kiln-server', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'server-third-party', async (env) => {
    const broker = await env.startMosquitto();
    const server = await env.startServer(env.serverConfig({ broker }));
    const client = sparkplugClient.newClient({
      serverUrl: broker.url, username: 'tahu', password: 'tahu', groupId: 'Vendor', edgeNode: 'tahu-node',
      clientId: 'tahu-node-e2e', version: 'spBv1.0', publishDeath: true,
    });
    env.onClose(() => new Promise((r) => { try { client.stop(); } catch { /* already closed */ } setTimeout(r, 50); }));
    let births = 0;
    const t0 = Date.now();
    const birth = () => {
      births += 1;
      client.publishNodeBirth({ timestamp: Date.now(), metrics: [{ name: 'Power', type: 'Double', value: 1.5, timestamp: t0 }] });
      client.publishDeviceBirth('meter-1', {
        timestamp: Date.now(),
        metrics: [
          { name: 'Energy', type: 'Int64', value: 1000, timestamp: t0, properties: { engUnit: { type: 'String', value: 'kWh' } } },
          { name: 'Status', type: 'String', value: 'ok', timestamp: t0 },
          { name: 'Alarm', type: 'Boolean', value: false, timestamp: t0 },
        ],
      });
    };
    client.on('birth', birth);
    // A rebirth request from the host: births again, as the specification asks.
    let rebirths = 0;
    client.on('ncmd', (payload) => {
      if ((payload.metrics || []).some((m) => m.name === 'Node Control/Rebirth' && m.value === true)) {
        rebirths += 1;
        birth();
      }
    });

    const node = await env.waitFor(async () => {
      const n = await server.get('/api/v1/nodes/Vendor/tahu-node');
      return n.status === 200 && n.json.online && n.json.devices.length === 1 && n.json;
    }, 10000, 'Vendor/tahu-node online with its device');
    const dev = node.devices[0];
    assert.equal(dev.device, 'meter-1');
    assert.deepEqual(dev.metrics.map((m) => [m.name, m.datatype, m.unit]), [['Energy', 'Int64', 'kWh'], ['Status', 'String', undefined], ['Alarm', 'Boolean', undefined]]);
    assert.deepEqual(node.metrics.map((m) => m.name).sort(), ['Power', 'bdSeq']);

    // Data by name, at known timestamps.
    for (let i = 1; i <= 10; i++) {
      client.publishDeviceData('meter-1', { timestamp: Date.now(), metrics: [{ name: 'Energy', type: 'Int64', value: 1000 + i, timestamp: t0 + i * 100 }] });
    }
    client.publishDeviceData('meter-1', { timestamp: Date.now(), metrics: [{ name: 'Status', type: 'String', value: 'maintenance', timestamp: t0 + 2000 }] });
    const path = 'Vendor/tahu-node/meter-1/Energy';
    const q = await env.waitFor(async () => {
      const r = await server.api(`/api/v1/query?metric=${enc(path)}&from=${t0}&to=${t0 + 5000}`);
      return r.points.length >= 11 && r;
    }, 5000, '11 Energy points');
    assert.deepEqual(q.points.map((p) => [p.t - t0, p.v]), Array.from({ length: 11 }, (_, i) => [i * 100, 1000 + i]));
    const status = await server.api(`/api/v1/latest?metric=${enc('Vendor/tahu-node/meter-1/Status')}`);
    assert.equal(status.v, 'maintenance');

    // Data for a device the births never declared: the server asks for a rebirth.
    client.publishDeviceData('ghost', { timestamp: Date.now(), metrics: [{ name: 'X', type: 'Int32', value: 1 }] });
    await env.waitFor(() => rebirths >= 1, 10000, 'the node answers the rebirth request');
    await env.waitFor(async () => (await server.api('/api/v1/nodes/Vendor/tahu-node')).online, 5000, 'online after the rebirth');
    assert.ok(births >= 2);

    // The node leaves with its NDEATH (matching bdSeq): offline.
    client.stop();
    await env.waitFor(async () => {
      const n = await server.api('/api/v1/nodes/Vendor/tahu-node');
      return !n.online && !n.devices[0].online;
    }, 10000, 'offline after the NDEATH');
  });
});
