#!/usr/bin/env bash
# The journal's append throughput against a plain sequential write plus fdatasync of the same
# bytes (issue: durable store-and-forward, target >= 70 %). Runs each benchmark as its own
# process, the journal and its references in turn for ROUNDS rounds, so that every one sees
# the same state of a shared disk (interleaving them inside one process lets the writeback
# and file deletions of one run into the next), then prints the median of each and the ratios.
#   bench/queue/append_ratio.sh [BUILD_DIR=build/release] [ROUNDS=5] [WRITE_MIB_S]
# Scratch space: $KILN_BENCH_DIR (default /var/tmp), ~700 MB. With WRITE_MIB_S (root, cgroup v1
# blkio) the benchmarks run in a cgroup whose writes to the scratch disk are throttled to that
# rate: a slower disk (an eMMC, an SD card, a SATA SSD under fdatasync) on this machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build/release}
ROUNDS=${2:-5}
WRITE_MIB_S=${3:-}
BENCH="$BUILD/bin/queue_bench"
[ -x "$BENCH" ] || { echo "no $BENCH: build the release preset first" >&2; exit 2; }

if [ -n "$WRITE_MIB_S" ]; then
  CG=/sys/fs/cgroup/blkio/kiln-append-ratio
  [ -w /sys/fs/cgroup/blkio ] || { echo "throttling needs root and cgroup v1 blkio" >&2; exit 2; }
  source=$(findmnt -no SOURCE -T "${KILN_BENCH_DIR:-/var/tmp}")
  disk=$(lsblk -no PKNAME "$source" | head -1)
  devno=$(lsblk -dno MAJ:MIN "${disk:+/dev/$disk}${disk:-$source}" | tr -d ' ')
  mkdir -p "$CG"
  echo "$devno $((WRITE_MIB_S * 1048576))" > "$CG/blkio.throttle.write_bps_device"
  echo $$ > "$CG/cgroup.procs"  # this script and the benchmarks it starts
  echo "writes to $devno throttled to $WRITE_MIB_S MiB/s" >&2
fi

# name|filter: the journal (cached input: the samples a device loop has just produced) and
# the plain writes with a syncing thread, 8 KiB (one Push) or 256 KiB (32 Pushes) per call.
CASES=(
  "journal over recycled segments|BM_JournalAppend/passes:10/acked:1/pool:16000/"
  "plain overwrite, 8 KiB writes|BM_PlainWrite/passes:10/overwrite:1/sync_thread:1/pushes_per_write:1/"
  "plain overwrite, 256 KiB writes|BM_PlainWrite/passes:10/overwrite:1/sync_thread:1/pushes_per_write:32/"
  "journal into new segments|BM_JournalAppend/passes:10/acked:0/pool:16000/"
  "plain new file, 8 KiB writes|BM_PlainWrite/passes:10/overwrite:0/sync_thread:1/pushes_per_write:1/"
  "plain new file, 256 KiB writes|BM_PlainWrite/passes:10/overwrite:0/sync_thread:1/pushes_per_write:32/"
)
results=$(mktemp)
cleanup() {
  rm -f "$results"
  if [ -n "$WRITE_MIB_S" ]; then
    echo $$ > /sys/fs/cgroup/blkio/cgroup.procs
    rmdir "$CG" 2>/dev/null || true
  fi
}
trap cleanup EXIT
for ((round = 1; round <= ROUNDS; round++)); do
  for c in "${CASES[@]}"; do
    name=${c%%|*}
    filter=${c#*|}
    # bytes_per_second as Google Benchmark prints it: 961.391M/s or 1.30254G/s.
    rate=$("$BENCH" --benchmark_filter="^${filter}" --benchmark_repetitions=1 2>/dev/null |
      grep -o 'bytes_per_second=[0-9.]*[kMG]/s' | head -1 |
      awk -F'[=/]' '{v = $2; u = substr(v, length(v)); v = substr(v, 1, length(v) - 1);
                     m = u == "G" ? 1024 : (u == "k" ? 1 / 1024 : 1); printf "%.0f", v * m}')
    echo "$name|$rate" >> "$results"
  done
  echo "round $round of $ROUNDS done" >&2
done

median() {  # the median of the MiB/s of case $1
  grep -F "$1|" "$results" | cut -d'|' -f2 | sort -n |
    awk '{v[NR] = $1} END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
printf '%-36s %12s %s\n' "case" "median MiB/s" "all rounds"
for c in "${CASES[@]}"; do
  name=${c%%|*}
  printf '%-36s %12s %s\n' "$name" "$(median "$name")" \
    "$(grep -F "$name|" "$results" | cut -d'|' -f2 | tr '\n' ' ')"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f %%", 100 * a / b}'; }
j1=$(median "journal over recycled segments")
j0=$(median "journal into new segments")
echo
echo "journal over recycled segments / plain overwrite: $(ratio "$j1" "$(median "plain overwrite, 8 KiB writes")") of 8 KiB writes, $(ratio "$j1" "$(median "plain overwrite, 256 KiB writes")") of 256 KiB writes"
echo "journal into new segments / plain new file:       $(ratio "$j0" "$(median "plain new file, 8 KiB writes")") of 8 KiB writes, $(ratio "$j0" "$(median "plain new file, 256 KiB writes")") of 256 KiB writes"
