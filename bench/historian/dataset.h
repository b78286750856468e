#pragma once
// Deterministic synthetic series for the historian benchmarks, and for the programs that feed
// the same data to other databases (e.g. VictoriaMetrics) to compare bytes per point.
// Self-contained (standard library only) so that any program can include it.
//
// Every series is a pure function of (dataset, series index): points are generated in order
// by a splitmix64 PRNG seeded from both, with our own uniform mapping (no std::*_distribution,
// whose output differs between standard libraries). The only libm call is std::sin in the
// decimal-noise datasets, whose glibc result is correctly rounded in practice.
//
// All series are 1 Hz: point i is at kBaseTimeMs + i * 1000.
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace kiln::historian::bench {

// 2023-11-14T22:13:20Z, in ms since the Unix epoch.
inline constexpr int64_t kBaseTimeMs = 1'700'000'000'000;
inline constexpr int64_t kIntervalMs = 1000;
inline constexpr size_t kPointsPerDay = 86'400;

// OPC UA StatusCodes used by kMixedQuality.
inline constexpr uint32_t kQualityGood = 0;
inline constexpr uint32_t kQualityBad = 0x80000000;
inline constexpr uint32_t kQualityUncertain = 0x40000000;

enum class Dataset {
  // round2(20 + 5 sin(2 pi i / 86400 + s) + u), u uniform in [-0.5, 0.5): a sensor reading
  // with 2 decimals of noise.
  kDecimalNoise,
  // A setpoint-like gauge: every 450..750 s (uniform) a new value with 1 decimal in [0, 100).
  kRareGauge,
  // A monotonic integer counter starting at a random value below 10^6, + 0..20 each second.
  kCounter,
  // Full-precision random doubles in [-1000, 1000): every mantissa bit is noise (worst case).
  kRandomDoubles,
  // kDecimalNoise with quality: a Bad null stretch of 600 points starting at point 20000, and
  // an Uncertain stretch of 60 points (values kept) at the start of every hour.
  kMixedQuality,
};

inline constexpr Dataset kAllDatasets[] = {Dataset::kDecimalNoise, Dataset::kRareGauge,
                                           Dataset::kCounter, Dataset::kRandomDoubles,
                                           Dataset::kMixedQuality};

inline std::string_view DatasetName(Dataset d) {
  switch (d) {
    case Dataset::kDecimalNoise:
      return "decimal_noise";
    case Dataset::kRareGauge:
      return "rare_gauge";
    case Dataset::kCounter:
      return "counter";
    case Dataset::kRandomDoubles:
      return "random_doubles";
    case Dataset::kMixedQuality:
      return "mixed_quality";
  }
  return "unknown";
}

inline std::optional<Dataset> ParseDataset(std::string_view name) {
  for (Dataset d : kAllDatasets) {
    if (DatasetName(d) == name) return d;
  }
  return std::nullopt;
}

// One generated point; mirrors historian::Point without depending on it.
struct GenPoint {
  int64_t t = 0;   // ms since the Unix epoch
  double v = 0;    // 0 when is_null
  uint32_t q = 0;  // OPC UA StatusCode
  bool is_null = false;
};

// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and the same on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1), 53 random bits.
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1p-53; }
  // Uniform integer in [lo, hi] (the modulo bias is negligible for the small ranges used).
  int64_t Between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }

 private:
  uint64_t state_;
};

// x rounded to `decimals` decimals, as the double that parsing the decimal text gives:
// round(x * 10^d) is an exact integer m, and m / 10^d is correctly rounded, like strtod.
inline double RoundDecimals(double x, int decimals) {
  const double scale = std::pow(10.0, decimals);  // exact for small decimals
  return std::round(x * scale) / scale;
}

// The shortest decimal text that parses back to exactly `v` ("21.37", "1e+300", "nan").
inline std::string FormatValue(double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return "nan";  // cannot happen: 32 bytes fit any double
  return std::string(buf, end);
}

// One line of the Prometheus text exposition format with a ms timestamp, as accepted by
// VictoriaMetrics' /api/v1/import/prometheus: `<metric>{series="<s>"} <value> <t>\n`. Empty
// for a null point (nothing to import).
inline std::string PrometheusLine(std::string_view metric, int series, const GenPoint& p) {
  if (p.is_null) return {};
  std::string line(metric);
  line += "{series=\"" + std::to_string(series) + "\"} " + FormatValue(p.v) + " " +
          std::to_string(p.t) + "\n";
  return line;
}

// Points [0, count) of series `series` of dataset `d`.
inline std::vector<GenPoint> GenerateSeries(Dataset d, int series, size_t count) {
  SplitMix64 rng(0x6b696c6e00000000ULL ^ (static_cast<uint64_t>(d) << 32) ^
                 static_cast<uint64_t>(series));
  std::vector<GenPoint> points(count);
  constexpr double kTwoPi = 6.283185307179586;
  double gauge = 0;
  int64_t next_change = 0;
  double counter = static_cast<double>(rng.Between(0, 999'999));
  for (size_t i = 0; i < count; ++i) {
    GenPoint& p = points[i];
    p.t = kBaseTimeMs + static_cast<int64_t>(i) * kIntervalMs;
    switch (d) {
      case Dataset::kDecimalNoise:
      case Dataset::kMixedQuality: {
        const double u = rng.Unit() - 0.5;
        const double x =
            20 + 5 * std::sin(kTwoPi * static_cast<double>(i) / kPointsPerDay + series) + u;
        p.v = RoundDecimals(x, 2);
        if (d == Dataset::kMixedQuality) {
          if (i >= 20'000 && i < 20'600) {
            p.v = 0;
            p.q = kQualityBad;
            p.is_null = true;
          } else if (i % 3600 < 60) {
            p.q = kQualityUncertain;
          }
        }
        break;
      }
      case Dataset::kRareGauge:
        if (static_cast<int64_t>(i) >= next_change) {
          gauge = static_cast<double>(rng.Between(0, 999)) / 10;  // exact 1-decimal double
          next_change = static_cast<int64_t>(i) + rng.Between(450, 750);
        }
        p.v = gauge;
        break;
      case Dataset::kCounter:
        counter += static_cast<double>(rng.Between(0, 20));
        p.v = counter;
        break;
      case Dataset::kRandomDoubles:
        p.v = (rng.Unit() - 0.5) * 2000;
        break;
    }
  }
  return points;
}

}  // namespace kiln::historian::bench
