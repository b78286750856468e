#!/usr/bin/env bash
# Side-by-side gateway benchmark: Modbus registers read and published per CPU-second.
#
#   bench/compare/run.sh [SECONDS=60] [REPEATS=3]
#
# One Mosquitto and one kiln-sim (1,000 uint16 holding registers, a ramp that changes every
# 100 ms) serve three gateways, run IN TURN (never together, so they do not compete for the
# cores), each polling all 1,000 registers every second and publishing them to the broker:
#   collectd   /usr/sbin/collectd -f: modbus plugin (one Data block per register; it reads
#              one value per request) + mqtt plugin, Interval 1, no other plugin
#   node-red   Node-RED headless + node-red-contrib-modbus: 8 modbus-read nodes of 125
#              registers every 1 s (the optimal cover) -> one mqtt-out node
#   kiln-edge  1,000 uint16 tags, poll_ms = 1000, deadband 0 (Sparkplug B DDATA)
# Each gateway runs REPEATS times (rounds interleave the gateways); each run has a warm-up
# of WARMUP s after its first value reaches the broker, then a window of SECONDS.
#
# Measured over the window, for each run:
#   CPU        the gateway's process tree: sum of per-thread /proc/<pid>/task/<tid>/schedstat
#              run time (ns); utime+stime(+cutime+cstime) from /proc/<pid>/stat is recorded
#              as a cross-check (it has 10 ms ticks: too coarse for kiln-edge's ~1 ms/s)
#   requests   counted on the server side from kiln-sim's accepted sockets (ss -ti): every
#   registers  function-3 request is 12 bytes and its answer 9 + 2 x registers bytes
#   published  values that reach the broker, counted by a subscriber (node-red/mqtt-count.js)
#   memory     VmHWM (peak) and VmRSS of the gateway's processes
# A run counts only if the subscriber received the values (and they change as the ramp does).
#
# Before each run it waits (at most QUIET_WAIT=300 s) until the machine is nearly idle
# (other processes busy < QUIET_CORES=0.5 cores), and it records how busy the machine was
# during each window (machine_busy_cores, which includes kiln-sim, Mosquitto and the
# subscriber) and the load average.
# Environment: WARMUP (5), REPEAT_SECONDS (SECONDS; window of rounds 2..), GATEWAYS
# ("collectd node-red kiln-edge"), BIN (build/release/bin), KEEP=1 keeps the work directory,
# QUIET_CORES, QUIET_WAIT.
# Installs what is missing (apt-get: collectd-core, libmodbus5, libmosquitto1, mosquitto,
# nodejs, npm, iproute2, procps, curl, util-linux; npm ci in bench/compare/node-red), then
# takes /tmp/kiln-bench.lock around the measurement (shared with other benchmarks).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECS=${1:-60}
REPEATS=${2:-3}
WARMUP=${WARMUP:-5}
REPEAT_SECONDS=${REPEAT_SECONDS:-$SECS}
QUIET_CORES=${QUIET_CORES:-0.5}
QUIET_WAIT=${QUIET_WAIT:-300}
GATEWAYS=${GATEWAYS:-"collectd node-red kiln-edge"}
BIN=${BIN:-$ROOT/build/release/bin}
REGS=1000   # holding:0 .. holding:999
BLOCK=125   # registers per function-3 request (Modbus limit): optimal cover = 8 requests
LOCK=/tmp/kiln-bench.lock
for n in "$SECS" "$REPEATS" "$WARMUP" "$REPEAT_SECONDS"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [SECONDS] [REPEATS] (positive integers)" >&2; exit 2; }
done
for gw in $GATEWAYS; do
  case $gw in collectd | node-red | kiln-edge) ;; *) echo "unknown gateway '$gw'" >&2; exit 2 ;; esac
done
for b in kiln-edge kiln-sim; do
  [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: build the release binaries first (cmake --preset release)" >&2; exit 2; }
done
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- install what is missing -------------------------------------------------------------
need_pkgs=()
have_pkg() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }
for p in collectd-core libmodbus5 libmosquitto1 mosquitto iproute2 procps curl util-linux; do
  have_pkg "$p" || need_pkgs+=("$p")
