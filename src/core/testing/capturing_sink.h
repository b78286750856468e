#pragma once
// CapturingSink: a LogSink that keeps every line it is given, for tests that check what was
// logged. Thread-safe.
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "core/mutex.h"

namespace kiln::testing {

class CapturingSink final : public LogSink {
 public:
  // How a line is kept.
  enum class Format {
    kLevel,      // "E message", "W message" or "I message" (debug lines too read "I ")
    kComponent,  // "component: message"
  };

  explicit CapturingSink(Format format = Format::kLevel) : format_(format) {}

  void Write(LogLevel level, std::string_view component, std::string_view message) override;

  // Every line so far, oldest first.
  std::vector<std::string> lines() const;
  // The lines that contain `part`, oldest first.
  std::vector<std::string> Matching(std::string_view part) const;
  // Waits until a line contains `part` (for lines written by another thread); false when none
  // did within `timeout`.
  bool WaitFor(std::string_view part, std::chrono::milliseconds timeout) const;
  // Forgets the lines so far.
  void Clear();

 private:
  const Format format_;
  mutable Mutex mu_;
  mutable CondVar written_;
  std::vector<std::string> lines_ KILN_GUARDED_BY(mu_);
};

}  // namespace kiln::testing
