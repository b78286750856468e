#include "core/log.h"

#include <cstdio>

#include "core/time_format.h"

namespace kiln {

bool ParseLogLevel(std::string_view text, LogLevel& level) {
  if (text == "debug")
    level = LogLevel::kDebug;
  else if (text == "info")
    level = LogLevel::kInfo;
  else if (text == "warning" || text == "warn")
    level = LogLevel::kWarning;
  else if (text == "error")
    level = LogLevel::kError;
  else
    return false;
  return true;
}

namespace {
const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO ";
    case LogLevel::kWarning:
      return "WARN ";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}
}  // namespace

void StderrSink::Write(LogLevel level, std::string_view component, std::string_view message) {
  const std::string when = FormatRfc3339Millis(clock_.Now());
  MutexLock lock(mu_);
  std::fprintf(stderr, "%s %s %.*s: %.*s\n", when.c_str(), LevelName(level),
               static_cast<int>(component.size()), component.data(),
               static_cast<int>(message.size()), message.data());
}

Logger Logger::Child(std::string_view name) const {
  std::string child = component_.empty() ? std::string(name) : component_ + "." + std::string(name);
  return Logger(*sink_, std::move(child), min_level_);
}

bool LogRateLimiter::Allow(std::string_view key, uint64_t& suppressed) {
  const MonoTime now = clock_.Monotonic();
  MutexLock lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) it = entries_.emplace(std::string(key), Entry{now, 0, 0}).first;
  Entry& e = it->second;
  if (now - e.window_start >= window_) {
    e.window_start = now;
    e.in_window = 0;
  }
  if (e.in_window < burst_) {
    ++e.in_window;
    suppressed = e.suppressed;
    e.suppressed = 0;
    return true;
  }
  ++e.suppressed;
  ++total_suppressed_;
  return false;
}

uint64_t LogRateLimiter::total_suppressed() const {
  MutexLock lock(mu_);
  return total_suppressed_;
}

}  // namespace kiln
