#include "core/backoff.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

using namespace std::chrono_literals;

TEST(BackoffTest, GrowsExponentiallyWithinJitterAndCaps) {
  Backoff b(100ms, 1000ms, 42);
  for (int i = 0; i < 40; ++i) {
    const auto base = std::min<std::chrono::milliseconds>(1000ms, 100ms * (1LL << std::min(i, 20)));
    const auto wait = b.Next();
    EXPECT_GE(wait, base - base / 2) << i;
    EXPECT_LE(wait, base) << i;
  }
  EXPECT_EQ(b.failures(), 40u);
}

TEST(BackoffTest, ResetStartsOver) {
  Backoff b(100ms, 10000ms, 1);
  for (int i = 0; i < 5; ++i) b.Next();
  b.Reset();
  EXPECT_LE(b.Next(), 100ms);
}

TEST(BackoffTest, JitterSpreadsGateways) {
  Backoff a(1000ms, 1000ms, 1);
  Backoff b(1000ms, 1000ms, 2);
  int same = 0;
  for (int i = 0; i < 20; ++i) same += a.Next() == b.Next();
  EXPECT_LT(same, 5);
}

}  // namespace
}  // namespace kiln
