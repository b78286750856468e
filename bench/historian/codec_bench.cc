// Benchmarks of the historian's chunk codec (historian/internal/chunk_codec.h) on the
// datasets of dataset.h, with chunks of 8192 points (the historian's default):
//   BM_Encode/<dataset>     points/s of EncodeChunk (the ingest path; target >= 20 M/s)
//   BM_Decode/<dataset>     points/s of DecodeChunk (the query path)
//   BM_DecodeDay/<dataset>  one series-day (86,400 points, 11 chunks): a day query's decode
//                           cost; target well under 1 ms
// Each reports bytes_per_point (blob bytes / points) as a counter. Whole-day figures over 100
// series: historian_codec_footprint.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "dataset.h"
#include "historian/historian.h"
#include "historian/internal/chunk_codec.h"

namespace kiln::historian::bench {
namespace {

constexpr size_t kChunkPoints = 8192;
constexpr int kChunks = 8;

std::vector<Point> ToPoints(const std::vector<GenPoint>& gen, size_t from, size_t to) {
  std::vector<Point> points;
  points.reserve(to - from);
  for (size_t i = from; i < to; ++i) {
    points.push_back({gen[i].t, gen[i].v, gen[i].q, gen[i].is_null});
  }
  return points;
}

// kChunks chunks of 8192 points: chunk k is the k-th chunk of series k, so that the chunks
// cover different phases of the day.
std::vector<std::vector<Point>> MakeChunks(Dataset d) {
  std::vector<std::vector<Point>> chunks;
  for (int k = 0; k < kChunks; ++k) {
    const std::vector<GenPoint> gen = GenerateSeries(d, k, (k + 1) * kChunkPoints);
    chunks.push_back(ToPoints(gen, k * kChunkPoints, (k + 1) * kChunkPoints));
  }
  return chunks;
}

void BM_Encode(benchmark::State& state, Dataset d) {
  const std::vector<std::vector<Point>> chunks = MakeChunks(d);
  std::string blob;
  blob.reserve(kChunkPoints * 16);
  size_t k = 0;
  uint64_t bytes = 0;
  uint64_t points = 0;
  for (auto _ : state) {
    internal::EncodeChunk(chunks[k], blob);
    benchmark::DoNotOptimize(blob.data());
    bytes += blob.size();
    points += chunks[k].size();
    k = (k + 1) % chunks.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(points));
  state.counters["bytes_per_point"] = static_cast<double>(bytes) / static_cast<double>(points);
}

void BM_Decode(benchmark::State& state, Dataset d) {
  std::vector<std::string> blobs;
  uint64_t blob_bytes = 0;
  for (const std::vector<Point>& chunk : MakeChunks(d)) {
    blobs.emplace_back();
    internal::EncodeChunk(chunk, blobs.back());
    blob_bytes += blobs.back().size();
  }
  std::vector<Point> out;
  out.reserve(kChunkPoints);
  size_t k = 0;
  uint64_t points = 0;
  for (auto _ : state) {
    out.clear();
    const Status s = internal::DecodeChunk(blobs[k], out);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(out.data());
    points += out.size();
    k = (k + 1) % blobs.size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(points));
  state.counters["bytes_per_point"] =
      static_cast<double>(blob_bytes) / static_cast<double>(blobs.size() * kChunkPoints);
}

void BM_DecodeDay(benchmark::State& state, Dataset d) {
  const std::vector<GenPoint> gen = GenerateSeries(d, 0, kPointsPerDay);
  std::vector<std::string> blobs;
  uint64_t blob_bytes = 0;
  for (size_t from = 0; from < gen.size(); from += kChunkPoints) {
    const std::vector<Point> chunk = ToPoints(gen, from, std::min(gen.size(), from + kChunkPoints));
    blobs.emplace_back();
    internal::EncodeChunk(chunk, blobs.back());
    blob_bytes += blobs.back().size();
  }
  std::vector<Point> out;
  out.reserve(kPointsPerDay);
  for (auto _ : state) {
    out.clear();
    for (const std::string& blob : blobs) {
      const Status s = internal::DecodeChunk(blob, out);
      if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kPointsPerDay));
  state.counters["bytes_per_point"] =
      static_cast<double>(blob_bytes) / static_cast<double>(kPointsPerDay);
}

#define KILN_CODEC_BENCH(fn)                                      \
  BENCHMARK_CAPTURE(fn, decimal_noise, Dataset::kDecimalNoise);   \
  BENCHMARK_CAPTURE(fn, rare_gauge, Dataset::kRareGauge);         \
  BENCHMARK_CAPTURE(fn, counter, Dataset::kCounter);              \
  BENCHMARK_CAPTURE(fn, random_doubles, Dataset::kRandomDoubles); \
  BENCHMARK_CAPTURE(fn, mixed_quality, Dataset::kMixedQuality)

KILN_CODEC_BENCH(BM_Encode);
KILN_CODEC_BENCH(BM_Decode);
BENCHMARK_CAPTURE(BM_DecodeDay, decimal_noise, Dataset::kDecimalNoise)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DecodeDay, random_doubles, Dataset::kRandomDoubles)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace kiln::historian::bench

BENCHMARK_MAIN();
