#include "edge/scan_engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kiln::edge {
namespace {

using contract::Sample;
using contract::Value;
using namespace std::chrono_literals;

Sample S(contract::TagId tag, Value v, contract::Quality q = contract::status::kGood) {
  return Sample{tag, std::move(v), q, Timestamp()};
}

TEST(ScanEngineTest, FirstValueAlwaysPasses) {
  ScanEngine e({{0, 0.5, {}}});
  EXPECT_TRUE(e.Filter(S(0, Value(1.0)), MonoTime()));
  EXPECT_FALSE(e.Filter(S(0, Value(1.0)), MonoTime()));
}

TEST(ScanEngineTest, DeadbandIsMeasuredFromLastPublishedValue) {
  ScanEngine e({{0, 0.5, {}}});
  EXPECT_TRUE(e.Filter(S(0, Value(10.0)), MonoTime()));
  EXPECT_FALSE(e.Filter(S(0, Value(10.3)), MonoTime()));
  EXPECT_FALSE(e.Filter(S(0, Value(10.5)), MonoTime()));  // exactly the deadband: no
  EXPECT_TRUE(e.Filter(S(0, Value(10.6)), MonoTime()));   // creeping change accumulates
  EXPECT_FALSE(e.Filter(S(0, Value(10.2)), MonoTime()));
  EXPECT_TRUE(e.Filter(S(0, Value(10.0)), MonoTime()));
}

TEST(ScanEngineTest, ZeroDeadbandPassesEveryChange) {
  ScanEngine e({{0, 0, {}}});
  EXPECT_TRUE(e.Filter(S(0, Value(int16_t{1})), MonoTime()));
  EXPECT_TRUE(e.Filter(S(0, Value(int16_t{2})), MonoTime()));
  EXPECT_FALSE(e.Filter(S(0, Value(int16_t{2})), MonoTime()));
}

TEST(ScanEngineTest, QualityChangeAlwaysPasses) {
  ScanEngine e({{0, 100, {}}});
  EXPECT_TRUE(e.Filter(S(0, Value(1.0)), MonoTime()));
  EXPECT_TRUE(e.Filter(S(0, Value(1.0), contract::status::kUncertainLastUsableValue), MonoTime()));
  EXPECT_TRUE(e.Filter(S(0, Value(1.0)), MonoTime()));
}

TEST(ScanEngineTest, BoolAndStringIgnoreDeadband) {
  ScanEngine e({{0, 5, {}}, {1, 5, {}}});
  EXPECT_TRUE(e.Filter(S(0, Value(false)), MonoTime()));
  EXPECT_TRUE(e.Filter(S(0, Value(true)), MonoTime()));
  EXPECT_TRUE(e.Filter(S(1, Value("a")), MonoTime()));
  EXPECT_TRUE(e.Filter(S(1, Value("b")), MonoTime()));
  EXPECT_FALSE(e.Filter(S(1, Value("b")), MonoTime()));
}

TEST(ScanEngineTest, HeartbeatRepublishesUnchangedValue) {
  ScanEngine e({{0, 0, 10s}});
  const MonoTime t0;
  EXPECT_TRUE(e.Filter(S(0, Value(1.0)), t0));
  EXPECT_FALSE(e.Filter(S(0, Value(1.0)), t0 + 9s));
  EXPECT_TRUE(e.Filter(S(0, Value(1.0)), t0 + 10s));
  EXPECT_FALSE(e.Filter(S(0, Value(1.0)), t0 + 15s));
}

TEST(ScanEngineTest, MarkStaleKeepsValueAndTurnsGoodTagsUncertain) {
  ScanEngine e({{3, 0, {}}, {4, 0, {}}});
  e.Filter(S(3, Value(7.0)), MonoTime());
  e.Filter(S(4, Value(), contract::status::kBadNodeIdUnknown), MonoTime());
  auto out = e.MarkStale(contract::status::kUncertainLastUsableValue, Timestamp(5s), MonoTime());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].tag, 3u);
  EXPECT_EQ(out[0].value, Value(7.0));
  EXPECT_EQ(out[0].quality, contract::status::kUncertainLastUsableValue);
  // The next good read of the same value is a quality change and passes.
  EXPECT_TRUE(e.Filter(S(3, Value(7.0)), MonoTime()));
}

TEST(ScanEngineTest, MarkAllTurnsEveryTagBadOnce) {
  ScanEngine e({{0, 0, {}}, {1, 0, {}}});
  e.Filter(S(0, Value(1.0)), MonoTime());
  auto out = e.MarkAll(contract::status::kBadTimeout, Timestamp(), MonoTime());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].value.is_null());
  EXPECT_TRUE(e.MarkAll(contract::status::kBadTimeout, Timestamp(), MonoTime()).empty());
  EXPECT_EQ(e.MarkAll(contract::status::kBadNoCommunication, Timestamp(), MonoTime()).size(), 2u);
}

}  // namespace
}  // namespace kiln::edge
