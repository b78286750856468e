#include "core/testing/capturing_sink.h"

#include <utility>

namespace kiln::testing {

void CapturingSink::Write(LogLevel level, std::string_view component, std::string_view message) {
  std::string line;
  if (format_ == Format::kComponent) {
    line = std::string(component) + ": " + std::string(message);
  } else {
    line = std::string(level == LogLevel::kError     ? "E "
                       : level == LogLevel::kWarning ? "W "
                                                     : "I ") +
           std::string(message);
  }
  MutexLock lock(mu_);
  lines_.push_back(std::move(line));
  written_.NotifyAll();
}

bool CapturingSink::WaitFor(std::string_view part, std::chrono::milliseconds timeout) const {
  MutexLock lock(mu_);
  return written_.WaitFor(lock, timeout, [&]() KILN_REQUIRES(mu_) {
    for (const auto& l : lines_) {
      if (l.find(part) != std::string::npos) return true;
    }
    return false;
  });
}

std::vector<std::string> CapturingSink::lines() const {
  MutexLock lock(mu_);
  return lines_;
}

std::vector<std::string> CapturingSink::Matching(std::string_view part) const {
  MutexLock lock(mu_);
  std::vector<std::string> out;
  for (const auto& l : lines_) {
    if (l.find(part) != std::string::npos) out.push_back(l);
  }
  return out;
}

void CapturingSink::Clear() {
  MutexLock lock(mu_);
  lines_.clear();
}

}  // namespace kiln::testing
