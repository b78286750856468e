#!/usr/bin/env bash
# Replay benchmark: how fast kiln-edge drains its journal to the broker after an outage.
# kiln-sim serves TAGS changing holding registers; kiln-edge polls them every POLL_MS with a
# journal ([store] path in a scratch directory under /var/tmp, on the real disk) while no
# broker is up, for OUTAGE_S seconds. Then Mosquitto starts with sparkplug_counter subscribed,
# and the script follows kiln-edge's /metrics until the backlog is replayed. Live polling goes
# on all the time. Prints the backlog, the replay rate (kiln-edge's counters and, independently,
# the historical metrics decoded at the broker), its ratio to the live rate of e2e.sh, and the
# CPU each process used while replaying.
#   bench/edge/replay.sh [BUILD_DIR=build/release] [TAGS=10000] [POLL_MS=100] [OUTAGE_S=15]
#                        [REPLAY_RATE=10000000] [FSYNC=interval] [COMPRESSION=none]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build/release}
TAGS=${2:-10000}
POLL_MS=${3:-100}
OUTAGE=${4:-15}
RATE=${5:-10000000}
FSYNC=${6:-interval}
COMPRESSION=${7:-none}
LIVE_E2E=100000  # points/s at the broker of e2e.sh with 10,000 tags @100 ms (PERFORMANCE.md)
source bench/edge/lib.sh
bench_init replay /var/tmp
trap 'bench_cleanup; rm -rf "$RUN/store"' EXIT  # the journal can be large; logs stay

MQTT_PORT=$(free_port); MODBUS_PORT=$(free_port); HTTP_PORT=$(free_port)
start_sim "$MODBUS_PORT" "$TAGS" "$POLL_MS"
edge_config "$TAGS" "$POLL_MS" "[store]
path = \"$RUN/store\"
replay_rate = $RATE
fsync = \"$FSYNC\"
compression = \"$COMPRESSION\"" > "$RUN/edge.toml"
wait_sim_ready
start_edge "$RUN/edge.toml"

now_ms() { date +%s%3N; }
echo "tags=$TAGS poll_ms=$POLL_MS outage_s=$OUTAGE replay_rate=$RATE fsync=$FSYNC compression=$COMPRESSION"
echo "broker down for ${OUTAGE} s ..."
sleep "$OUTAGE"
DEPTH0=$(metric kiln_edge_queue_depth)
BYTES0=$(metric kiln_edge_queue_bytes)
APPENDED0=$(metric kiln_edge_queue_appended_total)

start_mosquitto "$MQTT_PORT"
T_BROKER=$(now_ms)
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$MQTT_PORT") 2>/dev/null && break
  sleep 0.02
done
"$BIN/sparkplug_counter" "mqtt://127.0.0.1:$MQTT_PORT" 0 3600 --historical \
  > "$RUN/counter.json" 2> "$RUN/counter.log" & pids+=($!); COUNTER=$!
for _ in $(seq 1 200); do grep -q subscribed "$RUN/counter.log" 2>/dev/null && break; sleep 0.01; done
T_SUBSCRIBED=$(now_ms)

# CPU of every process every 20 ms (bash builtins only, to stay light), to be cut to the
# replay window as the broker saw it.
sample_cpu() {
  local p f line
  while :; do
    line=${EPOCHREALTIME/[.,]/}
    for p in $EDGE $SIM $MOSQ $COUNTER; do
      read -r -a f < "/proc/$p/stat" || f=()
      line+=" $(( ${f[13]:-0} + ${f[14]:-0} ))"
    done
    echo "$line"
    sleep 0.02
  done
}
sample_cpu > "$RUN/cpu.log" & pids+=($!); SAMPLER=$!

