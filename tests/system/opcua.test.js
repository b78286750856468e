'use strict';
// kiln-edge's OPC UA driver against a real OPC UA server (node-opcua, tools/opcua-server.js via
// lib/opcua.js): DBIRTH types and values; Counter values with their source times as metric
// timestamps, to the millisecond; StatusCodes passed through unchanged as kiln.statusCode
// (exactly node-opcua's numbers); an unknown NodeId Bad (BadNodeIdUnknown) while the others stay
// Good; poll mode; kill -9 of the server and a new one on the same port; `kiln-edge discover`
// output accepted by `kiln-edge check`; a DCMD write through the gate (and one refused by it);
// user name and password.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { withEnv, missingBinaries, binPath } = require('./lib/harness');
const { startTap, startPeer, formatMessage } = require('./lib/tap');
const sp = require('./lib/sparkplug');
const { waitBirths } = require('./lib/scenario');
const { GROUP, NODE, isGood, qualityOf, statusOf, assertRecent, checkNbirth, assertSeqContiguous } = require('./lib/checks');
const { OpcUaPeer, nodeOpcuaUnavailable, statusCodes, assertCounterTimes } = require('./lib/opcua');

const skip = missingBinaries(['kiln-edge']) || nodeOpcuaUnavailable();
const { DataType, Quality, hex } = sp;
const DEVICE = 'plc-1';
// node-opcua's numbers: what the server sends is what the edge must publish.
const UA = skip ? {} : statusCodes();
const code = (name) => UA[name].value;

function isBadSeverity(c) {
  return typeof c === 'number' && (c >>> 30) === 2; // top two bits 10 = Bad
}

// A subscribed tag on ns=1;s=<node> (100 ms sampling).
function tag(name, type, extra = {}) {
  return { name, node_id: `ns=1;s=${extra.node || name}`, type, mode: 'subscribe', sampling_ms: 100,
    ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'node')) };
}

const baseTags = () => [
  tag('Counter', 'int32'),
  tag('Temperature', 'float64', { unit: 'degC', deadband: 0 }),
  tag('Sensor', 'float64'),
  tag('Running', 'bool'),
  tag('Label', 'string'),
];

function opcuaDevice(peer, tags, extra = {}) {
  return { id: DEVICE, driver: 'opcua', endpoint: peer.endpoint, poll_ms: 1000, timeout_ms: 5000, ...extra, tags };
}

// Mosquitto, the tap and the OPC UA server, then kiln-edge with one OPC UA device; waits for
// the births unless `births` is false.
async function boot(env, { tags = baseTags(), device = {}, births = true } = {}) {
  const peer = new OpcUaPeer(env);
  const [broker] = await Promise.all([env.startMosquitto(), peer.start()]);
  const tap = await startTap(env, broker);
  const edge = await env.startEdge(env.edgeConfig({ broker, devices: [opcuaDevice(peer, tags, device)] }));
  const b = births ? await waitBirths(env, tap, [DEVICE]) : {};
  return { broker, tap, peer, edge, ...b };
}

// name -> alias from a DBIRTH.
function aliasesOf(dbirth) {
  return Object.fromEntries(dbirth.decoded.metrics.map((m) => [m.name, m.alias]));
}

function birthMetric(dbirth, name) {
  const m = dbirth.decoded.metrics.find((x) => x.name === name);
  assert.ok(m, `DBIRTH has no metric ${name}: ${formatMessage(dbirth)}`);
  return m;
}

// Every live (not historical) value of `alias` in the device's DDATA after tap index `from`, in
// order: [{ msg, m }] (a DDATA may hold several values of one metric).
function live(tap, alias, from = 0) {
  const out = [];
  for (const msg of tap.find('DDATA', { device: DEVICE, from })) {
    for (const m of msg.decoded.metrics) if (m.alias === alias && !m.isHistorical) out.push({ msg, m });
  }
  return out;
}

