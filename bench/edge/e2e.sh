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
source bench/edge/lib.sh
bench_init e2e

MQTT_PORT=$(free_port); MODBUS_PORT=$(free_port); HTTP_PORT=$(free_port)
start_mosquitto "$MQTT_PORT"
start_sim "$MODBUS_PORT" "$TAGS" "$POLL_MS"
edge_config "$TAGS" "$POLL_MS" "[queue]
max_samples = 200000" > "$RUN/edge.toml"
wait_sim_ready
start_edge "$RUN/edge.toml"

sleep 3
e0=$(cpu $EDGE); s0=$(cpu $SIM); m0=$(cpu $MOSQ)
RESULT=$("$BIN/sparkplug_counter" "mqtt://127.0.0.1:$MQTT_PORT" 0 "$SECS")
e1=$(cpu $EDGE); s1=$(cpu $SIM); m1=$(cpu $MOSQ)
RSS=$(awk '/VmRSS/ {print $2}' "/proc/$EDGE/status")
REQS=$(metric kiln_edge_device_polls_total)
echo "tags=$TAGS poll_ms=$POLL_MS seconds=$SECS"
echo "broker: $RESULT"
awk -v e=$((e1 - e0)) -v s=$((s1 - s0)) -v m=$((m1 - m0)) -v t="$TCK" -v secs="$SECS" 'BEGIN {
  printf "cpu (cores busy): kiln-edge %.2f  kiln-sim %.2f  mosquitto %.2f\n", e/t/secs, s/t/secs, m/t/secs }'
echo "kiln-edge VmRSS: ${RSS} KiB; polls so far: ${REQS}"