# Follow the replay: connected, then kiln_edge_replayed_samples_total until it stops growing
# for 2 s (0.1 s resolution; the broker's timestamps below are exact to the millisecond).
T_CONNECT=""; T_LAST=""; LAST=0
DEADLINE=$(( $(now_ms) + 900000 ))
while [ "$(now_ms)" -lt "$DEADLINE" ]; do
  t=$(now_ms)
  if [ -z "$T_CONNECT" ] && [ "$(metric kiln_edge_mqtt_connected)" = "1" ]; then T_CONNECT=$t; fi
  R=$(metric kiln_edge_replayed_samples_total); R=${R:-0}
  if awk -v r="$R" -v l="$LAST" 'BEGIN { exit !(r > l) }'; then
    LAST=$R; T_LAST=$t
  elif [ -n "$T_LAST" ] && [ $((t - T_LAST)) -ge 2000 ]; then
    break
  elif [ -z "$T_LAST" ] && [ -n "$T_CONNECT" ] && [ $((t - T_CONNECT)) -ge 30000 ]; then
    echo "nothing replayed 30 s after connecting" >&2
    break
  fi
  sleep 0.1
done
kill "$SAMPLER"
DEPTH1=$(metric kiln_edge_queue_depth)
FSYNCS=$(metric kiln_edge_queue_fsync_seconds_count)
FSYNC_S=$(metric kiln_edge_queue_fsync_seconds_sum)
SENT=$(metric kiln_edge_queue_sent_total)
DROPPED=$(metric kiln_edge_queue_dropped_total)
MSGS=$(metric kiln_edge_mqtt_messages_total)
CONNECTS=$(metric kiln_edge_mqtt_connects_total)
kill -INT "$COUNTER"; wait "$COUNTER" || true
RESULT=$(cat "$RUN/counter.json")
json() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$RESULT" "$1"; }
[ -n "$T_CONNECT" ] || { echo "kiln-edge never connected; see $RUN/edge.log" >&2; exit 1; }
[ -n "$T_LAST" ] || { echo "broker: $RESULT; see $RUN/edge.log" >&2; exit 1; }

echo "backlog when the broker came up: ${DEPTH0} samples (${APPENDED0} appended), journal $(awk -v b="$BYTES0" 'BEGIN { printf "%.1f MiB", b/1048576 }')"
echo "broker up -> counter subscribed $((T_SUBSCRIBED - T_BROKER)) ms -> kiln-edge connected $((T_CONNECT - T_BROKER)) ms (reconnect backoff, 0.1 s resolution)"
echo "broker: $RESULT"
H=$(json historical_points); F=$(json first_historical_ms); L=$(json last_historical_ms)
awk -v r="$LAST" -v tc="$T_CONNECT" -v tl="$T_LAST" -v h="$H" -v f="$F" -v l="$L" \
    -v live="$LIVE_E2E" -v d1="$DEPTH1" 'BEGIN {
  edge = r / ((tl - tc) / 1000); broker = (l > f) ? h / ((l - f) / 1000) : 0
  printf "replayed (kiln-edge metrics): %d samples in %.1f s from connect = %.0f samples/s\n", r, (tl - tc) / 1000, edge
  printf "historical at the broker: %d metrics, first to last in %.2f s = %.0f samples/s\n", h, (l - f) / 1000, broker
  printf "ratio to the live rate of e2e.sh (%d points/s): %.1fx (kiln-edge), %.1fx (broker)\n", live, edge / live, broker / live
  printf "queue depth after the replay: %d\n", d1 }'
# CPU from the last sample before the first historical metric to the first after the last.
# The sampler logs microseconds; the counter milliseconds.
awk -v f="$F" -v l="$L" -v t="$TCK" '
  { ms = $1 / 1000 }
  ms <= f { for (i = 2; i <= 5; i++) a[i] = $i; ta = ms }
  ms >= l && !done { for (i = 2; i <= 5; i++) b[i] = $i; tb = ms; done = 1 }
  END {
    secs = (tb - ta) / 1000
    if (!done || secs <= 0) { print "cpu while replaying: window too short to measure"; exit }
    printf "cpu while replaying (cores busy over %.2f s): kiln-edge %.2f  kiln-sim %.2f  mosquitto %.2f  sparkplug_counter %.2f\n",
      secs, (b[2]-a[2])/t/secs, (b[3]-a[3])/t/secs, (b[4]-a[4])/t/secs, (b[5]-a[5])/t/secs }' "$RUN/cpu.log"
echo "kiln-edge: mqtt messages ${MSGS}, connects ${CONNECTS}, sent ${SENT}, dropped ${DROPPED}, fsyncs ${FSYNCS} (${FSYNC_S} s)"
[ "$H" = "${LAST%.*}" ] || echo "note: the broker counted $H historical metrics, kiln-edge replayed $LAST"
