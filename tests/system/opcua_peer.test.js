'use strict';
// Self-test of the OPC UA test peer (tools/opcua-server.js through lib/opcua.js) with
// node-opcua's own client, no Kiln binary: what opcua.test.js relies on. The address space and
// types, the `value Counter` lines against the source times a subscription delivers, the control
// commands and the StatusCodes they set, writes, the UserName policy with SecurityPolicy None
// (clear password accepted for operator/secret, BadUserAccessDenied otherwise), an unknown node,
// a restart on the same port right after kill -9, and the bulk variables.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { withEnv, notifyChange } = require('./lib/harness');
const { OpcUaPeer, nodeOpcuaUnavailable } = require('./lib/opcua');

const skip = nodeOpcuaUnavailable();
const ua = skip ? {} : require('node-opcua');

const { AttributeIds, DataType, StatusCodes, TimestampsToReturn, UserTokenType, SecurityPolicy } = ua;
const hex = (n) => '0x' + (n >>> 0).toString(16).padStart(8, '0');

// A node-opcua client session (SecurityPolicy None), closed at teardown.
async function connect(env, endpoint, identity) {
  const client = ua.OPCUAClient.create({
    endpointMustExist: false,
    securityMode: ua.MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
    requestedSessionTimeout: 10000,
    clientCertificateManager: new ua.OPCUACertificateManager({ rootFolder: path.join(env.dir, 'client-pki') }),
  });
  await client.connect(endpoint);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await client.disconnect().catch(() => {});
  };
  env.onClose(close);
  try {
    const session = await client.createSession(identity);
    return { client, session, close };
  } catch (e) {
    await close();
    throw e;
  }
}

const read = async (session, nodeId) => session.read({ nodeId, attributeId: AttributeIds.Value });

async function subscribe(session, nodeIds, samplingInterval = 100) {
  const sub = await session.createSubscription2({
    requestedPublishingInterval: 100, requestedLifetimeCount: 100, requestedMaxKeepAliveCount: 10,
    maxNotificationsPerPublish: 0, publishingEnabled: true, priority: 1,
  });
  const got = [];
  for (const nodeId of nodeIds) {
    const item = await sub.monitor({ nodeId, attributeId: AttributeIds.Value },
      { samplingInterval, discardOldest: true, queueSize: 10 }, TimestampsToReturn.Both);
    item.on('changed', (dv) => { got.push({ nodeId, dv, t: Date.now() }); notifyChange(); });
  }
  return got;
}

