#!/usr/bin/env node
'use strict';
// A controllable OPC UA server (node-opcua) for the system tests of kiln-edge's OPC UA driver:
//   node tools/opcua-server.js --port N --pki DIR [--bulk COUNT] [--bulk-period MS]
//
// Listens on opc.tcp://127.0.0.1:N with SecurityPolicy None / MessageSecurityMode None only.
// Anonymous users are accepted, and so is the user "operator" with the password "secret" through
// a UserName token policy whose securityPolicyUri is SecurityPolicy#None (the password travels in
// clear; node-opcua itself offers only policies that need it RSA-encrypted). Certificates
// (created on the first start, ~0.7 s) live under DIR.
//
// Address space, namespace 1, folder Objects/Plant, string NodeIds:
//   ns=1;s=Counter      Int32    +1 every 100 ms, explicit sourceTimestamp; each change is printed
//                                as `value Counter <int> <sourceTimestamp epoch ms>`
//   ns=1;s=Temperature  Double   20 + 5 sin(t), every 100 ms, 3 decimals
//   ns=1;s=Sensor       Double   42.5 (its StatusCode is set with `status`)
//   ns=1;s=Setpoint     Double   50, writable
//   ns=1;s=Mode         Int32    1, writable
//   ns=1;s=Running      Boolean  true
//   ns=1;s=Label        String   "line-1"
// With --bulk COUNT, folder Objects/Plant/Bulk holds ns=1;s=Bulk.0 ... Bulk.<COUNT-1>, Double,
// value i + tick, where tick = floor(now / period) and the sourceTimestamp is tick * period: every
// variable changes every --bulk-period ms (default 100). They are computed when read or sampled,
// so the server costs nothing for them unless a client samples them. They raise no change
// events: monitor them with a sampling interval > 0 (a requested 0, exception-based, would never
// report a change).
//
// Control on stdin, one command per line, each answered on stdout with `ok` or `error <reason>`:
//   status <Name> <StatusCodeName>   re-set the current value with that StatusCode and a fresh
//                                     sourceTimestamp (kept by the 100 ms updates until changed)
//   set <Name> <value>               set a value (parsed per the variable's type), Good
//   get <Name>                       answers `ok <value>`
//   quit                             shut down and exit 0 (so does the end of stdin)
// Prints `ready opc.tcp://127.0.0.1:<port>` once it accepts connections.

const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { parseArgs } = require('node:util');

// node-opcua's own log lines go to the console; keep stdout for this protocol.
const out = (line) => process.stdout.write(line + '\n');
console.log = (...a) => console.error(...a);
console.info = (...a) => console.error(...a);

const {
  OPCUAServer, OPCUACertificateManager, Variant, DataType, DataValue, StatusCodes, SecurityPolicy,
  MessageSecurityMode, RegisterServerMethod, UserTokenPolicy, UserTokenType,
} = require('node-opcua');

const USER = 'operator';
const PASSWORD = 'secret';
const TICK_MS = 100;

function usage(msg) {
  process.stderr.write(`opcua-server: ${msg}\nusage: node tools/opcua-server.js --port N --pki DIR [--bulk COUNT] [--bulk-period MS]\n`);
  process.exit(2);
}

let opts;
try {
  opts = parseArgs({
    options: {
      port: { type: 'string' },
      pki: { type: 'string' },
      bulk: { type: 'string', default: '0' },
      'bulk-period': { type: 'string', default: '100' },
    },
  }).values;
} catch (e) {
  usage(e.message);
}
const port = Number(opts.port);
const bulk = Number(opts.bulk);
const bulkPeriod = Number(opts['bulk-period']);
if (!Number.isInteger(port) || port <= 0 || port > 65535) usage(`bad --port ${opts.port}`);
if (!opts.pki) usage('--pki DIR is required');
if (!Number.isInteger(bulk) || bulk < 0) usage(`bad --bulk ${opts.bulk}`);
if (!Number.isInteger(bulkPeriod) || bulkPeriod <= 0) usage(`bad --bulk-period ${opts['bulk-period']}`);

// The variables of the Plant folder: their type and initial value.
const PLANT = [
  { name: 'Counter', type: 'Int32', value: 0 },
  { name: 'Temperature', type: 'Double', value: 20 },
  { name: 'Sensor', type: 'Double', value: 42.5 },
  { name: 'Setpoint', type: 'Double', value: 50, writable: true },
  { name: 'Mode', type: 'Int32', value: 1, writable: true },
  { name: 'Running', type: 'Boolean', value: true },
  { name: 'Label', type: 'String', value: 'line-1' },
];

