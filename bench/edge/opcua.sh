#!/usr/bin/env bash
# End-to-end OPC UA benchmark: a node-opcua server (tests/system/tools/opcua-server.js) changes
# N Double variables every PERIOD_MS, kiln-edge subscribes to all of them (sampling PERIOD_MS)
# and publishes Sparkplug B to a real Mosquitto, and sparkplug_counter decodes what reaches the
# broker. Prints values/s at the broker against what the server produced, the CPU of each
# process during the measurement, and kiln-edge's resident memory.
#   bench/edge/opcua.sh [BUILD_DIR=build/release] [ITEMS=10000] [PERIOD_MS=100] [SECONDS=20]
# Needs `npm ci` in tests/system (node-opcua).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build/release}
ITEMS=${2:-10000}
PERIOD_MS=${3:-100}
SECS=${4:-20}
source bench/edge/lib.sh
bench_init opcua
[ -d tests/system/node_modules/node-opcua ] || { echo "run npm ci in tests/system first" >&2; exit 2; }

MQTT_PORT=$(free_port); UA_PORT=$(free_port); HTTP_PORT=$(free_port)
start_mosquitto "$MQTT_PORT"
# The server exits when its stdin closes: this script holds the FIFO's write end (fd 4) open
# until it exits.
mkfifo "$RUN/ua.in"
node tests/system/tools/opcua-server.js --port "$UA_PORT" --pki "$RUN/pki" \
  --bulk "$ITEMS" --bulk-period "$PERIOD_MS" > "$RUN/ua.out" 2> "$RUN/ua.log" < "$RUN/ua.in" &
pids+=($!); UA=$!
exec 4> "$RUN/ua.in"
{
  edge_header "[queue]
max_samples = 1000000"
  cat <<CONF
[[devices]]
id = "ua"
driver = "opcua"
endpoint = "opc.tcp://127.0.0.1:$UA_PORT"
timeout_ms = 20000
CONF
  for ((i = 0; i < ITEMS; i++)); do
    printf '  [[devices.tags]]\n  name = "B%d"\n  node_id = "ns=1;s=Bulk.%d"\n  sampling_ms = %d\n' \
      "$i" "$i" "$PERIOD_MS"
  done
} > "$RUN/edge.toml"
for _ in $(seq 1 300); do grep -q '^ready' "$RUN/ua.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^ready' "$RUN/ua.out" || { echo "node-opcua did not start: $(tail -5 "$RUN/ua.log")" >&2; exit 1; }
start_edge "$RUN/edge.toml"
for _ in $(seq 1 300); do [ "$(metric kiln_edge_device_online)" = "1" ] && break; sleep 0.1; done

sleep 5
e0=$(cpu $EDGE); u0=$(cpu $UA); m0=$(cpu $MOSQ)
RESULT=$("$BIN/sparkplug_counter" "mqtt://127.0.0.1:$MQTT_PORT" 0 "$SECS")
e1=$(cpu $EDGE); u1=$(cpu $UA); m1=$(cpu $MOSQ)
RSS=$(awk '/VmRSS/ {print $2}' "/proc/$EDGE/status")
echo "items=$ITEMS period_ms=$PERIOD_MS seconds=$SECS (the server changes $((ITEMS * 1000 / PERIOD_MS)) values/s)"
echo "broker: $RESULT"
awk -v e=$((e1 - e0)) -v u=$((u1 - u0)) -v m=$((m1 - m0)) -v t="$TCK" -v secs="$SECS" 'BEGIN {
  printf "cpu (cores busy): kiln-edge %.2f  node-opcua %.2f  mosquitto %.2f\n", e/t/secs, u/t/secs, m/t/secs }'
echo "kiln-edge VmRSS: ${RSS} KiB; requests: $(metric kiln_edge_device_requests_total)"
