#include "contract/sparkplug/payload.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/status_matchers.h"

namespace kiln::sparkplug {
namespace {

using contract::Value;
using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;

constexpr uint64_t kTs = 1700000000000;

std::string FromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string ToHex(std::string_view bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

std::string EncodeOrDie(const Payload& p) {
  Encoder enc;
  std::string out;
  EXPECT_THAT(enc.Encode(p, out), IsOk());
  return out;
}

Metric Named(std::string name, DataType dt, Value v, std::optional<uint64_t> alias = {}) {
  Metric m;
  m.name = std::move(name);
  m.alias = alias;
  m.timestamp = kTs;
  m.datatype = dt;
  m.value = std::move(v);
  return m;
}

// Golden vectors from design/PROTOCOLS.md A1.8 (produced by Tahu's JS encoder).
TEST(PayloadGoldenTest, NDeath) {
  Payload p;
  p.timestamp = kTs;
  Metric bd;
  bd.name = "bdSeq";
  bd.datatype = DataType::kInt64;
  bd.value = Value(int64_t{3});
  p.metrics.push_back(bd);
  EXPECT_EQ(ToHex(EncodeOrDie(p)), "0880d095ffbc31120b0a05626453657120045803");
}

TEST(PayloadGoldenTest, NBirth) {
  Payload p;
  p.timestamp = kTs;
  p.seq = 0;
  p.metrics.push_back(Named("bdSeq", DataType::kInt64, Value(int64_t{3})));
  p.metrics.push_back(Named("Node Control/Rebirth", DataType::kBoolean, Value(false)));
  p.metrics.push_back(Named("Temp", DataType::kDouble, Value(21.5), 1));
  EXPECT_EQ(ToHex(EncodeOrDie(p)),
            "0880d095ffbc3112120a0562645365711880d095ffbc312004580312210a144e6f646520436f6e74726f"
            "6c2f526562697274681880d095ffbc31200b7000121a0a0454656d7010011880d095ffbc31200a6900"
            "000000008035401800");
}

TEST(PayloadGoldenTest, NDataByAlias) {
  Payload p;
  p.timestamp = kTs + 100;
  p.seq = 1;
  Metric m;
  m.alias = 1;
  m.timestamp = kTs + 100;
  m.datatype = DataType::kDouble;
  m.value = Value(22.0);
  p.metrics.push_back(m);
  EXPECT_EQ(ToHex(EncodeOrDie(p)),
            "08e4d095ffbc311214100118e4d095ffbc31200a6900000000000036401801");
}

TEST(PayloadGoldenTest, DecodesTahuDData) {
  const std::string bytes = FromHex(
      "0880d095ffbc31121110021880d095ffbc31200250fbffffff0f121110031880d095ffbc3120075880d0acf30e"
      "121110041880d095ffbc31200350ffffffff0f121010051880d095ffbc312009650000c03f120f10061880d095"
      "ffbc31200c7a024f4b121610071880d095ffbc31200458feffffffffffffffff01121410081880d095ffbc3120"
      "0a69000000000000000018ff01");
  Decoder dec;
  auto p = dec.Decode(bytes);
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->seq, 255u);
  ASSERT_EQ(p->metrics.size(), 7u);
  EXPECT_EQ(p->metrics[0].value, Value(int16_t{-5}));
  EXPECT_EQ(p->metrics[1].value, Value(uint32_t{4000000000u}));  // Tahu puts UInt32 in long_value
  EXPECT_EQ(p->metrics[2].value, Value(int32_t{-1}));
  EXPECT_EQ(p->metrics[3].value, Value(1.5f));
  EXPECT_EQ(p->metrics[4].value, Value("OK"));
  EXPECT_EQ(p->metrics[5].value, Value(int64_t{-2}));
  EXPECT_EQ(p->metrics[6].value, Value(0.0));
  EXPECT_EQ(p->metrics[0].alias, 2u);
  EXPECT_FALSE(p->metrics[0].name.has_value());
}

TEST(PayloadTest, RoundTripsEveryScalarTypeWithQualityAndUnit) {
  Payload p;
  p.timestamp = kTs;
  p.seq = 7;
  p.metrics.push_back(Named("b", DataType::kBoolean, Value(true), 1));
  p.metrics.push_back(Named("i8", DataType::kInt8, Value(int8_t{-128}), 2));
  p.metrics.push_back(Named("i16", DataType::kInt16, Value(int16_t{-300}), 3));
  p.metrics.push_back(Named("i32", DataType::kInt32, Value(int32_t{-70000}), 4));
  p.metrics.push_back(Named("i64", DataType::kInt64, Value(int64_t{-5000000000}), 5));
  p.metrics.push_back(Named("u8", DataType::kUInt8, Value(uint8_t{255}), 6));
  p.metrics.push_back(Named("u16", DataType::kUInt16, Value(uint16_t{65535}), 7));
  p.metrics.push_back(Named("u32", DataType::kUInt32, Value(uint32_t{4000000000u}), 8));
  p.metrics.push_back(Named("u64", DataType::kUInt64, Value(uint64_t{18000000000000000000u}), 9));
  p.metrics.push_back(Named("f", DataType::kFloat, Value(1.25f), 10));
  p.metrics.push_back(Named("d", DataType::kDouble, Value(-2.5), 11));
  p.metrics.push_back(Named("s", DataType::kString, Value("hello"), 12));
  Metric bad = Named("t", DataType::kFloat, Value(3.5f), 13);
  bad.unit = "degC";
  bad.is_historical = true;
  SetQuality(bad, contract::status::kBadSensorFailure);
  p.metrics.push_back(bad);
  Metric null = Named("n", DataType::kDouble, Value(), 14);
  null.is_null = true;
  p.metrics.push_back(null);

  Decoder dec;
  auto back = dec.Decode(EncodeOrDie(p));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(*back, p);
  EXPECT_EQ(QualityOf(back->metrics[12]), contract::status::kBadSensorFailure);
  EXPECT_EQ(QualityOf(back->metrics[0]), contract::status::kGood);
}

TEST(PayloadTest, SpecQualityWithoutStatusCodeMapsToSeverity) {
  Metric m;
  m.properties.push_back({"Quality", DataType::kInt32, Value(int32_t{500})});
  EXPECT_TRUE(QualityOf(m).IsUncertain());
  m.properties[0].value = Value(int32_t{0});
  EXPECT_TRUE(QualityOf(m).IsBad());
}

TEST(PayloadTest, SeqPresenceIsPreserved) {
  Payload p;
  p.timestamp = kTs;
  Decoder dec;
  auto back = dec.Decode(EncodeOrDie(p));
  ASSERT_THAT(back, IsOk());
  EXPECT_FALSE(back->seq.has_value());
  p.seq = 0;
  back = dec.Decode(EncodeOrDie(p));
  EXPECT_EQ(back->seq, 0u);
}

TEST(PayloadTest, RejectsGarbageAndMismatches) {
  Decoder dec;
  EXPECT_THAT(dec.Decode("\xff\xff\xff\xff"), StatusIs(StatusCode::kInvalidArgument));
  // datatype Boolean (11) with a string value.
  Payload p;
  p.metrics.push_back(Named("x", DataType::kString, Value("a")));
  std::string bytes = EncodeOrDie(p);
  auto pos = bytes.find(std::string("\x20\x0c", 2));
  ASSERT_NE(pos, std::string::npos);
  bytes[pos + 1] = 0x0b;
  EXPECT_THAT(dec.Decode(bytes), StatusIs(StatusCode::kInvalidArgument));
}

TEST(PayloadTest, EncoderRefusesStringForNumericDatatype) {
  Encoder enc;
  std::string out;
  Payload p;
  p.metrics.push_back(Named("x", DataType::kDouble, Value("a")));
  EXPECT_THAT(enc.Encode(p, out), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kiln::sparkplug