done
command -v node > /dev/null || need_pkgs+=(nodejs)
command -v npm > /dev/null || need_pkgs+=(npm)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "apt-get install ${need_pkgs[*]}"
  [ "$(id -u)" -eq 0 ] || { echo "need root to install ${need_pkgs[*]}" >&2; exit 2; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # collectd-core only suggests the libraries of its modbus and mqtt plugins: name them.
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" > /dev/null
fi
for f in /usr/sbin/collectd /usr/lib/collectd/modbus.so /usr/lib/collectd/mqtt.so /usr/sbin/mosquitto; do
  [ -e "$f" ] || { echo "missing $f after install" >&2; exit 2; }
done
NR="$HERE/node-red"
lock_sum=$(sha256sum "$NR/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$NR/node_modules/.kiln-lock-sha256" 2>/dev/null)" != "$lock_sum" ]; then
  log "npm ci in $NR"
  # No install scripts: node-red-contrib-modbus's only prints a banner, and serialport's
  # native binding (unused over TCP) ships prebuilt.
  (cd "$NR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error > /dev/null)
  echo "$lock_sum" > "$NR/node_modules/.kiln-lock-sha256"
fi

# --- work directory, a frozen copy of the binaries ---------------------------------------
RUN=$(mktemp -d /tmp/kiln-compare.XXXXXX)
mkdir -p "$RUN/bin"
cp "$BIN/kiln-edge" "$BIN/kiln-sim" "$RUN/bin/"  # another build may replace them meanwhile
CSV="$RUN/results.csv"
pids=()
COUNTER_PID=
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  [ -n "$COUNTER_PID" ] && kill "$COUNTER_PID" 2> /dev/null || true
  wait 2> /dev/null || true
  if [ "${KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
    echo "work directory (logs, configs, results.csv): $RUN" >&2
  else
    rm -rf "$RUN"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })'
}

# --- the lock ----------------------------------------------------------------------------
exec 9> "$LOCK"
if ! flock -n 9; then
  log "waiting for $LOCK (another benchmark is running)"
  flock 9
fi

# --- machine and versions ----------------------------------------------------------------
ver() { dpkg-query -W -f='${Version}' "$1" 2> /dev/null || echo '?'; }
pkgver() { node -p "require('$NR/node_modules/$1/package.json').version"; }
{
  echo "machine: nproc=$(nproc); cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); kernel $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "versions: collectd $(ver collectd-core); node-red $(pkgver node-red); node-red-contrib-modbus $(pkgver node-red-contrib-modbus); node $(node --version); mosquitto $(ver mosquitto); libmodbus $(ver libmodbus5); $("$RUN/bin/kiln-edge" --version)"
  echo "kiln binaries: $BIN (sha256 kiln-edge $(sha256sum "$RUN/bin/kiln-edge" | cut -c1-12), kiln-sim $(sha256sum "$RUN/bin/kiln-sim" | cut -c1-12)); repo $(git -C "$ROOT" rev-parse --short HEAD 2> /dev/null || echo '?')$( [ -n "$(git -C "$ROOT" status --porcelain -- src apps 2> /dev/null)" ] && echo ' (src has uncommitted changes)')"
  echo "setup: $REGS uint16 holding registers, poll 1 s, window ${SECS}s (later rounds ${REPEAT_SECONDS}s), warm-up ${WARMUP}s, $REPEATS round(s): $GATEWAYS"
} | tee "$RUN/machine.txt" >&2

# --- broker, simulator, subscriber -------------------------------------------------------
MQTT_PORT=$(free_port)
MB_PORT=$(free_port)
HTTP_PORT=$(free_port)
cat > "$RUN/mosquitto.conf" << CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
CONF
[ "$(id -u)" -eq 0 ] && echo "user root" >> "$RUN/mosquitto.conf"
/usr/sbin/mosquitto -c "$RUN/mosquitto.conf" > "$RUN/mosquitto.log" 2>&1 &
MOSQ=$!
pids+=($MOSQ)

