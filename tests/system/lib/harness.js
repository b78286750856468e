'use strict';
// Test harness for the kiln-edge system tests: real Mosquitto, kiln-sim and kiln-edge on
// free loopback ports, each test in its own temp dir. Nothing here sleeps for a fixed time:
// waits are conditions (a port accepting, a ready line, an HTTP answer, recorded messages)
// re-checked whenever something is recorded, with a generous timeout.

const { spawn, spawnSync } = require('node:child_process');
const { EventEmitter } = require('node:events');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN_DIR = process.env.KILN_BIN_DIR || path.join(REPO_ROOT, 'build', 'bin');
const MOSQUITTO = process.env.KILN_MOSQUITTO || '/usr/sbin/mosquitto';

function binPath(name) {
  return path.join(BIN_DIR, name);
}

// Which of kiln-edge / kiln-sim are missing: a skip reason for `node --test` run by hand while
// the binaries are not built. With KILN_E2E_REQUIRE_BINARIES=1 (set by CTest) nothing is
// skipped, so a missing binary fails the test ("cannot start ...").
function missingBinaries(names = ['kiln-edge', 'kiln-sim']) {
  if (process.env.KILN_E2E_REQUIRE_BINARIES === '1') return false;
  const missing = names.filter((n) => !fs.existsSync(binPath(n)));
  return missing.length ? `not built: ${missing.map(binPath).join(', ')}` : false;
}

// ---------------------------------------------------------------------------------------
// Change notification and waitFor

// Every recorded event (MQTT message, output line, process exit) bumps this emitter so
// waiters re-evaluate their predicates at once.
const changes = new EventEmitter();
changes.setMaxListeners(0);
function notifyChange() {
  changes.emit('change');
}

// Waits until `predicate()` (sync or async) returns a truthy value and returns that value.
// Re-checks on every recorded event and at least every `pollMs` (for state that is not
// recorded, such as an HTTP endpoint). Throws after `timeoutMs` with `what` and, if given,
// `describe()` (the recorded state) in the message.
async function waitFor(predicate, timeoutMs, what = 'condition', describe = null, pollMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let lastError = null;
  for (;;) {
    try {
      const v = await predicate();
      if (v) return v;
      lastError = null;
    } catch (e) {
      if (e && e.fatal) throw e; // a predicate can give up early (e.g. a child exited)
      lastError = e;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      let msg = `timed out after ${timeoutMs} ms waiting for ${what}`;
      if (lastError) msg += `\nlast predicate error: ${lastError.stack || lastError}`;
      if (describe) {
        try { msg += '\n' + describe(); } catch (e) { msg += `\n(describe failed: ${e})`; }
      }
      throw new Error(msg);
    }
    await new Promise((resolve) => {
      const done = () => { clearTimeout(timer); changes.off('change', done); resolve(); };
      const timer = setTimeout(done, Math.min(pollMs, left));
      changes.on('change', done);
    });
  }
}

// ---------------------------------------------------------------------------------------
// Processes: every child is tracked so that a crash or signal of the test process kills them.

const liveChildren = new Set();
function killAllSync() {
  for (const c of liveChildren) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
  liveChildren.clear();
}
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { killAllSync(); process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1)); });
}

