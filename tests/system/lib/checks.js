'use strict';
// Sparkplug assertions shared by the tests, over messages recorded by the tap.

const assert = require('node:assert/strict');
const { DataType, Quality } = require('./sparkplug');
const { formatMessage } = require('./tap');

const POLL_MS = 100;
const TIMEOUT_MS = 300;
const GROUP = 'Plant1';
const NODE = 'gw-01';

const topics = {
  nbirth: `spBv1.0/${GROUP}/NBIRTH/${NODE}`,
  ndeath: `spBv1.0/${GROUP}/NDEATH/${NODE}`,
  ncmd: `spBv1.0/${GROUP}/NCMD/${NODE}`,
  dbirth: (d) => `spBv1.0/${GROUP}/DBIRTH/${NODE}/${d}`,
  ddata: (d) => `spBv1.0/${GROUP}/DDATA/${NODE}/${d}`,
  ddeath: (d) => `spBv1.0/${GROUP}/DDEATH/${NODE}/${d}`,
};

// Every message (except NDEATH) carries a seq; NBIRTH has 0, each next one previous+1 mod 256.
// Returns the problems found (empty when all is well).
function seqProblems(messages) {
  const problems = [];
  let prev = null;
  for (const m of messages) {
    if (m.type === 'NDEATH') continue;
    if (!m.decoded) { problems.push(`undecodable: ${formatMessage(m)}`); continue; }
    if (!m.decoded.hasSeq) { problems.push(`no seq: ${formatMessage(m)}`); prev = null; continue; }
    const seq = m.decoded.seq;
    if (seq < 0 || seq > 255) problems.push(`seq out of range: ${formatMessage(m)}`);
    if (m.type === 'NBIRTH') {
      if (seq !== 0) problems.push(`NBIRTH seq ${seq} != 0: ${formatMessage(m)}`);
    } else if (prev === null) {
      problems.push(`first message is not an NBIRTH: ${formatMessage(m)}`);
    } else if (seq !== (prev + 1) % 256) {
      problems.push(`seq ${seq} after ${prev}: ${formatMessage(m)}`);
    }
    prev = seq;
  }
  return problems;
}

function assertSeqContiguous(messages, what = 'seq') {
  const problems = seqProblems(messages);
  assert.deepEqual(problems, [], `${what}: sequence numbers not contiguous:\n${problems.join('\n')}`);
}

function metricByName(msg, name) {
  return msg.decoded.metrics.find((m) => m.name === name);
}

// The live value of `alias` in a data message: the last one when the message carries several
// (a stale mark and then the Bad value of the same poll cycle, on a slow machine). Historical
// metrics are skipped: samples polled just before a DBIRTH are replayed as history after it,
// possibly after newer live values, so they say nothing about the current state that these
// checks look at.
function metricByAlias(msg, alias) {
  return msg.decoded.metrics.findLast((m) => m.alias === alias && !m.isHistorical);
}

function bdSeqOf(msg) {
  const m = metricByName(msg, 'bdSeq');
  assert.ok(m, `no bdSeq metric in ${formatMessage(msg)}`);
  return m.value;
}

function isGood(metric) {
  return !metric.isNull && !(metric.properties && metric.properties.Quality && metric.properties.Quality.value !== Quality.Good);
}

function qualityOf(metric) {
  return metric.properties && metric.properties.Quality ? metric.properties.Quality.value : undefined;
}

function statusOf(metric) {
  return metric.properties && metric.properties['kiln.statusCode'] ? metric.properties['kiln.statusCode'].value : undefined;
}

// Checks a payload or metric timestamp against the receive time of the message.
function assertRecent(ts, receivedAt, what, toleranceMs = 2000) {
  assert.equal(typeof ts, 'number', `${what}: timestamp missing`);
  assert.ok(Math.abs(ts - receivedAt) <= toleranceMs,
    `${what}: timestamp ${new Date(ts).toISOString()} is ${ts - receivedAt} ms from receive time ${new Date(receivedAt).toISOString()}`);
}