# holding:0 .. holding:999, each a sawtooth over 0..65535 with a 600 s period (about +109
# per second), re-computed every 100 ms: every register changes between two 1 s polls.
cat > "$RUN/sim.toml" << CONF
[[servers]]
id = "bench"
protocol = "tcp"
listen = "127.0.0.1:$MB_PORT"
unit_id = 1
  [[servers.registers]]
  register = "holding:0"
  type = "uint16"
  signal = "ramp"
  min = 0
  max = 65535
  period_s = 600
  update_ms = 100
  count = $REGS
CONF
"$RUN/bin/kiln-sim" --config "$RUN/sim.toml" > "$RUN/sim.out" 2> "$RUN/sim.log" < /dev/null &
SIM=$!
pids+=($SIM)
for _ in $(seq 1 100); do grep -q '^ready' "$RUN/sim.out" 2> /dev/null && break; sleep 0.1; done
grep -q '^ready' "$RUN/sim.out" || { echo "kiln-sim did not start:" >&2; cat "$RUN/sim.log" >&2; exit 1; }

coproc COUNTER { exec node "$NR/mqtt-count.js" "mqtt://127.0.0.1:$MQTT_PORT" 2> "$RUN/counter.log"; }
read -r -t 20 ready <&"${COUNTER[0]}" || true
[ "${ready:-}" = ready ] || { echo "the MQTT subscriber did not start:" >&2; cat "$RUN/counter.log" >&2; exit 1; }
# Prints the subscriber's cumulative counts (one JSON line).
counts() {
  echo >&"${COUNTER[1]}"
  local line
  read -r -t 10 line <&"${COUNTER[0]}"
  echo "$line"
}

# --- gateway configurations --------------------------------------------------------------
{
  cat << CONF
# collectd: modbus plugin reading holding:0..$((REGS - 1)) (one Data block, so one request,
# per register: how the plugin works) and the mqtt plugin publishing every value.
Hostname "bench"
FQDNLookup false
BaseDir "$RUN/collectd"
PIDFile "$RUN/collectd/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval 1
LoadPlugin modbus
LoadPlugin mqtt
<Plugin modbus>
CONF
  for ((i = 0; i < REGS; i++)); do
    printf '  <Data "r%d">\n    RegisterBase %d\n    RegisterType Uint16\n    RegisterCmd ReadHolding\n    Type "gauge"\n    Instance "r%d"\n  </Data>\n' "$i" "$i" "$i"
  done
  printf '  <Host "sim">\n    Address "127.0.0.1"\n    Port "%s"\n    Interval 1\n    <Slave 1>\n      Instance "bench"\n' "$MB_PORT"
  for ((i = 0; i < REGS; i++)); do printf '      Collect "r%d"\n' "$i"; done
  cat << CONF
    </Slave>
  </Host>
</Plugin>
<Plugin mqtt>
  <Publish "broker">
    Host "127.0.0.1"
    Port "$MQTT_PORT"
    ClientId "collectd-bench"
    Prefix "collectd"
    QoS 0
    Retain false
  </Publish>
</Plugin>
CONF
} > "$RUN/collectd.conf"
mkdir -p "$RUN/collectd"

mkdir -p "$RUN/node-red"
node "$NR/make-flows.js" "$MB_PORT" "$MQTT_PORT" "$REGS" "$BLOCK" 1 > "$RUN/node-red/flows.json"

{
  cat << CONF
[node]
group_id = "Bench"
edge_node_id = "gw-compare"
[mqtt]
url = "mqtt://127.0.0.1:$MQTT_PORT"
[http]
listen = "127.0.0.1:$HTTP_PORT"
[[devices]]
id = "bench"
driver = "modbus-tcp"
address = "127.0.0.1:$MB_PORT"
poll_ms = 1000
CONF
  for ((i = 0; i < REGS; i++)); do
    printf '  [[devices.tags]]\n  name = "R%d"\n  register = "holding:%d"\n  type = "uint16"\n  deadband = 0\n' "$i" "$i"
  done
} > "$RUN/edge.toml"
"$RUN/bin/kiln-edge" check --config "$RUN/edge.toml" > /dev/null

