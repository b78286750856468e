'use strict';
// kiln-edge's OPC UA driver keeps its subscription over a broken link: TransferSubscriptions to
// the new session, then Republish of what the server kept (docs/ARCHITECTURE.md, "OPC UA
// driver"). A node-opcua server (tools/opcua-server.js via lib/opcua.js) sits behind a TCP proxy
// (lib/tcp_proxy.js) and the edge's endpoint is the proxy. Counter (+1 every 100 ms) is
// subscribed with sampling_ms = 50 and queue_size = 100: the server sees every value and, while
// no Publish request reaches it, queues them (~10 s of them). (Sampled every 100 ms, node-opcua
// skips a value now and then: its sampling timer and the Counter's are two 100 ms timers whose
// phases drift, so two changes fall between two samples; a sample that finds no change is not
// queued, so sampling twice as fast keeps the queue at 100 values = 10 s.)
// The edge logs in as a user (an anonymous subscription is not transferable on SecurityPolicy
// None, see boot()).
// - cut: every connection reset and new ones refused for ~2 s (20 Counter values); then the edge
//   logs the transfer, creates no subscription, and every Counter value from before the cut to
//   after the reconnect reaches the broker with its source time as the metric timestamp.
// - silent link: the proxy stops forwarding (sockets open): the edge's keep-alive supervision
//   notices (tags Bad, DDEATH), drops the link, reconnects through the proxy, transfers; again
//   no Counter value missing across the outage (as far as the server's queue reaches).

const test = require('node:test');
const assert = require('node:assert/strict');
const { withEnv, missingBinaries } = require('./lib/harness');
const { startTap, formatMessage } = require('./lib/tap');
const sp = require('./lib/sparkplug');
const { waitBirths } = require('./lib/scenario');
const { isGood, statusOf, assertSeqContiguous } = require('./lib/checks');
const { OpcUaPeer, nodeOpcuaUnavailable, assertCounterTimes } = require('./lib/opcua');
const { observations, arrivalOrderProblems, fmtObs } = require('./lib/store');
const { startProxy } = require('./lib/tcp_proxy');

const skip = missingBinaries(['kiln-edge']) || nodeOpcuaUnavailable();
const { hex } = sp;
const DEVICE = 'plc-1';
const QUEUE_SIZE = 100;
// The edge's log lines (src/drivers/opcua/opcua_driver.cc).
const TRANSFERRED = /device plc-1: subscription (\d+) transferred to the new session/;
const NOT_TRANSFERRED = /subscription \d+ not transferred .*creating a new one/;
const CREATED = /device plc-1: subscription (\d+) \(publishing every/;
const SUBSCRIBING_AGAIN = /device plc-1: .*subscribing again/;
const NO_PUBLISH_RESPONSE = /no Publish response \(data or keep-alive\)/;

function isBadSeverity(c) {
  return typeof c === 'number' && (c >>> 30) === 2; // top two bits 10 = Bad
}

// Mosquitto, the tap, the OPC UA server and a proxy in front of it, then kiln-edge with one OPC
// UA device whose endpoint is the proxy; waits for the births.
async function boot(env) {
  const peer = new OpcUaPeer(env);
  const [broker] = await Promise.all([env.startMosquitto(), peer.start()]);
  const proxy = await startProxy(env, peer.port);
  const tap = await startTap(env, broker);
  const tags = [
    { name: 'Counter', node_id: 'ns=1;s=Counter', type: 'int32', mode: 'subscribe', sampling_ms: 50, queue_size: QUEUE_SIZE },
    { name: 'Temperature', node_id: 'ns=1;s=Temperature', type: 'float64', mode: 'subscribe', sampling_ms: 100 },
  ];
  // A user, not anonymous: OPC 10000-4 5.13.7 lets a server transfer an anonymous session's
  // subscription only between Sign or SignAndEncrypt channels of the same ApplicationUri, and
  // node-opcua refuses it on SecurityPolicy None (BadUserAccessDenied), Kiln's only policy. For a
  // user the ClientUserId must match: operator/secret through the UserName policy without
  // encryption.
  const device = {
    id: DEVICE, driver: 'opcua', endpoint: `opc.tcp://127.0.0.1:${proxy.port}`, poll_ms: 1000, timeout_ms: 2000,
    username: 'operator', password: 'secret', tags,
  };
  const edge = await env.startEdge(env.edgeConfig({ broker, devices: [device] }));
  const { dbirths } = await waitBirths(env, tap, [DEVICE]);
  const aliases = Object.fromEntries(dbirths[DEVICE].decoded.metrics.map((m) => [m.name, m.alias]));
  return { broker, tap, peer, proxy, edge, dbirth: dbirths[DEVICE], aliases };
}

// The edge logs on stderr.
const edgeLog = (edge, from = 0) => edge.proc.stderrLines.slice(from);

// Every Counter metric of the device after tap index `from`, in arrival order, with its message:
// [{ msg, m }] from DBIRTHs (by name) and DDATA (by alias), live and historical.
function counterMetrics(tap, alias, from = 0) {
  const out = [];
  for (const msg of tap.messages.slice(from)) {
    if (msg.device !== DEVICE || !msg.decoded) continue;
    if (msg.type === 'DBIRTH') {
      for (const m of msg.decoded.metrics) if (m.name === 'Counter') out.push({ msg, m });
    } else if (msg.type === 'DDATA') {
      for (const m of msg.decoded.metrics) if (m.alias === alias) out.push({ msg, m });
    }
  }
  return out;
}

// The values (Good, not null) among those.
const goodValues = (xs) => xs.filter(({ m }) => isGood(m) && typeof m.value === 'number');

// The integers of [lo, hi] not among the values of `xs`.
function missingIn(xs, lo, hi) {
  const have = new Set(goodValues(xs).map(({ m }) => m.value));
  const missing = [];
  for (let v = lo; v <= hi; v++) if (!have.has(v)) missing.push(v);
  return missing;
}

// Runs of consecutive integers, for messages: "12-15 19".
function runs(values) {
  const out = [];
  for (let i = 0; i < values.length;) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === values[j] + 1) j++;
    out.push(i === j ? `${values[i]}` : `${values[i]}-${values[j]}`);
    i = j + 1;
  }
  return out.join(' ');
}

