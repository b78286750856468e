'use strict';
// A ramp driven by the test: consecutive integers (1, 2, 3, ...) written into kiln-sim registers
// with its `set` command, one step per period, with the time of every step recorded. The test
// thus knows exactly which values existed and when, independently of kiln-sim's own signal
// clock (a late sim tick would skip a value of a `ramp` signal, which would read as a gap).
//
// Value v is in the registers from some time in [sentAt(v), okAt(v)] until some time in
// [sentAt(v+1), okAt(v+1)]; an edge that polls faster than the period sees every value, and
// the timestamp of its sample of v lies in window(v) = [sentAt(v), okAt(v+1)] (see
// RampWindowSlackMs for the rounding of Sparkplug's millisecond timestamps).
//
// The pacing between steps is a timer: it is the stimulus, not a wait for a condition. A late
// timer only makes a value last longer, which is harmless.

const { notifyChange, waitFor } = require('./harness');

// Sparkplug timestamps are whole milliseconds and the edge stamps a sample when the Modbus
// answer arrives: allow this much around a value's window.
const RampWindowSlackMs = 25;

class SetRamp {
  // targets: [{ server, register }] all set to the same value at each step (the commands of
  // one step are sent together, then all answers awaited).
  constructor(sim, targets, { periodMs = 150, first = 1 } = {}) {
    this.sim = sim;
    this.targets = targets;
    this.periodMs = periodMs;
    this.next = first;
    this.first = first;
    this.log = []; // [{ value, sentAt, okAt }] in step order
    this.error = null;
    this._stop = false;
    this._loop = null;
    this._wake = null;
  }

  // Starts stepping (again, after pause()).
  start() {
    if (this._loop) return this;
    this._stop = false;
    this._loop = this._run();
    return this;
  }

  async _run() {
    try {
      while (!this._stop) {
        const value = this.next;
        const sentAt = Date.now();
        await Promise.all(this.targets.map((t) => this.sim.cmd(`set ${t.server} ${t.register} ${value}`)));
        this.log.push({ value, sentAt, okAt: Date.now() });
        this.next += 1;
        notifyChange();
        if (this._stop) break;
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, this.periodMs);
          this._wake = () => { clearTimeout(timer); resolve(); };
        });
        this._wake = null;
      }
    } catch (e) {
      this.error = e;
      notifyChange();
    }
  }

  // Stops after the current step (no value is half-set); resolves once stopped. Throws the
  // error that ended the loop, if any.
  async pause() {
    this._stop = true;
    if (this._wake) this._wake();
    if (this._loop) await this._loop;
    this._loop = null;
    this.assertOk();
    return this.last;
  }

  stop() {
    return this.pause();
  }

  assertOk() {
    if (this.error) throw Object.assign(new Error(`ramp: ${this.error.message}`), { fatal: true });
  }

  get running() {
    return this._loop !== null;
  }

  // The last value set (first - 1 before any step: the register's initial value).
  get last() {
    return this.log.length ? this.log[this.log.length - 1].value : this.first - 1;
  }

  step(value) {
    const i = value - this.first;
    return i >= 0 && i < this.log.length ? this.log[i] : undefined;
  }

  // Was `value` ever in the registers? (first - 1 is the initial value.)
  has(value) {
    return Number.isInteger(value) && value >= this.first - 1 && value <= this.last;
  }

  // [from, to]: when value was in the registers, as far as the test can tell (to is Infinity
  // for the current value; from is -Infinity for the initial value).
  window(value) {
    const s = this.step(value);
    const n = this.step(value + 1);
    return { from: s ? s.sentAt : -Infinity, to: n ? n.okAt : Infinity };
  }

  // Values whose whole window lies within [from, to].
  valuesWithin(from, to) {
    const out = [];
    for (let v = this.first - 1; v <= this.last; v++) {
      const w = this.window(v);
      if (w.from >= from && w.to <= to) out.push(v);
    }
    return out;
  }

  // Waits until `n` more steps than now are done.
  async waitSteps(n, timeoutMs = 10000, what = `${n} ramp steps`) {
    const target = this.log.length + n;
    await waitFor(() => { this.assertOk(); return this.log.length >= target; }, timeoutMs, what);
  }
}

module.exports = { SetRamp, RampWindowSlackMs };
