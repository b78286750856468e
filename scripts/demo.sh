#!/usr/bin/env bash
# Runs Kiln with a simulated plant: installs what is missing, builds, then starts Mosquitto
# on a loopback port, kiln-sim (two Modbus TCP devices), kiln-edge and kiln-server, and prints
# the dashboard URL. Ctrl-C stops everything.
#   KILN_DEMO_MQTT_PORT (default 18830)  KILN_DEMO_HTTP_PORT (edge, 9102)
#   KILN_DEMO_SERVER_PORT (dashboard and REST, default 8080)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

bash scripts/deps.sh

# uPlot for the web dashboard, which CMake embeds into kiln-server (web/CMakeLists.txt),
# from the lockfile. Skipped when node_modules already matches it.
if [ ! -f web/node_modules/.package-lock.json ] ||
   [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

BUILD_DIR=${KILN_BUILD_DIR:-build/demo}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" -j2 --target kiln-edge kiln-sim kiln-server kiln
BIN="$ROOT/$BUILD_DIR/bin"

MQTT_PORT=${KILN_DEMO_MQTT_PORT:-18830}
HTTP_PORT=${KILN_DEMO_HTTP_PORT:-9102}
SERVER_PORT=${KILN_DEMO_SERVER_PORT:-8080}
RUN=$(mktemp -d /tmp/kiln-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo stopped; logs were in $RUN"
}
trap cleanup EXIT INT TERM

cat > "$RUN/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
log_dest file $RUN/mosquitto.log
CONF
[ "$(id -u)" -eq 0 ] && echo "user root" >> "$RUN/mosquitto.conf"
/usr/sbin/mosquitto -c "$RUN/mosquitto.conf" &
pids+=($!)
MOSQ_PID=$!

"$BIN/kiln-sim" --config examples/sim.toml > "$RUN/sim.out" 2> "$RUN/sim.log" < /dev/null &
pids+=($!)

# The server first: the edge follows it as its primary host (births wait for its STATE).
sed -e "s|mqtt://127.0.0.1:1883|mqtt://127.0.0.1:$MQTT_PORT|" \
    -e "s|127.0.0.1:8080|127.0.0.1:$SERVER_PORT|" \
    -e "s|/tmp/kiln-server|$RUN/server-state|" examples/server.toml > "$RUN/server.toml"
"$BIN/kiln-server" --config "$RUN/server.toml" 2> "$RUN/server.log" &
pids+=($!)

sed -e "s|mqtt://127.0.0.1:1883|mqtt://127.0.0.1:$MQTT_PORT|" \
    -e "s|127.0.0.1:9102|127.0.0.1:$HTTP_PORT|" \
    -e "s|/tmp/kiln-edge|$RUN/edge-state|" examples/edge.toml > "$RUN/edge.toml"
printf '\n[sparkplug]\nprimary_host_id = "kiln"\n' >> "$RUN/edge.toml"
"$BIN/kiln-edge" --config "$RUN/edge.toml" 2> "$RUN/edge.log" &
pids+=($!)

for port in "$HTTP_PORT" "$SERVER_PORT"; do
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
done

cat <<TXT

Kiln demo is running (logs in $RUN).
  dashboard        http://127.0.0.1:$SERVER_PORT/
  REST API         http://127.0.0.1:$SERVER_PORT/api/v1/nodes   (docs/API.md)
  write a setpoint $BIN/kiln cmd write Plant1/gw-01/oven-1/Setpoint 200 --ttl 30s --server http://127.0.0.1:$SERVER_PORT
  server metrics   http://127.0.0.1:$SERVER_PORT/metrics
  MQTT broker      mqtt://127.0.0.1:$MQTT_PORT
  edge health      http://127.0.0.1:$HTTP_PORT/health
  edge metrics     http://127.0.0.1:$HTTP_PORT/metrics
  Sparkplug topics mosquitto_sub -p $MQTT_PORT -t 'spBv1.0/#' -v
  decoded          node tests/system/tools/sparkplug-watch.js mqtt://127.0.0.1:$MQTT_PORT
                   (after: (cd tests/system && npm ci))
  simulator        Modbus TCP on 127.0.0.1:5020 (press-3) and :5021 (oven-1)
  outage           kill -STOP $MOSQ_PID; (wait a minute); kill -CONT $MOSQ_PID
                   the edge keeps every value in $RUN/edge-state/queue and replays it;
                   the dashboard's history fills the gap
Press Ctrl-C to stop.
TXT
wait
