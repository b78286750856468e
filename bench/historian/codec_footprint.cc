// Bytes per point of the chunk codec on whole series-days: for each dataset of dataset.h,
// `series` series x `points` points (default 100 x 86,400: one day at 1 Hz) cut into chunks
// of `chunk` points (default 8192, the historian's), encoded, decoded and checked. Prints
// bytes/point and the encode and decode rates (single thread).
//
//   historian_codec_footprint [--series=N] [--points=N] [--chunk=N] [--level=N]
//                             [--dataset=NAME]...
#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "dataset.h"
#include "historian/historian.h"
#include "historian/internal/chunk_codec.h"

namespace kiln::historian::bench {
namespace {

struct Flags {
  int series = 100;
  size_t points = kPointsPerDay;
  size_t chunk = 8192;
  internal::ChunkEncodeOptions options;
  std::vector<Dataset> datasets;
};

[[noreturn]] void Usage(std::string_view bad) {
  std::fprintf(stderr,
               "bad argument '%.*s'\nusage: historian_codec_footprint [--series=N] "
               "[--points=N] [--chunk=N] [--level=N] [--dataset=NAME]...\n",
               static_cast<int>(bad.size()), bad.data());
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const size_t eq = arg.find('=');
    if (eq == std::string_view::npos) Usage(arg);
    const std::string_view name = arg.substr(0, eq);
    const std::string value(arg.substr(eq + 1));
    char* end = nullptr;
    const long long n = std::strtoll(value.c_str(), &end, 10);
    const bool numeric = !value.empty() && *end == '\0';
    if (name == "--series" && numeric && n > 0) {
      flags.series = static_cast<int>(n);
    } else if (name == "--points" && numeric && n > 0) {
      flags.points = static_cast<size_t>(n);
    } else if (name == "--chunk" && numeric && n > 0 && n <= internal::kMaxChunkPoints) {
      flags.chunk = static_cast<size_t>(n);
    } else if (name == "--level" && numeric) {
      flags.options.zstd_level = static_cast<int>(n);
    } else if (name == "--dataset" && ParseDataset(value)) {
      flags.datasets.push_back(*ParseDataset(value));
    } else {
      Usage(arg);
    }
  }
  if (flags.datasets.empty())
    flags.datasets.assign(std::begin(kAllDatasets), std::end(kAllDatasets));
  return flags;
}

bool SamePoint(const Point& a, const GenPoint& b) {
  return a.t == b.t && std::bit_cast<uint64_t>(a.v) == std::bit_cast<uint64_t>(b.v) && a.q == b.q &&
         a.is_null == b.is_null;
}

int Run(const Flags& flags) {
  using Clock = std::chrono::steady_clock;
  std::printf("%-16s %10s %12s %12s %14s %14s\n", "dataset", "points", "bytes", "bytes/point",
              "encode Mpt/s", "decode Mpt/s");
  for (Dataset d : flags.datasets) {
    uint64_t bytes = 0;
    uint64_t points = 0;
    Clock::duration encode_time{}, decode_time{};
    std::vector<Point> chunk;
    std::vector<Point> decoded;
    std::string blob;
    chunk.reserve(flags.chunk);
    decoded.reserve(flags.chunk);
    for (int s = 0; s < flags.series; ++s) {
      const std::vector<GenPoint> gen = GenerateSeries(d, s, flags.points);
      for (size_t from = 0; from < gen.size(); from += flags.chunk) {
        const size_t to = std::min(gen.size(), from + flags.chunk);
        chunk.clear();
        for (size_t i = from; i < to; ++i) {
          chunk.push_back({gen[i].t, gen[i].v, gen[i].q, gen[i].is_null});
        }
        const auto t0 = Clock::now();
        internal::EncodeChunk(chunk, flags.options, blob);
        const auto t1 = Clock::now();
        decoded.clear();
        const Status status = internal::DecodeChunk(blob, decoded);
        const auto t2 = Clock::now();
        encode_time += t1 - t0;
        decode_time += t2 - t1;
        if (!status.ok() || decoded.size() != to - from) {
          std::fprintf(stderr, "decode failed: %s\n", status.ToString().c_str());
          return 1;
        }
        for (size_t i = from; i < to; ++i) {
          if (!SamePoint(decoded[i - from], gen[i])) {
            std::fprintf(stderr, "%s series %d point %zu does not round-trip\n",
                         std::string(DatasetName(d)).c_str(), s, i);
            return 1;
          }
        }
        bytes += blob.size();
        points += to - from;
      }
    }
    const auto rate = [&](Clock::duration t) {
      return static_cast<double>(points) / std::chrono::duration<double>(t).count() / 1e6;
    };
    std::printf("%-16s %10llu %12llu %12.4f %14.1f %14.1f\n", std::string(DatasetName(d)).c_str(),
                static_cast<unsigned long long>(points), static_cast<unsigned long long>(bytes),
                static_cast<double>(bytes) / static_cast<double>(points), rate(encode_time),
                rate(decode_time));
  }
  return 0;
}

}  // namespace
}  // namespace kiln::historian::bench

int main(int argc, char** argv) {
  return kiln::historian::bench::Run(kiln::historian::bench::ParseFlags(argc, argv));
}
