#include "sim/signal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace kiln::sim {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kUpdate{100};

SignalConfig Constant(double value) {
  SignalConfig c;
  c.kind = SignalKind::kConstant;
  c.value = value;
  return c;
}

SignalConfig Sine(double offset, double amplitude, double period_s) {
  SignalConfig c;
  c.kind = SignalKind::kSine;
  c.offset = offset;
  c.amplitude = amplitude;
  c.period_s = period_s;
  return c;
}

SignalConfig Ramp(double min, double max, double period_s) {
  SignalConfig c;
  c.kind = SignalKind::kRamp;
  c.min = min;
  c.max = max;
  c.period_s = period_s;
  return c;
}

SignalConfig Step(std::vector<double> values, double period_s) {
  SignalConfig c;
  c.kind = SignalKind::kStep;
  c.values = std::move(values);
  c.period_s = period_s;
  return c;
}

SignalConfig RandomWalk(double start, double step, double min, double max, uint64_t seed) {
  SignalConfig c;
  c.kind = SignalKind::kRandomWalk;
  c.start = start;
  c.step = step;
  c.min = min;
  c.max = max;
  c.seed = seed;
  return c;
}

TEST(SignalTest, ConstantNeverChanges) {
  SignalConfig c = Constant(42.5);
  Signal s(c, kUpdate, 0, 1);
  EXPECT_EQ(s.ValueAt(seconds(0)), 42.5);
  EXPECT_EQ(s.ValueAt(seconds(1000)), 42.5);
}

TEST(SignalTest, SineFollowsOffsetAmplitudeAndPeriod) {
  SignalConfig c = Sine(20, 5, 8);
  Signal s(c, kUpdate, 0, 1);
  EXPECT_NEAR(s.ValueAt(seconds(0)), 20, 1e-9);
  EXPECT_NEAR(s.ValueAt(seconds(2)), 25, 1e-9);
  EXPECT_NEAR(s.ValueAt(seconds(4)), 20, 1e-9);
  EXPECT_NEAR(s.ValueAt(seconds(6)), 15, 1e-9);
  EXPECT_NEAR(s.ValueAt(seconds(10)), 25, 1e-9);
}

TEST(SignalTest, RampClimbsFromMinToMaxThenRestarts) {
  SignalConfig c = Ramp(100, 200, 10);
  Signal s(c, kUpdate, 0, 1);
  EXPECT_DOUBLE_EQ(s.ValueAt(seconds(0)), 100);
  EXPECT_DOUBLE_EQ(s.ValueAt(milliseconds(2500)), 125);
  EXPECT_NEAR(s.ValueAt(milliseconds(9999)), 199.99, 1e-9);
  EXPECT_DOUBLE_EQ(s.ValueAt(seconds(10)), 100);
  EXPECT_DOUBLE_EQ(s.ValueAt(seconds(15)), 150);
}

TEST(SignalTest, StepHoldsEachValueForPeriodAndCycles) {
  SignalConfig c = Step({1, 5, 9}, 2);
  Signal s(c, kUpdate, 0, 1);
  std::vector<double> seen;
  for (int t = 0; t < 8; ++t) seen.push_back(s.ValueAt(seconds(t)));
  EXPECT_THAT(seen, ::testing::ElementsAre(1, 1, 5, 5, 9, 9, 1, 1));
}

TEST(SignalTest, InstancesAreShiftedByTheirShareOfACycle) {
  SignalConfig ramp = Ramp(0, 100, 10);
  Signal first(ramp, kUpdate, 0, 4);
  Signal third(ramp, kUpdate, 2, 4);
  EXPECT_DOUBLE_EQ(first.ValueAt(seconds(0)), 0);
  EXPECT_DOUBLE_EQ(third.ValueAt(seconds(0)), 50);
  EXPECT_DOUBLE_EQ(third.ValueAt(seconds(5)), 0);

  SignalConfig step = Step({0, 1}, 1);
  Signal a(step, kUpdate, 0, 2);
  Signal b(step, kUpdate, 1, 2);
  EXPECT_EQ(a.ValueAt(seconds(0)), 0);
  EXPECT_EQ(b.ValueAt(seconds(0)), 1);
}

TEST(SignalTest, RandomWalkIsDeterministicBoundedAndStepsOncePerUpdate) {
  SignalConfig c = RandomWalk(5, 2, 0, 10, 42);
  Signal a(c, kUpdate, 0, 1);
  Signal b(c, kUpdate, 0, 1);
  EXPECT_EQ(a.ValueAt(seconds(0)), 5);
  EXPECT_EQ(a.ValueAt(milliseconds(99)), 5);  // no update period has passed
  double previous = 5;
  for (int i = 1; i <= 500; ++i) {
    const double v = a.ValueAt(kUpdate * i);
    EXPECT_LE(std::abs(v - previous), 2.0);
    EXPECT_GE(v, 0);
    EXPECT_LE(v, 10);
    previous = v;
  }
  // The same seed reaches the same value, however the time is sampled.
  EXPECT_EQ(b.ValueAt(kUpdate * 500), previous);
  // Going back in time keeps the last value.
  EXPECT_EQ(a.ValueAt(seconds(1)), previous);
}

TEST(SignalTest, RandomWalkInstancesUseDifferentSeeds) {
  SignalConfig c = RandomWalk(0, 1, -1000, 1000, 7);
  Signal a(c, kUpdate, 0, 2);
  Signal b(c, kUpdate, 1, 2);
  EXPECT_NE(a.ValueAt(seconds(10)), b.ValueAt(seconds(10)));
}

TEST(SignalTest, RandomWalkSkipsStepsBeyondTheCatchUpLimit) {
  SignalConfig c = RandomWalk(0, 1, -1e9, 1e9, 3);
  Signal late(c, kUpdate, 0, 1);
  // An hour behind is far more than kMaxCatchUpSteps; only the last steps are replayed,
  // so the value moved by at most kMaxCatchUpSteps * step.
  const double v = late.ValueAt(std::chrono::hours(1));
  EXPECT_LE(std::abs(v), static_cast<double>(Signal::kMaxCatchUpSteps));
}

TEST(SignalTest, ParsesKindNames) {
  for (SignalKind kind : {SignalKind::kConstant, SignalKind::kSine, SignalKind::kRamp,
                          SignalKind::kRandomWalk, SignalKind::kStep}) {
    EXPECT_EQ(ParseSignalKind(SignalKindName(kind)), kind);
  }
  EXPECT_EQ(ParseSignalKind("square"), std::nullopt);
}

}  // namespace
}  // namespace kiln::sim
