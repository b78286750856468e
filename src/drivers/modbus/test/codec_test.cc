#include "drivers/modbus/codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "testing/status_matchers.h"

namespace kiln::drivers::modbus {
namespace {

using contract::Value;
using contract::ValueType;
using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::Eq;
using ::testing::HasSubstr;

struct Golden {
  Value value;
  ValueType type;
  WordOrder order;
  std::vector<uint16_t> registers;
};

// PROTOCOLS.md A3 and the captured pymodbus frames; 64-bit values extend the pattern.
const std::vector<Golden>& GoldenVectors() {
  static const std::vector<Golden> kGolden = {
      {Value(123.456f), ValueType::kFloat, WordOrder::kABCD, {0x42F6, 0xE979}},
      {Value(123.456f), ValueType::kFloat, WordOrder::kCDAB, {0xE979, 0x42F6}},
      {Value(123.456f), ValueType::kFloat, WordOrder::kBADC, {0xF642, 0x79E9}},
      {Value(123.456f), ValueType::kFloat, WordOrder::kDCBA, {0x79E9, 0xF642}},
      {Value(int32_t{-123456}), ValueType::kInt32, WordOrder::kABCD, {0xFFFE, 0x1DC0}},
      {Value(int32_t{-123456}), ValueType::kInt32, WordOrder::kCDAB, {0x1DC0, 0xFFFE}},
      {Value(int32_t{-123456}), ValueType::kInt32, WordOrder::kBADC, {0xFEFF, 0xC01D}},
      {Value(int32_t{-123456}), ValueType::kInt32, WordOrder::kDCBA, {0xC01D, 0xFEFF}},
      {Value(uint32_t{0xDEADBEEF}), ValueType::kUInt32, WordOrder::kABCD, {0xDEAD, 0xBEEF}},
      // 123.456 as a double is 0x405EDD2F1A9FBE77.
      {Value(123.456), ValueType::kDouble, WordOrder::kABCD, {0x405E, 0xDD2F, 0x1A9F, 0xBE77}},
      {Value(123.456), ValueType::kDouble, WordOrder::kCDAB, {0xBE77, 0x1A9F, 0xDD2F, 0x405E}},
      {Value(123.456), ValueType::kDouble, WordOrder::kBADC, {0x5E40, 0x2FDD, 0x9F1A, 0x77BE}},
      {Value(123.456), ValueType::kDouble, WordOrder::kDCBA, {0x77BE, 0x9F1A, 0x2FDD, 0x5E40}},
      {Value(int64_t{-2}), ValueType::kInt64, WordOrder::kABCD, {0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE}},
      {Value(int64_t{-2}), ValueType::kInt64, WordOrder::kCDAB, {0xFFFE, 0xFFFF, 0xFFFF, 0xFFFF}},
      {Value(uint64_t{0x0102030405060708}),
       ValueType::kUInt64,
       WordOrder::kABCD,
       {0x0102, 0x0304, 0x0506, 0x0708}},
      {Value(uint64_t{0x0102030405060708}),
       ValueType::kUInt64,
       WordOrder::kDCBA,
       {0x0807, 0x0605, 0x0403, 0x0201}},
      {Value(int16_t{-1}), ValueType::kInt16, WordOrder::kABCD, {0xFFFF}},
      {Value(int16_t{-32768}), ValueType::kInt16, WordOrder::kABCD, {0x8000}},
      {Value(int16_t{32767}), ValueType::kInt16, WordOrder::kABCD, {0x7FFF}},
      {Value(int16_t{0x1234}), ValueType::kInt16, WordOrder::kCDAB, {0x1234}},
      {Value(int16_t{0x1234}), ValueType::kInt16, WordOrder::kBADC, {0x3412}},
      {Value(uint16_t{65535}), ValueType::kUInt16, WordOrder::kABCD, {0xFFFF}},
  };
  return kGolden;
}

TEST(CodecTest, DecodesGoldenVectors) {
  for (const Golden& g : GoldenVectors()) {
    SCOPED_TRACE(g.value.ToString() + " " + std::string(WordOrderName(g.order)));
    EXPECT_THAT(DecodeRegisters(g.registers, g.type, g.order), IsOkAndHolds(Eq(g.value)));
  }
}

TEST(CodecTest, EncodesGoldenVectors) {
  for (const Golden& g : GoldenVectors()) {
    SCOPED_TRACE(g.value.ToString() + " " + std::string(WordOrderName(g.order)));
    EXPECT_THAT(EncodeRegisters(g.value, g.type, g.order),
                IsOkAndHolds(ElementsAreArray(g.registers)));
  }
}

TEST(CodecTest, RoundTripsEveryTypeAndWordOrder) {
  std::mt19937_64 rng(42);
  const std::vector<ValueType> types = {ValueType::kInt16,  ValueType::kUInt16, ValueType::kInt32,
                                        ValueType::kUInt32, ValueType::kInt64,  ValueType::kUInt64,
                                        ValueType::kFloat,  ValueType::kDouble};
  for (int round = 0; round < 200; ++round) {
    for (ValueType type : types) {
      for (WordOrder order :
           {WordOrder::kABCD, WordOrder::kCDAB, WordOrder::kBADC, WordOrder::kDCBA}) {
        std::vector<uint16_t> registers(RegisterCount(type));
        for (uint16_t& r : registers) r = static_cast<uint16_t>(rng());
        Result<Value> value = DecodeRegisters(registers, type, order);
        ASSERT_TRUE(value.ok());
        if (std::isnan(value->AsDouble().value())) continue;  // NaN payloads are not compared
        EXPECT_EQ(value->type(), type);
        EXPECT_THAT(EncodeRegisters(*value, type, order),
                    IsOkAndHolds(ElementsAreArray(registers)));
      }
    }
  }
}

TEST(CodecTest, RejectsWrongRegisterCountAndNonRegisterTypes) {
  const std::vector<uint16_t> one = {0x42F6};
  EXPECT_THAT(
      DecodeRegisters(one, ValueType::kFloat, WordOrder::kABCD),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("float32 needs 2 registers, got 1")));
  EXPECT_THAT(DecodeRegisters({}, ValueType::kUInt16, WordOrder::kABCD),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeRegisters(one, ValueType::kBool, WordOrder::kABCD),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeRegisters(one, ValueType::kString, WordOrder::kABCD),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeRegisters(Value(1.5), ValueType::kFloat, WordOrder::kABCD),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("expected a float32 value")));
}