// Every value of `alias` (live and historical) after `from`.
function all(tap, alias, from = 0) {
  const out = [];
  for (const msg of tap.find('DDATA', { device: DEVICE, from })) {
    for (const m of msg.decoded.metrics) if (m.alias === alias) out.push({ msg, m });
  }
  return out;
}

// The latest state of tag `name` after tap index `from`: its metric in the last DBIRTH or DDATA
// of the device that has it, or undefined.
function latest(tap, aliases, name, from = 0) {
  let last;
  for (const msg of tap.messages.slice(from)) {
    if (msg.device !== DEVICE || !msg.decoded) continue;
    if (msg.type === 'DBIRTH') {
      const m = msg.decoded.metrics.find((x) => x.name === name);
      if (m) last = { msg, m };
    } else if (msg.type === 'DDATA') {
      for (const m of msg.decoded.metrics) if (m.alias === aliases[name] && !m.isHistorical) last = { msg, m };
    }
  }
  return last;
}

const show = (xs) => xs.map(({ msg }) => formatMessage(msg)).filter((v, i, a) => a.indexOf(v) === i).join('\n');

function edgeLog(edge) {
  return [...edge.proc.stdoutLines, ...edge.proc.stderrLines];
}

// ---------------------------------------------------------------------------------------------

test('values and timestamps: DBIRTH types and values; Counter timestamps are the source times', { skip, timeout: 90000 }, async (t) => {
  await withEnv(t, 'opcua-values', async (env) => {
    const { tap, peer, nbirth, dbirths } = await boot(env);
    checkNbirth(nbirth);
    const dbirth = dbirths[DEVICE];
    const ctx = formatMessage(dbirth);
    assert.deepEqual(dbirth.decoded.metrics.map((m) => m.name).sort(), ['Counter', 'Label', 'Running', 'Sensor', 'Temperature'], ctx);
    const want = {
      Counter: [DataType.Int32, (v) => Number.isInteger(v) && v >= 0],
      Temperature: [DataType.Double, (v) => typeof v === 'number' && v >= 15 && v <= 25],
      Sensor: [DataType.Double, (v) => v === 42.5],
      Running: [DataType.Boolean, (v) => v === true],
      Label: [DataType.String, (v) => v === 'line-1'],
    };
    for (const [name, [datatype, ok]] of Object.entries(want)) {
      const m = birthMetric(dbirth, name);
      assert.equal(m.datatype, datatype, `${name} datatype: ${ctx}`);
      assert.ok(isGood(m), `${name} Good in the DBIRTH: ${ctx}`);
      assert.ok(ok(m.value), `${name} value ${JSON.stringify(m.value)}: ${ctx}`);
      assert.equal(typeof m.timestamp, 'number', `${name} has a metric timestamp: ${ctx}`);
      assert.equal(typeof m.alias, 'number', `${name} has an alias: ${ctx}`);
    }
    const unit = birthMetric(dbirth, 'Temperature').properties && birthMetric(dbirth, 'Temperature').properties.engUnit;
    assert.equal(unit && unit.value, 'degC', `Temperature engUnit: ${ctx}`);
    // The birth's Counter is a value the server had, stamped with its source time.
    assertCounterTimes(peer, [{ msg: dbirth, m: birthMetric(dbirth, 'Counter') }], 'DBIRTH');

    // Counter: 20 live values, increasing, each with the source time the server printed for it.
    const a = aliasesOf(dbirth);
    await env.waitFor(() => live(tap, a.Counter, dbirth.index).length >= 20, 15000, '20 Counter values in DDATA');
    const counter = live(tap, a.Counter, dbirth.index);
    const values = counter.map(({ m }) => m.value);
    for (let i = 1; i < values.length; i++) assert.ok(values[i] > values[i - 1], `Counter increases: ${values.join(' ')}\n${show(counter)}`);
    assert.ok(values[0] > birthMetric(dbirth, 'Counter').value,
      `Counter goes on after the DBIRTH's ${birthMetric(dbirth, 'Counter').value}: ${values.join(' ')}`);
    for (const { msg, m } of counter) {
      assert.equal(m.datatype, DataType.Int32, formatMessage(msg));
      assert.equal(m.name, undefined, `DDATA by alias only: ${formatMessage(msg)}`);
      assert.ok(isGood(m), formatMessage(msg));
    }
    assertCounterTimes(peer, all(tap, a.Counter, dbirth.index), 'DDATA');
    // Sampled every 100 ms, a value changing every 100 ms: most arrive (two samples may fall into
    // one 100 ms when the timers drift), far more than the 1 in 10 of a 1000 ms sampling.
    const span = values[values.length - 1] - values[0] + 1;
    assert.ok(values.length >= span * 0.3, `Counter sampled at 100 ms, not 1000: ${values.length} of ${span} values: ${values.join(' ')}`);
    t.diagnostic(`Counter: ${values.length} values of ${span}; latency of the last: ${counter[counter.length - 1].msg.t - counter[counter.length - 1].m.timestamp} ms`);

    // Temperature changes, Good, 3 decimals, recent source times.
    const temps = live(tap, a.Temperature, dbirth.index);
    assert.ok(temps.length >= 5, `Temperature changes: ${show(temps)}`);
    for (const { msg, m } of temps) {
      assert.equal(m.datatype, DataType.Double, formatMessage(msg));
      assert.ok(isGood(m), formatMessage(msg));
      assert.equal(Math.round(m.value * 1000) / 1000, m.value, formatMessage(msg));
      assertRecent(m.timestamp, msg.t, `Temperature ${formatMessage(msg)}`);
    }
    // Unchanged tags are not republished.
    for (const name of ['Sensor', 'Running', 'Label']) {
      assert.deepEqual(show(live(tap, a[name], dbirth.index)), '', `${name} is unchanged: no DDATA for it`);
    }
    assertSeqContiguous(tap.edgeMessages());
  });
});

