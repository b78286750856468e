// kiln-bench: load tools for kiln-server (docs/PERFORMANCE.md has the figures and commands).
//   kiln-bench ingest     plays N Sparkplug edge nodes publishing DDATA through a real broker
//                         into a running kiln-server, then verifies the stored count
//   kiln-bench historian  imports a synthetic dataset straight into a historian directory
//                         (ingest rate, bytes per point, one-day bucket query latency)
//   kiln-bench commands   the round trip of writes through kiln-server and kiln-edge
//   kiln-bench gen        writes the same dataset in the Prometheus text format, for
//                         importing into another store (bench/server/vm_compare.sh)
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "apps/kiln-bench/bench_tools.h"

namespace {

constexpr char kUsage[] =
    "kiln-bench: load tools for kiln-server\n"
    "\n"
    "Usage:\n"
    "  kiln-bench ingest --broker URL --server URL [--nodes N] [--metrics M] [--messages K]\n"
    "                    [--rate POINTS_PER_S] [--group G] [--timeout S] [--pids PID,PID]\n"
    "      N nodes (default 10) each publish one DBIRTH and K DDATA (default 1000) of M\n"
    "      metrics (default 100) through the broker; waits until kiln-server (its /metrics)\n"
    "      has stored them all, prints the rates and checks the stored count over REST.\n"
    "      --pids: processes whose CPU time to report (kiln-server, mosquitto).\n"
    "  kiln-bench historian --dir DIR [--series S] [--points P] [--dataset NAME] [--batch B]\n"
    "                       [--queries Q]\n"
    "      imports S series (default 100) x P points (default 86400, one day at 1 Hz) of a\n"
    "      dataset (decimal_noise, rare_gauge, counter, random_doubles, mixed_quality) into\n"
    "      a new historian in DIR, and reports points/s, bytes/point and the latency of a\n"
    "      one-day query in 60 s avg buckets (median of Q runs, default 50).\n"
    "  kiln-bench gen [--series S] [--points P] [--dataset NAME] [--metric NAME]\n"
    "      writes the same points as Prometheus text lines with ms timestamps to stdout.\n"
    "  kiln-bench commands --server URL --target G/N/D --metric M [--count 1000]\n"
    "      writes the metric COUNT times, one after the other, each waited for until final\n"
    "      (polling every 0.2 ms), and reports the round trip REST call to confirmed\n"
    "      read-back: p50, p90, p99, max.\n"
    "  kiln-bench --help\n"
    "\n"
    "Exit codes: 0 done (and verified), 1 verification or runtime failure, 2 usage.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string_view cmd = argv[1];
  kiln::bench::Args args;
  if (!kiln::bench::ParseArgs(argc - 2, argv + 2, args)) return 2;
  if (cmd == "ingest") return kiln::bench::RunIngest(args);
  if (cmd == "historian") return kiln::bench::RunHistorian(args);
  if (cmd == "gen") return kiln::bench::RunGen(args);
  if (cmd == "commands") return kiln::bench::RunCommands(args);
  std::fprintf(stderr, "kiln-bench: unknown command '%s' (see --help)\n", argv[1]);
  return 2;
}