test('the OPC UA peer: address space, Counter source times, control, writes, user names, restart', { skip, timeout: 120000 }, async (t) => {
  await withEnv(t, 'opcua-peer', async (env) => {
    const peer = new OpcUaPeer(env);
    await peer.start();
    assert.equal(peer.endpoint, `opc.tcp://127.0.0.1:${peer.port}`);
    const answer = async (line) => peer.send(line);

    // Endpoints: only SecurityPolicy None, with a UserName policy that needs no encryption.
    const { client, session, close } = await connect(env, peer.endpoint);
    const endpoints = await client.getEndpoints();
    assert.deepEqual([...new Set(endpoints.map((e) => e.securityPolicyUri))], [SecurityPolicy.None]);
    for (const e of endpoints) {
      const tokens = e.userIdentityTokens.map((x) => `${x.policyId}:${x.tokenType}:${x.securityPolicyUri}`);
      assert.ok(e.userIdentityTokens.some((x) => x.tokenType === UserTokenType.UserName && x.securityPolicyUri === SecurityPolicy.None),
        `a UserName policy with SecurityPolicy None: ${tokens}`);
      assert.ok(e.userIdentityTokens.some((x) => x.tokenType === UserTokenType.Anonymous), `anonymous: ${tokens}`);
    }

    // The Plant folder and the variables' types and initial values.
    const browsed = await session.browse('ns=1;s=Plant');
    assert.deepEqual(browsed.references.map((r) => r.browseName.name).sort(),
      ['Counter', 'Label', 'Mode', 'Running', 'Sensor', 'Setpoint', 'Temperature']);
    const expected = {
      Counter: [DataType.Int32, (v) => Number.isInteger(v) && v >= 0],
      Temperature: [DataType.Double, (v) => v >= 15 && v <= 25 && Math.round(v * 1000) / 1000 === v],
      Sensor: [DataType.Double, (v) => v === 42.5],
      Setpoint: [DataType.Double, (v) => v === 50],
      Mode: [DataType.Int32, (v) => v === 1],
      Running: [DataType.Boolean, (v) => v === true],
      Label: [DataType.String, (v) => v === 'line-1'],
    };
    for (const [name, [type, ok]] of Object.entries(expected)) {
      const dv = await read(session, `ns=1;s=${name}`);
      assert.equal(dv.statusCode.value, 0, `${name}: ${dv.toString()}`);
      assert.equal(dv.value.dataType, type, `${name} type: ${dv.toString()}`);
      assert.ok(ok(dv.value.value), `${name} value: ${dv.toString()}`);
      assert.ok(dv.sourceTimestamp instanceof Date, `${name} has a source timestamp`);
    }
    const unknown = await read(session, 'ns=1;s=DoesNotExist');
    assert.equal(hex(unknown.statusCode.value), hex(StatusCodes.BadNodeIdUnknown.value));

    // A 100 ms subscription: Counter increases and every value's source time is the printed one.
    const got = await subscribe(session, ['ns=1;s=Counter', 'ns=1;s=Temperature']);
    const counter = () => got.filter((x) => x.nodeId === 'ns=1;s=Counter');
    await env.waitFor(() => counter().length >= 10 && counter().every((x) => peer.values.has(x.dv.value.value)),
      10000, '10 Counter notifications whose values the peer printed');
    const values = counter().map((x) => x.dv.value.value);
    for (let i = 1; i < values.length; i++) assert.ok(values[i] > values[i - 1], `Counter increases: ${values}`);
    for (const { dv } of counter()) {
      assert.equal(dv.sourceTimestamp.getTime(), peer.values.get(dv.value.value), `source time of Counter ${dv.value.value}`);
    }
    assert.ok(got.filter((x) => x.nodeId === 'ns=1;s=Temperature').length >= 3, 'Temperature changes');

    // status: the code as node-opcua defines it, with the current value and a fresh source time.
    for (const [codeName, code] of [['BadSensorFailure', 0x808c0000], ['UncertainLastUsableValue', 0x40900000], ['Good', 0]]) {
      const before = Date.now();
      assert.equal(await answer(`status Sensor ${codeName}`), 'ok');
      const dv = await read(session, 'ns=1;s=Sensor');
      assert.equal(hex(dv.statusCode.value), hex(code), `${codeName}: ${dv.toString()}`);
      assert.equal(hex(StatusCodes[codeName].value), hex(code), `node-opcua's ${codeName}`);
      assert.equal(dv.value.value, 42.5, `${codeName} keeps the value: ${dv.toString()}`);
      assert.ok(dv.sourceTimestamp.getTime() >= before - 1, `${codeName}: fresh source time`);
    }
    // A status on a ticking variable stays until changed.
    await peer.cmd('status Temperature BadSensorFailure');
    const n0 = got.length;
    await env.waitFor(() => got.slice(n0).filter((x) => x.nodeId === 'ns=1;s=Temperature').length >= 3, 5000, 'Temperature ticks while Bad');
    const badTemps = got.slice(n0).filter((x) => x.nodeId === 'ns=1;s=Temperature');
    assert.ok(badTemps.slice(1).every((x) => x.dv.statusCode.value === StatusCodes.BadSensorFailure.value), 'Temperature stays Bad');
    await peer.cmd('status Temperature Good');

    // set / get, per type; errors.
    assert.equal(await answer('set Label hello  world'), 'ok');
    assert.equal(await peer.get('Label'), 'hello  world');
    assert.equal((await read(session, 'ns=1;s=Label')).value.value, 'hello  world');
    await peer.cmd('set Running false');
    assert.equal((await read(session, 'ns=1;s=Running')).value.value, false);
    await peer.cmd('set Mode -3');
    assert.equal((await read(session, 'ns=1;s=Mode')).value.value, -3);
    await peer.cmd('set Counter 1000');
    await env.waitFor(() => peer.values.has(1001), 5000, 'Counter goes on from 1000');
    assert.match(await answer('set Mode 1.5'), /^error /);
    assert.match(await answer('set Running maybe'), /^error /);
    assert.match(await answer('status Sensor NoSuchCode'), /^error /);
    assert.match(await answer('get Nothing'), /^error /);
    assert.match(await answer('frobnicate'), /^error /);

    // Client writes: writable Setpoint and Mode; Label is read-only.
    const w = await session.write({ nodeId: 'ns=1;s=Setpoint', attributeId: AttributeIds.Value,
      value: { value: { dataType: DataType.Double, value: 75.5 } } });
    assert.equal(hex(w.value), hex(0), `write Setpoint: ${w.toString()}`);
    assert.equal(await peer.get('Setpoint'), '75.5');
    const wm = await session.write({ nodeId: 'ns=1;s=Mode', attributeId: AttributeIds.Value,
      value: { value: { dataType: DataType.Int32, value: 4 } } });
    assert.equal(hex(wm.value), hex(0), `write Mode: ${wm.toString()}`);
    assert.equal(await peer.get('Mode'), '4');
    const wl = await session.write({ nodeId: 'ns=1;s=Label', attributeId: AttributeIds.Value,
      value: { value: { dataType: DataType.String, value: 'x' } } });
    assert.ok(wl.isNotGood(), `write Label refused: ${wl.toString()}`);
    t.diagnostic(`a write to the read-only Label: ${wl.toString()}`);

    // User names: operator/secret in clear over SecurityPolicy None; a wrong password is refused.
    const user = await client.createSession({ type: UserTokenType.UserName, userName: 'operator', password: 'secret' });
    assert.equal(typeof (await read(user, 'ns=1;s=Counter')).value.value, 'number');
    await user.close();
    await assert.rejects(client.createSession({ type: UserTokenType.UserName, userName: 'operator', password: 'wrong' }),
      /BadUserAccessDenied/);
    await close();

    // kill -9 and a new server on the same port at once: Counter starts again from 0.
    await peer.kill();
    assert.equal(peer.proc.exit.signal, 'SIGKILL');
    const port = peer.port;
    await peer.start(port);
    assert.equal(peer.endpoint, `opc.tcp://127.0.0.1:${port}`);
    const again = await connect(env, peer.endpoint);
    assert.ok((await read(again.session, 'ns=1;s=Counter')).value.value < 100, 'Counter starts from 0 on a new server');
    assert.equal(peer.counter[0].value, 0);
    await again.close();

    // quit: exit 0.
    await peer.stop();
    assert.deepEqual(peer.proc.exit, { code: 0, signal: null });
  });
});

