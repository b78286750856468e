#pragma once
// Logging: a Logger names a component and writes to a LogSink owned by main().
// No global logger: components receive a Logger. Loggers are cheap to copy and
// thread-safe when their sink is (StderrSink is).
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/mutex.h"

namespace kiln {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Parses "debug" | "info" | "warning" | "error".
bool ParseLogLevel(std::string_view text, LogLevel& level);

class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Write(LogLevel level, std::string_view component, std::string_view message) = 0;
};

// One line per record to stderr: "2026-11-27T02:00:00.123Z INFO  edge: message".
class StderrSink final : public LogSink {
 public:
  explicit StderrSink(const Clock& clock) : clock_(clock) {}
  void Write(LogLevel level, std::string_view component, std::string_view message) override;

 private:
  const Clock& clock_;
  Mutex mu_;
};

// Discards everything; for tests and benchmarks.
class NullSink final : public LogSink {
 public:
  void Write(LogLevel, std::string_view, std::string_view) override {}
};

class Logger {
 public:
  Logger(LogSink& sink, std::string component, LogLevel min_level = LogLevel::kInfo)
      : sink_(&sink), component_(std::move(component)), min_level_(min_level) {}

  // A logger for a sub-component: "edge" -> "edge.modbus".
  Logger Child(std::string_view name) const;
  bool Enabled(LogLevel level) const { return level >= min_level_; }
  const std::string& component() const { return component_; }

  template <typename... Args>
  void Log(LogLevel level, fmt::format_string<Args...> f, Args&&... args) const {
    if (!Enabled(level)) return;
    sink_->Write(level, component_, fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void Debug(fmt::format_string<Args...> f, Args&&... args) const {
    Log(LogLevel::kDebug, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Info(fmt::format_string<Args...> f, Args&&... args) const {
    Log(LogLevel::kInfo, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Warn(fmt::format_string<Args...> f, Args&&... args) const {
    Log(LogLevel::kWarning, f, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void Error(fmt::format_string<Args...> f, Args&&... args) const {
    Log(LogLevel::kError, f, std::forward<Args>(args)...);
  }

 private:
  LogSink* sink_;
  std::string component_;
  LogLevel min_level_;
};

// Lets through at most `burst` messages per key in each `window`; counts the rest so the
// next allowed message can say how many were suppressed. Thread-safe.
class LogRateLimiter {
 public:
  LogRateLimiter(const Clock& clock, std::chrono::milliseconds window = std::chrono::seconds(10),
                 uint32_t burst = 1)
      : clock_(clock), window_(window), burst_(burst) {}

  // Returns true if a message for `key` may be logged now; `suppressed` receives the
  // number of messages dropped for this key since the last one allowed.
  bool Allow(std::string_view key, uint64_t& suppressed);
  uint64_t total_suppressed() const;

 private:
  struct Entry {
    MonoTime window_start;
    uint32_t in_window = 0;
    uint64_t suppressed = 0;
  };
  const Clock& clock_;
  const std::chrono::milliseconds window_;
  const uint32_t burst_;
  mutable Mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_ KILN_GUARDED_BY(mu_);
  uint64_t total_suppressed_ KILN_GUARDED_BY(mu_) = 0;
};

// Logs through `limiter` under `key`, appending "(N similar suppressed)" when some were.
#define KILN_LOG_RATE_LIMITED(logger, limiter, level, key, ...)               \
  do {                                                                        \
    uint64_t kiln_suppressed = 0;                                             \
    if ((logger).Enabled(level) && (limiter).Allow((key), kiln_suppressed)) { \
      std::string kiln_msg = fmt::format(__VA_ARGS__);                        \
      if (kiln_suppressed > 0)                                                \
        kiln_msg += fmt::format(" ({} similar suppressed)", kiln_suppressed); \
      (logger).Log(level, "{}", kiln_msg);                                    \
    }                                                                         \
  } while (false)

}  // namespace kiln