# --- sampling ----------------------------------------------------------------------------
TCK=$(getconf CLK_TCK)
tree() { # the pid and its descendants
  echo "$1"
  local c
  for c in $(pgrep -P "$1" || true); do tree "$c"; done
}
# Lines "T <tid> <run ns>" per thread and "P <pid> <utime+stime+cutime+cstime ticks>" per
# process of the tree rooted at $1.
cpu_sample() {
  local p t
  for p in $(tree "$1"); do
    awk -v p="$p" '{ sub(/^.*\) /, ""); printf "P %s %.0f\n", p, $12 + $13 + $14 + $15 }' "/proc/$p/stat" 2> /dev/null || true
    for t in /proc/"$p"/task/*; do
      awk -v t="${t##*/}" '{ print "T", t, $1 }' "$t/schedstat" 2> /dev/null || true
    done
  done
}
# "<cpu_ns> <cpu_ticks> <threads lost>" between two cpu_sample files.
cpu_delta() {
  awk 'FNR == NR { a[$1 " " $2] = $3; next }
       { k = $1 " " $2; d = $3 - (k in a ? a[k] : 0); if ($1 == "T") ns += d; else ticks += d; seen[k] = 1 }
       END { for (k in a) if (!(k in seen) && k ~ /^T/) lost++; printf "%.0f %.0f %d\n", ns, ticks, lost }' "$1" "$2"
}
# Lines "<peer> <bytes sent - retransmitted> <bytes received>" per client socket of kiln-sim.
net_sample() {
  ss -tinH state established "( sport = :$MB_PORT )" | awk '
    /^[0-9]/ { peer = $NF; next }
    { s = r = x = 0
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^bytes_sent:/) s = substr($i, 12)
        else if ($i ~ /^bytes_received:/) r = substr($i, 16)
        else if ($i ~ /^bytes_retrans:/) x = substr($i, 15)
      }
      printf "%s %.0f %.0f\n", peer, s - x, r }'
}
# "<sent> <received> <connections changed>" between two net_sample files.
net_delta() {
  awk 'FNR == NR { s[$1] = $2; r[$1] = $3; next }
       { if ($1 in s) { ds += $2 - s[$1]; dr += $3 - r[$1]; seen[$1] = 1 } else { ds += $2; dr += $3; changed++ } }
       END { for (k in s) if (!(k in seen)) changed++; printf "%.0f %.0f %d\n", ds, dr, changed }' "$1" "$2"
}
busy_sample() { awk '/^cpu / { printf "%.0f %.0f\n", $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }
kiln_metric() { # name -> value from kiln-edge's /metrics (0 when absent)
  curl -s --max-time 2 "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v n="$1" '$1 ~ "^" n "({|$)" { v = $2 } END { printf "%.0f\n", v }'
}
json_get() { node -e 'const o = JSON.parse(process.argv[1]); console.log(o[process.argv[2]][process.argv[3]])' "$1" "$2" "$3"; }
mem_kb() { # VmHWM and VmRSS summed over the tree
  local p hwm=0 rss=0 h r
  for p in $(tree "$1"); do
    h=$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2> /dev/null || echo 0)
    r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2> /dev/null || echo 0)
    hwm=$((hwm + ${h:-0})); rss=$((rss + ${r:-0}))
  done
  echo "$hwm $rss"
}
thread_count() { local n=0 p; for p in $(tree "$1"); do n=$((n + $(ls "/proc/$p/task" | wc -l))); done; echo $n; }
wait_quiet() { # until the machine is nearly idle (< QUIET_CORES busy over 2 s), at most QUIET_WAIT s
  local deadline=$((SECONDS + QUIET_WAIT)) b0 b1 told=0
  while :; do
    b0=$(busy_sample); sleep 2; b1=$(busy_sample)
    if awk -v a="${b0% *}" -v b="${b1% *}" -v t="$TCK" -v q="$QUIET_CORES" 'BEGIN { exit !((b - a) / t / 2 < q) }'; then
      return 0
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "warning: the machine is still busy after ${QUIET_WAIT}s; measuring anyway (see machine_busy_cores)"
      return 0
    fi
    [ $told -eq 1 ] || log "waiting for the machine to quieten (other processes busy > $QUIET_CORES cores)"
    told=1
  done
}
wait_no_clients() { # until no client is connected to kiln-sim (at most 10 s)
  for _ in $(seq 1 100); do [ -z "$(net_sample)" ] && return 0; sleep 0.1; done
  log "warning: a client is still connected to kiln-sim"
}

