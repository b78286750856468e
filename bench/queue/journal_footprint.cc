// journal_footprint: bytes on disk per sample of a typical 1 Hz float signal, without and with
// zstd compression of sealed segments. Appends TAGS tags x SECONDS simulated seconds (one Push
// of TAGS samples with the same source time per second, FloatSignals values with DECIMALS
// decimals, -1 for unrounded floats; no sleeping) to a
// journal with the budget of the target (21 GiB, so 64 MiB segments), waits for the background
// compression, and prints one line per mode:
//   sealed_B_per_sample  bytes of the sealed segments / samples in them (the steady rate)
//   total_B_per_sample   every file of the journal (active segment, spare, acks) / all samples
//   72h_GiB              TAGS x 72 h at the sealed rate; target: 10,000 tags fit in 21 GiB,
//                        i.e. <= 8 bytes/sample with compression.
//   journal_footprint [TAGS=10000] [SECONDS=3600] [DECIMALS=2]
// Scratch space: $KILN_BENCH_DIR, default /var/tmp.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "core/clock.h"
#include "core/log.h"
#include "queue/journal.h"

namespace kiln::queue::bench {
namespace {

using Steady = std::chrono::steady_clock;

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Segment {
  uint64_t first_id = 0;
  uint64_t bytes = 0;
  bool compressed = false;
};

// The seg-<first id>.{log,zst} files of `dir`, oldest first.
std::vector<Segment> Segments(const std::filesystem::path& dir) {
  std::vector<Segment> segments;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    const std::string ext = e.path().extension().string();
    if (name.rfind("seg-", 0) != 0 || (ext != ".log" && ext != ".zst")) continue;
    segments.push_back(
        {std::strtoull(name.c_str() + 4, nullptr, 10), e.file_size(), ext == ".zst"});
  }
  std::sort(segments.begin(), segments.end(),
            [](const Segment& a, const Segment& b) { return a.first_id < b.first_id; });
  return segments;
}

int Measure(uint32_t tags, int seconds, int decimals, bool compress) {
  ScratchDir root;
  JournalOptions options;
  options.dir = root.path() / "journal";
  options.max_bytes = uint64_t{21} << 30;
  options.compress = compress;
  SystemClock clock;
  StderrSink sink(clock);
  auto opened = Journal::Open(options, clock, Logger(sink, "journal", LogLevel::kWarning));
  if (!opened.ok()) Die(opened.status().ToString());
  std::unique_ptr<Journal> journal = std::move(opened).value();

  FloatSignals signals(tags, decimals);
  std::vector<contract::Sample> poll;
  const double cpu0 = CpuSeconds();
  const auto t0 = Steady::now();
  for (int s = 0; s < seconds; ++s) {
    signals.Fill(tags, poll);
    Status st = journal->Push(poll);
    if (!st.ok()) Die(st.ToString());
  }
  if (Status st = journal->WaitDurable(journal->next_id()); !st.ok()) Die(st.ToString());
  const auto t1 = Steady::now();
  // Compression runs in the background: wait until every sealed segment is a .zst.
  auto sealed_uncompressed = [&] {
    const auto segs = Segments(options.dir);
    return std::count_if(segs.begin(), segs.end() - std::min<ptrdiff_t>(1, segs.size()),
                         [](const Segment& g) { return !g.compressed; });
  };
  while (compress && sealed_uncompressed() > 0) {
    if (Steady::now() - t1 > std::chrono::minutes(10)) Die("compression did not finish");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const auto t2 = Steady::now();
  const double cpu = CpuSeconds() - cpu0;

  const uint64_t samples = journal->next_id() - 1;
  const std::vector<Segment> segs = Segments(options.dir);
  if (segs.size() < 2) {
    std::fprintf(stderr, "no sealed segment: simulate more seconds\n");
    return 1;
  }
  uint64_t sealed_bytes = 0;
  for (size_t i = 0; i + 1 < segs.size(); ++i) sealed_bytes += segs[i].bytes;
  const uint64_t sealed_samples = segs.back().first_id - segs.front().first_id;
  const uint64_t stats_bytes = journal->stats().bytes;
  const uint64_t file_bytes = FileBytes(options.dir);
  const uint64_t spare_bytes = FileBytes(options.dir, "spare-");
  const double sealed_rate =
      static_cast<double>(sealed_bytes) / static_cast<double>(sealed_samples);
  const double gib_72h = static_cast<double>(tags) * 72 * 3600 * sealed_rate / (1 << 30);
  std::printf(
      "%-5s samples=%" PRIu64
      " segments=%zu (sealed %zu) sealed_B_per_sample=%.2f "
      "total_B_per_sample=%.2f (files %.1f MiB, of which spare %.1f MiB; stats().bytes %.1f MiB) "
      "72h_GiB=%.1f append_s=%.2f compress_wait_s=%.2f cpu_s=%.2f\n",
      compress ? "zstd" : "none", samples, segs.size(), segs.size() - 1, sealed_rate,
      static_cast<double>(file_bytes) / static_cast<double>(samples),
      static_cast<double>(file_bytes) / (1 << 20), static_cast<double>(spare_bytes) / (1 << 20),
      static_cast<double>(stats_bytes) / (1 << 20), gib_72h,
      std::chrono::duration<double>(t1 - t0).count(),
      std::chrono::duration<double>(t2 - t1).count(), cpu);
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace kiln::queue::bench

int main(int argc, char** argv) {
  const auto tags = static_cast<uint32_t>(argc > 1 ? std::atoi(argv[1]) : 10'000);
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 3600;
  const int decimals = argc > 3 ? std::atoi(argv[3]) : 2;
  if (tags == 0 || seconds <= 0) {
    std::fprintf(stderr, "usage: %s [TAGS=10000] [SECONDS=3600] [DECIMALS=2]\n", argv[0]);
    return 2;
  }
  std::printf("tags=%u seconds=%d (%.1f h of 1 Hz data) decimals=%d\n", tags, seconds,
              seconds / 3600.0, decimals);
  for (bool compress : {false, true}) {
    if (kiln::queue::bench::Measure(tags, seconds, decimals, compress) != 0) return 1;
  }
  return 0;
}