TEST(CodecTest, ScaleAndOffsetPublishFloat64) {
  ModbusTag tag;
  tag.type = ValueType::kInt16;
  tag.scale = 0.1;
  tag.offset = 5.0;
  EXPECT_EQ(PublishedType(tag), ValueType::kDouble);
  const std::vector<uint16_t> minus_100 = {0xFF9C};
  Result<Value> v = DecodeRegisterTag(tag, minus_100);
  ASSERT_TRUE(v.ok());
  ASSERT_EQ(v->type(), ValueType::kDouble);
  EXPECT_DOUBLE_EQ(*v->get_if<double>(), -5.0);

  tag.scale = 1.0;
  tag.offset = 0.0;
  EXPECT_EQ(PublishedType(tag), ValueType::kInt16);
  EXPECT_THAT(DecodeRegisterTag(tag, minus_100), IsOkAndHolds(Eq(Value(int16_t{-100}))));

  tag.offset = -273.15;  // an offset alone also publishes float64
  EXPECT_EQ(PublishedType(tag), ValueType::kDouble);
}

TEST(CodecTest, ScalesFloat32InCdabOrder) {
  ModbusTag tag;
  tag.type = ValueType::kFloat;
  tag.word_order = WordOrder::kCDAB;
  tag.scale = 2.0;
  const std::vector<uint16_t> registers = {0xE979, 0x42F6};
  Result<Value> v = DecodeRegisterTag(tag, registers);
  ASSERT_TRUE(v.ok());
  EXPECT_DOUBLE_EQ(*v->get_if<double>(), 2.0 * static_cast<double>(123.456f));
}

TEST(CodecTest, ApplyScaleLeavesNullAndStringsAlone) {
  EXPECT_EQ(ApplyScale(Value(), 2.0, 1.0), Value());
  EXPECT_EQ(ApplyScale(Value("x"), 2.0, 1.0), Value("x"));
  EXPECT_EQ(ApplyScale(Value(true), 2.0, 1.0), Value(3.0));
}

TEST(CodecTest, EncodeTagUndoesScaleAndRounds) {
  ModbusTag tag;
  tag.type = ValueType::kUInt16;
  tag.scale = 0.1;
  EXPECT_THAT(EncodeRegisterTag(tag, Value(25.5)), IsOkAndHolds(ElementsAre(255)));
  EXPECT_THAT(EncodeRegisterTag(tag, Value(25.46)), IsOkAndHolds(ElementsAre(255)));
  tag.offset = -40.0;  // raw = (value - offset) / scale
  EXPECT_THAT(EncodeRegisterTag(tag, Value(-40.0)), IsOkAndHolds(ElementsAre(0)));
}

