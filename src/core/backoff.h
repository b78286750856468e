#pragma once
// Backoff: capped exponential backoff with jitter for reconnects. The n-th consecutive
// failure waits between half and all of min(max, initial * 2^(n-1)) ("equal jitter"), so
// many gateways restarting together do not reconnect in lockstep. Single-threaded.
#include <chrono>
#include <cstdint>
#include <random>

namespace kiln {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, uint64_t seed);

  // Records a failure and returns how long to wait before the next attempt.
  std::chrono::milliseconds Next();
  // Records a success: the next failure starts from `initial` again.
  void Reset() { failures_ = 0; }
  uint32_t failures() const { return failures_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::mt19937_64 rng_;
  uint32_t failures_ = 0;
};

}  // namespace kiln
