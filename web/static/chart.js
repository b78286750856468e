// ChartPanel: a uPlot chart of one metric's history that follows the live stream.
//
// "15 min" shows the raw points (GET /api/v1/query) as a stepped line, because the edge
// reports by exception: a value holds until the next one. Live values are appended.
// Longer ranges show per-bucket averages of Good values (step chosen for at most 1000
// buckets, agg=avg&good_only=true), re-queried every minute.
// Quality is drawn as shaded bands behind the line: for raw points from each Bad or
// Uncertain point to the next point; for buckets, where a bucket held non-Good values
// (its count with good_only is lower than without). Bad points are gaps in the line.
import {BAD, GOOD, UNCERTAIN, formatTimeFull, formatValue, isNumeric, severity} from './format.js';

const MINUTE = 60e3;
const HOUR = 60 * MINUTE;
const RANGES = [
  {id: '15m', label: '15 min', ms: 15 * MINUTE, from: '-15m', raw: true},
  {id: '1h', label: '1 h', ms: HOUR},
  {id: '24h', label: '24 h', ms: 24 * HOUR},
  {id: '7d', label: '7 d', ms: 7 * 24 * HOUR},
];
const SECOND = 1e3;
const NICE_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400]
  .map((s) => s * SECOND);
const MAX_BUCKETS = 1000;
const BUCKET_REFRESH_MS = MINUTE;
const WINDOW_TICK_MS = 5 * SECOND;  // how often the raw window slides when no value arrives

const LINE = '#1f5fa8';
const BAND = {[BAD]: 'rgba(200, 35, 35, 0.16)', [UNCERTAIN]: 'rgba(222, 140, 0, 0.20)'};

// The smallest round step that gives at most MAX_BUCKETS buckets over `rangeMs`.
export function stepFor(rangeMs) {
  return NICE_STEPS.find((s) => rangeMs / s <= MAX_BUCKETS) ?? NICE_STEPS.at(-1);
}

const toNumber = (v) => (typeof v === 'number' ? v : typeof v === 'boolean' ? Number(v) : null);

