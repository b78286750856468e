'use strict';
// OpcUaPeer: a real OPC UA server (node-opcua, tools/opcua-server.js) as a child process,
// controlled over stdin like kiln-sim (`status`, `set`, `get`, `quit`; answers `ok` / `error`).
// It records the source time of every Counter value it produced (`value Counter N MS` lines),
// so a test can check the timestamps the edge publishes. Registered with the env: its output
// goes into failure reports and teardown stops it (after the edges).

const assert = require('node:assert/strict');
const path = require('node:path');
const { Proc, waitFor, freePort, sendControlLine, quitOrKill } = require('./harness');
const { formatMessage } = require('./tap');

const SERVER = path.join(__dirname, '..', 'tools', 'opcua-server.js');
// Loading node-opcua takes ~2 s, the first start makes certificates (~0.7 s): generous on a
// loaded 2-core machine.
const START_TIMEOUT_MS = 30000;

class OpcUaPeer {
  // bulk / bulkPeriod: --bulk COUNT --bulk-period MS of the server.
  constructor(env, { name = 'opcua-server', bulk = 0, bulkPeriod } = {}) {
    this.env = env;
    this.name = name;
    this.bulk = bulk;
    this.bulkPeriod = bulkPeriod;
    this.pki = path.join(env.dir, `${name}-pki`); // kept over restarts: certificates made once
    this.port = null;
    this.endpoint = null;
    this.proc = null;
    this.runs = 0;
    this.values = new Map(); // Counter value -> source time (epoch ms), of the current run
    this.counter = []; // [{ value, sourceMs }] of the current run, in order
    this.pending = [];
    this.commandLog = [];
    env.peers.push(this);
  }

  // Starts the server on `port` (a free one when not given) and waits for its ready line.
  // A restart (after stop() or kill()) may reuse the port; Counter starts again from 0.
  async start(port, timeoutMs = START_TIMEOUT_MS) {
    if (this.proc && this.proc.running) throw new Error(`${this.name} already running`);
    this.port = port || this.port || await freePort();
    this.runs += 1;
    this.endpoint = null;
    this.values = new Map();
    this.counter = [];
    const args = [SERVER, '--port', String(this.port), '--pki', this.pki];
    if (this.bulk) args.push('--bulk', String(this.bulk));
    if (this.bulkPeriod) args.push('--bulk-period', String(this.bulkPeriod));
    const proc = new Proc(`${this.name}#${this.runs}`, process.execPath, args,
      { logFile: path.join(this.env.dir, `${this.name}.log`) });
    proc._onLine = (tag, line) => {
      if (tag !== 'out') return;
      const value = line.match(/^value Counter (-?\d+) (\d+)$/);
      if (value) {
        const v = Number(value[1]);
        const sourceMs = Number(value[2]);
        this.values.set(v, sourceMs);
        this.counter.push({ value: v, sourceMs });
        return;
      }
      const ready = line.match(/^ready (opc\.tcp:\/\/\S+)$/);
      if (ready) {
        this.endpoint = ready[1];
        return;
      }
      if (line === 'ok' || line.startsWith('ok ') || line.startsWith('error')) {
        const waiter = this.pending.shift();
        if (waiter) waiter(line);
      }
    };
    proc.child.on('exit', () => {
      for (const w of this.pending.splice(0)) w(`error: ${this.name} exited`);
    });
    this.proc = this.env.track(proc);
    await waitFor(() => {
      proc.assertRunning();
      return this.endpoint !== null;
    }, timeoutMs, `${this.name} ready line (opc.tcp://127.0.0.1:${this.port})`, () => this.describe());
    return this;
  }

  get running() {
    return !!this.proc && this.proc.running;
  }

  // Sends one control line; resolves with the answer line (`ok`, `ok <value>` or `error ...`).
  send(line, timeoutMs = 5000) {
    return sendControlLine(this, line, timeoutMs, () => this.describe());
  }

  // Sends a control line and requires `ok` (or `ok <value>`); returns the answer.
  async cmd(line) {
    const answer = await this.send(line);
    if (answer !== 'ok' && !answer.startsWith('ok ')) throw new Error(`${this.name}: '${line}' answered '${answer}'`);
    return answer;
  }

  // The server's current value of a Plant variable, as text (`get <Name>`).
  async get(name) {
    const answer = await this.cmd(`get ${name}`);
    return answer.slice(3);
  }

  // `quit`, else SIGKILL after 3 s.
  async stop() {
    if (!this.running) return;
    await quitOrKill(this.proc);
  }

  // kill -9, waits for the exit.
  async kill() {
    if (!this.proc) return;
    await this.proc.stop('SIGKILL');
  }

  // Output for failure reports, without the Counter lines (10 a second).
  describe(n = 20) {
    if (!this.proc) return `--- ${this.name}: not started ---`;
    const other = this.proc.stdoutLines.filter((l) => !l.startsWith('value Counter '));
    const last = this.counter[this.counter.length - 1];
    const lines = [`--- ${this.name} (${this.endpoint || `port ${this.port}, not ready`}; ` +
      `${this.proc.running ? 'running' : `exited ${JSON.stringify(this.proc.exit)}`}; ` +
      `${this.counter.length} Counter values${last ? `, last ${last.value} at ${last.sourceMs}` : ''}) ---`];
    if (other.length) lines.push(`stdout (last ${n} without Counter lines):`, ...other.slice(-n));
    if (this.proc.stderrLines.length) lines.push(`stderr (last ${n}):`, ...this.proc.stderrLines.slice(-n));
    return lines.join('\n');
  }
}

// Starts an OpcUaPeer (on `port` when given).
async function startOpcUaPeer(env, opts = {}, port) {
  const peer = new OpcUaPeer(env, opts);
  return peer.start(port);
}

// A skip reason when node-opcua cannot run here, else false. node-opcua 2.186.4 is ES modules
// only: CommonJS code loads it with require() of ES modules, on by default from Node 20.19 (it
// declares Node >= 22 but works on 20.19+). As with missingBinaries, nothing is skipped under
// CTest (KILN_E2E_REQUIRE_BINARIES=1): the test fails instead.
function nodeOpcuaUnavailable() {
  // Debian 12's own nodejs is 18: a skip that says why, also under CTest.
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19)) {
    return `node-opcua needs require() of ES modules (Node >= 20.19), this is Node ${process.version}`;
  }
  if (process.env.KILN_E2E_REQUIRE_BINARIES === '1') return false;
  try {
    require.resolve('node-opcua');
  } catch {
    return 'node-opcua is not installed (npm ci in tests/system)';
  }
  return false;
}

// Checks Counter values ([{ msg, m }] from the tap) against the source times the server printed
// for them (exact, ms): each must be a value of the peer's current run, stamped with its time.
function assertCounterTimes(peer, values, what) {
  for (const { msg, m } of values) {
    assert.ok(peer.values.has(m.value), `${what}: Counter ${m.value} was never a value of the server (${peer.name}#${peer.runs}): ${formatMessage(msg)}`);
    assert.equal(m.timestamp, peer.values.get(m.value),
      `${what}: Counter ${m.value} has metric timestamp ${m.timestamp}, its source time is ${peer.values.get(m.value)}: ${formatMessage(msg)}`);
  }
}

// node-opcua's StatusCode table ({ name -> { value, name } }): the numbers tests compare with.
function statusCodes() {
  return require('node-opcua-status-code').StatusCodes;
}

module.exports = { OpcUaPeer, startOpcUaPeer, nodeOpcuaUnavailable, statusCodes, assertCounterTimes, SERVER };