// A child process with its output recorded line by line (and into a log file).
class Proc {
  constructor(name, cmd, args, { cwd, logFile, env } = {}) {
    this.name = name;
    this.cmd = cmd;
    this.args = args;
    this.stdoutLines = [];
    this.stderrLines = [];
    this.exit = null; // {code, signal} once exited
    this.exited = new Promise((resolve) => { this._resolveExit = resolve; });
    this.logFile = logFile;
    const log = logFile ? fs.createWriteStream(logFile, { flags: 'a' }) : null;
    this._log = log;
    this.child = spawn(cmd, args, { cwd, env: env || process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    liveChildren.add(this.child);
    this.pid = this.child.pid;
    this.spawnError = null;
    this.child.on('error', (e) => { this.spawnError = e; notifyChange(); });
    this.child.stdin.on('error', () => { /* closed by the child */ });
    for (const [stream, lines, tag] of [[this.child.stdout, this.stdoutLines, 'out'], [this.child.stderr, this.stderrLines, 'err']]) {
      readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        lines.push(line);
        if (log) log.write(`[${new Date().toISOString()} ${tag}] ${line}\n`);
        this._onLine(tag, line);
        notifyChange();
      });
    }
    this.child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      liveChildren.delete(this.child);
      if (log) log.write(`[${new Date().toISOString()}] exited code=${code} signal=${signal}\n`);
      this._resolveExit(this.exit);
      notifyChange();
    });
  }

  _onLine() {}

  get running() {
    return this.exit === null && this.spawnError === null;
  }

  // Throws a "fatal" error (ends waitFor at once) if the process is gone.
  assertRunning() {
    if (this.spawnError) throw Object.assign(new Error(`${this.name}: cannot start ${this.cmd}: ${this.spawnError.message}`), { fatal: true });
    if (this.exit) {
      throw Object.assign(new Error(`${this.name} exited (code ${this.exit.code}, signal ${this.exit.signal})\n` +
        `stderr tail:\n${this.stderrLines.slice(-20).join('\n')}`), { fatal: true });
    }
  }

  signal(sig) {
    if (this.running) this.child.kill(sig);
  }

  // Waits for exit; after `timeoutMs` sends SIGKILL and waits again.
  async stop(sig = 'SIGTERM', timeoutMs = 5000) {
    if (this.exit || this.spawnError) return this.exit;
    this.child.kill(sig);
    let timer;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise((r) => { timer = setTimeout(() => r(true), timeoutMs); }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
    return this.exit;
  }

  async waitExit(timeoutMs, env) {
    await waitFor(() => this.exit !== null, timeoutMs, `${this.name} to exit`, env ? () => env.describe() : null);
    return this.exit;
  }

  closeLog() {
    if (this._log) this._log.end();
  }

  tail(n = 30) {
    const lines = [];
    if (this.stdoutLines.length) lines.push(`--- ${this.name} stdout (last ${n}) ---`, ...this.stdoutLines.slice(-n));
    if (this.stderrLines.length) lines.push(`--- ${this.name} stderr (last ${n}) ---`, ...this.stderrLines.slice(-n));
    return lines.join('\n');
  }
}

// ---------------------------------------------------------------------------------------
// Ports, TCP and HTTP helpers

// A free loopback port (the OS picks one; the listener is closed before returning).
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function tcpAccepts(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(1000, () => done(false));
  });
}

function httpGet(port, urlPath, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath}: timeout`)));
    req.on('error', reject);
  });
}

// A request with a body (JSON when `body` is not a string); resolves { status, headers, body }.
function httpRequest(port, method, urlPath, body, headers = {}, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request({
      host: '127.0.0.1', port, path: urlPath, method, timeout: timeoutMs,
      headers: { ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}), ...headers },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timeout`)));
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

// Sum of every series of a Prometheus metric in a text exposition (0 when absent).
function promValue(text, name) {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/);
    if (m && m[1] === name) {
      sum += Number(m[3]);
      found = true;
    }
  }
  return found ? sum : 0;
}

// ---------------------------------------------------------------------------------------
// TOML (enough for our configs: scalars, arrays of scalars, tables, arrays of tables)

function tomlScalar(v) {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`toml: cannot write ${v}`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return `[${v.map(tomlScalar).join(', ')}]`;
  throw new Error(`toml: unsupported value ${JSON.stringify(v)}`);
}

function isTable(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isTableArray(v) {
  return Array.isArray(v) && v.length > 0 && v.every(isTable);
}

function toToml(obj, prefix = '', indent = '') {
  const out = [];
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || isTable(v) || isTableArray(v)) continue;
    out.push(`${indent}${k} = ${tomlScalar(v)}`);
  }
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isTable(v)) {
      out.push('', `${indent}[${key}]`, toToml(v, key, indent));
    } else if (isTableArray(v)) {
      for (const item of v) out.push('', `${indent}[[${key}]]`, toToml(item, key, indent + '  '));
    }
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------
// Mosquitto