export class ChartPanel {
  // `elements`: {panel, title, note, ranges, chart, close}; `getJSON(url)` fetches the API;
  // `onClose()` is called when the user closes the panel.
  constructor(elements, getJSON, onClose) {
    this.el = elements;
    this.getJSON = getJSON;
    this.metric = null;
    this.range = RANGES[0];
    this.plot = null;
    this.request = 0;  // increases with every query; older answers are dropped
    this.timer = null;
    this.data = emptyData();
    this.pending = null;  // live values that arrive while the raw query runs

    for (const range of RANGES) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = range.label;
      button.dataset.testid = `chart-range-${range.id}`;
      button.addEventListener('click', () => this.setRange(range));
      range.button = button;
      this.el.ranges.append(button);
    }
    this.el.close.addEventListener('click', () => {
      this.close();
      onClose();
    });
    new ResizeObserver(() => this.plot?.setSize(this.size())).observe(this.el.chart);
  }

  get path() {
    return this.metric?.path ?? null;
  }

  // Shows `metric` ({path, name, datatype, unit}) over the last 15 minutes.
  open(metric) {
    this.metric = metric;
    this.show('loading', 'Loading…');
    this.el.panel.hidden = false;
    this.el.title.textContent = metric.path + (metric.unit ? ` (${metric.unit})` : '');
    this.setRange(RANGES[0]);
  }

  close() {
    this.metric = null;
    this.request++;
    clearInterval(this.timer);
    this.plot?.destroy();
    this.plot = null;
    this.el.panel.hidden = true;
  }

  setRange(range) {
    this.range = range;
    for (const r of RANGES) r.button.setAttribute('aria-pressed', String(r === range));
    this.load();
  }

  // A live value from the stream; used by the raw range only.
  addLive(path, point) {
    if (path !== this.path || !this.range.raw) return;
    if (this.pending) {
      this.pending.push(point);
      return;
    }
    insert(this.data, point);
    this.scheduleDraw();
  }

  async load() {
    const request = ++this.request;
    const {path, datatype} = this.metric;
    clearInterval(this.timer);
    this.pending = null;
    if (!isNumeric(datatype)) {
      this.data = emptyData();
      this.show('empty', `${datatype} values are not charted.`);
      return;
    }
    this.setState('loading');
    const data = emptyData();
    const metric = encodeURIComponent(path);
    try {
      if (this.range.raw) {
        this.pending = [];
        const res = await this.getJSON(`/api/v1/query?metric=${metric}&from=${this.range.from}&to=now`);
        if (request !== this.request) return;
        for (const p of res.points ?? []) insert(data, p);
        for (const p of this.pending ?? []) insert(data, p);
        this.setKeys(['Bad', BAD], ['Uncertain', UNCERTAIN]);
        this.el.note.textContent = 'Raw values, live';
        this.timer = setInterval(() => this.draw(), WINDOW_TICK_MS);
      } else {
        // Absolute, step-aligned start so both queries cut the same buckets.
        const step = stepFor(this.range.ms);
        const from = Math.floor((Date.now() - this.range.ms) / step) * step;
        const base = `/api/v1/query?metric=${metric}&from=${from}&to=now&step=${step}`;
        const [good, all] = await Promise.all([
          this.getJSON(`${base}&agg=avg&good_only=true`),
          this.getJSON(`${base}&agg=count`),
        ]);
        if (request !== this.request) return;
        setBuckets(data, good.points ?? [], all.points ?? [], step);
        this.setKeys(['Bad or Uncertain values', BAD]);
        this.el.note.textContent = `Average of Good values per ${formatStep(step)}`;
        this.timer = setInterval(() => this.load(), BUCKET_REFRESH_MS);
      }
      this.data = data;
      this.pending = null;
      this.draw();
    } catch (err) {
      if (request !== this.request) return;
      this.pending = null;
      this.data = emptyData();
      this.show('error', `Could not load history: ${err.message}`);
    }
  }

  // The band colours explained above the plot: [label, severity] pairs.
  setKeys(...keys) {
    this.el.keys.replaceChildren(...keys.map(([label, sev]) => {
      const key = document.createElement('span');
      key.className = `key key-${sev === BAD ? 'bad' : 'uncertain'}`;
      key.textContent = label;
      return key;
    }));
  }

  // The visible window: the range up to now (or the newest point, if the source's clock is
  // ahead of ours).
  window() {
    const end = Math.max(Date.now(), this.data.ts.at(-1) ?? 0);
    return [end - this.range.ms, end];
  }

  scheduleDraw() {
    if (this.drawQueued) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      this.draw();
    });
  }

  draw() {
    if (!this.metric || this.pending) return;
    const [start, end] = this.window();
    const {ts, vs, shade} = this.data;
    if (this.range.raw) {
      // Drop points that slid out of the window, but keep the one before it: the stepped
      // line enters from the left edge with the value that held then.
      let drop = 0;
      while (drop + 1 < ts.length && ts[drop + 1] < start) drop++;
      ts.splice(0, drop);
      vs.splice(0, drop);
      shade.splice(0, drop);
    }
    const count = ts.length;
    this.el.chart.dataset.points = String(count);
    if (count === 0) {
      this.show('empty', this.range.raw ? 'No values in the last 15 minutes.' : 'No values in this range.');
      return;
    }
    this.setState('ready');
    // The last raw value holds until now: draw it to the right edge.
    const data = [ts.slice(), vs.slice()];
    if (this.range.raw && shade.at(-1) !== BAD && ts.at(-1) < end) {
      data[0].push(end);
      data[1].push(vs.at(-1));
    }
    this.bandEnd = this.range.raw ? end : ts.at(-1) + this.data.step;
    if (!this.plot) this.plot = this.createPlot(data);
    else this.plot.setData(data);
  }

  createPlot(data) {
    const unit = this.metric.unit ? ` ${this.metric.unit}` : '';
    const datatype = this.metric.datatype;
    const opts = {
      ...this.size(),
      ms: 1,  // x values are epoch milliseconds
      cursor: {drag: {x: false, y: false}},
      scales: {x: {time: true, range: () => this.window()}},
      legend: {live: true},
      series: [
        {value: (u, t) => (t == null ? '' : formatTimeFull(t))},
        {
          label: this.metric.name ?? this.metric.path,
          stroke: LINE,
          width: 1.5,
          spanGaps: false,
          paths: (u, ...args) => pathBuilder(this.range.raw)(u, ...args),
          value: (u, v) => (v == null ? '—' : formatValue(v, datatype) + unit),
        },
      ],
      axes: [{values: timeTicks}, datatype === 'Boolean' ? booleanAxis : {size: 60}],
      hooks: {drawClear: [(u) => this.drawBands(u)]},
    };
    this.el.chart.replaceChildren();
    return new window.uPlot(opts, data, this.el.chart);
  }

  // Shades the plot behind each Bad or Uncertain point (or bucket) up to the next one;
  // at least 2 px wide so that a single point is seen.
  drawBands(u) {
    const {ctx, bbox} = u;
    const left = bbox.left;
    const right = bbox.left + bbox.width;
    const {ts, shade} = this.data;
    ctx.save();
    for (let i = 0; i < ts.length; i++) {
      const sev = shade[i];
      if (sev === GOOD) continue;
      const next = i + 1 < ts.length ? ts[i + 1] : this.bandEnd;
      const x0 = Math.max(left, u.valToPos(ts[i], 'x', true));
      const x1 = Math.min(right, u.valToPos(next, 'x', true));
      if (x1 < left || x0 > right) continue;
      ctx.fillStyle = BAND[sev];
      ctx.fillRect(x0, bbox.top, Math.max(x1 - x0, 2), bbox.height);
    }
    ctx.restore();
  }

  size() {
    const box = this.el.chart.getBoundingClientRect();
    // Room for the legend below the plot.
    return {width: Math.max(300, Math.floor(box.width)), height: Math.max(150, Math.floor(box.height) - 40)};
  }

  setState(state) {
    this.el.chart.dataset.state = state;
  }

  // Replaces the plot with a message (state: loading, empty or error).
  show(state, message) {
    this.plot?.destroy();
    this.plot = null;
    this.setState(state);
    const p = document.createElement('p');
    p.className = 'chart-message';
    p.textContent = message;
    this.el.chart.replaceChildren(p);
  }
}

