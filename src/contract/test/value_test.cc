#include "contract/value.h"

#include <gtest/gtest.h>

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
}  // namespace kiln::contract