// Text -> value of a type, or throws with the reason.
function parseValue(type, text) {
  switch (type) {
    case 'Int32': {
      if (!/^[+-]?\d+$/.test(text)) throw new Error(`not an Int32: '${text}'`);
      const v = Number(text);
      if (v < -2147483648 || v > 2147483647) throw new Error(`out of Int32 range: ${text}`);
      return v;
    }
    case 'Double': {
      const v = Number(text);
      if (text.trim() === '' || Number.isNaN(v)) throw new Error(`not a Double: '${text}'`);
      return v;
    }
    case 'Boolean':
      if (/^(true|1)$/i.test(text)) return true;
      if (/^(false|0)$/i.test(text)) return false;
      throw new Error(`not a Boolean: '${text}'`);
    case 'String':
      return text;
    default:
      throw new Error(`unsupported type ${type}`);
  }
}

function showValue(v) {
  return typeof v === 'string' ? v : String(v);
}

let server = null;
let stopping = null;
const timers = [];
const vars = new Map(); // name -> { def, node, status }

// Sets a plant variable's value with the variable's current status and a source time (ms).
// Counter values are printed before they exist on the server: a reader of stdout knows a value's
// source time before any client can have seen the value.
function setVar(v, value, sourceMs = Date.now()) {
  if (v.def.name === 'Counter') out(`value Counter ${value} ${sourceMs}`);
  v.node.setValueFromSource(new Variant({ dataType: DataType[v.def.type], value }), v.status, new Date(sourceMs));
}

function currentValue(v) {
  return v.node.readValue().value.value;
}

function buildAddressSpace() {
  const addressSpace = server.engine.addressSpace;
  const ns = addressSpace.getOwnNamespace();
  const plant = ns.addFolder(addressSpace.rootFolder.objects, { nodeId: 's=Plant', browseName: 'Plant' });
  const now = Date.now();
  for (const def of PLANT) {
    const access = def.writable ? 'CurrentRead | CurrentWrite' : 'CurrentRead';
    const node = ns.addVariable({
      organizedBy: plant,
      nodeId: `s=${def.name}`,
      browseName: def.name,
      dataType: def.type,
      accessLevel: access,
      userAccessLevel: access,
      minimumSamplingInterval: 0, // values are pushed: sampled at any rate, or exception-based
    });
    const v = { def, node, status: StatusCodes.Good };
    vars.set(def.name, v);
    setVar(v, def.value, now);
  }

  if (bulk > 0) {
    const folder = ns.addFolder(plant, { nodeId: 's=Bulk', browseName: 'Bulk' });
    for (let i = 0; i < bulk; i++) {
      const node = ns.addVariable({
        organizedBy: folder,
        nodeId: `s=Bulk.${i}`,
        browseName: `Bulk.${i}`,
        dataType: 'Double',
        accessLevel: 'CurrentRead',
        userAccessLevel: 'CurrentRead',
        minimumSamplingInterval: Math.min(bulkPeriod, TICK_MS),
      });
      // The value of the current period, one DataValue per period, made by the first read in it.
      // Reads and samples go straight to it: node-opcua's own paths (a timestamped_get getter,
      // or setValueFromSource on every variable) cost so much per sample that 10,000 items at
      // 100 ms top out at ~30,000 notifications/s on one core; this way ~92,000/s at ~70 % of a
      // core (the rest of the 100,000 are samples that fell twice into one period). Nothing
      // else reads these nodes (no access checks needed: they are read-only to everybody).
      let tick = -1;
      let dv = null;
      const current = () => {
        const t = Math.floor(Date.now() / bulkPeriod);
        if (t !== tick) {
          tick = t;
          const ts = new Date(t * bulkPeriod);
          dv = new DataValue({
            value: { dataType: DataType.Double, value: i + t },
            statusCode: StatusCodes.Good,
            sourceTimestamp: ts,
            serverTimestamp: ts,
          });
        }
        return dv;
      };
      node.readValueAsync = (_context, callback) => callback(null, current());
      node.readValue = () => current().clone();
    }
  }
}

function startUpdates() {
  const counter = vars.get('Counter');
  const temperature = vars.get('Temperature');
  timers.push(setInterval(() => {
    const now = Date.now();
    setVar(counter, currentValue(counter) + 1, now);
    setVar(temperature, Math.round((20 + 5 * Math.sin(now / 1000)) * 1000) / 1000, now);
  }, TICK_MS));
}