test('the OPC UA peer: bulk variables change every period with value i + tick', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'opcua-peer-bulk', async (env) => {
    const peer = new OpcUaPeer(env, { bulk: 200, bulkPeriod: 100 });
    await peer.start();
    const { session } = await connect(env, peer.endpoint);
    const browsed = await session.browse('ns=1;s=Bulk');
    assert.equal(browsed.references.length, 200);
    const dv = await read(session, 'ns=1;s=Bulk.199');
    assert.equal(dv.value.dataType, DataType.Double);
    assert.equal(dv.value.value, 199 + dv.sourceTimestamp.getTime() / 100, dv.toString());
    const ids = [0, 7, 199].map((i) => `ns=1;s=Bulk.${i}`);
    const got = await subscribe(session, ids);
    await env.waitFor(() => ids.every((id) => got.filter((x) => x.nodeId === id).length >= 5), 10000, '5 notifications of each bulk item');
    for (const { nodeId, dv: v } of got) {
      const i = Number(nodeId.split('.').pop());
      const ms = v.sourceTimestamp.getTime();
      assert.equal(ms % 100, 0, `source time on a period boundary: ${v.toString()}`);
      assert.equal(v.value.value, i + ms / 100, `${nodeId}: ${v.toString()}`);
    }
  });
});
