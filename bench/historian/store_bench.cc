// Benchmarks of the historian's store (src/historian/historian.h): the Append rate of the
// ingest path, the latency of a dashboard's whole-day query, and bytes on disk per point.
// Data: dataset.h (decimal sensor readings with 2 decimals unless said otherwise).
// Scratch space: $KILN_BENCH_DIR, default /var/tmp.
//
//   historian_store_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/log.h"
#include "dataset.h"
#include "historian/historian.h"

namespace kiln::historian::bench {
namespace {

// A fresh directory, removed with the object.
class ScratchDir {
 public:
  ScratchDir() {
    const char* base = std::getenv("KILN_BENCH_DIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/var/tmp") + "/kiln-hist-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

uint64_t FileBytes(const std::filesystem::path& p) {
  std::error_code ec;
  const uint64_t n = std::filesystem::file_size(p, ec);
  return ec ? 0 : n;
}

uint64_t DirBytes(const std::filesystem::path& dir) {
  uint64_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) n += e.file_size();
  }
  return n;
}

Point ToPoint(const GenPoint& g) { return Point{g.t, g.v, g.q, g.is_null}; }

std::unique_ptr<Historian> OpenOrDie(const HistorianOptions& o) {
  auto h = Historian::Open(o);
  if (!h.ok()) {
    std::fprintf(stderr, "open: %s\n", h.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*h);
}

// Append of `batch` points per call, spread over `series` series written at 1 Hz each in
// time order (a Sparkplug host's ingest), with the default options: WAL synced every second
// (group commit; always=1: every Append waits for its fdatasync), background sealing into
// chunks of 8192 points.
void BM_StoreAppend(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  const int series = static_cast<int>(state.range(1));
  const bool always = state.range(2) != 0;
  constexpr size_t kPool = 3600;  // values per series, reused with later times
  std::vector<std::vector<GenPoint>> values;
  for (int s = 0; s < series; ++s)
    values.push_back(GenerateSeries(Dataset::kDecimalNoise, s, kPool));
  ScratchDir dir;
  NullSink sink;
  HistorianOptions o;
  o.dir = dir.path() + "/h";
  o.log = &sink;
  if (always) o.wal_sync = WalSync::kAlways;
  auto h = OpenOrDie(o);
  std::vector<SeriesId> ids;
  for (int s = 0; s < series; ++s) {
    ids.push_back(*h->Series("G/N/D/m" + std::to_string(s), SeriesKind::kNumeric));
  }
  std::vector<PointWrite> writes(batch);
  uint64_t n = 0;  // points written: n / series is the second, n % series the series
  for (auto _ : state) {
    for (PointWrite& w : writes) {
      const uint64_t second = n / static_cast<uint64_t>(series);
      const size_t s = static_cast<size_t>(n % static_cast<uint64_t>(series));
      w.series = ids[s];
      w.point = ToPoint(values[s][second % kPool]);
      w.point.t = kBaseTimeMs + static_cast<int64_t>(second) * kIntervalMs;
      ++n;
    }
    if (!h->Append(writes).ok()) state.SkipWithError("append failed");
  }
  state.SetItemsProcessed(static_cast<int64_t>(n));
  const HistorianStats st = h->stats();
  state.counters["head_points_at_end"] = static_cast<double>(st.head_points);
  state.counters["wal_B_per_head_point"] =
      static_cast<double>(st.wal_bytes) /
      static_cast<double>(std::max<uint64_t>(st.head_points, 1));
  state.counters["seal_rounds"] = static_cast<double>(st.seal_rounds);
}
BENCHMARK(BM_StoreAppend)
    ->ArgsProduct({{100, 1000, 10000}, {1000}, {0}})
    ->Args({1000, 1000, 1})
    ->Args({10000, 1000, 1})
    ->ArgNames({"batch", "series", "always"})
    ->UseRealTime()
    ->MinTime(3);

// Sustained ingest: `series` series x `seconds` seconds at 1 Hz in batches of 1000, then
// Flush, all timed: the rate the machine keeps up, sealing (encoding, SQLite) included.
// append_rate is the rate of the Append calls alone.
void BM_StoreIngestSustained(benchmark::State& state) {
  const int series = static_cast<int>(state.range(0));
  const int64_t seconds = state.range(1);
  constexpr size_t kBatch = 1000;
  constexpr size_t kPool = 3600;
  std::vector<std::vector<GenPoint>> values;
  for (int s = 0; s < series; ++s)
    values.push_back(GenerateSeries(Dataset::kDecimalNoise, s, kPool));
  for (auto _ : state) {
    ScratchDir dir;
    NullSink sink;
    HistorianOptions o;
    o.dir = dir.path() + "/h";
    o.log = &sink;
    auto h = OpenOrDie(o);
    std::vector<SeriesId> ids;
    for (int s = 0; s < series; ++s) {
      ids.push_back(*h->Series("G/N/D/m" + std::to_string(s), SeriesKind::kNumeric));
    }
    const uint64_t total = static_cast<uint64_t>(series) * static_cast<uint64_t>(seconds);
    std::vector<PointWrite> writes;
    const auto start = std::chrono::steady_clock::now();
    for (uint64_t n = 0; n < total;) {
      writes.clear();
      for (; writes.size() < kBatch && n < total; ++n) {
        const uint64_t second = n / static_cast<uint64_t>(series);
        const size_t s = static_cast<size_t>(n % static_cast<uint64_t>(series));
        Point p = ToPoint(values[s][second % kPool]);
        p.t = kBaseTimeMs + static_cast<int64_t>(second) * kIntervalMs;
        writes.push_back({ids[s], p});
      }
      if (!h->Append(writes).ok()) state.SkipWithError("append failed");
    }
    const auto appended = std::chrono::steady_clock::now();
    if (!h->Flush().ok()) state.SkipWithError("flush failed");
    const auto flushed = std::chrono::steady_clock::now();
    const double append_s = std::chrono::duration<double>(appended - start).count();
    const double all_s = std::chrono::duration<double>(flushed - start).count();
    state.SetIterationTime(all_s);
    state.counters["append_rate"] = static_cast<double>(total) / append_s;
    state.counters["sustained_rate"] = static_cast<double>(total) / all_s;
    state.counters["store_B_per_point"] =
        static_cast<double>(h->stats().disk_bytes) / static_cast<double>(total);
  }
}
BENCHMARK(BM_StoreIngestSustained)
    ->Args({1000, 20000})
    ->Args({10000, 2000})
    ->ArgNames({"series", "seconds"})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// A store holding one day of one 1 Hz series (86,400 points in chunks).
struct DayStore {
  explicit DayStore(Dataset d) {
    o.dir = dir.path() + "/h";
    o.log = &sink;
    o.background = false;
    h = OpenOrDie(o);
    id = *h->Series("G/N/D/day", SeriesKind::kNumeric);
    std::vector<PointWrite> w;
    for (const GenPoint& g : GenerateSeries(d, 0, kPointsPerDay)) w.push_back({id, ToPoint(g)});
    if (!h->Append(w).ok() || !h->Flush().ok()) std::exit(1);
  }
  ScratchDir dir;
  NullSink sink;
  HistorianOptions o;
  std::unique_ptr<Historian> h;
  SeriesId id = 0;
};

// The dashboard's day view: 86,400 points read from chunks, aggregated into 1440 buckets.
void BM_StoreQueryDayBuckets(benchmark::State& state) {
  DayStore store(Dataset::kDecimalNoise);
  const int64_t from = kBaseTimeMs;
  const int64_t to = kBaseTimeMs + static_cast<int64_t>(kPointsPerDay) * kIntervalMs;
  for (auto _ : state) {
    auto r = store.h->QueryBuckets(store.id, from, to, 60000, Aggregate::kAvg);
    if (!r.ok() || r->size() < 1440) state.SkipWithError("bad result");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kPointsPerDay));
}
BENCHMARK(BM_StoreQueryDayBuckets)->Unit(benchmark::kMillisecond);

void BM_StoreQueryDayRaw(benchmark::State& state) {
  DayStore store(Dataset::kDecimalNoise);
  const int64_t from = kBaseTimeMs;
  const int64_t to = kBaseTimeMs + static_cast<int64_t>(kPointsPerDay) * kIntervalMs;
  for (auto _ : state) {
    auto r = store.h->QueryRaw(store.id, from, to);
    if (!r.ok() || r->size() != kPointsPerDay) state.SkipWithError("bad result");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kPointsPerDay));
}
BENCHMARK(BM_StoreQueryDayRaw)->Unit(benchmark::kMillisecond);

// Bytes on disk per point after Flush, for `series` series-days of each dataset.
//   store_B_per_point: historian.db + historian.db-wal + wal/ (HistorianStats::disk_bytes)
//   dir_B_per_point:   every file of the directory, also LOCK and SQLite's -shm index
void BM_StoreFootprint(benchmark::State& state) {
  const Dataset d = kAllDatasets[state.range(0)];
  const int series = static_cast<int>(state.range(1));
  state.SetLabel(std::string(DatasetName(d)));
  for (auto _ : state) {
    ScratchDir dir;
    NullSink sink;
    HistorianOptions o;
    o.dir = dir.path() + "/h";
    o.log = &sink;
    o.background = false;
    auto h = OpenOrDie(o);
    for (int s = 0; s < series; ++s) {
      const SeriesId id = *h->Series("G/N/D/m" + std::to_string(s), SeriesKind::kNumeric);
      std::vector<PointWrite> w;
      for (const GenPoint& g : GenerateSeries(d, s, kPointsPerDay)) w.push_back({id, ToPoint(g)});
      if (!h->Append(w).ok()) state.SkipWithError("append failed");
    }
    if (!h->Flush().ok()) state.SkipWithError("flush failed");
    const double points = static_cast<double>(series) * kPointsPerDay;
    const HistorianStats st = h->stats();
    state.counters["store_B_per_point"] = static_cast<double>(st.disk_bytes) / points;
    state.counters["dir_B_per_point"] = static_cast<double>(DirBytes(o.dir)) / points;
    state.counters["db_bytes"] = static_cast<double>(FileBytes(o.dir / "historian.db"));
    state.counters["chunks"] = static_cast<double>(st.chunks);
  }
}
BENCHMARK(BM_StoreFootprint)
    ->ArgsProduct({{0, 1, 2, 3, 4}, {1, 10}})
    ->ArgNames({"dataset", "series"})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kiln::historian::bench

BENCHMARK_MAIN();