// The NBIRTH rules every birth must satisfy; returns the bdSeq.
function checkNbirth(msg, { now = msg.t } = {}) {
  const ctx = formatMessage(msg);
  assert.equal(msg.topic, topics.nbirth, ctx);
  assert.equal(msg.qos, 0, `NBIRTH must be QoS 0: ${ctx}`);
  assert.equal(msg.retain, false, `NBIRTH must not be retained: ${ctx}`);
  assert.ok(msg.decoded, `NBIRTH undecodable: ${ctx}`);
  assert.equal(msg.decoded.hasSeq, true, `NBIRTH without seq: ${ctx}`);
  assert.equal(msg.decoded.seq, 0, `NBIRTH seq: ${ctx}`);
  assertRecent(msg.decoded.timestamp, now, `NBIRTH payload`);
  const bd = metricByName(msg, 'bdSeq');
  assert.ok(bd, `NBIRTH without bdSeq: ${ctx}`);
  assert.equal(bd.datatype, DataType.Int64, `bdSeq datatype must be Int64: ${ctx}`);
  assert.ok(Number.isInteger(bd.value) && bd.value >= 0 && bd.value <= 255, `bdSeq value ${bd.value}: ${ctx}`);
  const rebirth = metricByName(msg, 'Node Control/Rebirth');
  assert.ok(rebirth, `NBIRTH without Node Control/Rebirth: ${ctx}`);
  assert.equal(rebirth.datatype, DataType.Boolean, `Node Control/Rebirth datatype: ${ctx}`);
  assert.equal(rebirth.value, false, `Node Control/Rebirth value: ${ctx}`);
  assert.equal(rebirth.alias, undefined, `Node Control/Rebirth must not have an alias: ${ctx}`);
  for (const m of msg.decoded.metrics) {
    assert.equal(typeof m.name, 'string', `NBIRTH metric without name: ${ctx}`);
    assert.notEqual(m.datatype, undefined, `NBIRTH metric ${m.name} without datatype: ${ctx}`);
    assert.ok(m.hasValue || m.isNull, `NBIRTH metric ${m.name} without value: ${ctx}`);
  }
  return bd.value;
}

// Checks a DBIRTH against the expected tags ({name, alias, datatype, value?, unit?, approx?}).
// Returns {name -> metric}.
function checkDbirth(msg, device, tags, { now = msg.t, values = true } = {}) {
  const ctx = formatMessage(msg);
  assert.equal(msg.topic, topics.dbirth(device), ctx);
  assert.equal(msg.qos, 0, `DBIRTH must be QoS 0: ${ctx}`);
  assert.equal(msg.retain, false, `DBIRTH must not be retained: ${ctx}`);
  assert.equal(msg.decoded.hasSeq, true, `DBIRTH without seq: ${ctx}`);
  assertRecent(msg.decoded.timestamp, now, `DBIRTH ${device} payload`);
  const byName = {};
  for (const m of msg.decoded.metrics) byName[m.name] = m;
  assert.deepEqual(Object.keys(byName).sort(), tags.map((t) => t.name).sort(), `DBIRTH ${device} metric names: ${ctx}`);
  for (const tag of tags) {
    const m = byName[tag.name];
    assert.equal(m.alias, tag.alias, `${device}/${tag.name} alias: ${ctx}`);
    assert.equal(m.datatype, tag.datatype, `${device}/${tag.name} datatype: ${ctx}`);
    assert.equal(typeof m.timestamp, 'number', `${device}/${tag.name} has no metric timestamp: ${ctx}`);
    assertRecent(m.timestamp, now, `${device}/${tag.name} metric`, 5000);
    if (tag.unit !== undefined) {
      const unit = m.properties && m.properties.engUnit;
      assert.ok(unit, `${device}/${tag.name} has no engUnit property: ${ctx}`);
      assert.equal(unit.type, DataType.String, `${device}/${tag.name} engUnit must be a String property: ${ctx}`);
      assert.equal(unit.value, tag.unit, `${device}/${tag.name} engUnit: ${ctx}`);
    }
    if (values && tag.value !== undefined) {
      assert.ok(isGood(m), `${device}/${tag.name} is not Good in DBIRTH: ${ctx}`);
      assertValue(m, tag, ctx);
    }
  }
  return byName;
}

function assertValue(metric, tag, ctx) {
  if (tag.approx !== undefined) {
    assert.equal(typeof metric.value, 'number', `${tag.name}: value ${metric.value} is not a number: ${ctx}`);
    assert.ok(Math.abs(metric.value - tag.value) <= tag.approx, `${tag.name}: ${metric.value} != ${tag.value} ± ${tag.approx}: ${ctx}`);
  } else if (typeof tag.value === 'function') {
    assert.ok(tag.value(metric.value), `${tag.name}: unexpected value ${metric.value}: ${ctx}`);
  } else {
    assert.equal(metric.value, tag.value, `${tag.name} value: ${ctx}`);
  }
}

// A DDATA metric must be alias-only with datatype and a metric timestamp.
function checkDataMetric(msg, metric) {
  const ctx = formatMessage(msg);
  assert.equal(metric.name, undefined, `DDATA metric must carry no name when aliases are used: ${ctx}`);
  assert.equal(typeof metric.alias, 'number', `DDATA metric without alias: ${ctx}`);
  assert.notEqual(metric.datatype, undefined, `DDATA metric without datatype: ${ctx}`);
  assert.equal(typeof metric.timestamp, 'number', `DDATA metric without timestamp: ${ctx}`);
}

module.exports = {
  POLL_MS, TIMEOUT_MS, GROUP, NODE, topics, seqProblems, assertSeqContiguous, metricByName, metricByAlias,
  bdSeqOf, isGood, qualityOf, statusOf, assertRecent, checkNbirth, checkDbirth, assertValue, checkDataMetric,
};
