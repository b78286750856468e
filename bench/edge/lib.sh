# Helpers of the end-to-end edge benchmarks (e2e.sh, replay.sh). Sourced, not run; expects
# the repository root as the working directory and BUILD set to the build directory.
#   bench_init NAME [ROOT=/tmp]   checks the binaries, makes RUN=ROOT/kiln-NAME.XXXXXX and
#                                 kills every pid in `pids` on exit
#   free_port                     prints a free TCP port on 127.0.0.1
#   start_mosquitto PORT          a Mosquitto on 127.0.0.1:PORT (pid in MOSQ)
#   start_sim PORT TAGS UPDATE_MS kiln-sim serving TAGS uint16 ramps that change every
#                                 UPDATE_MS (pid in SIM); wait_sim_ready waits for it
#   edge_header [TOML]            prints a kiln-edge config's [node], [mqtt] and [http] (uses
#                                 MQTT_PORT, HTTP_PORT), then TOML
#   edge_config TAGS POLL_MS [TOML]  prints a kiln-edge config polling them, with TOML
#                                 (e.g. a [queue] or [store] section) before the devices;
#                                 uses MQTT_PORT, MODBUS_PORT, HTTP_PORT
#   start_edge CONFIG             kiln-edge (pid in EDGE, log in RUN/edge.log)
#   cpu PID                       utime + stime of PID in clock ticks (TCK per second)
#   metric NAME                   the value of NAME (any labels) at kiln-edge's /metrics

bench_init() {
  BIN="$BUILD/bin"
  for b in kiln-edge kiln-sim sparkplug_counter; do
    [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: build with cmake --preset release" >&2; exit 2; }
  done
  RUN=$(mktemp -d "${2:-/tmp}/kiln-$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_mosquitto() {
  cat > "$RUN/mosquitto.conf" <<CONF
listener $1 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
set_tcp_nodelay true
CONF
  [ "$(id -u)" -eq 0 ] && echo "user root" >> "$RUN/mosquitto.conf"
  /usr/sbin/mosquitto -c "$RUN/mosquitto.conf" 2>"$RUN/mosquitto.log" & pids+=($!); MOSQ=$!
}

start_sim() {
  cat > "$RUN/sim.toml" <<CONF
[[servers]]
id = "bench"
protocol = "tcp"
listen = "127.0.0.1:$1"
unit_id = 1
  [[servers.registers]]
  register = "holding:0"
  type = "uint16"
  signal = "ramp"
  min = 0
  max = 60000
  period_s = 600
  update_ms = $3
  count = $2
CONF
  "$BIN/kiln-sim" --config "$RUN/sim.toml" > "$RUN/sim.out" 2> "$RUN/sim.log" < /dev/null & pids+=($!); SIM=$!
}

wait_sim_ready() { for _ in $(seq 1 50); do grep -q ready "$RUN/sim.out" 2>/dev/null && break; sleep 0.1; done; }

edge_header() {
  cat <<CONF
[node]
group_id = "Bench"
edge_node_id = "gw-bench"
[mqtt]
url = "mqtt://127.0.0.1:$MQTT_PORT"
[http]
listen = "127.0.0.1:$HTTP_PORT"
${1:-}
CONF
}

edge_config() {
  edge_header "${3:-}"
  cat <<CONF
[[devices]]
id = "bench"
driver = "modbus-tcp"
address = "127.0.0.1:$MODBUS_PORT"
poll_ms = $2
CONF
  for ((i = 0; i < $1; i++)); do
    printf '  [[devices.tags]]\n  name = "R%d"\n  register = "holding:%d"\n  type = "uint16"\n' "$i" "$i"
  done
}

start_edge() { "$BIN/kiln-edge" --config "$1" 2> "$RUN/edge.log" & pids+=($!); EDGE=$!; }

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime in clock ticks
TCK=$(getconf CLK_TCK)

metric() {
  curl -s "http://127.0.0.1:$HTTP_PORT/metrics" |
    awk -v m="$1" '$1 == m || index($1, m "{") == 1 {print $2; exit}'
}
