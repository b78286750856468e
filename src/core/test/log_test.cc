#include "core/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace kiln {
namespace {

class CapturingSink : public LogSink {
 public:
  void Write(LogLevel, std::string_view component, std::string_view message) override {
    lines.push_back(std::string(component) + ": " + std::string(message));
  }
  std::vector<std::string> lines;
};

TEST(LogRateLimiterTest, SuppressesWithinWindowAndReportsCount) {
  FakeClock clock;
  CapturingSink sink;
  Logger log(sink, "edge");
  LogRateLimiter limiter(clock, std::chrono::seconds(10), 1);
  for (int i = 0; i < 5; ++i) {
    KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kWarning, "peer-a", "bad payload {}", i);
  }
  KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kWarning, "peer-b", "bad payload {}", 9);
  clock.Advance(std::chrono::seconds(11));
  KILN_LOG_RATE_LIMITED(log, limiter, LogLevel::kWarning, "peer-a", "bad payload {}", 5);
  EXPECT_THAT(sink.lines, ::testing::ElementsAre("edge: bad payload 0", "edge: bad payload 9",
                                                 "edge: bad payload 5 (4 similar suppressed)"));
  EXPECT_EQ(limiter.total_suppressed(), 4u);
}

TEST(LoggerTest, ChildAndLevel) {
  CapturingSink sink;
  Logger log(sink, "edge", LogLevel::kWarning);
  log.Info("hidden");
  log.Child("modbus").Error("shown {}", 1);
  EXPECT_THAT(sink.lines, ::testing::ElementsAre("edge.modbus: shown 1"));
}

}  // namespace
}  // namespace kiln