TEST(CodecTest, EncodeTagConvertsIntegersExactly) {
  ModbusTag tag;
  tag.type = ValueType::kInt64;
  const int64_t big = (int64_t{1} << 62) + 1;  // not exact as a double
  EXPECT_THAT(EncodeRegisterTag(tag, Value(uint64_t{static_cast<uint64_t>(big)})),
              IsOkAndHolds(ElementsAre(0x4000, 0x0000, 0x0000, 0x0001)));
  tag.type = ValueType::kUInt16;
  EXPECT_THAT(EncodeRegisterTag(tag, Value(int32_t{65535})), IsOkAndHolds(ElementsAre(0xFFFF)));
  tag.type = ValueType::kFloat;
  EXPECT_THAT(EncodeRegisterTag(tag, Value(123.456)), IsOkAndHolds(ElementsAre(0x42F6, 0xE979)));
}

TEST(CodecTest, EncodeTagRejectsValuesOutsideTheRawType) {
  ModbusTag tag;
  tag.type = ValueType::kUInt16;
  EXPECT_THAT(EncodeRegisterTag(tag, Value(int32_t{70000})),
              StatusIs(StatusCode::kOutOfRange, HasSubstr("holding:0")));
  EXPECT_THAT(EncodeRegisterTag(tag, Value(int32_t{-1})), StatusIs(StatusCode::kOutOfRange));
  EXPECT_THAT(EncodeRegisterTag(tag, Value(65535.6)), StatusIs(StatusCode::kOutOfRange));
  EXPECT_THAT(EncodeRegisterTag(tag, Value(std::numeric_limits<double>::quiet_NaN())),
              StatusIs(StatusCode::kOutOfRange));
  tag.type = ValueType::kInt64;
  EXPECT_THAT(EncodeRegisterTag(tag, Value(9.3e18)), StatusIs(StatusCode::kOutOfRange));
  tag.type = ValueType::kFloat;
  EXPECT_THAT(EncodeRegisterTag(tag, Value(1e300)), StatusIs(StatusCode::kOutOfRange));
  EXPECT_THAT(EncodeRegisterTag(tag, Value("7")), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeRegisterTag(tag, Value()), StatusIs(StatusCode::kInvalidArgument));
  tag.kind = RegisterKind::kCoil;
  tag.type = ValueType::kBool;
  EXPECT_THAT(EncodeRegisterTag(tag, Value(true)), StatusIs(StatusCode::kInvalidArgument));
}

TEST(CodecTest, EncodesBits) {
  EXPECT_THAT(EncodeBit(Value(true)), IsOkAndHolds(true));
  EXPECT_THAT(EncodeBit(Value(int16_t{0})), IsOkAndHolds(false));
  EXPECT_THAT(EncodeBit(Value(uint64_t{1})), IsOkAndHolds(true));
  EXPECT_THAT(EncodeBit(Value(int32_t{2})), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(EncodeBit(Value(1.0)), StatusIs(StatusCode::kInvalidArgument));
}

TEST(CodecTest, MapsExceptionsToQualities) {
  namespace st = contract::status;
  EXPECT_EQ(QualityForException(0x01), st::kBadNotSupported);
  EXPECT_EQ(QualityForException(0x02), st::kBadNodeIdUnknown);
  EXPECT_EQ(QualityForException(0x03), st::kBadOutOfRange);
  EXPECT_EQ(QualityForException(0x04), st::kBadDeviceFailure);
  EXPECT_EQ(QualityForException(0x05), contract::Quality(0x80040000));
  EXPECT_EQ(QualityForException(0x06), contract::Quality(0x80040000));
  EXPECT_EQ(QualityForException(0x0A), st::kBadNoCommunication);
  EXPECT_EQ(QualityForException(0x0B), st::kBadNoCommunication);
  EXPECT_EQ(QualityForException(0x09), st::kBadCommunicationError);
  EXPECT_EQ(ExceptionName(0x02), "illegal data address");
  EXPECT_EQ(ExceptionName(0x0C), "exception 0x0C");
}

}  // namespace
}  // namespace kiln::drivers::modbus
