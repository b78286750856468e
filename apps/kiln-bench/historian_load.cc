// kiln-bench historian / gen: one synthetic dataset (bench/historian/dataset.h) into a new
// historian directory, or as text for another store, so both hold the same points.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/kiln-bench/bench_tools.h"
#include "bench/historian/dataset.h"
#include "historian/historian.h"

namespace kiln::bench {

namespace {

using Clock = std::chrono::steady_clock;
namespace hb = historian::bench;

struct DatasetArgs {
  hb::Dataset dataset = hb::Dataset::kDecimalNoise;
  int64_t series = 100;
  int64_t points = 86400;
};

bool ParseDatasetArgs(const Args& args, DatasetArgs& out) {
  if (!args.GetInt("series", 100, out.series) || !args.GetInt("points", 86400, out.points)) {
    return false;
  }
  const std::string name = args.Get("dataset", "decimal_noise");
  auto d = hb::ParseDataset(name);
  if (!d) {
    std::fprintf(stderr, "kiln-bench: unknown --dataset %s\n", name.c_str());
    return false;
  }
  out.dataset = *d;
  return out.series > 0 && out.points > 0;
}

uint64_t DirBytes(const std::filesystem::path& dir) {
  uint64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

std::string SeriesPath(int s) { return fmt::format("Bench/node/dev/m{:03}", s); }

}  // namespace

int RunHistorian(const Args& args) {
  DatasetArgs d;
  int64_t batch = 0, queries = 0;
  if (!ParseDatasetArgs(args, d) || !args.GetInt("batch", 10000, batch) ||
      !args.GetInt("queries", 50, queries) || batch < 1 || !args.Has("dir")) {
    std::fprintf(stderr, "kiln-bench historian: --dir DIR is required (see --help)\n");
    return 2;
  }
  const std::filesystem::path dir = args.Get("dir", "");
  if (std::filesystem::exists(dir) && !std::filesystem::is_empty(dir)) {
    std::fprintf(stderr, "kiln-bench historian: %s is not empty\n", dir.c_str());
    return 2;
  }
  // Generate first: only the import is timed.
  std::vector<std::vector<hb::GenPoint>> data;
  for (int s = 0; s < d.series; ++s) {
    data.push_back(hb::GenerateSeries(d.dataset, s, static_cast<size_t>(d.points)));
  }
  historian::HistorianOptions options;
  options.dir = dir;
  auto h = historian::Historian::Open(options);
  if (!h.ok()) {
    std::fprintf(stderr, "kiln-bench: %s\n", h.status().ToString().c_str());
    return 1;
  }
  std::vector<historian::SeriesId> ids;
  for (int s = 0; s < d.series; ++s) {
    auto id = (*h)->Series(SeriesPath(s), historian::SeriesKind::kNumeric);
    if (!id.ok()) return 1;
    ids.push_back(*id);
  }
  // Time order across series, as a live feed writes: point i of every series, then i + 1.
  const auto total = static_cast<uint64_t>(d.series * d.points);
  std::vector<historian::PointWrite> writes;
  writes.reserve(static_cast<size_t>(batch));
  const auto start = Clock::now();
  for (int64_t i = 0; i < d.points; ++i) {
    for (int64_t s = 0; s < d.series; ++s) {
      const hb::GenPoint& p = data[static_cast<size_t>(s)][static_cast<size_t>(i)];
      writes.push_back({ids[static_cast<size_t>(s)], {p.t, p.v, p.q, p.is_null}});
      if (writes.size() == static_cast<size_t>(batch)) {
        if (!(*h)->Append(writes).ok()) return 1;
        writes.clear();
      }
    }
  }
  if (!writes.empty() && !(*h)->Append(writes).ok()) return 1;
  const auto appended = Clock::now();
  Status flushed = (*h)->Flush();
  const auto end = Clock::now();
  if (!flushed.ok()) {
    std::fprintf(stderr, "kiln-bench: flush: %s\n", flushed.ToString().c_str());
    return 1;
  }
  const double append_s = std::chrono::duration<double>(appended - start).count();
  const double all_s = std::chrono::duration<double>(end - start).count();
  std::printf(
      "imported %llu points (%lld series x %lld, %s) in %.3f s: %.0f points/s "
      "(Append alone %.0f points/s)\n",
      static_cast<unsigned long long>(total), static_cast<long long>(d.series),
      static_cast<long long>(d.points), std::string(hb::DatasetName(d.dataset)).c_str(), all_s,
      static_cast<double>(total) / all_s, static_cast<double>(total) / append_s);

  // One series' whole range in 60 s avg buckets, as a dashboard asks for a day.
  const int64_t from = data[0].front().t;
  const int64_t to = data[0].back().t + 1;
  std::vector<double> ms;
  size_t buckets = 0;
  for (int64_t q = 0; q < queries; ++q) {
    const auto t = Clock::now();
    auto r = (*h)->QueryBuckets(ids[static_cast<size_t>(q % d.series)], from, to, 60000,
                                historian::Aggregate::kAvg);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
    if (!r.ok()) return 1;
    buckets = r->size();
  }
  std::sort(ms.begin(), ms.end());
  const auto stats = (*h)->stats();
  h->reset();  // closed: SQLite removes its shared-memory index file
  const uint64_t bytes = DirBytes(dir);
  std::printf("on disk %llu bytes after close: %.3f bytes/point (%llu chunks)\n",
              static_cast<unsigned long long>(bytes),
              static_cast<double>(bytes) / static_cast<double>(total),
              static_cast<unsigned long long>(stats.chunks));
  if (!ms.empty()) {
    std::printf("query %lld x one series, %zu buckets of 60 s avg: median %.3f ms, min %.3f ms\n",
                static_cast<long long>(queries), buckets, ms[ms.size() / 2], ms.front());
  }
  return 0;
}

int RunGen(const Args& args) {
  DatasetArgs d;
  if (!ParseDatasetArgs(args, d)) return 2;
  const std::string metric = args.Get("metric", "kiln_bench");
  std::string buf;
  for (int s = 0; s < d.series; ++s) {
    for (const hb::GenPoint& p : hb::GenerateSeries(d.dataset, s, static_cast<size_t>(d.points))) {
      buf += hb::PrometheusLine(metric, s, p);
      if (buf.size() > (1 << 20)) {
        std::fwrite(buf.data(), 1, buf.size(), stdout);
        buf.clear();
      }
    }
  }
  std::fwrite(buf.data(), 1, buf.size(), stdout);
  return 0;
}

}  // namespace kiln::bench
