#include "contract/value.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <utility>

namespace kiln::contract {
namespace {

TEST(ValueTest, TypeFollowsStoredAlternative) {
  EXPECT_EQ(Value().type(), ValueType::kNull);
  EXPECT_EQ(Value(true).type(), ValueType::kBool);
  EXPECT_EQ(Value(int16_t{-5}).type(), ValueType::kInt16);
  EXPECT_EQ(Value(uint64_t{1}).type(), ValueType::kUInt64);
  EXPECT_EQ(Value(1.5f).type(), ValueType::kFloat);
  EXPECT_EQ(Value("ok").type(), ValueType::kString);
}

TEST(ValueTest, FromDoubleRoundsAndSaturates) {
  EXPECT_EQ(Value::FromDouble(1.6, ValueType::kInt16), Value(int16_t{2}));
  EXPECT_EQ(Value::FromDouble(1e9, ValueType::kInt16), Value(int16_t{32767}));
  EXPECT_EQ(Value::FromDouble(-3, ValueType::kUInt8), Value(uint8_t{0}));
  EXPECT_EQ(Value::FromDouble(2.5, ValueType::kDouble), Value(2.5));
}

TEST(ValueTest, ParsesConfigTypeNames) {
  EXPECT_EQ(ParseValueType("float32"), ValueType::kFloat);
  EXPECT_EQ(ParseValueType("uint64"), ValueType::kUInt64);
  EXPECT_EQ(ParseValueType("bool"), ValueType::kBool);
  EXPECT_EQ(ParseValueType("float128"), std::nullopt);
}

TEST(ValueTest, Conversions) {
  EXPECT_EQ(Value(int8_t{-3}).AsDouble(), -3.0);
  EXPECT_EQ(Value("x").AsDouble(), std::nullopt);
  EXPECT_EQ(Value(int8_t{-3}).ToString(), "-3");
  EXPECT_EQ(Value(true).AsInt64(), 1);
}

}  // namespace
TEST(ValueTest, IntegerRangesAreExactPowersOfTwo) {
  EXPECT_TRUE(IsIntegerType(ValueType::kInt8));
  EXPECT_TRUE(IsIntegerType(ValueType::kUInt64));
  EXPECT_FALSE(IsIntegerType(ValueType::kBool));
  EXPECT_FALSE(IsIntegerType(ValueType::kFloat));
  EXPECT_EQ(IntegerRange(ValueType::kInt8), std::make_pair(-128.0, 128.0));
  EXPECT_EQ(IntegerRange(ValueType::kUInt16), std::make_pair(0.0, 65536.0));
  EXPECT_EQ(IntegerRange(ValueType::kInt64), std::make_pair(-0x1p63, 0x1p63));
  EXPECT_EQ(IntegerRange(ValueType::kUInt64), std::make_pair(0.0, 0x1p64));
  EXPECT_EQ(IntegerLimits(ValueType::kInt16),
            std::make_pair(Value(int16_t{-32768}), Value(int16_t{32767})));
  EXPECT_EQ(IntegerLimits(ValueType::kUInt64).second.ToString(), "18446744073709551615");
}

TEST(ValueTest, ToExactIntegerConvertsOnlyWhatFitsExactly) {
  const int64_t odd = (int64_t{1} << 53) + 1;  // no double holds it
  EXPECT_EQ(Value(odd).ToExactInteger(ValueType::kUInt64), Value(static_cast<uint64_t>(odd)));
  EXPECT_EQ(Value(uint64_t{UINT64_MAX}).ToExactInteger(ValueType::kUInt64),
            Value(uint64_t{UINT64_MAX}));
  EXPECT_EQ(Value(uint64_t{UINT64_MAX}).ToExactInteger(ValueType::kInt64), std::nullopt);
  EXPECT_EQ(Value(int8_t{-1}).ToExactInteger(ValueType::kUInt8), std::nullopt);
  EXPECT_EQ(Value(int32_t{300}).ToExactInteger(ValueType::kUInt8), std::nullopt);
  EXPECT_EQ(Value(int32_t{255}).ToExactInteger(ValueType::kUInt8), Value(uint8_t{255}));
  EXPECT_EQ(Value(72.0).ToExactInteger(ValueType::kInt16), Value(int16_t{72}));
  EXPECT_EQ(Value(72.5).ToExactInteger(ValueType::kInt16), std::nullopt);
  EXPECT_EQ(Value(0x1p63).ToExactInteger(ValueType::kInt64), std::nullopt);  // INT64_MAX + 1
  EXPECT_EQ(Value(-0x1p63).ToExactInteger(ValueType::kInt64), Value(INT64_MIN));
  EXPECT_EQ(Value(std::nan("")).ToExactInteger(ValueType::kInt32), std::nullopt);
  EXPECT_EQ(Value(true).ToExactInteger(ValueType::kInt32), std::nullopt);
  EXPECT_EQ(Value("7").ToExactInteger(ValueType::kInt32), std::nullopt);
  EXPECT_EQ(Value().ToExactInteger(ValueType::kInt32), std::nullopt);
}

}  // namespace kiln::contract