class Mosquitto {
  constructor(env, { port, name = 'mosquitto', persistence = false, extra = [] }) {
    this.env = env;
    this.port = port;
    this.name = name;
    this.persistence = persistence;
    this.extra = extra;
    this.dir = path.join(env.dir, name);
    fs.mkdirSync(this.dir, { recursive: true });
    this.logFile = path.join(this.dir, 'mosquitto.log');
    this.confFile = path.join(this.dir, 'mosquitto.conf');
    this.proc = null;
    this.runs = 0;
  }

  get url() {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(timeoutMs = 10000) {
    if (this.proc && this.proc.running) throw new Error(`${this.name} already running`);
    const lines = [
      `listener ${this.port} 127.0.0.1`,
      'allow_anonymous true',
      `persistence ${this.persistence ? 'true' : 'false'}`,
      'log_type all',
      'log_timestamp_format %Y-%m-%dT%H:%M:%S',
      `log_dest file ${this.logFile}`,
    ];
    if (this.persistence) lines.push(`persistence_location ${this.dir}/`);
    if (process.getuid && process.getuid() === 0) lines.push('user root');
    lines.push(...this.extra);
    fs.writeFileSync(this.confFile, lines.join('\n') + '\n');
    this.runs += 1;
    // The log file keeps growing over restarts; remember where this run starts.
    this.logOffset = fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0;
    this.proc = this.env.track(new Proc(`${this.name}#${this.runs}`, MOSQUITTO, ['-c', this.confFile],
      { logFile: path.join(this.dir, `process-${this.runs}.log`) }));
    await waitFor(async () => {
      this.proc.assertRunning();
      return tcpAccepts(this.port);
    }, timeoutMs, `${this.name} to accept connections on 127.0.0.1:${this.port}`, () => this.proc.tail());
    return this;
  }

  async stop(sig = 'SIGTERM') {
    if (this.proc) {
      if (this.paused) this.resume();
      await this.proc.stop(sig);
    }
  }

  // Freezes the broker (SIGSTOP): connections stay open but nothing is read or answered, as
  // with a broker that hangs. resume() (SIGCONT) lets it go on where it was.
  pause() {
    this.proc.signal('SIGSTOP');
    this.paused = true;
  }

  resume() {
    this.proc.signal('SIGCONT');
    this.paused = false;
  }

  // The whole log, or only this run's part.
  log({ thisRun = false } = {}) {
    if (!fs.existsSync(this.logFile)) return '';
    const text = fs.readFileSync(this.logFile, 'utf8');
    return thisRun ? text.slice(this.logOffset) : text;
  }

  logLines(opts) {
    return this.log(opts).split('\n').filter((l) => l.length);
  }
}

// ---------------------------------------------------------------------------------------
// kiln-sim

class Sim {
  constructor(env, config, name = 'kiln-sim') {
    this.env = env;
    this.name = name;
    this.config = config;
    this.ports = {}; // server id -> port
    this.serials = {}; // server id -> serial device (RTU servers on a pseudo-terminal)
    this.responses = [];
    this.pending = [];
    this.commandLog = [];
  }

  async start(timeoutMs = 10000) {
    const file = path.join(this.env.dir, `${this.name}.toml`);
    fs.writeFileSync(file, toToml(this.config) + '\n');
    const proc = new Proc(this.name, binPath('kiln-sim'), ['--config', file], { logFile: path.join(this.env.dir, `${this.name}.log`) });
    proc._onLine = (tag, line) => {
      if (tag !== 'out') return;
      const ready = line.match(/^ready (\S+) tcp 127\.0\.0\.1:(\d+)\s*$/);
      if (ready) {
        this.ports[ready[1]] = Number(ready[2]);
        return;
      }
      const rtu = line.match(/^ready (\S+) rtu (\S+)\s*$/);
      if (rtu) {
        this.serials[rtu[1]] = rtu[2];
        return;
      }
      if (line === 'ok' || line.startsWith('error')) {
        const waiter = this.pending.shift();
        if (waiter) waiter(line);
        else this.responses.push(line);
      }
    };
    proc.child.on('exit', () => {
      for (const w of this.pending.splice(0)) w(`error: ${this.name} exited`);
    });
    this.proc = this.env.track(proc);
    const ids = this.config.servers.map((s) => s.id);
    await waitFor(() => {
      proc.assertRunning();
      return ids.every((id) => this.ports[id] !== undefined || this.serials[id] !== undefined);
    }, timeoutMs, `${this.name} ready lines for ${ids.join(', ')}`, () => proc.tail());
    return this;
  }