test('quality passthrough: BadSensorFailure, UncertainLastUsableValue and Good as the server sets them', { skip, timeout: 90000 }, async (t) => {
  await withEnv(t, 'opcua-quality', async (env) => {
    const { tap, peer, dbirths } = await boot(env);
    const a = aliasesOf(dbirths[DEVICE]);
    const sensorAfter = (from) => live(tap, a.Sensor, from);

    // Bad: Quality 0 and the server's code; the value, if any, is the server's.
    let before = tap.length;
    await peer.cmd('status Sensor BadSensorFailure');
    const bad = await env.waitFor(() => sensorAfter(before)[0], 10000, 'Sensor DDATA after BadSensorFailure');
    let ctx = formatMessage(bad.msg);
    assert.equal(hex(statusOf(bad.m)), hex(code('BadSensorFailure')), `kiln.statusCode BadSensorFailure: ${ctx}`);
    assert.equal(hex(code('BadSensorFailure')), '0x808c0000');
    assert.equal(bad.m.properties['kiln.statusCode'].type, DataType.UInt32, `kiln.statusCode is a UInt32 property: ${ctx}`);
    assert.equal(qualityOf(bad.m), Quality.Bad, `Quality 0 (Bad): ${ctx}`);
    assert.equal(bad.m.datatype, DataType.Double, `datatype stays Double: ${ctx}`);
    assert.equal(bad.m.isNull, true, `a Bad value is published as null (OPC 10000-4 7.7.1: not usable): ${ctx}`);
    t.diagnostic(`BadSensorFailure published as ${bad.m.isNull ? 'is_null' : `value ${bad.m.value}`}: ${ctx}`);
    assertRecent(bad.m.timestamp, bad.msg.t, `Bad Sensor timestamp: ${ctx}`);

    // Uncertain: Quality 500, the code, and the value.
    before = tap.length;
    await peer.cmd('status Sensor UncertainLastUsableValue');
    const unc = await env.waitFor(() => sensorAfter(before)[0], 10000, 'Sensor DDATA after UncertainLastUsableValue');
    ctx = formatMessage(unc.msg);
    assert.equal(hex(statusOf(unc.m)), hex(code('UncertainLastUsableValue')), `kiln.statusCode UncertainLastUsableValue: ${ctx}`);
    assert.equal(hex(code('UncertainLastUsableValue')), '0x40900000');
    assert.equal(qualityOf(unc.m), Quality.Stale, `Quality 500 for Uncertain: ${ctx}`);
    assert.equal(unc.m.value, 42.5, `an Uncertain value keeps the value: ${ctx}`);

    // Good again: no quality properties.
    before = tap.length;
    await peer.cmd('status Sensor Good');
    const good = await env.waitFor(() => sensorAfter(before)[0], 10000, 'Sensor DDATA after Good');
    ctx = formatMessage(good.msg);
    assert.ok(isGood(good.m), `Good: ${ctx}`);
    assert.equal(good.m.value, 42.5, ctx);
    assert.equal(good.m.properties && good.m.properties.Quality, undefined, `Good values carry no Quality: ${ctx}`);
    assert.equal(good.m.properties && good.m.properties['kiln.statusCode'], undefined, `Good values carry no kiln.statusCode: ${ctx}`);

    // Only Sensor: the others stayed Good throughout.
    for (const name of ['Counter', 'Temperature']) {
      for (const { msg, m } of live(tap, a[name])) assert.ok(isGood(m), `${name} stays Good: ${formatMessage(msg)}`);
    }
    assert.equal(tap.find('DDEATH').length, 0, 'a Bad value is not a device loss');
    assertSeqContiguous(tap.edgeMessages());
  });
});

