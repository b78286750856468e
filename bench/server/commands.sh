#!/usr/bin/env bash
# Command round trip on loopback: kiln-bench writes a tag COUNT times through kiln-server
# (REST) -> Mosquitto -> kiln-edge (gate, Modbus write and read-back on kiln-sim) -> the
# result back to kiln-server, one after the other, and reports p50/p90/p99.
#   bench/server/commands.sh [COUNT=1000]
# Build first: cmake --preset release && cmake --build build/release
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/release}
BIN="$BUILD/bin"
COUNT=${1:-1000}
for b in kiln-server kiln-edge kiln-sim kiln-bench; do
  [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: build with cmake --preset release" >&2; exit 2; }
done
# shellcheck source=../edge/lib.sh
source bench/edge/lib.sh
RUN=$(mktemp -d /var/tmp/kiln-cmd.XXXXXX)
pids=()
trap 'bench_cleanup; rm -rf "$RUN"' EXIT
MQTT_PORT=$(free_port); HTTP_PORT=$(free_port); EDGE_PORT=$(free_port); MODBUS_PORT=$(free_port)
start_mosquitto "$MQTT_PORT"
cat > "$RUN/sim.toml" <<CONF
[[servers]]
id = "dev"
protocol = "tcp"
listen = "127.0.0.1:$MODBUS_PORT"
unit_id = 1
  [[servers.registers]]
  register = "holding:0"
  type = "uint16"
  signal = "constant"
  value = 0
CONF
"$BIN/kiln-sim" --config "$RUN/sim.toml" > "$RUN/sim.out" 2> "$RUN/sim.log" < /dev/null & pids+=($!)
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
"$BIN/kiln-server" --config "$RUN/server.toml" 2> "$RUN/server.log" & pids+=($!)
cat > "$RUN/edge.toml" <<CONF
[node]
group_id = "Bench"
edge_node_id = "gw"
[mqtt]
url = "mqtt://127.0.0.1:$MQTT_PORT"
[http]
listen = "127.0.0.1:$EDGE_PORT"
[sparkplug]
primary_host_id = "bench"   # births wait for the server's STATE
[[devices]]
id = "dev"
driver = "modbus-tcp"
address = "127.0.0.1:$MODBUS_PORT"
unit_id = 1
poll_ms = 1000
  [[devices.tags]]
  name = "Target"
  register = "holding:0"
  type = "uint16"
  writable = true
CONF
for _ in $(seq 1 50); do grep -q ready "$RUN/sim.out" 2>/dev/null && break; sleep 0.1; done
"$BIN/kiln-edge" --config "$RUN/edge.toml" 2> "$RUN/edge.log" & pids+=($!)
for _ in $(seq 1 100); do
  curl -s "http://127.0.0.1:$HTTP_PORT/api/v1/nodes/Bench/gw" | grep -q '"device":"dev","online":true' && break
  sleep 0.1
done
"$BIN/kiln-bench" commands --server "http://127.0.0.1:$HTTP_PORT" --target Bench/gw/dev \
  --metric Target --count "$COUNT"
