#include "core/backoff.h"

#include <algorithm>

namespace kiln {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, uint64_t seed)
    : initial_(initial), max_(std::max(initial, max)), rng_(seed) {}

std::chrono::milliseconds Backoff::Next() {
  ++failures_;
  const uint32_t shift = std::min<uint32_t>(failures_ - 1, 30);
  const int64_t initial = initial_.count();
  const int64_t cap = max_.count();
  const int64_t base = initial > (cap >> shift) ? cap : std::min(cap, initial << shift);
  std::uniform_int_distribution<int64_t> jitter(0, base / 2);
  return std::chrono::milliseconds(base - base / 2 + jitter(rng_));
}

}  // namespace kiln
