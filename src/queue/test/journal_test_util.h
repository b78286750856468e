#pragma once
// Helpers shared by the journal tests: recognisable samples and reading everything a journal
// holds. (Temporary directories and log capture: core/testing.)
#include <gtest/gtest.h>

#include <chrono>
#include <ostream>
#include <string>
#include <vector>

#include "contract/sample.h"
#include "queue/journal.h"

namespace kiln::contract {
// Readable failure messages for samples.
inline void PrintTo(const Sample& s, std::ostream* os) {
  *os << "{tag " << s.tag << ", " << s.value.ToString() << ", q " << s.quality.code() << ", t "
      << s.source_time.time_since_epoch().count() << "}";
}
}  // namespace kiln::contract

namespace kiln::queue::testing {

inline constexpr int64_t kBaseTimeNs = int64_t{1700000000} * 1000000000;

// The sample stored for `n` (a recognisable function of n): tag n % 1000, a value of a type
// that cycles with n, the quality Good for most, a time n ms after kBaseTimeNs.
inline contract::Sample SampleFor(uint64_t n) {
  contract::Sample s;
  s.tag = static_cast<contract::TagId>(n % 1000);
  switch (n % 4) {
    case 0:
      s.value = contract::Value(static_cast<double>(n) * 0.5);
      break;
    case 1:
      s.value = contract::Value(static_cast<int64_t>(n) * -3);
      break;
    case 2:
      s.value = contract::Value(static_cast<float>(n % 10000));
      break;
    default:
      s.value = contract::Value("s" + std::to_string(n));
      break;
  }
  s.quality = n % 7 == 0 ? contract::Quality(0x80050000) : contract::Quality();
  s.source_time =
      Timestamp(std::chrono::nanoseconds(kBaseTimeNs + static_cast<int64_t>(n) * 1000000));
  return s;
}

inline std::vector<contract::Sample> SamplesFor(uint64_t from, uint64_t n) {
  std::vector<contract::Sample> out;
  out.reserve(n);
  for (uint64_t i = from; i < from + n; ++i) out.push_back(SampleFor(i));
  return out;
}

// The ids of a batch, one by one.
inline std::vector<uint64_t> Ids(const SampleBatch& b) {
  std::vector<uint64_t> out;
  for (const IdRange& r : b.ids) {
    for (uint64_t i = r.first; i < r.end(); ++i) out.push_back(i);
  }
  return out;
}

struct Delivered {
  std::vector<uint64_t> ids;
  std::vector<contract::Sample> samples;
};

// Starts a delivery and reads the whole backlog, `max` at a time.
inline Delivered ReadAllBacklog(SampleQueue& q, size_t max = 1000) {
  Delivered d;
  q.StartDelivery();
  while (true) {
    SampleBatch b = q.ReadBacklog(max);
    if (b.empty()) break;
    auto ids = Ids(b);
    EXPECT_EQ(ids.size(), b.samples.size());
    d.ids.insert(d.ids.end(), ids.begin(), ids.end());
    for (auto& s : b.samples) d.samples.push_back(std::move(s));
  }
  return d;
}

// Reads every sample on the live lane that is there now.
inline Delivered ReadAllLive(SampleQueue& q, size_t max = 1000) {
  Delivered d;
  while (true) {
    SampleBatch b = q.ReadLive(max, std::chrono::steady_clock::now());
    if (b.empty()) break;
    auto ids = Ids(b);
    d.ids.insert(d.ids.end(), ids.begin(), ids.end());
    for (auto& s : b.samples) d.samples.push_back(std::move(s));
  }
  return d;
}

}  // namespace kiln::queue::testing