// Offers a UserName token policy with SecurityPolicy None on the None endpoint (node-opcua's
// own UserName policies on it all ask for an encrypted password; the server option that would
// add an unencrypted one, allowUnsecurePassword, is not passed on by OPCUAServer in 2.186.4).
// The endpoint descriptions are the objects GetEndpoints, CreateSession and ActivateSession use.
function offerUserNamePolicyWithoutEncryption() {
  for (const endpoint of server.endpoints) {
    for (const desc of endpoint.endpointDescriptions()) {
      if (desc.securityPolicyUri !== SecurityPolicy.None) continue;
      const tokens = desc.userIdentityTokens || [];
      if (tokens.some((t) => t.tokenType === UserTokenType.UserName && t.securityPolicyUri === SecurityPolicy.None)) continue;
      tokens.unshift(new UserTokenPolicy({
        policyId: 'username_none',
        tokenType: UserTokenType.UserName,
        issuedTokenType: null,
        issuerEndpointUrl: null,
        securityPolicyUri: SecurityPolicy.None,
      }));
      desc.userIdentityTokens = tokens;
    }
  }
}

async function handle(line) {
  const trimmed = line.trim();
  if (!trimmed) return null;
  const [cmd, name] = trimmed.split(/\s+/, 2);
  // `set Label` keeps the rest of the line as it is (a string may hold spaces).
  const rest = name ? trimmed.slice(trimmed.indexOf(name, cmd.length) + name.length).replace(/^\s/, '') : '';
  if (cmd === 'quit') {
    out('ok');
    shutdown(0);
    return null;
  }
  if (!['status', 'set', 'get'].includes(cmd)) return `error unknown command '${cmd}'`;
  if (!name) return `error usage: ${cmd} <Name>${cmd === 'get' ? '' : ' <value>'}`;
  const v = vars.get(name);
  if (!v) return `error unknown variable '${name}' (${[...vars.keys()].join(', ')})`;
  if (cmd === 'get') return `ok ${showValue(currentValue(v))}`;
  if (cmd === 'status') {
    const codeName = rest.trim();
    const code = Object.prototype.hasOwnProperty.call(StatusCodes, codeName) ? StatusCodes[codeName] : undefined;
    if (!code || typeof code.value !== 'number') return `error unknown StatusCode '${codeName}'`;
    v.status = code;
    setVar(v, currentValue(v));
    return 'ok';
  }
  // set
  let value;
  try {
    value = parseValue(v.def.type, v.def.type === 'String' ? rest : rest.trim());
  } catch (e) {
    return `error ${e.message}`;
  }
  v.status = StatusCodes.Good;
  setVar(v, value);
  return 'ok';
}

function shutdown(code) {
  if (stopping) return stopping;
  for (const t of timers) clearInterval(t);
  stopping = (async () => {
    const force = setTimeout(() => process.exit(code), 3000);
    force.unref();
    try {
      if (server) await server.shutdown(0);
    } catch (e) {
      process.stderr.write(`opcua-server: shutdown: ${e.stack || e}\n`);
    }
    process.exit(code);
  })();
  return stopping;
}

async function main() {
  const pki = path.resolve(opts.pki);
  fs.mkdirSync(pki, { recursive: true });
  const serverCertificateManager = new OPCUACertificateManager({
    rootFolder: path.join(pki, 'server'), automaticallyAcceptUnknownCertificate: true,
  });
  const userCertificateManager = new OPCUACertificateManager({
    rootFolder: path.join(pki, 'user'), automaticallyAcceptUnknownCertificate: true,
  });
  server = new OPCUAServer({
    port,
    host: '127.0.0.1',
    hostname: '127.0.0.1',
    securityPolicies: [SecurityPolicy.None],
    securityModes: [MessageSecurityMode.None],
    allowAnonymous: true,
    registerServerMethod: RegisterServerMethod.HIDDEN,
    serverCertificateManager,
    userCertificateManager,
    userManager: { isValidUser: (userName, password) => userName === USER && password === PASSWORD },
    buildInfo: { productName: 'kiln-e2e-opcua-server' },
    // A client that vanished (kill -9) leaves a session; a new one gets its own. Enough room for both.
    maxConnectionsPerEndpoint: 50,
    serverCapabilities: { maxSessions: 50 },
  });
  await server.initialize();
  buildAddressSpace();
  offerUserNamePolicyWithoutEncryption();
  await server.start();
  startUpdates();
  out(`ready opc.tcp://127.0.0.1:${port}`);
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
let queue = Promise.resolve();
rl.on('line', (line) => {
  // One command at a time, answers in order.
  queue = queue.then(async () => {
    if (stopping) return;
    let answer;
    try {
      answer = await handle(line);
    } catch (e) {
      answer = `error ${String(e.message || e).split('\n')[0]}`;
    }
    if (answer !== null) out(answer);
  });
});
rl.on('close', () => { queue.then(() => shutdown(0)); });
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.stdout.on('error', () => process.exit(0));

main().catch((e) => {
  process.stderr.write(`opcua-server: ${e.stack || e}\n`);
  process.exit(1);
});