// Points in time order, each with the severity of the band behind it (GOOD for none);
// `step` is the bucket width, 0 for raw points.
function emptyData() {
  return {ts: [], vs: [], shade: [], step: 0};
}

// Adds a raw point {t, v, q}, keeping time order (values replayed after an outage
// arrive late); a second value with the same time replaces the first.
function insert(d, {t, v, q}) {
  let i = d.ts.length;
  while (i > 0 && d.ts[i - 1] > t) i--;
  const sev = severity(q);
  const value = sev === BAD ? null : toNumber(v);
  if (i > 0 && d.ts[i - 1] === t) {
    d.vs[i - 1] = value;
    d.shade[i - 1] = sev;
    return;
  }
  d.ts.splice(i, 0, t);
  d.vs.splice(i, 0, value);
  d.shade.splice(i, 0, sev);
}

// Buckets: values from the good_only averages, bands where the total count is higher.
// A null between buckets more than one step apart breaks the line over missing data.
function setBuckets(d, good, all, step) {
  const byTime = new Map();
  for (const p of all) byTime.set(p.t, {v: null, good: 0, total: p.count ?? toNumber(p.v) ?? 0});
  for (const p of good) {
    const b = byTime.get(p.t) ?? {total: p.count ?? 0};
    byTime.set(p.t, {...b, v: toNumber(p.v), good: p.count ?? 0});
  }
  const times = [...byTime.keys()].sort((a, b) => a - b);
  for (const [i, t] of times.entries()) {
    if (i > 0 && t - times[i - 1] > step) {
      d.ts.push(times[i - 1] + step);
      d.vs.push(null);
      d.shade.push(GOOD);
    }
    const b = byTime.get(t);
    d.ts.push(t);
    d.vs.push(b.v);
    d.shade.push(b.total > b.good ? BAD : GOOD);
  }
  d.step = step;
}

let builders = null;
function pathBuilder(raw) {
  builders ??= {stepped: window.uPlot.paths.stepped({align: 1}), linear: window.uPlot.paths.linear()};
  return raw ? builders.stepped : builders.linear;
}

// Time axis labels in 24-hour form, with the date under the first tick of each day.
function timeTicks(u, splits, axis, space, incr) {
  const two = (n) => String(n).padStart(2, '0');
  return splits.map((t, i) => {
    const d = new Date(t);
    const date = d.toLocaleDateString(undefined, {month: 'short', day: 'numeric'});
    if (incr >= 24 * HOUR) return date;
    let time = `${two(d.getHours())}:${two(d.getMinutes())}`;
    if (incr < MINUTE) time += `:${two(d.getSeconds())}`;
    const newDay = i === 0 || new Date(splits[i - 1]).getDate() !== d.getDate();
    return newDay ? `${time}\n${date}` : time;
  });
}

// Booleans come as 0 and 1: label just those.
const booleanAxis = {size: 60, splits: () => [0, 1], values: (u, splits) => splits.map((v) => (v ? 'true' : 'false'))};

function formatStep(ms) {
  if (ms < MINUTE) return `${ms / SECOND} s`;
  if (ms < HOUR) return `${ms / MINUTE} min`;
  return `${ms / HOUR} h`;
}