  address(id) {
    if (this.ports[id] === undefined) throw new Error(`sim server ${id} is not ready`);
    return `127.0.0.1:${this.ports[id]}`;
  }

  // Sends one control line; resolves with the answer line (`ok` or `error ...`).
  send(line, timeoutMs = 5000) {
    return sendControlLine(this, line, timeoutMs, () => this.proc.tail());
  }

  // Sends a control line and requires `ok`.
  async cmd(line) {
    const answer = await this.send(line);
    if (answer !== 'ok') throw new Error(`${this.name}: '${line}' answered '${answer}'`);
    return answer;
  }

  async stop() {
    if (!this.proc || !this.proc.running) return;
    await quitOrKill(this.proc);
  }
}

// The stdin control protocol of kiln-sim and the OPC UA peer: one line in, one answer line
// out (`ok...` or `error ...`), matched in order through owner.pending (which the owner's line
// handler resolves). Resolves with the answer; rejects after `timeoutMs` with describe().
function sendControlLine(owner, line, timeoutMs, describe) {
  owner.proc.assertRunning();
  owner.commandLog.push({ t: Date.now(), line });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const i = owner.pending.indexOf(done);
      if (i >= 0) owner.pending.splice(i, 1);
      reject(new Error(`${owner.name}: no answer to '${line}' within ${timeoutMs} ms\n${describe()}`));
    }, timeoutMs);
    const done = (answer) => { clearTimeout(timer); resolve(answer); };
    owner.pending.push(done);
    owner.proc.child.stdin.write(line + '\n');
  });
}

// Asks a controlled process to `quit`; SIGKILL when it has not exited after 3 s.
async function quitOrKill(proc) {
  proc.child.stdin.write('quit\n');
  let timer;
  const quit = await Promise.race([
    proc.exited.then(() => true),
    new Promise((r) => { timer = setTimeout(() => r(false), 3000); }),
  ]);
  clearTimeout(timer);
  if (!quit) await proc.stop('SIGKILL');
}

// ---------------------------------------------------------------------------------------
// kiln-edge and kiln-server: both take a TOML config with [http] listen and answer /health.

// Writes `owner.config` (picking a free HTTP port unless one is given), starts `binary` and
// waits until GET /health answers a status `ready` accepts.
async function startWithHealth(owner, binary, ready, timeoutMs) {
  const listen = owner.config.http && owner.config.http.listen;
  if (!listen || /:0$/.test(listen)) {
    const port = await freePort();
    owner.config.http = { ...(owner.config.http || {}), listen: `127.0.0.1:${port}` };
  }
  owner.httpPort = Number(owner.config.http.listen.split(':').pop());
  owner.configFile = path.join(owner.env.dir, `${owner.name}.toml`);
  fs.writeFileSync(owner.configFile, toToml(owner.config) + '\n');
  const proc = new Proc(`${owner.name}#${owner.runs}`, binPath(binary), ['--config', owner.configFile],
    { logFile: path.join(owner.env.dir, `${owner.name}.log`) });
  owner.proc = owner.env.track(proc);
  await waitFor(async () => {
    proc.assertRunning();
    try {
      return ready((await httpGet(owner.httpPort, '/health', 1000)).status);
    } catch {
      return false;
    }
  }, timeoutMs, `${owner.name} GET http://127.0.0.1:${owner.httpPort}/health`, () => proc.tail());
}

class Edge {
  constructor(env, config, name = 'kiln-edge') {
    this.env = env;
    this.name = name;
    this.config = config;
    this.httpPort = null;
    this.runs = 0;
  }

  get clientId() {
    return `kiln-edge:${this.config.node.group_id}:${this.config.node.edge_node_id}`;
  }