test('missing node: ns=1;s=DoesNotExist is BadNodeIdUnknown, the other tags Good, the edge runs on', { skip, timeout: 90000 }, async (t) => {
  await withEnv(t, 'opcua-missing', async (env) => {
    const tags = [...baseTags(), tag('Missing', 'float64', { node: 'DoesNotExist' })];
    const { tap, edge, dbirths } = await boot(env, { tags });
    const dbirth = dbirths[DEVICE];
    const a = aliasesOf(dbirth);
    assert.ok(a.Missing !== undefined, `the DBIRTH has the Missing tag: ${formatMessage(dbirth)}`);
    // Its state: the DBIRTH's, or the first DDATA that says more.
    const missingState = () => {
      const b = birthMetric(dbirth, 'Missing');
      if (!isGood(b) && statusOf(b) !== undefined && statusOf(b) !== code('BadWaitingForInitialData')) return { msg: dbirth, m: b };
      return all(tap, a.Missing, dbirth.index).find(({ m }) => !isGood(m) && statusOf(m) !== code('BadWaitingForInitialData'));
    };
    const bad = await env.waitFor(missingState, 15000, 'Missing published Bad');
    const ctx = formatMessage(bad.msg);
    assert.equal(hex(statusOf(bad.m)), hex(code('BadNodeIdUnknown')), `kiln.statusCode BadNodeIdUnknown: ${ctx}`);
    assert.equal(hex(code('BadNodeIdUnknown')), '0x80340000');
    assert.equal(qualityOf(bad.m), Quality.Bad, ctx);
    assert.equal(bad.m.isNull, true, `no value for an unknown node: ${ctx}`);
    t.diagnostic(`Missing: ${ctx}`);

    // The others are Good and Counter goes on.
    for (const name of ['Counter', 'Temperature', 'Sensor', 'Running', 'Label']) {
      assert.ok(isGood(birthMetric(dbirth, name)), `${name} Good in the DBIRTH: ${formatMessage(dbirth)}`);
    }
    const from = tap.length;
    await env.waitFor(() => live(tap, a.Counter, from).length >= 10, 10000, '10 more Counter values');
    for (const name of ['Counter', 'Temperature']) {
      for (const { msg, m } of live(tap, a[name])) assert.ok(isGood(m), `${name} stays Good: ${formatMessage(msg)}`);
    }
    // Missing is reported once, not again and again (history replayed after the DBIRTH aside).
    const again = live(tap, a.Missing, bad.msg.index + 1);
    assert.equal(show(again), '', 'an unchanged Bad state is not republished');
    assert.equal(tap.find('DDEATH').length, 0, 'an unknown node is not a device loss');
    const h = await edge.health();
    assert.equal(h.devices[DEVICE], 'online', JSON.stringify(h));
  });
});