echo "gateway,round,window_s,elapsed_s,cpu_s,cpu_ticks_s,threads_lost,requests,registers,messages,values,changed,keys,bad,hwm_kb,rss_kb,threads,sim_cpu_s,mosquitto_cpu_s,machine_busy_cores,load1,kiln_polls,kiln_requests,connections_changed,status" > "$CSV"

start_gateway() { # name -> pid (in $GW_PID), logs in $RUN/<name>-<round>.log
  local name=$1 logf=$2
  case $name in
    collectd)
      /usr/sbin/collectd -f -C "$RUN/collectd.conf" > "$logf" 2>&1 &
      ;;
    node-red)
      rm -rf "$RUN/node-red/.config"* "$RUN/node-red/context"
      KILN_NR_USERDIR="$RUN/node-red" node "$NR/node_modules/node-red/red.js" --settings "$NR/settings.js" > "$logf" 2>&1 &
      ;;
    kiln-edge)
      "$RUN/bin/kiln-edge" --config "$RUN/edge.toml" > "$logf" 2>&1 &
      ;;
  esac
  GW_PID=$!
}
key_of() { case $1 in collectd) echo collectd ;; node-red) echo nodered ;; kiln-edge) echo kiln ;; esac; }

run_one() { # name round window
  local name=$1 round=$2 window=$3 key logf c0 c1 v0 v1 status=ok
  key=$(key_of "$name")
  logf="$RUN/$name-$round.log"
  wait_no_clients
  wait_quiet
  start_gateway "$name" "$logf"
  local pid=$GW_PID
  pids+=("$pid")
  # Wait for the first message at the broker (at most 60 s).
  v0=$(json_get "$(counts)" "$key" messages)
  local started=0
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.5
    v1=$(json_get "$(counts)" "$key" messages)
    if [ "$v1" -gt "$v0" ]; then started=1; break; fi
  done
  if [ $started -eq 0 ]; then
    log "$name round $round: no value reached the broker (log: $logf)"
    tail -20 "$logf" >&2 || true
    kill "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    echo "$name,$round,$window,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,no-data" >> "$CSV"
    return 0
  fi
  sleep "$WARMUP"

  # Window start: everything sampled back to back.
  local t0 t1 b0 b1 kp0 kp1 kr0 kr1
  cpu_sample "$pid" > "$RUN/cpu0"; cpu_sample "$SIM" > "$RUN/sim0"; cpu_sample "$MOSQ" > "$RUN/mosq0"
  net_sample > "$RUN/net0"
  c0=$(counts)
  b0=$(busy_sample)
  t0=$(date +%s.%N)
  if [ "$name" = kiln-edge ]; then kp0=$(kiln_metric kiln_edge_device_polls_total); kr0=$(kiln_metric kiln_edge_device_requests_total); fi
  sleep "$window"
  cpu_sample "$pid" > "$RUN/cpu1"; cpu_sample "$SIM" > "$RUN/sim1"; cpu_sample "$MOSQ" > "$RUN/mosq1"
  net_sample > "$RUN/net1"
  c1=$(counts)
  b1=$(busy_sample)
  t1=$(date +%s.%N)
  kp1=0; kr1=0; kp0=${kp0:-0}; kr0=${kr0:-0}
  if [ "$name" = kiln-edge ]; then kp1=$(kiln_metric kiln_edge_device_polls_total); kr1=$(kiln_metric kiln_edge_device_requests_total); fi
  local mem threads load1
  mem=$(mem_kb "$pid")
  threads=$(thread_count "$pid")
  load1=$(cut -d' ' -f1 /proc/loadavg)
  kill -0 "$pid" 2> /dev/null || status=exited
  kill "$pid" 2> /dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true

  local cpu net sim mosq
  cpu=$(cpu_delta "$RUN/cpu0" "$RUN/cpu1")
  net=$(net_delta "$RUN/net0" "$RUN/net1")
  sim=$(cpu_delta "$RUN/sim0" "$RUN/sim1")
  mosq=$(cpu_delta "$RUN/mosq0" "$RUN/mosq1")
  node -e '
    const [name, round, window, t0, t1, cpu, net, sim, mosq, c0, c1, b0, b1, mem, threads, load1, kp, kr, status0, tck, key] = process.argv.slice(1)
    const elapsed = Number(t1) - Number(t0)
    const [ns, ticks, lost] = cpu.split(" ").map(Number)
    const [sent, recv, connChanged] = net.split(" ").map(Number)
    const requests = recv / 12                     // function 3 request: MBAP 7 + PDU 5 bytes
    const registers = (sent - 9 * requests) / 2    // answer: MBAP 7 + 2 + 2 x registers bytes
    const a = JSON.parse(c0)[key], b = JSON.parse(c1)[key]
    const d = (f) => b[f] - a[f]
    const [busy0, idle0] = b0.split(" ").map(Number), [busy1, idle1] = b1.split(" ").map(Number)
    const busyCores = (busy1 - busy0) / Number(tck) / elapsed
    const [hwm, rss] = mem.split(" ").map(Number)
    let status = status0
    if (status === "ok" && (d("values") < 0.95 * registers || d("bad") > 0)) status = "not-published"
    if (status === "ok" && d("changed") < 0.9 * d("values")) status = "stale-values"
    // The two CPU measures must agree (ticks: 10 ms granularity at each end).
    const tickS = ticks / Number(tck)
    if (status === "ok" && Math.abs(ns / 1e9 - tickS) > 0.03 + 0.05 * tickS) status = "cpu-mismatch"
    if (status === "ok" && (lost > 0 || connChanged > 0)) status = "ok-approx"
    const row = [name, round, window, elapsed.toFixed(3), (ns / 1e9).toFixed(6), (ticks / Number(tck)).toFixed(2), lost,
      requests, registers, d("messages"), d("values"), d("changed"), b.keys, d("bad"), hwm, rss, threads,
      (Number(sim.split(" ")[0]) / 1e9).toFixed(6), (Number(mosq.split(" ")[0]) / 1e9).toFixed(6),
      busyCores.toFixed(3), load1, Number(kp), Number(kr), connChanged, status]
    console.log(row.join(","))
  ' "$name" "$round" "$window" "$t0" "$t1" "$cpu" "$net" "$sim" "$mosq" "$c0" "$c1" "$b0" "$b1" "$mem" "$threads" "$load1" \
    "$((kp1 - kp0))" "$((kr1 - kr0))" "$status" "$TCK" "$key" >> "$CSV"
  log "$(tail -1 "$CSV" | awk -F, '{ printf "%s round %s: %.0f registers/s, %.4f CPU-s/s, %.0f registers/CPU-s, %.1f requests/poll, HWM %d KiB [%s]", $1, $2, $9 / $4, $5 / $4, ($5 > 0 ? ($9 < $11 ? $9 : $11) / $5 : 0), ($9 > 0 ? $8 / ($9 / 1000) : 0), $15, $25 }')"
}

log "measuring (work directory $RUN)"
for ((round = 1; round <= REPEATS; round++)); do
  window=$SECS
  [ $round -gt 1 ] && window=$REPEAT_SECONDS
  for gw in $GATEWAYS; do run_one "$gw" "$round" "$window"; done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RUN/machine.txt"
flock -u 9

echo
cat "$RUN/machine.txt"
echo
node "$HERE/summarize.js" "$CSV" "$REGS" "$BLOCK"
if [ "${KEEP:-0}" != 1 ]; then
  mkdir -p /tmp/kiln-compare-results
  out=/tmp/kiln-compare-results/$(date +%Y%m%dT%H%M%S)
  mkdir -p "$out" && cp "$CSV" "$RUN/machine.txt" "$out/" && echo "raw results: $out/results.csv"
fi
