#!/usr/bin/env bash
# End-to-end edge benchmark: kiln-sim serves N changing holding registers over Modbus TCP,
# kiln-edge polls them every POLL_MS and publishes Sparkplug B to a real Mosquitto, and
# sparkplug_counter decodes what reaches the broker. Prints points/s at the broker, the CPU
# used by each process during the measurement, and kiln-edge's resident memory.
#   bench/edge/e2e.sh [BUILD_DIR=build/release] [TAGS=10000] [POLL_MS=100] [SECONDS=20]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build/release}
TAGS=${2:-10000}
POLL_MS=${3:-100}
SECS=${4:-20}
BIN="$BUILD/bin"
for b in kiln-edge kiln-sim sparkplug_counter; do
  [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: build with cmake --preset release" >&2; exit 2; }
done

RUN=$(mktemp -d /tmp/kiln-e2e.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQTT_PORT=$(free_port); MODBUS_PORT=$(free_port); HTTP_PORT=$(free_port)

cat > "$RUN/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
CONF
[ "$(id -u)" -eq 0 ] && echo "user root" >> "$RUN/mosquitto.conf"
/usr/sbin/mosquitto -c "$RUN/mosquitto.conf" 2>"$RUN/mosquitto.log" & pids+=($!); MOSQ=$!

cat > "$RUN/sim.toml" <<CONF
[[servers]]
id = "bench"
protocol = "tcp"
listen = "127.0.0.1:$MODBUS_PORT"
unit_id = 1
  [[servers.registers]]
  register = "holding:0"
  type = "uint16"
  signal = "ramp"
  min = 0
  max = 60000
  period_s = 600
  update_ms = $POLL_MS
  count = $TAGS
CONF
"$BIN/kiln-sim" --config "$RUN/sim.toml" > "$RUN/sim.out" 2> "$RUN/sim.log" < /dev/null & pids+=($!); SIM=$!

{
  cat <<CONF
[node]
group_id = "Bench"
edge_node_id = "gw-bench"
[mqtt]
url = "mqtt://127.0.0.1:$MQTT_PORT"
[http]
listen = "127.0.0.1:$HTTP_PORT"
[queue]
max_samples = 200000
[[devices]]
id = "bench"
driver = "modbus-tcp"
address = "127.0.0.1:$MODBUS_PORT"
poll_ms = $POLL_MS
CONF
  for ((i = 0; i < TAGS; i++)); do
    printf '  [[devices.tags]]\n  name = "R%d"\n  register = "holding:%d"\n  type = "uint16"\n' "$i" "$i"
  done
} > "$RUN/edge.toml"

for _ in $(seq 1 50); do grep -q ready "$RUN/sim.out" 2>/dev/null && break; sleep 0.1; done
"$BIN/kiln-edge" --config "$RUN/edge.toml" 2> "$RUN/edge.log" & pids+=($!); EDGE=$!

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime in clock ticks
TCK=$(getconf CLK_TCK)
sleep 3
e0=$(cpu $EDGE); s0=$(cpu $SIM); m0=$(cpu $MOSQ)
RESULT=$("$BIN/sparkplug_counter" "mqtt://127.0.0.1:$MQTT_PORT" 0 "$SECS")
e1=$(cpu $EDGE); s1=$(cpu $SIM); m1=$(cpu $MOSQ)
RSS=$(awk '/VmRSS/ {print $2}' "/proc/$EDGE/status")
REQS=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^kiln_edge_device_polls_total/ {print $2}')
echo "tags=$TAGS poll_ms=$POLL_MS seconds=$SECS"
echo "broker: $RESULT"
awk -v e=$((e1 - e0)) -v s=$((s1 - s0)) -v m=$((m1 - m0)) -v t="$TCK" -v secs="$SECS" 'BEGIN {
  printf "cpu (cores busy): kiln-edge %.2f  kiln-sim %.2f  mosquitto %.2f\n", e/t/secs, s/t/secs, m/t/secs }'
echo "kiln-edge VmRSS: ${RSS} KiB; polls so far: ${REQS}"
