'use strict';
// Commands end to end with real Mosquitto, kiln-sim, kiln-edge and kiln-server: a write over
// REST passes the edge's gate, changes the simulated register and ends `succeeded` with the
// read-back; the gate's refusals end `rejected` with the reason; a Modbus exception ends
// `failed`; an edge offline past the TTL ends `expired` and never writes, not even after it
// returns; a repeated idempotency key writes once; a malformed request gets a 400.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const { withEnv, missingBinaries, promValue, binPath } = require('./lib/harness');
const { startTap } = require('./lib/tap');
const { Plant } = require('./lib/plant');
const { waitBirths } = require('./lib/scenario');
const { metricByAlias } = require('./lib/checks');

const skip = missingBinaries(['kiln-edge', 'kiln-sim', 'kiln-server', 'kiln']);
const TARGET = 'Plant1/gw-01/oven-1';

function commandPlant() {
  return new Plant([
    {
      id: 'oven-1',
      tags: [
        { name: 'Setpoint', register: 'holding:2', type: 'float32', unit: 'degC', sim: { value: 180.5 },
          writable: true, min: 150, max: 250, min_write_interval: '500ms', interlock: { tag: 'FanRunning', equals: 1 } },
        { name: 'FanRunning', register: 'coil:1', type: 'bool', sim: { value: true }, writable: true },
        { name: 'Limit', register: 'holding:10', type: 'uint16', sim: { value: 7 }, writable: true },
        { name: 'ZoneTemperature', register: 'holding:0', type: 'float32', sim: { value: 175.25 } },
      ],
    },
  ], { pollMs: 100 });
}

async function boot(env) {
  const plant = commandPlant();
  const broker = await env.startMosquitto();
  const server = await env.startServer(env.serverConfig({ broker }));
  const tap = await startTap(env, broker);
  const sim = await env.startSim(plant.simConfig());
  const edge = await env.startEdge(env.edgeConfig({ broker, devices: plant.edgeDevices(sim) }));
  await waitBirths(env, tap, ['oven-1']);
  await env.waitFor(async () => {
    const n = await server.get('/api/v1/nodes/Plant1/gw-01');
    return n.status === 200 && n.json.devices.length === 1 && n.json.devices[0].online;
  }, 10000, 'oven-1 online on the server');
  return { plant, broker, server, tap, sim, edge };
}

// POSTs a command and waits until it is final; returns the final command.
async function command(env, server, body, headers) {
  const r = await server.post('/api/v1/commands', body, headers);
  assert.equal(r.status, 202, `POST ${JSON.stringify(body)}: ${r.body}`);
  assert.ok(r.json.id && ['pending', 'delivered'].includes(r.json.state), r.body);
  return env.waitFor(async () => {
    const c = await server.api(`/api/v1/commands/${encodeURIComponent(r.json.id)}`);
    return ['succeeded', 'failed', 'rejected', 'expired'].includes(c.state) && c;
  }, 15000, `command ${r.json.id} final`);
}

// The values the edge published for `alias` (live), in order.
const published = (tap, alias) => tap.find('DDATA', { device: 'oven-1' }).map((m) => metricByAlias(m, alias)).filter(Boolean).map((x) => x.value);

