#pragma once
// Helpers shared by the journal benchmarks (journal_bench.cc, journal_footprint.cc): a
// generator of realistic float readings, scratch directories on the real disk, and the
// process's I/O counters.
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "contract/quality.h"
#include "contract/sample.h"
#include "contract/value.h"
#include "core/clock.h"

namespace kiln::queue::bench {

// The scratch directories that exist now (ScratchDir), removed by Die as well.
inline std::set<std::filesystem::path>& LiveScratchDirs() {
  static std::set<std::filesystem::path> dirs;
  return dirs;
}

// Ends a benchmark program whose environment is unusable (no scratch space, a failed
// setup step), removing its scratch directories.
[[noreturn]] inline void Die(const std::string& what) {
  std::fprintf(stderr, "fatal: %s\n", what.c_str());
  for (const auto& dir : LiveScratchDirs()) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::exit(1);
}

// Float readings of `tags` tags polled once a second: tag ids 0..tags-1 in order with the
// same source time, then the next second. Each value is a random walk starting in 10..90
// with steps ~ N(0, 0.05), rounded to `decimals` decimals (2: a temperature such as 23.47
// degC; negative: not rounded, so every mantissa bit is noise), quality Good.
class FloatSignals {
 public:
  explicit FloatSignals(uint32_t tags, int decimals = 2, uint64_t seed = 42)
      : rng_(seed), scale_(decimals >= 0 ? std::pow(10.0, decimals) : 0), values_(tags) {
    std::uniform_real_distribution<double> start(10, 90);
    for (double& v : values_) v = Round(start(rng_));
  }

  contract::Sample Next() {
    if (tag_ == values_.size()) {
      tag_ = 0;
      time_ += std::chrono::seconds(1);
    }
    double& v = values_[tag_];
    v = Round(v + step_(rng_));
    return contract::Sample{tag_++, contract::Value(static_cast<float>(v)), contract::status::kGood,
                            time_};
  }

  void Fill(size_t n, std::vector<contract::Sample>& out) {
    out.clear();
    for (size_t i = 0; i < n; ++i) out.push_back(Next());
  }

 private:
  double Round(double v) const { return scale_ > 0 ? std::round(v * scale_) / scale_ : v; }

  std::mt19937_64 rng_;
  const double scale_;
  std::normal_distribution<double> step_{0, 0.05};
  std::vector<double> values_;
  uint32_t tag_ = 0;
  Timestamp time_ = FromEpochMillis(1'700'000'000'000);
};

// Where scratch directories go: $KILN_BENCH_DIR, else /var/tmp (the real disk; /tmp may be
// a tmpfs on other machines).
inline std::filesystem::path ScratchRoot() {
  const char* env = std::getenv("KILN_BENCH_DIR");
  return env != nullptr && *env != '\0' ? std::filesystem::path(env)
                                        : std::filesystem::path("/var/tmp");
}

// A fresh directory, removed with everything in it on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::filesystem::path& root = ScratchRoot()) {
    std::string name = (root / "kiln-bench.XXXXXX").string();
    if (mkdtemp(name.data()) == nullptr) Die("mkdtemp under " + root.string());
    path_ = name;
    LiveScratchDirs().insert(path_);
  }
  ~ScratchDir() {
    LiveScratchDirs().erase(path_);
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The I/O counters of this process (/proc/self/io): bytes passed to write calls, and bytes
// the process caused to be sent to storage.
struct IoCounters {
  uint64_t wchar = 0;
  uint64_t write_bytes = 0;
  uint64_t syscw = 0;
};

inline IoCounters ReadIo() {
  IoCounters io;
  std::ifstream in("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "wchar:") io.wchar = value;
    if (key == "write_bytes:") io.write_bytes = value;
    if (key == "syscw:") io.syscw = value;
  }
  return io;
}

// Total size of the regular files under `dir` whose names start with `prefix` ("" for all).
inline uint64_t FileBytes(const std::filesystem::path& dir, std::string_view prefix = "") {
  uint64_t bytes = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    if (e.path().filename().string().rfind(prefix, 0) != 0) continue;
    bytes += e.file_size();
  }
  return bytes;
}

// Waits (at most `timeout`) until the journal in `dir` is not preparing a spare segment
// (no spare-*.tmp), so that a measurement does not include that background write.
// Returns false on timeout.
inline bool WaitNoSparePreparation(const std::filesystem::path& dir,
                                   std::chrono::seconds timeout = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    bool preparing = false;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("spare-", 0) == 0 && e.path().extension() == ".tmp") preparing = true;
    }
    if (!preparing) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Whether the newest seg-*.log in `dir` has all its blocks allocated (st_blocks), i.e. is a
// recycled or zero-filled segment that appends overwrite, rather than a new (sparse or
// growing) file whose appends allocate blocks.
inline bool ActiveSegmentPrewritten(const std::filesystem::path& dir, uint64_t segment_bytes) {
  std::string newest;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("seg-", 0) == 0 && e.path().extension() == ".log" && name > newest) {
      newest = name;
    }
  }
  struct stat st {};
  if (newest.empty() || ::stat((dir / newest).c_str(), &st) != 0) return false;
  return static_cast<uint64_t>(st.st_blocks) * 512 >= segment_bytes;
}

}  // namespace kiln::queue::bench