test('poll mode: Temperature and Counter read every poll_ms = 200, with the source times', { skip, timeout: 90000 }, async (t) => {
  await withEnv(t, 'opcua-poll', async (env) => {
    const tags = [
      tag('Temperature', 'float64', { mode: 'poll' }),
      tag('Counter', 'int32', { mode: 'poll' }),
    ];
    for (const x of tags) delete x.sampling_ms;
    const { tap, peer, dbirths } = await boot(env, { tags, device: { poll_ms: 200 } });
    const dbirth = dbirths[DEVICE];
    const a = aliasesOf(dbirth);
    assert.equal(birthMetric(dbirth, 'Temperature').datatype, DataType.Double);
    assert.equal(birthMetric(dbirth, 'Counter').datatype, DataType.Int32);
    await env.waitFor(() => live(tap, a.Temperature, dbirth.index).length >= 5 && live(tap, a.Counter, dbirth.index).length >= 10,
      15000, '5 Temperature and 10 Counter values polled');
    const temps = live(tap, a.Temperature, dbirth.index);
    assert.ok(new Set(temps.map(({ m }) => m.value)).size >= 5, `Temperature changes: ${show(temps)}`);
    for (const { msg, m } of temps) assert.ok(isGood(m), formatMessage(msg));
    const counter = live(tap, a.Counter, dbirth.index);
    const values = counter.map(({ m }) => m.value);
    for (let i = 1; i < values.length; i++) assert.ok(values[i] > values[i - 1], `Counter increases: ${values.join(' ')}`);
    assertCounterTimes(peer, all(tap, a.Counter, dbirth.index), 'polled Counter');
    // Every 200 ms the Counter (+1 per 100 ms) has moved by about 2: not a 1000 ms default poll.
    const gaps = values.slice(1).map((v, i) => v - values[i]).sort((x, y) => x - y);
    const median = gaps[gaps.length >> 1];
    assert.ok(median >= 1 && median <= 5, `Counter steps between polls (median ${median}): ${values.join(' ')}`);
    t.diagnostic(`polled Counter steps: ${gaps.join(' ')}`);
  });
});