// The device is lost after tap index `from`: a DDEATH, or the latest Counter and Temperature not
// Good. Returns { ddeath } or { bad: [{ msg, m }] }, or null.
function lostAfter(tap, aliases, from) {
  const ddeath = tap.first('DDEATH', { device: DEVICE, from });
  if (ddeath) return { ddeath };
  const bad = [];
  for (const alias of [aliases.Counter, aliases.Temperature]) {
    let last = null;
    for (const msg of tap.find('DDATA', { device: DEVICE, from })) {
      for (const m of msg.decoded.metrics) if (m.alias === alias && !m.isHistorical) last = { msg, m };
    }
    if (!last || isGood(last.m)) return null;
    bad.push(last);
  }
  return { bad };
}

// The first subscription's id, from the edge's log.
function firstSubscription(edge) {
  for (const line of edgeLog(edge)) {
    const m = line.match(CREATED);
    if (m) return Number(m[1]);
  }
  return null;
}

// After the reconnect: the transfer logged (of the first subscription), no new subscription.
function assertTransferred(edge, logMark, subscription) {
  const after = edgeLog(edge, logMark);
  const log = after.join('\n');
  const transferred = after.map((l) => l.match(TRANSFERRED)).find(Boolean);
  assert.ok(transferred, `the edge logs the transfer:\n${log}`);
  assert.equal(Number(transferred[1]), subscription, `the first subscription is the one transferred:\n${log}`);
  for (const re of [NOT_TRANSFERRED, CREATED, SUBSCRIBING_AGAIN]) {
    const line = after.find((l) => re.test(l));
    assert.equal(line, undefined, `no new subscription after the reconnect (${re}):\n${log}`);
  }
}

// Waits until Counter flows live again after the reconnect: `n` live Good values after tap index
// `from` newer than `above`. Returns them.
async function waitLive(env, tap, aliases, from, above, n, what) {
  return env.waitFor(() => {
    const xs = goodValues(counterMetrics(tap, aliases.Counter, from)).filter(({ msg, m }) => msg.type === 'DDATA' && !m.isHistorical && m.value > above);
    return xs.length >= n ? xs : null;
  }, 20000, what);
}

