#!/usr/bin/env bash
# Kiln's historian side by side with VictoriaMetrics (Debian's victoria-metrics), fed the same
# points on the same machine: 100 series x 1 day at 1 Hz of a dataset from
# bench/historian/dataset.h (2-decimal noise by default). Reports for both: ingest points/s,
# bytes per point on disk, and the latency of one series' day as 60 s averages over HTTP
# (kiln-server GET /api/v1/query vs VictoriaMetrics GET /api/v1/query_range, caches off).
#   bench/server/vm_compare.sh [DATASET=decimal_noise] [SERIES=100] [POINTS=86400]
# Needs: build/release (kiln-server, kiln-bench), apt-get install victoria-metrics curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/release}
BIN="$BUILD/bin"
DATASET=${1:-decimal_noise}
SERIES=${2:-100}
POINTS=${3:-86400}
QUERIES=${QUERIES:-50}
VM=${VM:-/usr/bin/victoria-metrics}
for b in "$BIN/kiln-server" "$BIN/kiln-bench" "$VM"; do
  [ -x "$b" ] || { echo "missing $b" >&2; exit 2; }
done
# shellcheck source=../edge/lib.sh
source bench/edge/lib.sh
RUN=$(mktemp -d /var/tmp/kiln-vm.XXXXXX)
pids=()
trap 'bench_cleanup; rm -rf "$RUN"' EXIT
TOTAL=$((SERIES * POINTS))
FROM_MS=1700000000000                      # dataset.h kBaseTimeMs
TO_MS=$((FROM_MS + POINTS * 1000))

# Median of the HTTP total time (ms) of QUERIES GETs of URL.
median_ms() {
  for _ in $(seq 1 "$QUERIES"); do curl -gs -o /dev/null -w '%{time_total}\n' "$1"; done |
    sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)] * 1000}'
}
wait_http() { for _ in $(seq 1 100); do curl -gs -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }

echo "== $SERIES series x $POINTS points of $DATASET = $TOTAL points"

echo "-- Kiln historian (kiln-bench historian: Append + Flush, in process)"
"$BIN/kiln-bench" historian --dir "$RUN/kiln/historian" --series "$SERIES" --points "$POINTS" \
  --dataset "$DATASET" | tee "$RUN/kiln.out"
KILN_BYTES=$(du -sb "$RUN/kiln/historian" | cut -f1)
KILN_PORT=$(free_port)
cat > "$RUN/server.toml" <<CONF
[mqtt]
url = "mqtt://127.0.0.1:1"   # no broker: only the REST API is used here
[sparkplug]
host_id = "vmcompare"
[storage]
path = "$RUN/kiln"
retention = 0
[http]
listen = "127.0.0.1:$KILN_PORT"
CONF
"$BIN/kiln-server" --config "$RUN/server.toml" 2> "$RUN/server.log" & pids+=($!)
wait_http "http://127.0.0.1:$KILN_PORT/health"
KILN_Q="http://127.0.0.1:$KILN_PORT/api/v1/query?metric=Bench%2Fnode%2Fdev%2Fm000&from=$FROM_MS&to=$TO_MS&step=60000&agg=avg"
[ "$(curl -gs "$KILN_Q" | grep -o '"count"' | wc -l)" -gt 0 ] || { echo "kiln query returned nothing" >&2; exit 1; }
KILN_MS=$(median_ms "$KILN_Q")

echo "-- VictoriaMetrics $("$VM" -version 2>&1 | head -1)"
"$BIN/kiln-bench" gen --series "$SERIES" --points "$POINTS" --dataset "$DATASET" --metric kiln_bench > "$RUN/data.prom"
VM_PORT=$(free_port)
"$VM" -storageDataPath "$RUN/vm" -httpListenAddr "127.0.0.1:$VM_PORT" -retentionPeriod 100y \
  -search.disableCache -loggerLevel ERROR > "$RUN/vm.log" 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$VM_PORT/health"
start=$(date +%s.%N)
curl -gsf --data-binary @"$RUN/data.prom" "http://127.0.0.1:$VM_PORT/api/v1/import/prometheus"
curl -gsf "http://127.0.0.1:$VM_PORT/internal/force_flush"
end=$(date +%s.%N)
# Count what VictoriaMetrics holds, so the rate is of stored points.
COUNT_Q="http://127.0.0.1:$VM_PORT/api/v1/query?query=sum(count_over_time(kiln_bench[$((POINTS + 1))s]))&time=$((TO_MS / 1000))"
for _ in $(seq 1 100); do
  n=$(curl -gs "$COUNT_Q" | sed -n 's/.*"value":\[[0-9.]*,"\([0-9]*\)"\].*/\1/p')
  [ "${n:-0}" -ge "$TOTAL" ] && break
  sleep 0.2
done
[ "${n:-0}" -ge "$TOTAL" ] || { echo "VictoriaMetrics holds ${n:-0} of $TOTAL points" >&2; exit 1; }
VM_S=$(echo "$end - $start" | bc -l)
# Let background merges settle before measuring the footprint.
curl -gsf "http://127.0.0.1:$VM_PORT/internal/force_merge" || true
sleep 3
VM_BYTES=$(du -sb "$RUN/vm" | cut -f1)
VM_Q="http://127.0.0.1:$VM_PORT/api/v1/query_range?query=avg_over_time(kiln_bench%7Bseries%3D%220%22%7D%5B60s%5D)&start=$((FROM_MS / 1000))&end=$((TO_MS / 1000 - 1))&step=60&nocache=1"
VM_MS=$(median_ms "$VM_Q")
echo "imported $n points in $VM_S s (HTTP import + force_flush)"

KILN_RATE=$(grep -o 'in [0-9.]* s: [0-9]* points/s' "$RUN/kiln.out" | awk '{print $4}')
VM_RATE=$(echo "$TOTAL / $VM_S" | bc -l)
printf '\n%-28s %16s %16s %8s\n' "" "Kiln historian" "VictoriaMetrics" "ratio"
printf '%-28s %16.0f %16.0f %8.2f\n' "ingest points/s" "$KILN_RATE" "$VM_RATE" "$(echo "$KILN_RATE / $VM_RATE" | bc -l)"
printf '%-28s %16.3f %16.3f %8.2f\n' "bytes/point on disk" "$(echo "$KILN_BYTES / $TOTAL" | bc -l)" \
  "$(echo "$VM_BYTES / $TOTAL" | bc -l)" "$(echo "$KILN_BYTES / $VM_BYTES" | bc -l)"
printf '%-28s %16.3f %16.3f %8.2f\n' "1-day 60 s avg query, ms" "$KILN_MS" "$VM_MS" "$(echo "$KILN_MS / $VM_MS" | bc -l)"
echo "(ratio = Kiln / VictoriaMetrics; ingest: higher is better, the others: lower is better)"
