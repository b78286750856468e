#include "core/clock.h"

namespace kiln {

Timestamp SystemClock::Now() const {
  return std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
}

MonoTime SystemClock::Monotonic() const { return std::chrono::steady_clock::now(); }

FakeClock::FakeClock(Timestamp start) : start_(start) {}

Timestamp FakeClock::Now() const {
  return start_ + std::chrono::nanoseconds(offset_ns_.load(std::memory_order_relaxed));
}

MonoTime FakeClock::Monotonic() const {
  return MonoTime(std::chrono::nanoseconds(offset_ns_.load(std::memory_order_relaxed)) +
                  std::chrono::hours(1));
}

void FakeClock::Advance(std::chrono::nanoseconds d) {
  offset_ns_.fetch_add(d.count(), std::memory_order_relaxed);
}

}  // namespace kiln