// Waits (up to `timeoutMs`) until every integer of [lo, hi] has arrived as a Good Counter value
// (history is replayed at the store's rate, maybe after live values); returns what is missing.
async function waitComplete(env, tap, aliases, lo, hi, timeoutMs = 15000) {
  try {
    await env.waitFor(() => missingIn(counterMetrics(tap, aliases.Counter), lo, hi).length === 0, timeoutMs,
      `every Counter value ${lo}..${hi} at the broker`);
  } catch { /* reported by the caller's assertion, with the values */ }
  await tap.sync();
  return missingIn(counterMetrics(tap, aliases.Counter), lo, hi);
}

function showCounter(xs) {
  return xs.map(({ msg, m }) => `#${msg.index} ${msg.type} ${isGood(m) ? m.value : `bad ${hex(statusOf(m))}`}${m.isHistorical ? '(hist)' : ''}@${m.timestamp}`).join(' ');
}

// The latest Counter value the server printed (its stdout), or -1.
// What both link failures must leave at the broker: every Counter value since the DBIRTH with
// its source time, the live ones after the reconnect recent, Bad codes for what the loss
// published (or the DDEATH), and the node's seq without gaps. `xs`: Counter since the failure.
function assertAfterReconnect({ tap, peer, dbirth, aliases }, liveAgain, xs) {
  assertCounterTimes(peer, goodValues(counterMetrics(tap, aliases.Counter, dbirth.index)), 'Counter');
  for (const { msg, m } of liveAgain.slice(-5)) {
    assert.ok(msg.t - m.timestamp < 3000, `live again: Counter ${m.value} arrived ${msg.t - m.timestamp} ms after its source time: ${formatMessage(msg)}`);
  }
  for (const { msg, m } of xs) {
    if (!isGood(m)) assert.ok(isBadSeverity(statusOf(m)), `a lost link gives Bad codes: ${formatMessage(msg)}`);
  }
  assertSeqContiguous(tap.edgeMessages());
}

const peerLatest = (peer) => (peer.counter.length ? peer.counter[peer.counter.length - 1].value : -1);

// ---------------------------------------------------------------------------------------------

// The cut: after 10 live Counter values, new connections refused and the current one reset; once
// the edge has noticed (Bad values or DDEATH), 20 more Counter values (~2 s) with the link down;
// then connections allowed until the edge logs its reconnect (transfer or new subscription).
async function cutAndReconnect(env, { tap, peer, proxy, edge, dbirth, aliases }) {
  const subscription = await env.waitFor(() => firstSubscription(edge), 5000, 'the subscription in the edge log');
  await waitLive(env, tap, aliases, dbirth.index, -1, 10, '10 Counter values before the cut');
  assert.equal(proxy.accepted, 1, proxy.describe());

  // The last value at the broker before the cut: from there on nothing may be missing.
  const before = tap.length;
  const logMark = edge.proc.stderrLines.length;
  const start = Math.max(...goodValues(counterMetrics(tap, aliases.Counter, dbirth.index)).map(({ m }) => m.value));
  proxy.refuse(true);
  const cutAt = Date.now();
  assert.equal(proxy.cut(), 1, `one connection cut: ${proxy.describe()}`);

  // The edge notices (Bad values, DDEATH); the link stays down while the server counts 20 more.
  const lost = await env.waitFor(() => lostAfter(tap, aliases, before), 10000, 'Counter and Temperature Bad, or a DDEATH, after the cut');
  const lostAt = Date.now();
  const mark = peer.counter.length;
  await env.waitFor(() => peer.counter.length >= mark + 20, 10000, 'the server counts 20 values while the link is down');
  const refusedWhileDown = proxy.refused;
  proxy.refuse(false);
  const allowedAt = Date.now();

  // The reconnect.
  await env.waitFor(() => edgeLog(edge, logMark).some((l) => TRANSFERRED.test(l) || NOT_TRANSFERRED.test(l) || CREATED.test(l)), 30000,
    'the edge reconnects: transfer or new subscription in its log');
  const reconnectedAt = Date.now();
  const atReconnect = peerLatest(peer);
  const summary = `cut after Counter ${start}; lost ${lostAt - cutAt} ms after the cut (${lost.ddeath ? 'DDEATH' : 'Bad values'}); ` +
    `down ${allowedAt - cutAt} ms (${refusedWhileDown} connection(s) refused); reconnected ${reconnectedAt - allowedAt} ms after ` +
    `allowing, at server Counter ${atReconnect}`;
  return { subscription, before, logMark, start, atReconnect, summary };
}

