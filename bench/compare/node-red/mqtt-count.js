// The subscriber of bench/compare/run.sh: counts what each gateway really delivers to the
// broker, so that a gateway that reads but does not publish scores nothing.
//   node mqtt-count.js mqtt://127.0.0.1:PORT
// Subscribes (QoS 0) to the three gateways' topics and prints "ready" once subscribed. Then,
// for every line it reads on stdin, prints one JSON line of cumulative counts per gateway:
//   {"collectd":{...},"nodered":{...},"kiln":{...}} with, for each,
//   messages  MQTT messages received
//   values    register values in them: 1 per collectd message ("<time>:<value>"), the
//             array length of a Node-RED block (JSON array), the metrics of a Sparkplug
//             NDATA/DDATA payload (protobuf, decoded here: field 2 of Payload)
//   changed   values that differ from the previous value of the same register (the ramp
//             changes every poll, so changed ~= values once each register was seen once)
//   keys      distinct registers seen (collectd topic, Node-RED block + index, Sparkplug
//             metric alias or name)
//   bad       payloads that did not parse
// It exits when stdin closes.
'use strict'
const mqtt = require('mqtt')
const readline = require('readline')

const url = process.argv[2]
if (!url) {
  console.error('usage: node mqtt-count.js mqtt://host:port')
  process.exit(2)
}

function makeCounter () {
  return { messages: 0, values: 0, changed: 0, bad: 0, last: new Map() }
}
const counters = { collectd: makeCounter(), nodered: makeCounter(), kiln: makeCounter() }

function see (c, key, value) {
  c.values++
  const prev = c.last.get(key)
  if (prev !== undefined && prev !== value) c.changed++
  c.last.set(key, value)
}

// --- minimal protobuf reader (Sparkplug B Payload / Metric) --------------------------------
function readVarint (buf, pos) {
  let result = 0
  let mul = 1
  for (let i = 0; i < 10; i++) {
    if (pos.i >= buf.length) throw new Error('truncated varint')
    const b = buf[pos.i++]
    result += (b & 0x7f) * mul
    if ((b & 0x80) === 0) return result
    mul *= 128
  }
  throw new Error('varint too long')
}

function skipField (buf, pos, wire) {
  switch (wire) {
    case 0: readVarint(buf, pos); return
    case 1: pos.i += 8; break
    case 2: { const n = readVarint(buf, pos); pos.i += n; break }
    case 5: pos.i += 4; break
    default: throw new Error('bad wire type ' + wire)
  }
  if (pos.i > buf.length) throw new Error('truncated field')
}

// Metric: name = 1 (string), alias = 2 (uint64), int_value = 10, long_value = 11,
// float_value = 12, double_value = 13, boolean_value = 14, string_value = 15.
function decodeMetric (buf, start, end) {
  const pos = { i: start }
  let key = null
  let value = null
  while (pos.i < end) {
    const tag = readVarint(buf, pos)
    const field = Math.floor(tag / 8)
    const wire = tag & 7
    if (field === 1 && wire === 2) {
      const n = readVarint(buf, pos)
      key = 'n:' + buf.toString('utf8', pos.i, pos.i + n)
      pos.i += n
    } else if (field === 2 && wire === 0) {
      const a = readVarint(buf, pos)
      if (key === null) key = 'a:' + a
    } else if ((field === 10 || field === 11 || field === 14) && wire === 0) {
      value = readVarint(buf, pos)
    } else if (field === 12 && wire === 5) {
      value = buf.readFloatLE(pos.i); pos.i += 4
    } else if (field === 13 && wire === 1) {
      value = buf.readDoubleLE(pos.i); pos.i += 8
    } else {
      skipField(buf, pos, wire)
    }
  }
  if (pos.i !== end) throw new Error('metric overruns its length')
  return { key, value }
}

function countSparkplug (c, buf) {
  const pos = { i: 0 }
  let metrics = 0
  while (pos.i < buf.length) {
    const tag = readVarint(buf, pos)
    const field = Math.floor(tag / 8)
    const wire = tag & 7
    if (field === 2 && wire === 2) {
      const n = readVarint(buf, pos)
      if (pos.i + n > buf.length) throw new Error('truncated metric')
      const m = decodeMetric(buf, pos.i, pos.i + n)
      pos.i += n
      see(c, m.key === null ? '#' + metrics : m.key, m.value)
      metrics++
    } else {
      skipField(buf, pos, wire)
    }
  }
  return metrics
}

// --- MQTT ----------------------------------------------------------------------------------
const client = mqtt.connect(url, {
  clientId: 'kiln-bench-counter-' + process.pid,
  clean: true,
  reconnectPeriod: 200,
  protocolVersion: 4
})
client.on('connect', () => {
  client.subscribe({ 'collectd/#': { qos: 0 }, 'kiln-bench/#': { qos: 0 }, 'spBv1.0/#': { qos: 0 } },
    (err) => {
      if (err) {
        console.error('subscribe failed: ' + err.message)
        process.exit(1)
      }
      process.stdout.write('ready\n')
    })
})
client.on('error', (err) => console.error('mqtt: ' + err.message))

client.on('message', (topic, payload) => {
  if (topic.startsWith('collectd/')) {
    const c = counters.collectd
    c.messages++
    // collectd's mqtt plugin: "<epoch>:<value>[:<value>...]", one value per data source,
    // sent with its terminating NUL.
    const parts = payload.toString('utf8').replace(/\0+$/, '').trim().split(':')
    if (parts.length < 2 || parts.slice(1).some((v) => v === '' || isNaN(Number(v)))) {
      c.bad++
      return
    }
    parts.slice(1).forEach((v, i) => see(c, topic + '#' + i, Number(v)))
  } else if (topic.startsWith('kiln-bench/nr/')) {
    const c = counters.nodered
    c.messages++
    let arr
    try { arr = JSON.parse(payload.toString('utf8')) } catch (e) { arr = null }
    if (!Array.isArray(arr)) {
      c.bad++
      return
    }
    arr.forEach((v, i) => see(c, topic + '#' + i, v))
  } else if (topic.startsWith('spBv1.0/')) {
    const type = topic.split('/')[2]
    if (type !== 'DDATA' && type !== 'NDATA') return
    const c = counters.kiln
    c.messages++
    try { countSparkplug(c, payload) } catch (e) { c.bad++ }
  }
})

function snapshot () {
  const out = {}
  for (const [name, c] of Object.entries(counters)) {
    out[name] = { messages: c.messages, values: c.values, changed: c.changed, keys: c.last.size, bad: c.bad }
  }
  return JSON.stringify(out)
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', () => process.stdout.write(snapshot() + '\n'))
rl.on('close', () => client.end(true, () => process.exit(0)))