test('restart recovery: kill -9 of the server turns the tags Bad (or DDEATH); a new server on the same port: values again', { skip, timeout: 120000 }, async (t) => {
  await withEnv(t, 'opcua-restart', async (env) => {
    const { tap, peer, edge, dbirths } = await boot(env, { device: { timeout_ms: 2000 } });
    const a = aliasesOf(dbirths[DEVICE]);
    await env.waitFor(() => live(tap, a.Counter).length >= 5, 10000, 'Counter values before the kill');

    const before = tap.length;
    const killedAt = Date.now();
    await peer.kill();
    const names = Object.keys(a);
    const lost = await env.waitFor(() => {
      const ddeath = tap.first('DDEATH', { device: DEVICE, from: before });
      if (ddeath) return { ddeath };
      const bad = {};
      for (const name of names) {
        const last = latest(tap, a, name, before);
        if (!last || isGood(last.m)) return null;
        bad[name] = last;
      }
      return { bad };
    }, 20000, 'every tag not Good, or a DDEATH, after kill -9 of the server');
    const after = tap.find('DDATA', { device: DEVICE, from: before }).map((m) => formatMessage(m));
    t.diagnostic(`${Date.now() - killedAt} ms after the kill: ${lost.ddeath ? `DDEATH ${formatMessage(lost.ddeath)}` : 'all tags not Good'}\n${after.join('\n')}`);
    for (const msg of tap.find('DDATA', { device: DEVICE, from: before })) {
      for (const m of msg.decoded.metrics) {
        if (isGood(m) || m.isHistorical) continue;
        assert.ok(isBadSeverity(statusOf(m)) || qualityOf(m) === Quality.Stale, `a lost server gives Bad (or Uncertain on the way) codes: ${formatMessage(msg)}`);
      }
    }
    if (lost.bad) {
      for (const [name, { msg, m }] of Object.entries(lost.bad)) {
        assert.ok(isBadSeverity(statusOf(m)), `${name}: Bad after the kill (${hex(statusOf(m))}): ${formatMessage(msg)}`);
      }
    }
    const h = await edge.health();
    t.diagnostic(`health while the server is down: ${JSON.stringify(h)}`);

    // A new server on the same port: DBIRTH again (after a DDEATH) or Good values, and Counter
    // values of the new server with its source times.
    const restart = tap.length;
    await peer.start(peer.port);
    await env.waitFor(() => {
      const counter = all(tap, a.Counter, restart).filter(({ m }) => isGood(m) && peer.values.has(m.value) && !m.isHistorical);
      return counter.length >= 5;
    }, 30000, '5 Counter values of the new server');
    if (lost.ddeath) {
      const dbirth = tap.first('DBIRTH', { device: DEVICE, from: restart });
      assert.ok(dbirth, 'a DBIRTH after the DDEATH');
      t.diagnostic(`DBIRTH after the restart: ${formatMessage(dbirth)}`);
    }
    const newer = live(tap, a.Counter, restart).filter(({ m }) => isGood(m));
    assertCounterTimes(peer, newer.slice(-5), 'Counter after the restart');
    // Every tag Good again.
    await env.waitFor(() => names.every((name) => {
      const last = latest(tap, a, name, restart);
      return last && isGood(last.m);
    }), 15000, 'every tag Good again');
    assertSeqContiguous(tap.edgeMessages());
  });
});

// Runs a kiln binary without blocking the event loop (the peer's output keeps being read).
function run(name, args, timeoutMs = 30000) {
  return new Promise((resolve) => {
    execFile(binPath(name), args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, signal: err ? err.signal : null, stdout, stderr,
        error: err && typeof err.code !== 'number' ? err : null });
    });
  });
}