test('cut: connections reset and refused for ~2 s; the subscription is transferred, no Counter value lost', { skip, timeout: 120000 }, async (t) => {
  await withEnv(t, 'opcua-transfer-cut', async (env) => {
    const booted = await boot(env);
    const { tap, peer, proxy, edge, dbirth, aliases } = booted;
    const { subscription, before, logMark, start, atReconnect, summary } = await cutAndReconnect(env, booted);
    assertTransferred(edge, logMark, subscription);
    assert.ok(proxy.accepted >= 2, `the reconnect came through the proxy: ${proxy.describe()}`);

    // Counter flows live again, then everything from `start` on is there.
    const liveAgain = await waitLive(env, tap, aliases, before, atReconnect, 10, '10 live Counter values after the reconnect');
    const end = Math.max(...liveAgain.map(({ m }) => m.value));
    const missing = await waitComplete(env, tap, aliases, start, end);
    const xs = counterMetrics(tap, aliases.Counter, before);
    const history = xs.filter(({ m }) => m.isHistorical).length;
    t.diagnostic(`${summary}; ${history} historical Counter values; checked ${start}..${end}`);
    t.diagnostic(edgeLog(edge, logMark).join('\n'));
    assert.deepEqual(runs(missing), '',
      `every Counter value ${start}..${end} at the broker; missing: ${runs(missing)}\n${showCounter(xs)}\n${edgeLog(edge, logMark).join('\n')}`);

    assertAfterReconnect({ tap, peer, dbirth, aliases }, liveAgain, xs);
  });
});

test('silent link: no bytes either way; keep-alive supervision drops it, the subscription is transferred, no Counter value lost', { skip, timeout: 120000 }, async (t) => {
  await withEnv(t, 'opcua-transfer-silent', async (env) => {
    const { tap, peer, proxy, edge, dbirth, aliases } = await boot(env);
    const subscription = await env.waitFor(() => firstSubscription(edge), 5000, 'the subscription in the edge log');
    await waitLive(env, tap, aliases, dbirth.index, -1, 10, '10 Counter values before the freeze');

    const before = tap.length;
    const logMark = edge.proc.stderrLines.length;
    const start = Math.max(...goodValues(counterMetrics(tap, aliases.Counter, dbirth.index)).map(({ m }) => m.value));
    const frozenAt = Date.now();
    const atFreeze = peerLatest(peer);
    assert.equal(proxy.freeze(), 1, `one connection frozen: ${proxy.describe()}`);

    // Keep-alive every ~2 s (40 x 50 ms): no response for 2 x 2 s + timeout_ms 2 s fails the device.
    const lost = await env.waitFor(() => lostAfter(tap, aliases, before), 15000, 'Counter and Temperature Bad, or a DDEATH, within 15 s of the freeze');
    const lostAt = Date.now();
    const why = edgeLog(edge, logMark).find((l) => NO_PUBLISH_RESPONSE.test(l));
    assert.ok(why, `the edge names the missing Publish responses (${NO_PUBLISH_RESPONSE}):\n${edgeLog(edge, logMark).join('\n')}`);
    if (lost.bad) {
      for (const { msg, m } of lost.bad) assert.equal(hex(statusOf(m)), hex(sp.StatusCode.BadTimeout), `BadTimeout after the silent link: ${formatMessage(msg)}`);
    }

    // The edge drops the frozen link and reconnects through the proxy (a new connection, not
    // frozen), without a thaw.
    await env.waitFor(() => edgeLog(edge, logMark).some((l) => TRANSFERRED.test(l) || NOT_TRANSFERRED.test(l) || CREATED.test(l)), 30000,
      'the edge reconnects: transfer or new subscription in its log');
    const reconnectedAt = Date.now();
    const atReconnect = peerLatest(peer);
    assertTransferred(edge, logMark, subscription);
    assert.ok(proxy.accepted >= 2, `the reconnect is a new connection through the proxy: ${proxy.describe()}`);

    const liveAgain = await waitLive(env, tap, aliases, before, atReconnect, 10, '10 live Counter values after the reconnect');
    const end = Math.max(...liveAgain.map(({ m }) => m.value));
    // The server queues the last QUEUE_SIZE samples while no Publish request comes (discarding the
    // oldest), besides the few messages it sent into the frozen link (republished after the
    // transfer). An outage longer than the queue loses its start: then only the last values
    // before the reconnect must all be there (10 short of QUEUE_SIZE: the reconnect time is the
    // one the test saw, a little after the transfer; the transfer's initial value takes a slot).
    const outage = atReconnect - start;
    const from = outage <= QUEUE_SIZE - 10 ? start : atReconnect - (QUEUE_SIZE - 10);
    const missing = await waitComplete(env, tap, aliases, from, end);
    const xs = counterMetrics(tap, aliases.Counter, before);
    const history = xs.filter(({ m }) => m.isHistorical).length;
    const lostBefore = missingIn(counterMetrics(tap, aliases.Counter), start, from - 1);
    t.diagnostic(`froze after Counter ${start} (server at ${atFreeze}); lost ${lostAt - frozenAt} ms after the freeze ` +
      `(${lost.ddeath ? 'DDEATH' : 'Bad values'}); transferred ${reconnectedAt - frozenAt} ms after the freeze at server Counter ` +
      `${atReconnect} (${outage} values); ${history} historical Counter values; checked ${from}..${end}` +
      `${from > start ? `; outage longer than the queue: not checked ${start}..${from - 1}, missing there: ${runs(lostBefore) || 'none'}` : ''}`);
    t.diagnostic(edgeLog(edge, logMark).join('\n'));
    assert.deepEqual(runs(missing), '',
      `every Counter value ${from}..${end} at the broker; missing: ${runs(missing)}\n${showCounter(xs)}\n${edgeLog(edge, logMark).join('\n')}`);

    assertAfterReconnect({ tap, peer, dbirth, aliases }, liveAgain, xs);
  });
});

