#include "sim/register_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace kiln::sim {
namespace {

using contract::Value;
using contract::ValueType;
using ::testing::ElementsAre;

std::vector<uint16_t> Encode(const Value& value, WordOrder order) {
  std::vector<uint16_t> out(RegisterWidth(value.type()));
  EncodeRegisters(value, order, out);
  return out;
}

// Golden values of PROTOCOLS.md A3, captured against our pymodbus peer.
TEST(RegisterCodecTest, Float32GoldenPerWordOrder) {
  const Value v(123.456f);
  EXPECT_THAT(Encode(v, WordOrder::kABCD), ElementsAre(0x42F6, 0xE979));
  EXPECT_THAT(Encode(v, WordOrder::kCDAB), ElementsAre(0xE979, 0x42F6));
  EXPECT_THAT(Encode(v, WordOrder::kBADC), ElementsAre(0xF642, 0x79E9));
  EXPECT_THAT(Encode(v, WordOrder::kDCBA), ElementsAre(0x79E9, 0xF642));
}

TEST(RegisterCodecTest, Int32GoldenPerWordOrder) {
  const Value v(int32_t{-123456});
  EXPECT_THAT(Encode(v, WordOrder::kABCD), ElementsAre(0xFFFE, 0x1DC0));
  EXPECT_THAT(Encode(v, WordOrder::kCDAB), ElementsAre(0x1DC0, 0xFFFE));
  EXPECT_THAT(Encode(v, WordOrder::kBADC), ElementsAre(0xFEFF, 0xC01D));
  EXPECT_THAT(Encode(v, WordOrder::kDCBA), ElementsAre(0xC01D, 0xFEFF));
  EXPECT_THAT(Encode(Value(uint32_t{0xDEADBEEF}), WordOrder::kABCD), ElementsAre(0xDEAD, 0xBEEF));
}

TEST(RegisterCodecTest, SixtyFourBitValuesExtendThePattern) {
  const Value v(uint64_t{0x0102030405060708});
  EXPECT_THAT(Encode(v, WordOrder::kABCD), ElementsAre(0x0102, 0x0304, 0x0506, 0x0708));
  EXPECT_THAT(Encode(v, WordOrder::kCDAB), ElementsAre(0x0708, 0x0506, 0x0304, 0x0102));
  EXPECT_THAT(Encode(v, WordOrder::kBADC), ElementsAre(0x0201, 0x0403, 0x0605, 0x0807));
  EXPECT_THAT(Encode(v, WordOrder::kDCBA), ElementsAre(0x0807, 0x0605, 0x0403, 0x0201));
  EXPECT_THAT(Encode(Value(1.0), WordOrder::kABCD), ElementsAre(0x3FF0, 0, 0, 0));
  EXPECT_THAT(Encode(Value(int64_t{-2}), WordOrder::kABCD),
              ElementsAre(0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE));
}

TEST(RegisterCodecTest, SixteenBitValuesTakeTheBytePart) {
  EXPECT_THAT(Encode(Value(int16_t{-2}), WordOrder::kABCD), ElementsAre(0xFFFE));
  EXPECT_THAT(Encode(Value(uint16_t{0x1234}), WordOrder::kCDAB), ElementsAre(0x1234));
  EXPECT_THAT(Encode(Value(uint16_t{0x1234}), WordOrder::kBADC), ElementsAre(0x3412));
  EXPECT_THAT(Encode(Value(uint16_t{0x1234}), WordOrder::kDCBA), ElementsAre(0x3412));
  EXPECT_THAT(Encode(Value(true), WordOrder::kABCD), ElementsAre(1));
}

TEST(RegisterCodecTest, WidthPerType) {
  EXPECT_EQ(RegisterWidth(ValueType::kBool), 1);
  EXPECT_EQ(RegisterWidth(ValueType::kUInt16), 1);
  EXPECT_EQ(RegisterWidth(ValueType::kFloat), 2);
  EXPECT_EQ(RegisterWidth(ValueType::kInt64), 4);
  EXPECT_EQ(RegisterWidth(ValueType::kDouble), 4);
  EXPECT_EQ(RegisterWidth(ValueType::kUInt8), 0);
  EXPECT_EQ(RegisterWidth(ValueType::kString), 0);
}

TEST(RegisterCodecTest, DecodeInvertsEncodeForEveryTypeAndOrder) {
  const std::vector<Value> values = {Value(true),
                                     Value(int16_t{-12345}),
                                     Value(uint16_t{54321}),
                                     Value(int32_t{-7}),
                                     Value(uint32_t{4000000000}),
                                     Value(int64_t{-1234567890123}),
                                     Value(uint64_t{18000000000000000000ULL}),
                                     Value(-0.15625f),
                                     Value(6.02214076e23),
                                     Value(std::numeric_limits<float>::infinity())};
  for (WordOrder order : {WordOrder::kABCD, WordOrder::kCDAB, WordOrder::kBADC, WordOrder::kDCBA}) {
    for (const Value& v : values) {
      const std::vector<uint16_t> regs = Encode(v, order);
      EXPECT_EQ(DecodeRegisters(regs, v.type(), order), v)
          << v.ToString() << " " << WordOrderName(order);
    }
  }
  const std::vector<uint16_t> nan = Encode(Value(std::nanf("")), WordOrder::kCDAB);
  EXPECT_TRUE(
      std::isnan(*DecodeRegisters(nan, ValueType::kFloat, WordOrder::kCDAB).get_if<float>()));
}

TEST(RegisterCodecTest, ParsesWordOrderNames) {
  for (WordOrder order : {WordOrder::kABCD, WordOrder::kCDAB, WordOrder::kBADC, WordOrder::kDCBA}) {
    EXPECT_EQ(ParseWordOrder(WordOrderName(order)), order);
  }
  EXPECT_EQ(ParseWordOrder("abcd"), std::nullopt);
}

}  // namespace
}  // namespace kiln::sim
