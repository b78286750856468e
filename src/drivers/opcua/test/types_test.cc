#include "drivers/opcua/types.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "testing/status_matchers.h"

namespace kiln::drivers::opcua {
namespace {

using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::Eq;
using ::testing::HasSubstr;

TEST(NodeIdTest, TextFormRoundTrips) {
  EXPECT_EQ(NodeId(0, 85).ToString(), "i=85");
  EXPECT_EQ(NodeId(1, "Counter").ToString(), "ns=1;s=Counter");
  EXPECT_EQ(NodeId::Opaque(3, {0xDE, 0xAD, 0xBE}).ToString(), "ns=3;b=3q2+");
  const Guid g = *Guid::Parse("72962b91-fa75-4ae6-8d28-b404dc7daf63");
  EXPECT_EQ(NodeId(2, g).ToString(), "ns=2;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63");
  for (const char* text : {"i=85", "ns=2;s=Temperature", "ns=65535;i=4294967295",
                           "s=", "ns=2;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", "ns=3;b=3q2+",
                           "b=AAECAw==", "ns=1;s=a;b=c"}) {
    Result<NodeId> id = NodeId::Parse(text);
    ASSERT_TRUE(id.ok()) << text << ": " << id.status();
    EXPECT_EQ(id->ToString(), text);
  }
  EXPECT_THAT(NodeId::Parse("ns=2;s=Temperature"),
              IsOkAndHolds(Eq(NodeId(2, std::string("Temperature")))));
  EXPECT_THAT(NodeId::Parse("b=AAECAw=="), IsOkAndHolds(Eq(NodeId::Opaque(0, {0, 1, 2, 3}))));
}

TEST(NodeIdTest, ParseRefusesMalformedText) {
  EXPECT_THAT(NodeId::Parse("ns=70000;i=1"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("namespace index > 65535")));
  EXPECT_THAT(NodeId::Parse("ns=1"), StatusIs(StatusCode::kInvalidArgument, HasSubstr("';'")));
  EXPECT_THAT(NodeId::Parse("i=-1"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(NodeId::Parse("i=4294967296"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(NodeId::Parse("x=1"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unknown identifier type 'x'")));
  EXPECT_THAT(NodeId::Parse("Temperature"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(NodeId::Parse("g=1234"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(NodeId::Parse("b=@@"), StatusIs(StatusCode::kInvalidArgument));
}

TEST(NodeIdTest, NullAndNumeric) {
  EXPECT_TRUE(NodeId().is_null());
  EXPECT_FALSE(NodeId(1, 0).is_null());
  EXPECT_EQ(NodeId(0, 85).numeric(), 85u);
  EXPECT_EQ(NodeId(0, "x").numeric(), std::nullopt);
  EXPECT_LT(NodeId(0, 5), NodeId(1, 1));
}

TEST(GuidTest, ParseRefusesMalformedText) {
  EXPECT_THAT(Guid::Parse("72962B91FA754AE68D28B404DC7DAF63"),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(Guid::Parse("72962B91-FA75-4AE6-8D28-B404DC7DAF6G"),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST(DateTimeTest, ConvertsToAndFromTimestamp) {
  EXPECT_EQ(DateTime{DateTime::kUnixEpochTicks}.ToTimestamp(), Timestamp());
  // 2023-11-14T22:13:20Z = 1700000000 s after the Unix epoch.
  const Timestamp t = FromEpochMillis(1700000000000) + std::chrono::nanoseconds(1234567);
  const DateTime d = DateTime::FromTimestamp(t);
  EXPECT_EQ(d.ticks, DateTime::kUnixEpochTicks + 17000000000000000 + 12345);
  // 100 ns resolution: the last two digits are lost.
  EXPECT_EQ(d.ToTimestamp(), t - std::chrono::nanoseconds(67));
  // Before 1970, ticks round down.
  EXPECT_EQ(DateTime::FromTimestamp(Timestamp(std::chrono::nanoseconds(-1))).ticks,
            DateTime::kUnixEpochTicks - 1);
}

TEST(DateTimeTest, SpecialValuesClamp) {
  // MinValue and anything not after it.
  EXPECT_EQ(DateTime{0}.ToTimestamp(), Timestamp::min());
  EXPECT_EQ(DateTime{-5}.ToTimestamp(), Timestamp::min());
  EXPECT_TRUE(DateTime{0}.is_min());
  // 1650: a valid DateTime before the earliest Timestamp (1677).
  EXPECT_EQ(DateTime{15000000000000000}.ToTimestamp(), Timestamp::min());
  // MaxValue and 3000 (after the latest Timestamp, 2262).
  EXPECT_EQ(DateTime{DateTime::kMaxTicks}.ToTimestamp(), Timestamp::max());
  EXPECT_EQ(DateTime{440000000000000000}.ToTimestamp(), Timestamp::max());
  // And back.
  EXPECT_EQ(DateTime::FromTimestamp(Timestamp::min()).ticks, 0);
  EXPECT_EQ(DateTime::FromTimestamp(Timestamp::max()).ticks, DateTime::kMaxTicks);
  // The extremes just inside the Timestamp range survive the round trip (to 100 ns).
  const Timestamp early = Timestamp::min() + std::chrono::seconds(1);
  const Timestamp late = Timestamp::max() - std::chrono::seconds(1);
  EXPECT_LE(early - DateTime::FromTimestamp(early).ToTimestamp(), std::chrono::nanoseconds(100));
  EXPECT_LE(late - DateTime::FromTimestamp(late).ToTimestamp(), std::chrono::nanoseconds(100));
}

TEST(BuiltinTypeTest, Names) {
  EXPECT_EQ(BuiltinTypeName(BuiltinType::kDouble), "Double");
  EXPECT_EQ(BuiltinTypeName(BuiltinType::kDiagnosticInfo), "DiagnosticInfo");
  EXPECT_EQ(BuiltinTypeName(static_cast<BuiltinType>(27)), "Reserved27");
}

TEST(VariantTest, ValuesCompareDeeply) {
  const Variant a =
      Variant::Array(BuiltinType::kVariant, {Boxed<Variant>(Variant::Scalar(UaString("x")))});
  Variant b = a;  // deep copy
  EXPECT_EQ(a, b);
  std::get<Boxed<Variant>>(b.elements[0])->value = UaString("y");
  EXPECT_NE(a, b);
  EXPECT_TRUE(Variant().is_null());
  EXPECT_FALSE(Variant::Array(BuiltinType::kInt32, {}).is_null());
}

TEST(ContractValueTest, ScalarsMapBothWays) {
  using contract::Value;
  using contract::ValueType;
  const std::vector<Value> values = {Value(true),
                                     Value(int8_t{-8}),
                                     Value(int16_t{-16}),
                                     Value(int32_t{-32}),
                                     Value(int64_t{-64}),
                                     Value(uint8_t{8}),
                                     Value(uint16_t{16}),
                                     Value(uint32_t{32}),
                                     Value(uint64_t{64}),
                                     Value(1.5f),
                                     Value(2.5),
                                     Value("text"),
                                     Value()};
  for (const Value& v : values) {
    SCOPED_TRACE(v.ToString());
    const Variant variant = FromContractValue(v);
    if (v.is_null()) {
      EXPECT_TRUE(variant.is_null());
      EXPECT_EQ(ToContractValue(variant), std::nullopt);
      continue;
    }
    EXPECT_EQ(ToContractValue(variant), v);
  }
  EXPECT_EQ(FromContractValue(Value(int8_t{1})).type, BuiltinType::kSByte);
  EXPECT_EQ(FromContractValue(Value(uint8_t{1})).type, BuiltinType::kByte);
  EXPECT_EQ(FromContractValue(Value(1.5f)).type, BuiltinType::kFloat);
  EXPECT_EQ(FromContractValue(Value("x")).type, BuiltinType::kString);
  EXPECT_EQ(ToContractValue(Variant::Scalar(UaString())), Value());
}

TEST(ContractValueTest, OtherTypesAndArraysHaveNoValue) {
  EXPECT_EQ(ToContractValue(Variant::Scalar(DateTime{1})), std::nullopt);
  EXPECT_EQ(ToContractValue(Variant::Scalar(contract::status::kGood)), std::nullopt);
  EXPECT_EQ(ToContractValue(Variant::Scalar(Boxed<LocalizedText>(LocalizedText{}))), std::nullopt);
  EXPECT_EQ(ToContractValue(Variant::Array(BuiltinType::kDouble, {1.0})), std::nullopt);
}

}  // namespace
}  // namespace kiln::drivers::opcua
