#include "core/coding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <limits>
#include <vector>

namespace kiln {
namespace {

using ::testing::ElementsAre;

TEST(CodingTest, FixedWidthFieldsAreLittleEndian) {
  std::array<uint8_t, 8> b{};
  Put32(b.data(), 0x04030201);
  EXPECT_THAT(b, ElementsAre(1, 2, 3, 4, 0, 0, 0, 0));
  EXPECT_EQ(Get32(b.data()), 0x04030201u);
  Put64(b.data(), 0x0807060504030201);
  EXPECT_THAT(b, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
  EXPECT_EQ(Get64(b.data()), 0x0807060504030201u);
}

TEST(CodingTest, VarintGoldenBytes) {
  std::array<uint8_t, kMaxVarint64> b{};
  EXPECT_EQ(PutVarint(b.data(), 0), b.data() + 1);
  EXPECT_EQ(b[0], 0x00);
  EXPECT_EQ(PutVarint(b.data(), 127), b.data() + 1);
  EXPECT_EQ(b[0], 0x7F);
  EXPECT_EQ(PutVarint(b.data(), 300), b.data() + 2);
  EXPECT_THAT(std::vector<uint8_t>(b.data(), b.data() + 2), ElementsAre(0xAC, 0x02));
  EXPECT_EQ(PutVarint(b.data(), std::numeric_limits<uint64_t>::max()), b.data() + kMaxVarint64);
  EXPECT_THAT(b, ElementsAre(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01));
}

TEST(CodingTest, VarintRoundTrips) {
  for (const uint64_t v :
       {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{16383}, uint64_t{16384},
        uint64_t{1} << 35, uint64_t{1} << 63, std::numeric_limits<uint64_t>::max()}) {
    std::array<uint8_t, kMaxVarint64> b{};
    const uint8_t* end = PutVarint(b.data(), v);
    uint64_t out = 0;
    EXPECT_EQ(GetVarint(b.data(), end, out), end) << v;
    EXPECT_EQ(out, v);
  }
}

TEST(CodingTest, GetVarintRefusesTruncatedAndOverlongInput) {
  std::array<uint8_t, kMaxVarint64 + 1> b{};
  const uint8_t* end = PutVarint(b.data(), uint64_t{1} << 40);
  uint64_t out = 42;
  EXPECT_EQ(GetVarint(b.data(), end - 1, out), nullptr);   // The last byte is missing.
  EXPECT_EQ(GetVarint(b.data(), b.data(), out), nullptr);  // Nothing at all.
  b.fill(0x80);  // Eleven continuation bytes: longer than any uint64_t.
  EXPECT_EQ(GetVarint(b.data(), b.data() + b.size(), out), nullptr);
  EXPECT_EQ(out, 42u);
}

TEST(CodingTest, ZigZagKeepsSmallMagnitudesSmall) {
  EXPECT_EQ(ZigZag(0), 0u);
  EXPECT_EQ(ZigZag(-1), 1u);
  EXPECT_EQ(ZigZag(1), 2u);
  EXPECT_EQ(ZigZag(-2), 3u);
  EXPECT_EQ(ZigZag(std::numeric_limits<int64_t>::max()), std::numeric_limits<uint64_t>::max() - 1);
  EXPECT_EQ(ZigZag(std::numeric_limits<int64_t>::min()), std::numeric_limits<uint64_t>::max());
  for (const int64_t v :
       {int64_t{0}, int64_t{-1}, int64_t{1}, int64_t{-300}, int64_t{300},
        std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}) {
    EXPECT_EQ(UnZigZag(ZigZag(v)), v);
  }
}

}  // namespace
}  // namespace kiln