// What the server kept arrives in time order: historical DDATA oldest first and live DDATA oldest
// first (the store-and-forward rule, lib/store.js arrivalOrderProblems), and no live value older
// than the one the device's DBIRTH after the reconnect published as current (a host would see
// Counter go back).
test('cut: the values kept over a transfer arrive oldest first; none live older than the DBIRTH', { skip, timeout: 120000 }, async (t) => {
  await withEnv(t, 'opcua-transfer-order', async (env) => {
    const booted = await boot(env);
    const { tap, edge, aliases } = booted;
    const { subscription, before, logMark, start, atReconnect, summary } = await cutAndReconnect(env, booted);
    assertTransferred(edge, logMark, subscription);
    const liveAgain = await waitLive(env, tap, aliases, before, atReconnect, 10, '10 live Counter values after the reconnect');
    const end = Math.max(...liveAgain.map(({ m }) => m.value));
    await waitComplete(env, tap, aliases, start, end);
    const xs = counterMetrics(tap, aliases.Counter, before);
    t.diagnostic(`${summary}; ${xs.filter(({ m }) => m.isHistorical).length} historical Counter values`);
    t.diagnostic(showCounter(xs));

    const obs = observations(tap, DEVICE, { name: 'Counter', alias: aliases.Counter });
    const problems = arrivalOrderProblems(obs, before, tap.length, 'Counter after the transfer');
    const dbirth = tap.first('DBIRTH', { device: DEVICE, from: before });
    if (dbirth) {
      const current = dbirth.decoded.metrics.find((m) => m.name === 'Counter');
      for (const o of obs) {
        if (o.type === 'DDATA' && !o.historical && o.index > dbirth.index && o.good && o.ts < current.timestamp) {
          problems.push(`live ${fmtObs(o)} is older than the DBIRTH's current Counter ${current.value}@${new Date(current.timestamp).toISOString().slice(11, 23)} (#${dbirth.index})`);
        }
      }
    }
    assert.deepEqual(problems.slice(0, 10), [], `${problems.length} problem(s):\n${problems.slice(0, 10).join('\n')}\n${showCounter(xs)}\n` +
      `${edgeLog(edge, logMark).join('\n')}`);
  });
});
