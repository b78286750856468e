'use strict';
// A TCP proxy for link faults between a client under test and its peer (node:net, loopback):
//   const proxy = await startProxy(env, targetPort);   // proxy.port: point the client here
//   proxy.cut()        every current connection pair ends with a TCP RST on both sides (a broken
//                      link: the client sees ECONNRESET at once)
//   proxy.freeze()     the current pairs stop forwarding in both directions; their sockets stay
//                      open and are not read any more (a silent link: no bytes, no FIN, no RST
//                      either way, whatever an end does). Connections made later are not frozen.
//   proxy.thaw()       frozen pairs forward again (an end or reset that came meanwhile follows)
//   proxy.refuse(on)   while on, a new connection is reset as soon as it is accepted (never
//                      forwarded); existing pairs are not touched
//   proxy.close()      stops listening and destroys every pair (idempotent)
// Registered with the env: closed at teardown, its event log in failure reports.

const net = require('node:net');
const { notifyChange } = require('./harness');

class TcpProxy {
  constructor(env, targetPort, { host = '127.0.0.1', name = 'tcp-proxy' } = {}) {
    this.env = env;
    this.name = name;
    this.host = host;
    this.targetPort = targetPort;
    this.port = null;
    this.server = null;
    this.pairs = new Set(); // { id, client, upstream, frozen }
    this.refusing = false;
    this.closed = false;
    this.accepted = 0; // connections forwarded
    this.refused = 0; // connections reset while refusing
    this.events = []; // { t, what } for failure reports
    this.t0 = Date.now();
  }

  _event(what) {
    this.events.push({ t: Date.now(), what });
    notifyChange();
  }

  start() {
    this.server = net.createServer({ pauseOnConnect: true }, (client) => this._accept(client));
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, this.host, () => {
        this.server.off('error', reject);
        this.port = this.server.address().port;
        this._event(`listening on ${this.host}:${this.port} -> ${this.host}:${this.targetPort}`);
        resolve(this);
      });
    });
  }

  _accept(client) {
    client.on('error', () => { /* reported through close */ });
    if (this.refusing || this.closed) {
      this.refused += 1;
      this._event(`refused a connection from port ${client.remotePort}`);
      client.resetAndDestroy();
      return;
    }
    this.accepted += 1;
    const pair = { id: this.accepted, client, upstream: null, frozen: false, ended: new Set() };
    this.pairs.add(pair);
    this._event(`connection #${pair.id} from port ${client.remotePort}`);
    const upstream = net.connect({ port: this.targetPort, host: this.host });
    pair.upstream = upstream;
    upstream.on('error', () => { /* reported through close */ });

    const forward = (from, to) => {
      from.on('data', (chunk) => {
        // A frozen pair is paused, so no data arrives; a chunk read just before freeze() is held
        // back like the rest.
        if (pair.frozen) {
          from.pause();
          from.unshift(chunk);
          return;
        }
        to.write(chunk);
      });
      from.on('end', () => {
        if (!to.destroyed) to.end();
      });
      from.on('close', (hadError) => {
        this._event(`connection #${pair.id}: ${from === client ? 'client' : 'upstream'} side closed${hadError ? ' (error)' : ''}`);
        // A close (RST, or the end of both directions) reaches the other side, as an RST when
        // it came from one.
        if (!to.destroyed) {
          if (hadError && typeof to.resetAndDestroy === 'function' && to.readyState !== 'opening') to.resetAndDestroy();
          else to.destroy();
        }
        this.pairs.delete(pair);
      });
    };
    upstream.once('connect', () => {
      if (pair.frozen) return; // frozen before the upstream answered: thaw() resumes
      client.resume();
    });
    forward(client, upstream);
    forward(upstream, client);
  }

  // Every current pair ends with an RST on both sides.
  cut() {
    const n = this.pairs.size;
    for (const pair of [...this.pairs]) {
      this.pairs.delete(pair);
      for (const s of [pair.client, pair.upstream]) {
        if (s.destroyed) continue;
        if (s.readyState === 'opening') s.destroy();
        else s.resetAndDestroy();
      }
    }
    this._event(`cut ${n} connection(s)`);
    return n;
  }

  // The current pairs stop forwarding (sockets open, not read). Returns how many were frozen.
  freeze() {
    let n = 0;
    for (const pair of this.pairs) {
      if (pair.frozen) continue;
      pair.frozen = true;
      pair.client.pause();
      pair.upstream.pause();
      n += 1;
    }
    this._event(`froze ${n} connection(s)`);
    return n;
  }

  thaw() {
    let n = 0;
    for (const pair of this.pairs) {
      if (!pair.frozen) continue;
      pair.frozen = false;
      pair.client.resume();
      pair.upstream.resume();
      n += 1;
    }
    this._event(`thawed ${n} connection(s)`);
    return n;
  }

  refuse(on = true) {
    this.refusing = !!on;
    this._event(on ? 'refusing new connections' : 'accepting new connections');
  }

  // Pairs currently open (frozen ones included).
  get connections() {
    return this.pairs.size;
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    for (const pair of [...this.pairs]) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
    await new Promise((resolve) => this.server.close(() => resolve()));
    this._event('closed');
  }

  // For failure reports (env.describe()).
  describe(n = 40) {
    const lines = [`--- ${this.name} (127.0.0.1:${this.port} -> ${this.targetPort}; ${this.accepted} forwarded, ` +
      `${this.refused} refused, ${this.pairs.size} open${this.refusing ? ', refusing' : ''}) ---`];
    for (const e of this.events.slice(-n)) lines.push(`+${e.t - this.t0}ms ${e.what}`);
    return lines.join('\n');
  }

  stop() {
    return this.close();
  }
}

// Starts a proxy to 127.0.0.1:targetPort on a free port; closed at teardown.
async function startProxy(env, targetPort, opts) {
  const proxy = new TcpProxy(env, targetPort, opts);
  env.onClose(() => proxy.close());
  env.peers.push(proxy); // describe() in failure reports; stop() = close()
  return proxy.start();
}

module.exports = { TcpProxy, startProxy };
