'use strict';
// MQTT over TLS with a client certificate (mTLS): kiln-edge connects to mqtts:// with
// ca_file, cert_file and key_file and its births arrive; without a client certificate the
// broker refuses it and /health says so. Certificates are made by the openssl CLI per test.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { withEnv, missingBinaries, freePort } = require('./lib/harness');
const { startTap } = require('./lib/tap');
const { standardPlant } = require('./lib/plant');
const { waitBirths } = require('./lib/scenario');

const skip = missingBinaries();

function openssl(dir, args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
function makeCertificates(dir) {
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=kiln-test-ca',
    '-keyout', 'ca.key', '-out', 'ca.pem']);
  for (const [name, subject, ext] of [
    ['server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1'],
    ['client', '/CN=Plant1-gw-01', 'extendedKeyUsage=clientAuth'],
  ]) {
    openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', subject, '-keyout', `${name}.key`,
      '-out', `${name}.csr`]);
    require('node:fs').writeFileSync(path.join(dir, `${name}.ext`), `${ext}\n`);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
  }
  return (f) => path.join(dir, f);
}

test('mqtts with a client certificate: births arrive; without one the broker refuses', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'tls', async (env) => {
    const file = makeCertificates(env.dir);
    const tlsPort = await freePort();
    // The plain listener is for the observer; the edge must use the TLS one.
    const broker = await env.startMosquitto({ extra: [
      `listener ${tlsPort} 127.0.0.1`,
      `cafile ${file('ca.pem')}`,
      `certfile ${file('server.pem')}`,
      `keyfile ${file('server.key')}`,
      'require_certificate true',
    ] });
    const tap = await startTap(env, broker);
    const plant = standardPlant();
    const sim = await env.startSim(plant.simConfig());
    const mqtt = {
      url: `mqtts://127.0.0.1:${tlsPort}`,
      ca_file: file('ca.pem'), cert_file: file('client.pem'), key_file: file('client.key'),
    };
    const edge = await env.startEdge(env.edgeConfig({ broker, devices: plant.edgeDevices(sim), extra: { mqtt } }));
    await waitBirths(env, tap, ['press-3', 'oven-1']);
    const health = await edge.health();
    assert.equal(health.mqtt_connected, true, JSON.stringify(health));
    assert.match(broker.log(), /New client connected from 127\.0\.0\.1:\d+ as kiln-edge:Plant1:gw-01/);

    // Same broker, no client certificate: refused, and the gateway says so instead of crashing.
    const { cert_file: _c, key_file: _k, ...noCert } = mqtt;
    const lonely = await env.startEdge(env.edgeConfig({
      broker, devices: plant.edgeDevices(sim), extra: { mqtt: { ...noCert, client_id: 'kiln-edge-no-cert' } },
      node: { group_id: 'Plant1', edge_node_id: 'gw-02' },
    }), 'kiln-edge-nocert');
    await env.waitFor(async () => (await lonely.metrics()).includes('kiln_edge_mqtt_connected 0') &&
      lonely.proc.stderrLines.some((l) => l.includes('cannot connect to MQTT broker')), 15000, 'the no-certificate edge reports the refusal');
    assert.equal(tap.find('NBIRTH').filter((m) => m.topic.endsWith('/gw-02')).length, 0, 'no births without a certificate');
  });
});
