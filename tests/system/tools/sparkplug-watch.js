#!/usr/bin/env node
'use strict';
// Prints the Sparkplug B traffic of a broker decoded, one line per message, with metric names
// resolved from the births and quality shown for values that are not Good:
//   node tests/system/tools/sparkplug-watch.js mqtt://127.0.0.1:18830
// Uses Eclipse Tahu's JavaScript codec (npm sparkplug-payload), not Kiln's.

const mqtt = require('mqtt');
const sparkplug = require('sparkplug-payload').get('spBv1.0');

process.stdout.on('error', () => process.exit(0));  // e.g. piped into head
const url = process.argv[2] || 'mqtt://127.0.0.1:1883';
const names = new Map(); // "group/node" + alias -> metric name

function num(v) {
  if (v && typeof v === 'object' && 'low' in v && 'high' in v) return v.toString();
  return v;
}

function show(m, key) {
  let name = m.name;
  if (!name && m.alias !== undefined) name = names.get(`${key}#${num(m.alias)}`) || `#${num(m.alias)}`;
  const props = m.properties || {};
  const status = props['kiln.statusCode'];
  let q = '';
  if (status) q = ` [0x${(Number(num(status.value)) >>> 0).toString(16).toUpperCase().padStart(8, '0')}]`;
  else if (props.Quality) q = ` [Quality ${num(props.Quality.value)}]`;
  const value = m.isNull ? 'null' : JSON.stringify(num(m.value));
  return `${name}=${value}${q}${m.isHistorical ? ' (historical)' : ''}`;
}

const client = mqtt.connect(url, { clientId: `sparkplug-watch-${process.pid}`, reconnectPeriod: 1000 });
client.on('connect', () => {
  client.subscribe('spBv1.0/#', { qos: 0 });
  console.log(`watching ${url} spBv1.0/# (Ctrl-C to stop)`);
});
client.on('error', (e) => console.error(`mqtt: ${e.message}`));
client.on('message', (topic, payload) => {
  const parts = topic.split('/');
  const time = new Date().toISOString().slice(11, 23);
  if (parts[1] === 'STATE') {
    console.log(`${time} STATE ${parts[2]} ${payload.toString()}`);
    return;
  }
  const [, group, type, node, device] = parts;
  let p;
  try {
    p = sparkplug.decodePayload(payload);
  } catch (e) {
    console.log(`${time} ${topic}: undecodable (${payload.length} bytes): ${e.message}`);
    return;
  }
  const key = `${group}/${node}`;
  if (type === 'NBIRTH' || type === 'DBIRTH') {
    for (const m of p.metrics || []) if (m.alias !== undefined) names.set(`${key}#${num(m.alias)}`, m.name);
  }
  const where = device ? `${node}/${device}` : node;
  const seq = p.seq !== undefined ? ` seq=${num(p.seq)}` : '';
  const metrics = (p.metrics || []).map((m) => show(m, key)).join(' ');
  console.log(`${time} ${type.padEnd(6)} ${where}${seq} ${metrics}`);
});
