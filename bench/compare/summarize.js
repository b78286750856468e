// Prints the table of bench/compare/run.sh from its results.csv: the median of each
// gateway's runs, and kiln-edge's ratio to the better peer.
//   node summarize.js results.csv [REGISTERS=1000] [BLOCK=125]
'use strict'
const fs = require('fs')

const [file, regsArg = '1000', blockArg = '125'] = process.argv.slice(2)
if (!file) {
  console.error('usage: node summarize.js results.csv [REGISTERS] [BLOCK]')
  process.exit(2)
}
const REGS = Number(regsArg)
const optimal = Math.ceil(REGS / Number(blockArg))

const lines = fs.readFileSync(file, 'utf8').trim().split('\n')
const header = lines[0].split(',')
const rows = lines.slice(1).map((l) => {
  const v = l.split(',')
  const r = {}
  header.forEach((h, i) => { r[h] = h === 'gateway' || h === 'status' ? v[i] : Number(v[i]) })
  return r
})

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

const order = ['collectd', 'node-red', 'kiln-edge']
const gateways = [...new Set(rows.map((r) => r.gateway))].sort((a, b) => order.indexOf(a) - order.indexOf(b))
const summary = {}
for (const gw of gateways) {
  const all = rows.filter((r) => r.gateway === gw)
  const good = all.filter((r) => r.status === 'ok' || r.status === 'ok-approx')
  const per = good.map((r) => ({
    regsPerS: r.registers / r.elapsed_s,
    valuesPerS: r.values / r.elapsed_s,
    msgsPerS: r.messages / r.elapsed_s,
    cpuPerS: r.cpu_s / r.elapsed_s,
    ticksPerS: r.cpu_ticks_s / r.elapsed_s,
    // Registers both read (server side) and published (subscriber side) per CPU-second.
    regsPerCpu: Math.min(r.registers, r.values) / r.cpu_s,
    reqPerPoll: r.requests / (r.registers / REGS),
    hwmMiB: r.hwm_kb / 1024,
    rssMiB: r.rss_kb / 1024,
    busy: r.machine_busy_cores,
    simCpu: r.sim_cpu_s / r.elapsed_s,
    mosqCpu: r.mosquitto_cpu_s / r.elapsed_s,
    kilnReqPerPoll: r.kiln_polls > 0 ? r.kiln_requests / r.kiln_polls : NaN,
    threads: r.threads
  }))
  const med = {}
  for (const k of Object.keys(per[0] || {})) med[k] = median(per.map((p) => p[k]))
  summary[gw] = { runs: all.length, good: good.length, statuses: all.map((r) => r.status), med, per }
}

const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : 'n/a')
const table = [['gateway', 'runs ok', 'registers/s', 'values/s at broker', 'CPU-s per s', 'registers per CPU-s',
  'requests per poll', 'VmHWM MiB', 'VmRSS MiB', 'machine busy cores']]
for (const gw of gateways) {
  const { med, runs, good } = summary[gw]
  table.push([gw, `${good}/${runs}`, fmt(med.regsPerS), fmt(med.valuesPerS), fmt(med.cpuPerS, 4), fmt(med.regsPerCpu),
    fmt(med.reqPerPoll, 1), fmt(med.hwmMiB, 1), fmt(med.rssMiB, 1), fmt(med.busy, 2)])
}
const widths = table[0].map((_, i) => Math.max(...table.map((r) => String(r[i]).length)))
const printRow = (r) => console.log(r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  '))
console.log(`Medians over the runs (${REGS} uint16 registers polled every 1 s; registers per CPU-s counts registers both read and published):`)
printRow(table[0])
printRow(widths.map((w) => '-'.repeat(w)))
table.slice(1).forEach(printRow)

console.log('\nPer run (registers per CPU-s; CPU from schedstat | from utime+stime ticks; machine busy cores; status):')
for (const gw of gateways) {
  const runs = rows.filter((r) => r.gateway === gw)
  console.log(`  ${gw}: ` + runs.map((r) => {
    const rate = r.cpu_s > 0 ? Math.min(r.registers, r.values) / r.cpu_s : NaN
    return `${fmt(rate)} (${r.cpu_s.toFixed(3)} | ${r.cpu_ticks_s.toFixed(2)} s; ${r.machine_busy_cores.toFixed(2)}; ${r.status})`
  }).join(', '))
}
console.log('\nContext (medians): kiln-sim CPU-s/s | mosquitto CPU-s/s | MQTT messages/s | threads')
for (const gw of gateways) {
  const m = summary[gw].med
  console.log(`  ${gw}: ${fmt(m.simCpu, 4)} | ${fmt(m.mosqCpu, 4)} | ${fmt(m.msgsPerS, 1)} | ${fmt(m.threads)}`)
}

const peers = gateways.filter((g) => g !== 'kiln-edge' && summary[g].good > 0)
const kiln = summary['kiln-edge']
if (kiln) {
  const k = kiln.med
  const reqOk = Math.round(k.reqPerPoll * 10) / 10 === optimal && (!Number.isFinite(k.kilnReqPerPoll) || k.kilnReqPerPoll === optimal)
  console.log(`\nkiln-edge requests per poll: ${fmt(k.reqPerPoll, 2)} counted at kiln-sim, ` +
    `${fmt(k.kilnReqPerPoll, 2)} from its kiln_edge_device_requests_total / polls_total; optimal cover ${optimal}: ` +
    (reqOk ? 'OK' : 'NOT OPTIMAL'))
  if (peers.length > 0 && kiln.good > 0) {
    const best = peers.reduce((a, b) => (summary[a].med.regsPerCpu >= summary[b].med.regsPerCpu ? a : b))
    const ratio = k.regsPerCpu / summary[best].med.regsPerCpu
    console.log(`ratio kiln-edge / best peer (${best}), registers per CPU-second: ${fmt(ratio, 1)}x ` +
      `(target >= 3x: ${ratio >= 3 ? 'met' : 'NOT met'})`)
  } else {
    console.log('ratio kiln-edge / best peer: n/a (no peer or no kiln-edge run delivered its values)')
  }
}
