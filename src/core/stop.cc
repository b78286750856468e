#include "core/stop.h"

#include <condition_variable>
#include <mutex>

namespace kiln {

bool SleepUntil(const std::stop_token& stop, MonoTime deadline) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait_until(lock, stop, deadline, [] { return false; });
  return !stop.stop_requested();
}

}  // namespace kiln
