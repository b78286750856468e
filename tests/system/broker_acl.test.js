'use strict';
// kiln-server against a broker whose ACL refuses its namespace subscription. Mosquitto grants
// every SUBSCRIBE and filters deliveries instead, so the broker here is another implementation,
// aedes (npm), which answers a refused subscription with SUBACK 0x80 as EMQX and HiveMQ do. A
// host that cannot see spBv1.0/# must not publish STATE online: edges following it would
// publish to nobody instead of buffering. It logs the refusal with the filter and reconnects
// with backoff; once the ACL allows it, the STATE birth follows.

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { withEnv, missingBinaries, freePort } = require('./lib/harness');

const skip = missingBinaries(['kiln-server']);
const HOST = 'kiln';
const STATE_TOPIC = `spBv1.0/STATE/${HOST}`;

// An aedes broker on a free loopback port that refuses `spBv1.0/#` to kiln-server while
// `refusing` is set, and records every PUBLISH it receives.
async function startAedes(env) {
  const { Aedes } = require('aedes');
  const broker = await Aedes.createBroker();
  const state = { refusing: true, refusals: 0, publishes: [] };
  broker.authorizeSubscribe = (client, sub, callback) => {
    if (state.refusing && sub.topic === 'spBv1.0/#' && client.id.startsWith('kiln-server')) {
      state.refusals += 1;
      return callback(null, null); // a negated subscription: SUBACK 0x80
    }
    return callback(null, sub);
  };
  broker.on('publish', (packet, client) => {
    if (client) state.publishes.push({ client: client.id, topic: packet.topic, payload: packet.payload.toString(), at: Date.now() });
  });
  const port = await freePort();
  const server = net.createServer(broker.handle);
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  env.onClose(() => new Promise((resolve) => {
    server.close(() => broker.close(resolve));
    for (const c of Object.values(broker.clients)) c.close();
  }));
  return { url: `mqtt://127.0.0.1:${port}`, state };
}

function onlineStates(state) {
  return state.publishes.filter((p) => p.topic === STATE_TOPIC && /"online"\s*:\s*true/.test(p.payload));
}

test('a refused namespace subscription: logged with its filter, no STATE online, reconnect; allowed: the birth', { skip, timeout: 90000 }, async (t) => {
  await withEnv(t, 'broker-acl', async (env) => {
    const broker = await startAedes(env);
    const server = await env.startServer(env.serverConfig({ broker, hostId: HOST }), undefined, { connected: false });
    const refusedLine = /refused the subscription to spBv1\.0\/# \(SUBACK 0x80\)/;
    await env.waitFor(() => server.proc.stderrLines.some((l) => refusedLine.test(l)), 15000, 'the server logs the refusal');
    // Twice refused: the server tried again, and never said it was online meanwhile.
    await env.waitFor(() => broker.state.refusals >= 2, 20000, 'a second attempt after backoff');
    assert.deepEqual(onlineStates(broker.state), [], 'no STATE online while the host cannot see the namespace');
    const line = server.proc.stderrLines.find((l) => refusedLine.test(l));
    t.diagnostic(line);
    assert.match(line, /check its ACL for client kiln-server:kiln/);

    broker.state.refusing = false;
    const allowedAt = Date.now();
    await env.waitFor(() => onlineStates(broker.state).length > 0, 45000, 'STATE online once the ACL allows the subscription');
    t.diagnostic(`STATE online ${onlineStates(broker.state)[0].at - allowedAt} ms after the ACL changed, after ${broker.state.refusals} refusals`);
    await env.waitFor(async () => (await server.get('/health')).status === 200, 10000, 'health ok');
  });
});