const showRun = (r) => `exit ${r.code} signal ${r.signal}${r.error ? ` error ${r.error.message}` : ''}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

// The [[devices.tags]] tables of TOML text: [{ name, node_id, type, ... }] (string, number and
// boolean values of `key = value` lines; comments dropped).
function tagTables(text) {
  const tables = [];
  let cur = null;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^\s+/, '');
    if (/^\[\[devices\.tags\]\]\s*(#.*)?$/.test(line)) { cur = {}; tables.push(cur); continue; }
    if (/^\[/.test(line)) { cur = null; continue; }
    const kv = line.match(/^([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^#\s]+)\s*(#.*)?$/);
    if (cur && kv) cur[kv[1]] = kv[2].startsWith('"') ? JSON.parse(kv[2]) : kv[2];
  }
  return tables;
}

test('browse: kiln-edge discover prints the variables as tag tables that kiln-edge check accepts', { skip, timeout: 90000 }, async (t) => {
  await withEnv(t, 'opcua-discover', async (env) => {
    const peer = new OpcUaPeer(env);
    await peer.start();
    const r = await run('kiln-edge', ['discover', peer.endpoint]);
    fs.writeFileSync(path.join(env.dir, 'discover.out'), r.stdout);
    assert.equal(r.code, 0, showRun(r));
    const out = r.stdout;
    assert.match(out, /^\s*\[\[devices\]\]\s*$/m, `a [[devices]] table: ${showRun(r)}`);
    assert.match(out, /^\s*driver\s*=\s*"opcua"/m, showRun(r));
    assert.ok(out.includes(`endpoint = "${peer.endpoint}"`), `endpoint = "${peer.endpoint}": ${showRun(r)}`);
    const tables = tagTables(out);
    assert.ok(tables.length >= 7, `at least the 7 Plant variables as [[devices.tags]]: ${showRun(r)}`);
    const byNode = Object.fromEntries(tables.map((x) => [x.node_id, x]));
    const want = {
      Counter: 'int32', Temperature: 'float64', Sensor: 'float64', Setpoint: 'float64', Mode: 'int32', Running: 'bool', Label: 'string',
    };
    for (const [name, type] of Object.entries(want)) {
      const x = byNode[`ns=1;s=${name}`];
      assert.ok(x, `a tag with node_id = "ns=1;s=${name}": ${JSON.stringify(tables)}`);
      assert.equal(x.name, name, `name of ns=1;s=${name}: ${JSON.stringify(x)}`);
      assert.equal(x.type, type, `type of ns=1;s=${name}: ${JSON.stringify(x)}`);
    }
    for (const x of tables) assert.ok(x.name && x.node_id && x.type, `every tag table has name, node_id and type: ${JSON.stringify(x)}`);
    assert.equal(new Set(tables.map((x) => x.name)).size, tables.length, `tag names are unique: ${tables.map((x) => x.name)}`);

    // With a [node] and an [mqtt] table in front, the output is a config `check` accepts.
    const file = path.join(env.dir, 'discovered.toml');
    fs.writeFileSync(file, ['[node]', 'group_id = "Plant1"', 'edge_node_id = "gw-01"', '', '[mqtt]', 'url = "mqtt://127.0.0.1:1883"', '', out].join('\n'));
    const c = await run('kiln-edge', ['check', '--config', file]);
    assert.equal(c.code, 0, `kiln-edge check on the discovered config:\n${fs.readFileSync(file, 'utf8')}\n${showRun(c)}`);

    // An endpoint nobody listens on: an error, not a hang.
    const gone = peer.port;
    await peer.stop();
    const e = await run('kiln-edge', ['discover', `opc.tcp://127.0.0.1:${gone}`]);
    assert.notEqual(e.code, 0, `discover of a closed port fails: ${showRun(e)}`);
    t.diagnostic(`discover of a closed port: ${showRun(e)}`);
  });
});

test('write: a DCMD passes the gate, the server holds the value, the result and DDATA say so; out of range is refused', { skip, timeout: 90000 }, async (t) => {
  await withEnv(t, 'opcua-write', async (env) => {
    const tags = [
      tag('Counter', 'int32'),
      tag('Setpoint', 'float64', { writable: true, min: 0, max: 100 }),
      tag('Mode', 'int32', { writable: true }),
    ];
    const { broker, tap, peer, dbirths } = await boot(env, { tags });
    const a = aliasesOf(dbirths[DEVICE]);
    assert.equal(birthMetric(dbirths[DEVICE], 'Setpoint').value, 50);
    const results = await startTap(env, broker, { filter: 'kiln/edge/+/+/command-result' });
    const publisher = await startPeer(env, broker);
    const dcmd = (name, type, value, id) => publisher.publish(`spBv1.0/${GROUP}/DCMD/${NODE}/${DEVICE}`, sp.encode({
      timestamp: Date.now(),
      metrics: [{ name, type, value, properties: { 'kiln.commandId': { type: 'String', value: id } } }],
    }), { qos: 0, retain: false });
    const result = (id) => results.messages.map((m) => {
      try { return JSON.parse(m.payload.toString('utf8')); } catch { return null; }
    }).find((r) => r && r.id === id);

    let before = tap.length;
    await dcmd('Setpoint', 'Double', 75.5, 'w-1');
    const ok = await env.waitFor(() => result('w-1'), 10000, 'command result w-1');
    t.diagnostic(`w-1: ${JSON.stringify(ok)}`);
    assert.equal(ok.state, 'succeeded', JSON.stringify(ok));
    assert.equal(ok.device, DEVICE);
    assert.equal(ok.metric, 'Setpoint');
    assert.equal(ok.read_back, 75.5, JSON.stringify(ok));
    assert.equal(await peer.get('Setpoint'), '75.5', 'the server holds the written value');
    await env.waitFor(() => live(tap, a.Setpoint, before).some(({ m }) => m.value === 75.5 && isGood(m)), 10000, 'DDATA with Setpoint 75.5');

    // An Int32 through the gate as well.
    await dcmd('Mode', 'Int32', 3, 'w-2');
    const mode = await env.waitFor(() => result('w-2'), 10000, 'command result w-2');
    assert.equal(mode.state, 'succeeded', JSON.stringify(mode));
    assert.equal(await peer.get('Mode'), '3');

    // Out of range: refused by the gate, never written.
    before = tap.length;
    await dcmd('Setpoint', 'Double', 150, 'w-3');
    const high = await env.waitFor(() => result('w-3'), 10000, 'command result w-3');
    t.diagnostic(`w-3: ${JSON.stringify(high)}`);
    assert.equal(high.state, 'rejected', JSON.stringify(high));
    assert.match(high.reason, /above max 100/, JSON.stringify(high));
    assert.equal(await peer.get('Setpoint'), '75.5', 'the refused value never reached the server');
    // Not writable: Counter.
    await dcmd('Counter', 'Int32', 5, 'w-4');
    const ro = await env.waitFor(() => result('w-4'), 10000, 'command result w-4');
    assert.equal(ro.state, 'rejected', JSON.stringify(ro));
    assert.match(ro.reason, /not writable/, JSON.stringify(ro));
    await tap.sync();
    assert.ok(!live(tap, a.Setpoint, before).some(({ m }) => m.value === 150), 'no DDATA with the refused value');
  });
});

