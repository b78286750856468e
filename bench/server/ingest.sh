#!/usr/bin/env bash
# Sustained ingest, end to end: kiln-bench plays N Sparkplug edge nodes publishing DDATA of
# 100 metrics through a real Mosquitto into kiln-server (historian with its WAL on disk), and
# waits until /metrics says every point is stored, then checks the count over REST.
#   bench/server/ingest.sh [NODES=10] [MESSAGES=10000] [METRICS=100] [RATE=0 (as fast as possible)]
# Build first: cmake --preset release && cmake --build build/release --target kiln-server kiln-bench
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/release}
BIN="$BUILD/bin"
NODES=${1:-10}
MESSAGES=${2:-10000}
METRICS=${3:-100}
RATE=${4:-0}
for b in kiln-server kiln-bench; do
  [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: build with cmake --preset release" >&2; exit 2; }
done
# shellcheck source=../edge/lib.sh
source bench/edge/lib.sh
RUN=$(mktemp -d /var/tmp/kiln-ingest.XXXXXX)
pids=()
trap 'bench_cleanup; rm -rf "$RUN"' EXIT

MQTT_PORT=$(free_port)
HTTP_PORT=$(free_port)
start_mosquitto "$MQTT_PORT"
cat > "$RUN/server.toml" <<CONF
[mqtt]
url = "mqtt://127.0.0.1:$MQTT_PORT"
[sparkplug]
host_id = "bench"
[storage]
path = "$RUN/server"
[http]
listen = "127.0.0.1:$HTTP_PORT"
CONF
"$BIN/kiln-server" --config "$RUN/server.toml" 2> "$RUN/server.log" & pids+=($!); SERVER=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$HTTP_PORT/health" >/dev/null 2>&1 && break
  sleep 0.1
done
"$BIN/kiln-bench" ingest --broker "mqtt://127.0.0.1:$MQTT_PORT" --server "http://127.0.0.1:$HTTP_PORT" \
  --nodes "$NODES" --messages "$MESSAGES" --metrics "$METRICS" --rate "$RATE" --pids "$SERVER,$MOSQ"
echo "historian: $(du -sb "$RUN/server/historian" | cut -f1) bytes on disk (WAL included, before sealing)"