  async start(timeoutMs = 10000) {
    this.runs += 1;
    await startWithHealth(this, 'kiln-edge', (status) => status === 200, timeoutMs);
    return this;
  }

  async health() {
    const r = await httpGet(this.httpPort, '/health');
    if (r.status !== 200) throw new Error(`/health answered ${r.status}: ${r.body}`);
    return JSON.parse(r.body);
  }

  async metrics() {
    const r = await httpGet(this.httpPort, '/metrics');
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.body}`);
    return r.body;
  }

  async stop(sig = 'SIGTERM') {
    if (this.proc) return this.proc.stop(sig);
    return null;
  }
}

// ---------------------------------------------------------------------------------------
// kiln-server

class Server {
  constructor(env, config, name = 'kiln-server') {
    this.env = env;
    this.name = name;
    this.config = config;
    this.httpPort = null;
    this.runs = 0;
  }

  get url() {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  // Starts the server and waits until /health says it is connected to its broker (pass
  // { connected: false } to wait only for the HTTP port).
  async start({ timeoutMs = 10000, connected = true } = {}) {
    this.runs += 1;
    await startWithHealth(this, 'kiln-server', (status) => status === 200 || (!connected && status === 503), timeoutMs);
    return this;
  }

  // GET a path; resolves { status, body, json } (json when the body parses).
  async get(urlPath, timeoutMs = 5000) {
    const r = await httpGet(this.httpPort, urlPath, timeoutMs);
    try { r.json = JSON.parse(r.body); } catch { r.json = undefined; }
    return r;
  }

  // POST a JSON body; resolves { status, body, json }.
  async post(urlPath, body, headers) {
    const r = await httpRequest(this.httpPort, 'POST', urlPath, body, headers);
    try { r.json = JSON.parse(r.body); } catch { r.json = undefined; }
    return r;
  }

  // GET a JSON API path that must answer 200.
  async api(urlPath) {
    const r = await this.get(urlPath);
    if (r.status !== 200) throw new Error(`GET ${urlPath} answered ${r.status}: ${r.body}`);
    return r.json;
  }

  async metrics() {
    const r = await httpGet(this.httpPort, '/metrics');
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.body}`);
    return r.body;
  }

  async stop(sig = 'SIGTERM') {
    if (this.proc) return this.proc.stop(sig);
    return null;
  }
}

// Runs a kiln binary to completion (for check/--help/--version).
function runSync(name, args, opts = {}) {
  const r = spawnSync(binPath(name), args, { encoding: 'utf8', timeout: 15000, ...opts });
  return { code: r.status, signal: r.signal, stdout: r.stdout || '', stderr: r.stderr || '', error: r.error };
}

// ---------------------------------------------------------------------------------------
// Env: one test's world. Owns a temp dir and every process and client it starts.