// How a refused user name shows in the edge's log.
const ACCESS_DENIED = /BadUserAccessDenied|BadIdentityTokenRejected|BadIdentityTokenInvalid|0x801F0000|0x80210000|0x80200000/i;

test('user name: operator/secret connects and values flow; a wrong password is refused and logged', { skip, timeout: 120000 }, async (t) => {
  await withEnv(t, 'opcua-user', async (env) => {
    const { broker, tap, peer, edge, dbirths } = await boot(env, { device: { username: 'operator', password: 'secret' } });
    const a = aliasesOf(dbirths[DEVICE]);
    assert.ok(isGood(birthMetric(dbirths[DEVICE], 'Counter')), formatMessage(dbirths[DEVICE]));
    await env.waitFor(() => live(tap, a.Counter, dbirths[DEVICE].index).filter(({ m }) => isGood(m)).length >= 5, 10000,
      '5 Counter values with operator/secret');
    assert.ok(!edgeLog(edge).some((l) => ACCESS_DENIED.test(l)), 'no access denied with the right password');
    edge.expectRunning = false;
    await edge.stop('SIGTERM');

    // The wrong password: no Good value from the device, an error in the log that names the refusal.
    const before = tap.length;
    const config = env.edgeConfig({ broker, devices: [opcuaDevice(peer, baseTags(), { username: 'operator', password: 'wrong' })] });
    const wrong = await env.startEdge(config, 'kiln-edge-wrong');
    const line = await env.waitFor(() => edgeLog(wrong).find((l) => ACCESS_DENIED.test(l)), 15000,
      `the edge logs the refusal (${ACCESS_DENIED})`);
    t.diagnostic(`the edge logged: ${line}`);
    // Nothing Good from the device, and the edge still runs.
    await tap.sync();
    for (const msg of tap.edgeMessages(before)) {
      if (msg.device !== DEVICE || !['DBIRTH', 'DDATA'].includes(msg.type)) continue;
      for (const m of msg.decoded.metrics) assert.ok(!isGood(m), `no Good value without access: ${formatMessage(msg)}`);
    }
    wrong.proc.assertRunning();
    const h = await wrong.health();
    t.diagnostic(`health with a wrong password: ${JSON.stringify(h)}`);
    assert.notEqual(h.devices && h.devices[DEVICE], 'online', JSON.stringify(h));
  });
});
