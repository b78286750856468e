'use strict';
// Common start-up: Mosquitto, the tap, kiln-sim and kiln-edge, then the births.

const { startTap } = require('./tap');

const BIRTH_TIMEOUT_MS = 15000;

// Waits for an NBIRTH at or after tap index `from`, then a DBIRTH of each device after it.
async function waitBirths(env, tap, deviceIds, from = 0, what = 'births') {
  return env.waitFor(() => {
    const nbirth = tap.first('NBIRTH', { from });
    if (!nbirth) return null;
    const dbirths = {};
    for (const id of deviceIds) {
      const d = tap.first('DBIRTH', { device: id, from: nbirth.index + 1 });
      if (!d) return null;
      dbirths[id] = d;
    }
    return { nbirth, dbirths };
  }, BIRTH_TIMEOUT_MS, `${what}: NBIRTH then DBIRTH of ${deviceIds.join(', ')} (after tap message #${from})`);
}

// Starts everything for `plant`; returns the pieces and the first births.
async function bootPlant(env, plant, { store = true, brokerOpts = {}, tapOpts = {}, waitDevices } = {}) {
  const broker = await env.startMosquitto(brokerOpts);
  const tap = await startTap(env, broker, tapOpts);
  const sim = await env.startSim(plant.simConfig());
  const edge = await env.startEdge(env.edgeConfig({ broker, devices: plant.edgeDevices(sim), store }));
  const births = await waitBirths(env, tap, waitDevices || plant.devices.map((d) => d.id), 0, 'first births');
  return { broker, tap, sim, edge, ...births };
}

module.exports = { waitBirths, bootPlant, BIRTH_TIMEOUT_MS };
