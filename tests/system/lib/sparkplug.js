'use strict';
// Sparkplug B decoding for the observer, done by an implementation that is not Kiln's:
// Eclipse Tahu's JS codec (npm sparkplug-payload 1.0.3). Values come from Tahu's decoder;
// field *presence* (seq absent, is_null without a value, alias absent...) comes from the
// protobuf classes generated from the spec's proto2 schema that ship inside the same package.
//
// Two Tahu 1.0.3 quirks are smoothed over here (PROTOCOLS.md A1.7):
// - UInt32 is read only from long_value; the spec puts it in int_value, so when Tahu gives
//   nothing and int_value is set, that is used.
// - 64-bit numbers are Long objects; they are turned into JS numbers (all test values are small).

const sparkplug = require('sparkplug-payload').get('spBv1.0');
const Proto = require('sparkplug-payload/lib/sparkplugPayloadProto');

const RawPayload = Proto.org.eclipse.tahu.protobuf.Payload;

const DataType = Object.freeze({
  Int8: 1, Int16: 2, Int32: 3, Int64: 4, UInt8: 5, UInt16: 6, UInt32: 7, UInt64: 8,
  Float: 9, Double: 10, Boolean: 11, String: 12, DateTime: 13, Text: 14, UUID: 15,
});

// OPC UA StatusCodes used by kiln-edge (PROTOCOLS.md A2.6).
const StatusCode = Object.freeze({
  BadTimeout: 0x800a0000,
  BadNoCommunication: 0x80310000,
  BadNodeIdUnknown: 0x80340000,
});

const Quality = Object.freeze({ Bad: 0, Good: 192, Stale: 500 });

function isLong(x) {
  return x !== null && typeof x === 'object' && typeof x.low === 'number' && typeof x.high === 'number';
}

// A Long (signed or not) or a number as a JS number.
function num(x) {
  if (x === undefined || x === null) return x;
  if (isLong(x)) {
    const high = x.unsigned ? x.high >>> 0 : x.high;
    return high * 4294967296 + (x.low >>> 0);
  }
  return x;
}

function has(obj, field) {
  return Object.prototype.hasOwnProperty.call(obj, field);
}

// The value of a raw Metric / PropertyValue by datatype, accepting either integer field.
function rawValue(raw, datatype) {
  const int = has(raw, 'intValue') ? raw.intValue : undefined;
  const long = has(raw, 'longValue') ? raw.longValue : undefined;
  const anyInt = () => (int !== undefined ? int : long !== undefined ? num(long) : undefined);
  switch (datatype) {
    case DataType.Int8: { const v = anyInt(); return v === undefined ? v : (v << 24) >> 24; }
    case DataType.Int16: { const v = anyInt(); return v === undefined ? v : (v << 16) >> 16; }
    case DataType.Int32: { const v = anyInt(); return v === undefined ? v : v | 0; }
    case DataType.UInt8: case DataType.UInt16: case DataType.UInt32: {
      const v = int !== undefined ? int : long !== undefined ? isLong(long) ? long.low : long : undefined;
      return v === undefined ? v : v >>> 0;
    }
    case DataType.Int64: return long === undefined ? int : num(isLong(long) ? { ...long, unsigned: false } : long);
    case DataType.UInt64: case DataType.DateTime: return long === undefined ? int : num(long);
    case DataType.Float: return raw.floatValue;
    case DataType.Double: return raw.doubleValue;
    case DataType.Boolean: return raw.booleanValue;
    case DataType.String: case DataType.Text: case DataType.UUID: return raw.stringValue;
    default: return undefined;
  }
}

// Tahu's decoded value, normalized: Longs become numbers; UInt32 (Tahu reads it as a signed
// int from long_value, or not at all from int_value) is re-read as unsigned.
function normalizeTahuValue(tahuValue, datatype, raw) {
  if (datatype === DataType.UInt32 || datatype === DataType.UInt16 || datatype === DataType.UInt8) {
    return rawValue(raw, datatype);
  }
  if (isLong(tahuValue)) return num(tahuValue);
  return tahuValue;
}

function decodeProperties(rawSet) {
  if (!rawSet) return undefined;
  const out = {};
  const keys = rawSet.keys || [];
  const values = rawSet.values || [];
  for (let i = 0; i < keys.length; i++) {
    const pv = values[i] || {};
    const type = pv.type;
    out[keys[i]] = {
      type,
      isNull: pv.isNull === true,
      value: pv.isNull === true ? null : rawValue(pv, type),
    };
  }
  return out;
}

// Decodes a Sparkplug B payload. Throws on malformed input (as Tahu does).
function decode(buf) {
  const tahu = sparkplug.decodePayload(buf);
  const raw = RawPayload.decode(buf);
  const rawMetrics = raw.metrics || [];
  const metrics = (tahu.metrics || []).map((tm, i) => {
    const rm = rawMetrics[i];
    const datatype = has(rm, 'datatype') ? rm.datatype : undefined;
    const isNull = has(rm, 'isNull') && rm.isNull === true;
    return {
      name: has(rm, 'name') ? rm.name : undefined,
      alias: has(rm, 'alias') ? num(rm.alias) : undefined,
      datatype,
      type: tm.type,
      timestamp: has(rm, 'timestamp') ? num(rm.timestamp) : undefined,
      isNull,
      hasValue: rm.value !== undefined && rm.value !== null, // the oneof is set
      valueField: rm.value || undefined,
      value: isNull ? null : normalizeTahuValue(tm.value, datatype, rm),
      properties: has(rm, 'properties') ? decodeProperties(rm.properties) : undefined,
      isHistorical: has(rm, 'isHistorical') ? rm.isHistorical : undefined,
      isTransient: has(rm, 'isTransient') ? rm.isTransient : undefined,
    };
  });
  return {
    timestamp: has(raw, 'timestamp') ? num(raw.timestamp) : undefined,
    hasSeq: has(raw, 'seq'),
    seq: has(raw, 'seq') ? num(raw.seq) : undefined,
    metrics,
    tahu,
  };
}

// Encodes with Tahu's encoder (for the PEER's commands).
function encode(payload) {
  return Buffer.from(sparkplug.encodePayload(payload));
}

function rebirthCommand(timestamp = Date.now()) {
  return encode({
    timestamp,
    metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true, timestamp }],
  });
}

// "spBv1.0/G/TYPE/E[/D]" -> parts, or null for topics outside the namespace.
function parseTopic(topic) {
  const parts = topic.split('/');
  if (parts[0] !== 'spBv1.0' || parts.length < 4) return null;
  return { namespace: parts[0], group: parts[1], type: parts[2], node: parts[3], device: parts[4], levels: parts.length };
}

function hex(n) {
  return n === undefined || n === null ? String(n) : '0x' + (n >>> 0).toString(16).padStart(8, '0');
}

module.exports = {
  DataType, StatusCode, Quality, decode, encode, rebirthCommand, parseTopic, num, hex,
};
