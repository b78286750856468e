'use strict';
// A "plant": simulated Modbus devices and the matching kiln-edge devices, from one
// description, with what each tag must look like in Sparkplug (alias, datatype, value).

const { DataType } = require('./sparkplug');
const { POLL_MS, TIMEOUT_MS } = require('./checks');

// Sparkplug datatype of an unscaled tag of a Modbus type.
const NATIVE = {
  bool: DataType.Boolean, int16: DataType.Int16, uint16: DataType.UInt16, int32: DataType.Int32,
  uint32: DataType.UInt32, int64: DataType.Int64, uint64: DataType.UInt64, float32: DataType.Float,
  float64: DataType.Double,
};

// devices: [{ id, tags: [{ name, register, type, word_order?, scale?, offset?, deadband?, unit?,
//             sim: { signal, value | min/max/period_s ..., update_ms? }, expect?, approx? }] }]
// Tag ids count all tags of all devices from 0 in order; alias = id + 1.
class Plant {
  constructor(devices, { pollMs = POLL_MS, timeoutMs = TIMEOUT_MS } = {}) {
    this.devices = devices;
    this.pollMs = pollMs;
    this.timeoutMs = timeoutMs;
    let id = 0;
    for (const d of devices) {
      for (const t of d.tags) {
        t.alias = ++id; // id + 1
        const scaled = (t.scale !== undefined && t.scale !== 1) || (t.offset !== undefined && t.offset !== 0);
        t.datatype = t.datatype || (scaled ? DataType.Double : NATIVE[t.type]);
        if (t.value === undefined && t.sim && (t.sim.signal || 'constant') === 'constant') {
          t.value = t.expect !== undefined ? t.expect : t.sim.value;
        }
      }
    }
  }

  device(id) {
    const d = this.devices.find((x) => x.id === id);
    if (!d) throw new Error(`no device ${id}`);
    return d;
  }

  tag(deviceId, name) {
    const t = this.device(deviceId).tags.find((x) => x.name === name);
    if (!t) throw new Error(`no tag ${deviceId}/${name}`);
    return t;
  }

  aliases(deviceId) {
    return this.device(deviceId).tags.map((t) => t.alias);
  }

  deviceOfAlias(alias) {
    for (const d of this.devices) if (d.tags.some((t) => t.alias === alias)) return d.id;
    return undefined;
  }

  simConfig() {
    return {
      servers: this.devices.map((d) => ({
        id: d.id,
        protocol: 'tcp',
        listen: '127.0.0.1:0',
        unit_id: 1,
        registers: d.tags.map((t) => {
          const r = { register: t.register, type: t.type };
          if (t.type !== 'bool') r.word_order = t.word_order || 'ABCD';
          const sim = { signal: 'constant', update_ms: 100, ...t.sim };
          return { ...r, ...sim };
        }),
      })),
    };
  }

  edgeDevices(sim) {
    return this.devices.map((d) => ({
      id: d.id,
      driver: 'modbus-tcp',
      address: sim.address(d.id),
      unit_id: 1,
      poll_ms: d.poll_ms || this.pollMs,
      timeout_ms: d.timeout_ms || this.timeoutMs,
      tags: d.tags.map((t) => {
        const tag = { name: t.name, register: t.register, type: t.type };
        if (t.word_order) tag.word_order = t.word_order;
        for (const k of ['scale', 'offset', 'deadband', 'unit', 'writable', 'min', 'max', 'min_write_interval', 'interlock']) {
          if (t[k] !== undefined) tag[k] = t[k];
        }
        return tag;
      }),
    }));
  }
}

// The plant most tests use: two devices, each with a ramp so data flows all the time.
function standardPlant() {
  return new Plant([
    {
      id: 'press-3',
      tags: [
        { name: 'Temperature', register: 'holding:0', type: 'float32', word_order: 'ABCD', unit: 'degC', sim: { value: 21.5 } },
        { name: 'Pressure', register: 'holding:2', type: 'float32', word_order: 'CDAB', unit: 'bar', sim: { value: 1.25 } },
        { name: 'Level', register: 'holding:4', type: 'int16', sim: { value: -5 } },
        { name: 'Cycle', register: 'holding:10', type: 'uint16', sim: { signal: 'ramp', min: 0, max: 1000, period_s: 10 } },
      ],
    },
    {
      id: 'oven-1',
      tags: [
        { name: 'ZoneTemperature', register: 'holding:0', type: 'float32', word_order: 'CDAB', unit: 'degC', sim: { value: 180.5 } },
        { name: 'Tick', register: 'holding:10', type: 'uint16', sim: { signal: 'ramp', min: 0, max: 1000, period_s: 10 } },
      ],
    },
  ]);
}

module.exports = { Plant, standardPlant, NATIVE };