test('a write passes the gate, changes the register and ends succeeded with the read-back', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'cmd-write', async (env) => {
    const { plant, server, tap } = await boot(env);
    const c = await command(env, server, { target: TARGET, metric: 'Setpoint', value: 200.5, ttl_s: 30, idempotency_key: 'k-1' },
      { 'X-Kiln-User': 'operator-7' });
    assert.equal(c.state, 'succeeded', JSON.stringify(c));
    assert.equal(c.read_back, 200.5);
    assert.equal(c.who, 'operator-7');
    assert.ok(c.delivered && c.finished && c.finished >= c.delivered, JSON.stringify(c));
    // The device holds it: the edge's polls publish it, and the server stores it.
    const setpoint = plant.tag('oven-1', 'Setpoint');
    await env.waitFor(() => published(tap, setpoint.alias).includes(200.5), 5000, 'DDATA with Setpoint 200.5');
    await env.waitFor(async () => (await server.api(`/api/v1/latest?metric=${encodeURIComponent(`${TARGET}/Setpoint`)}`)).v === 200.5,
      5000, 'latest Setpoint 200.5 on the server');

    // The same idempotency key again: the same command, no second write.
    const again = await server.post('/api/v1/commands', { target: TARGET, metric: 'Setpoint', value: 200.5, ttl_s: 30, idempotency_key: 'k-1' });
    assert.equal(again.status, 202, again.body);
    assert.equal(again.json.id, c.id);
    assert.equal(again.json.state, 'succeeded');
    const list = await server.api(`/api/v1/commands?target=${encodeURIComponent(TARGET)}`);
    assert.equal(list.commands.filter((x) => x.idempotency_key === 'k-1').length, 1);
    const edgeMetrics = await env.edges[0].metrics();
    assert.equal(promValue(edgeMetrics, 'kiln_edge_device_writes_total'), 1, 'one write reached the device');

    // Another key with the same value, then a bool coil and an integer register.
    const limit = await command(env, server, { target: TARGET, metric: 'Limit', value: 9, ttl_s: 10 });
    assert.equal(limit.state, 'succeeded', JSON.stringify(limit));
    assert.equal(limit.read_back, 9);

    // The CLI: write, wait, print the final state; list.
    const cli = (args) => new Promise((resolve) => {
      execFile(binPath('kiln'), [...args, '--server', server.url, '--user', 'cli-user'], { timeout: 20000 },
        (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
    });
    const help = await cli(['--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /kiln cmd write/);
    const w = await cli(['cmd', 'write', `${TARGET}/Limit`, '11', '--ttl', '5s']);
    assert.equal(w.code, 0, `kiln cmd write: ${w.stdout}${w.stderr}`);
    assert.match(w.stdout, /Limit = 11: succeeded \(read back 11\)/);
    const bad = await cli(['cmd', 'write', `${TARGET}/ZoneTemperature`, '1']);
    assert.equal(bad.code, 1, `a rejected write exits 1: ${bad.stdout}${bad.stderr}`);
    assert.match(bad.stdout, /rejected: .*not writable/);
    const l = await cli(['cmd', 'list', '--target', TARGET]);
    assert.equal(l.code, 0, l.stderr);
    assert.match(l.stdout, /succeeded .*Plant1\/gw-01\/oven-1\/Limit +11 +read back 11/);
    const audit = await server.api(`/api/v1/commands?target=${encodeURIComponent(TARGET)}`);
    assert.ok(audit.commands.some((x) => x.who === 'cli-user'), 'the CLI user is recorded');
  });
});

test('the gate refuses: not writable, out of range, too soon, interlock closed; a Modbus exception fails', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'cmd-gate', async (env) => {
    const { server, sim } = await boot(env);
    const notWritable = await command(env, server, { target: TARGET, metric: 'ZoneTemperature', value: 1, ttl_s: 10 });
    assert.equal(notWritable.state, 'rejected');
    assert.match(notWritable.reason, /not writable/);
    const high = await command(env, server, { target: TARGET, metric: 'Setpoint', value: 300, ttl_s: 10 });
    assert.equal(high.state, 'rejected');
    assert.match(high.reason, /above max 250/);
    const ok = await command(env, server, { target: TARGET, metric: 'Setpoint', value: 190, ttl_s: 10 });
    assert.equal(ok.state, 'succeeded', JSON.stringify(ok));
    const tooSoon = await command(env, server, { target: TARGET, metric: 'Setpoint', value: 191, ttl_s: 10 });
    assert.equal(tooSoon.state, 'rejected', JSON.stringify(tooSoon));
    assert.match(tooSoon.reason, /min_write_interval/);
    // The fan stops: the interlock closes.
    const fan = await command(env, server, { target: TARGET, metric: 'FanRunning', value: false, ttl_s: 10 });
    assert.equal(fan.state, 'succeeded', JSON.stringify(fan));
    await new Promise((r) => setTimeout(r, 600)); // past min_write_interval and a poll of the fan
    const interlocked = await command(env, server, { target: TARGET, metric: 'Setpoint', value: 192, ttl_s: 10 });
    assert.equal(interlocked.state, 'rejected', JSON.stringify(interlocked));
    assert.match(interlocked.reason, /interlock/);
    // The device refuses writes to Limit with exception 02.
    await sim.cmd('fault oven-1 exception holding:10 2');
    const refused = await command(env, server, { target: TARGET, metric: 'Limit', value: 3, ttl_s: 10 });
    assert.equal(refused.state, 'failed', JSON.stringify(refused));
    assert.match(refused.reason, /exception 02|illegal data address/i);
  });
});

