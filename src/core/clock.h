#pragma once
// Clock: the only way library code reads time. SystemClock is the real one;
// FakeClock is for tests. Both are thread-safe.
#include <atomic>
#include <chrono>
#include <cstdint>

namespace kiln {

// Wall-clock time (UTC) with nanosecond resolution.
using Timestamp = std::chrono::time_point<std::chrono::system_clock, std::chrono::nanoseconds>;
// Monotonic time for timeouts, periods and ages.
using MonoTime = std::chrono::steady_clock::time_point;

inline int64_t ToEpochMillis(Timestamp t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline Timestamp FromEpochMillis(int64_t ms) { return Timestamp(std::chrono::milliseconds(ms)); }

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp Now() const = 0;
  virtual MonoTime Monotonic() const = 0;
};

class SystemClock final : public Clock {
 public:
  Timestamp Now() const override;
  MonoTime Monotonic() const override;
};

// A clock that moves only when told to. Wall and monotonic time advance together.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(Timestamp start = FromEpochMillis(1700000000000));
  Timestamp Now() const override;
  MonoTime Monotonic() const override;
  void Advance(std::chrono::nanoseconds d);

 private:
  std::atomic<int64_t> offset_ns_{0};
  Timestamp start_;
};

}  // namespace kiln