class Env {
  constructor(name) {
    this.name = name;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `kiln-e2e-${name}-`));
    this.procs = [];
    this.closers = [];
    this.brokers = [];
    this.sims = [];
    this.peers = []; // other controllable peers (lib/opcua.js): { describe(), stop() }
    this.edges = [];
    this.servers = [];
    this.taps = [];
  }

  track(proc) {
    this.procs.push(proc);
    return proc;
  }

  onClose(fn) {
    this.closers.push(fn);
  }

  async startMosquitto(opts = {}) {
    const port = opts.port || await freePort();
    const broker = new Mosquitto(this, { ...opts, port, name: opts.name || `mosquitto${this.brokers.length || ''}` });
    this.brokers.push(broker);
    return broker.start();
  }

  async startSim(config, name) {
    const sim = new Sim(this, config, name || `kiln-sim${this.sims.length || ''}`);
    this.sims.push(sim);
    return sim.start();
  }

  // Fills in what the test does not care about: the broker url, a store dir in the temp dir
  // (<dir>/store for node gw-01, <dir>/store-<node> for others: two nodes cannot share one,
  // the journal locks its directory).
  edgeConfig({ broker, devices, node = { group_id: 'Plant1', edge_node_id: 'gw-01' }, store = true, extra = {} }) {
    const cfg = { node, mqtt: { url: broker.url }, http: { listen: '127.0.0.1:0' } };
    if (store) {
      const own = node.edge_node_id === 'gw-01' ? 'store' : `store-${node.edge_node_id}`;
      cfg.store = { path: typeof store === 'string' ? store : path.join(this.dir, own) };
    }
    Object.assign(cfg, extra);
    cfg.devices = devices;
    return cfg;
  }

  async startEdge(config, name) {
    const edge = new Edge(this, config, name || `kiln-edge${this.edges.length || ''}`);
    this.edges.push(edge);
    return edge.start();
  }

  // A server config with a storage dir in the temp dir; `extra` tables are merged in.
  serverConfig({ broker, hostId = 'kiln', storage = {}, sparkplug = {}, extra = {} }) {
    const cfg = {
      mqtt: { url: broker.url },
      sparkplug: { host_id: hostId, ...sparkplug },
      storage: { path: path.join(this.dir, `server-${hostId}`), ...storage },
      http: { listen: '127.0.0.1:0' },
    };
    return Object.assign(cfg, extra);
  }

  async startServer(config, name, opts) {
    const server = new Server(this, config, name || `kiln-server${this.servers.length || ''}`);
    this.servers.push(server);
    return server.start(opts);
  }

  // The tap lives in tap.js (needs the mqtt package); registered here for teardown/diagnostics.
  addTap(tap) {
    this.taps.push(tap);
    this.onClose(() => tap.close());
    return tap;
  }

  // waitFor that also fails at once when an edge that should run has exited, and puts the
  // recorded state into the timeout message.
  async waitFor(predicate, timeoutMs, what) {
    try {
      return await waitFor(async () => {
        for (const e of [...this.edges, ...this.servers]) if (e.proc && e.expectRunning !== false) e.proc.assertRunning();
        return predicate();
      }, timeoutMs, what, () => this.describe());
    } catch (e) {
      if (e && e.fatal) e.message += '\n' + this.describe();
      e.described = true;
      throw e;
    }
  }

  describe() {
    const parts = [`temp dir: ${this.dir}`];
    for (const t of this.taps) parts.push(t.describe(60));
    for (const s of this.sims) if (s.proc) parts.push(s.proc.tail(15));
    for (const p of this.peers) parts.push(p.describe());
    for (const e of this.edges) if (e.proc) parts.push(e.proc.tail(40));
    for (const e of this.servers) if (e.proc) parts.push(e.proc.tail(40));
    return parts.join('\n');
  }

  async teardown(failed) {
    for (const fn of this.closers.reverse()) {
      try { await fn(); } catch { /* best effort */ }
    }
    // Edges first (so they do not log broker errors), then sims and peers, then brokers; kill
    // anything left.
    for (const e of this.edges) await e.stop('SIGKILL').catch(() => {});
    for (const e of this.servers) await e.stop('SIGKILL').catch(() => {});
    for (const s of [...this.sims, ...this.peers]) await s.stop().catch(() => {});
    for (const b of this.brokers) await b.stop().catch(() => {});
    for (const p of this.procs) {
      await p.stop('SIGKILL', 2000).catch(() => {});
      p.closeLog();
    }
    if (!failed && !process.env.KILN_KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// Runs `body(env)` with a fresh Env and always tears it down. On failure the temp dir is
// kept and the error message gets the recorded state (MQTT messages, process output).
async function withEnv(t, name, body) {
  const env = new Env(name);
  let failed = true;
  try {
    await body(env);
    failed = false;
  } catch (e) {
    const extra = `\n\n==== ${name}: temp dir kept: ${env.dir} ====` + (e && e.described ? '' : `\n${env.describe()}`);
    if (e && typeof e === 'object' && typeof e.message === 'string') {
      e.message += extra;
    } else if (t && t.diagnostic) {
      t.diagnostic(extra);
    }
    throw e;
  } finally {
    await env.teardown(failed);
  }
}

module.exports = {
  sendControlLine, quitOrKill,
  BIN_DIR, REPO_ROOT, binPath, missingBinaries, waitFor, notifyChange, freePort, tcpAccepts, httpGet, httpRequest,
  promValue, toToml, Proc, Mosquitto, Sim, Edge, Server, Env, withEnv, runSync,
};