test('an edge offline past the ttl: expired, and never written after it returns', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'cmd-expired', async (env) => {
    const { plant, server, tap, edge } = await boot(env);
    edge.expectRunning = false;
    await edge.stop('SIGTERM');
    await env.waitFor(async () => !(await server.api('/api/v1/nodes/Plant1/gw-01')).online, 10000, 'node offline on the server');
    const r = await server.post('/api/v1/commands', { target: TARGET, metric: 'Setpoint', value: 222.5, ttl_s: 1 });
    assert.equal(r.status, 202, r.body);
    assert.equal(r.json.state, 'pending');
    const c = await env.waitFor(async () => {
      const x = await server.api(`/api/v1/commands/${r.json.id}`);
      return x.state !== 'pending' && x;
    }, 10000, 'the command leaves pending');
    assert.equal(c.state, 'expired', JSON.stringify(c));
    assert.equal(c.delivered, null);
    // The edge returns: births, data, and the setpoint still as it was.
    const before = tap.length;
    edge.expectRunning = true;
    await edge.start();
    await waitBirths(env, tap, ['oven-1'], before, 'births after the restart');
    const setpoint = plant.tag('oven-1', 'Setpoint');
    await env.waitFor(async () => (await server.api('/api/v1/nodes/Plant1/gw-01')).online, 10000, 'node online again on the server');
    // Several polls (100 ms) and command ticks (100 ms) later, nothing was written.
    await new Promise((res) => setTimeout(res, 1000));
    await tap.sync();
    const dbirth = tap.first('DBIRTH', { device: 'oven-1', from: before });
    const birthValue = dbirth.decoded.metrics.find((m) => m.name === 'Setpoint').value;
    assert.equal(birthValue, 180.5, 'the register is unchanged');
    assert.ok(!published(tap, setpoint.alias).includes(222.5), 'the expired value was never written');
    assert.equal((await server.api(`/api/v1/commands/${r.json.id}`)).state, 'expired');
    assert.equal(promValue(await edge.metrics(), 'kiln_edge_device_writes_total'), 0, 'no write reached the device');
  });
});

test('malformed requests get a 400 with a clear message', { skip, timeout: 60000 }, async (t) => {
  await withEnv(t, 'cmd-malformed', async (env) => {
    const { server } = await boot(env);
    const cases = [
      ['{not json', /request body/],
      [{ target: TARGET, metric: 'Setpoint', value: 'hot', ttl_s: 10 }, /value/],
      [{ target: TARGET, metric: 'Setpoint', value: 200 }, /ttl_s is required/],
      [{ metric: 'Setpoint', value: 200, ttl_s: 10 }, /target is required/],
      [{ target: 'Plant1', metric: 'Setpoint', value: 200, ttl_s: 10 }, /group\/node\/device/],
      [{ target: 'Plant1/gw-01', metric: 'bdSeq', value: 2, ttl_s: 10 }, /node metrics cannot be written/],
      [{ target: TARGET, metric: 'Limit', value: 70000, ttl_s: 10 }, /out of range/],
      [{ target: TARGET, metric: 'Setpoint', value: 200, ttl_s: 10, colour: 'red' }, /colour/],
    ];
    for (const [body, message] of cases) {
      const r = await server.post('/api/v1/commands', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.body}`);
      assert.equal(r.json.error.code, 'INVALID_ARGUMENT', r.body);
      assert.match(r.json.error.message, message);
    }
    const unknown = await server.post('/api/v1/commands', { target: TARGET, metric: 'NoSuchTag', value: 1, ttl_s: 10 });
    assert.equal(unknown.status, 404, unknown.body);
    const reused = await server.post('/api/v1/commands', { target: TARGET, metric: 'Limit', value: 8, ttl_s: 10, idempotency_key: 'dup' });
    assert.equal(reused.status, 202, reused.body);
    const conflict = await server.post('/api/v1/commands', { target: TARGET, metric: 'Limit', value: 9, ttl_s: 10, idempotency_key: 'dup' });
    assert.equal(conflict.status, 409, conflict.body);
  });
});
