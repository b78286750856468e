'use strict';
// TAP: an MQTT 5 observer on spBv1.0/# at QoS 2 with Retain-As-Published, so it sees the
// QoS and retain flag each message was published with, in arrival order.
// PEER: a plain MQTT client that publishes commands (NCMD) like a host application would.

const mqtt = require('mqtt');
const { notifyChange, waitFor } = require('./harness');
const sp = require('./sparkplug');

let clientCounter = 0;
function clientId(kind) {
  clientCounter += 1;
  return `kiln-e2e-${kind}-${process.pid}-${clientCounter}`;
}

function connectClient(url, options, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, options);
    const timer = setTimeout(() => {
      client.end(true);
      reject(new Error(`MQTT client ${options.clientId}: no CONNACK from ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    client.once('connect', () => { clearTimeout(timer); resolve(client); });
    client.on('error', () => { /* reconnect handles it; the timeout reports */ });
  });
}

class Tap {
  // persistent: keep the session (and queued messages) over a broker restart; needs a broker
  // with persistence and `queue_qos0_messages true` to keep QoS 0 messages.
  // describeMetrics: at most this many metrics per message in describe() (big plants).
  constructor(broker, { persistent = false, filter = 'spBv1.0/#', describeMetrics = Infinity } = {}) {
    this.broker = broker;
    this.describeMetrics = describeMetrics;
    this.filter = filter;
    this.persistent = persistent;
    this.messages = [];
    this.t0 = Date.now();
    this.client = null;
    this.connects = 0;
    this.syncCounter = 0;
  }

  async start() {
    const options = {
      clientId: clientId('tap'),
      protocolVersion: 5,
      clean: !this.persistent,
      reconnectPeriod: 100,
      connectTimeout: 5000,
      keepalive: 30,
      resubscribe: true,
    };
    if (this.persistent) options.properties = { sessionExpiryInterval: 3600 };
    this.client = await connectClient(this.broker.url, options);
    this.connects = 1;
    this.client.on('connect', () => { this.connects += 1; notifyChange(); });
    this.client.on('message', (topic, payload, packet) => this._record(topic, payload, packet));
    await new Promise((resolve, reject) => {
      this.client.subscribe({ [this.filter]: { qos: 2, rap: true }, 'kiln-e2e/sync/#': { qos: 2 } }, (err, granted) => {
        if (err) return reject(err);
        const bad = granted.filter((g) => g.qos > 2);
        if (bad.length) return reject(new Error(`subscription refused: ${JSON.stringify(bad)}`));
        resolve();
      });
    });
    return this;
  }

  _record(topic, payload, packet) {
    if (topic.startsWith('kiln-e2e/sync/')) {
      this.lastSync = topic;
      notifyChange();
      return;
    }
    const parsed = sp.parseTopic(topic);
    const msg = {
      index: this.messages.length,
      t: Date.now(),
      t0: this.t0,
      topic,
      type: parsed ? parsed.type : null,
      group: parsed ? parsed.group : null,
      node: parsed ? parsed.node : null,
      device: parsed ? parsed.device : undefined,
      levels: parsed ? parsed.levels : topic.split('/').length,
      qos: packet.qos,
      retain: packet.retain,
      dup: packet.dup,
      payload: Buffer.from(payload),
      decoded: null,
      decodeError: null,
    };
    try {
      msg.decoded = sp.decode(payload);
    } catch (e) {
      msg.decodeError = e.message;
    }
    this.messages.push(msg);
    notifyChange();
  }

  // Messages published by the edge node (and by the broker for it: the Will NDEATH).
  edgeMessages(from = 0) {
    return this.messages.slice(from).filter((m) => ['NBIRTH', 'NDATA', 'NDEATH', 'DBIRTH', 'DDATA', 'DDEATH'].includes(m.type));
  }

  // Messages after index `from` matching type (and device, when given).
  find(type, { device, from = 0, where } = {}) {
    return this.messages.slice(from).filter((m) => m.type === type && (device === undefined || m.device === device) && (!where || where(m)));
  }

  first(type, opts) {
    return this.find(type, opts)[0];
  }

  get length() {
    return this.messages.length;
  }

  // A barrier: publishes a marker at QoS 1 and waits until it comes back, so every message
  // the broker handled before it has been delivered to the tap.
  async sync(timeoutMs = 5000) {
    this.syncCounter += 1;
    const topic = `kiln-e2e/sync/${this.client.options.clientId}/${this.syncCounter}`;
    await new Promise((resolve, reject) => this.client.publish(topic, 'sync', { qos: 1 }, (e) => (e ? reject(e) : resolve())));
    await waitFor(() => this.lastSync === topic, timeoutMs, `tap sync marker ${topic}`);
  }

  describe(last = 60) {
    const lines = [`--- tap on ${this.broker.url}: ${this.messages.length} messages (last ${last}) ---`];
    for (const m of this.messages.slice(-last)) lines.push(formatMessage(m, this.t0, this.describeMetrics));
    return lines.join('\n');
  }

  async close() {
    if (this.client) await new Promise((r) => this.client.end(true, {}, r));
  }
}

function formatValue(metric) {
  if (metric.isNull) return 'null';
  if (typeof metric.value === 'number' && metric.datatype === sp.DataType.UInt32 && metric.value > 0x7fffffff) return String(metric.value);
  return JSON.stringify(metric.value);
}

function formatMetric(mt) {
  const id = mt.name !== undefined ? `${JSON.stringify(mt.name)}${mt.alias !== undefined ? '#' + mt.alias : ''}` : `#${mt.alias}`;
  let s = `${id}:${mt.type}=${formatValue(mt)}${mt.isHistorical ? '(hist)' : ''}`;
  if (mt.properties) {
    const props = Object.entries(mt.properties).map(([k, v]) => `${k}=${k === 'kiln.statusCode' ? sp.hex(v.value) : JSON.stringify(v.value)}`);
    s += `{${props.join(',')}}`;
  }
  return s;
}

function formatMessage(m, t0 = m.t0 || 0, maxMetrics = Infinity) {
  let s = `#${m.index} +${m.t - t0}ms ${m.topic} q${m.qos} r${m.retain ? 1 : 0}${m.dup ? ' d1' : ''}`;
  // STATE payloads are JSON, not protobuf.
  if (m.type === 'STATE' || m.topic.startsWith('spBv1.0/STATE/')) return `${s} ${m.payload.toString('utf8').slice(0, 120)}`;
  if (m.decodeError) return `${s} UNDECODABLE (${m.decodeError}) ${m.payload.toString('hex').slice(0, 64)}`;
  const d = m.decoded;
  s += d.hasSeq ? ` seq=${d.seq}` : ' (no seq)';
  const shown = d.metrics.length > maxMetrics ? d.metrics.slice(0, maxMetrics) : d.metrics;
  const more = d.metrics.length - shown.length;
  s += ` [${shown.map(formatMetric).join(' ')}${more ? ` ... ${more} more` : ''}]`;
  return s;
}

class Peer {
  constructor(broker) {
    this.broker = broker;
  }

  async start() {
    this.client = await connectClient(this.broker.url, {
      clientId: clientId('peer'), protocolVersion: 4, clean: true, reconnectPeriod: 100, connectTimeout: 5000,
    });
    return this;
  }

  publish(topic, payload, opts = { qos: 0, retain: false }) {
    return new Promise((resolve, reject) => this.client.publish(topic, payload, opts, (e) => (e ? reject(e) : resolve())));
  }

  async close() {
    if (this.client) await new Promise((r) => this.client.end(true, {}, r));
  }
}

// Starts a tap (registered with the env for teardown and failure reports).
async function startTap(env, broker, opts) {
  const tap = new Tap(broker, opts);
  env.addTap(tap);
  return tap.start();
}

async function startPeer(env, broker) {
  const peer = new Peer(broker);
  env.onClose(() => peer.close());
  return peer.start();
}

module.exports = { Tap, Peer, startTap, startPeer, formatMessage };
