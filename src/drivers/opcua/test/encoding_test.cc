#include "drivers/opcua/encoding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "drivers/opcua/test/opcua_test_util.h"
#include "drivers/opcua/types.h"
#include "testing/status_matchers.h"

namespace kiln::drivers::opcua {
namespace {

using contract::Quality;
using ::kiln::drivers::opcua::testing::Bytes;
using ::kiln::drivers::opcua::testing::Hex;
using ::kiln::testing::IsOk;
using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Encodes `value`, expects `hex`, decodes the bytes back and expects `value`.
template <typename T>
void ExpectGolden(const T& value, std::string_view hex) {
  Result<std::vector<uint8_t>> bytes = EncodeToBytes(value);
  ASSERT_THAT(bytes, IsOk());
  EXPECT_EQ(Hex(*bytes), Hex(Bytes(hex)));
  Result<T> back = DecodeAll<T>(Bytes(hex));
  ASSERT_THAT(back, IsOk());
  EXPECT_TRUE(*back == value);
}

template <typename T>
T RoundTrip(const T& value) {
  Result<std::vector<uint8_t>> bytes = EncodeToBytes(value);
  KILN_CHECK(bytes.ok()) << bytes.status();
  Result<T> back = DecodeAll<T>(*bytes);
  KILN_CHECK(back.ok()) << back.status();
  return *back;
}

template <typename T>
Status DecodeError(std::string_view hex, const DecodeLimits& limits = DecodeLimits()) {
  return DecodeAll<T>(Bytes(hex), limits).status();
}

// --- Primitives ------------------------------------------------------------------------------

TEST(PrimitiveCodecTest, IntegersAreLittleEndian) {
  ExpectGolden<uint16_t>(0x1234, "34 12");
  ExpectGolden<int16_t>(-2, "fe ff");
  ExpectGolden<uint32_t>(0xDEADBEEF, "ef be ad de");
  ExpectGolden<int32_t>(-1, "ff ff ff ff");
  ExpectGolden<uint64_t>(0x0102030405060708, "08 07 06 05 04 03 02 01");
  ExpectGolden<int64_t>(std::numeric_limits<int64_t>::min(), "00 00 00 00 00 00 00 80");
  ExpectGolden<int8_t>(-128, "80");
  ExpectGolden<uint8_t>(255, "ff");
}

TEST(PrimitiveCodecTest, FloatsAreIeeeLittleEndian) {
  ExpectGolden<double>(1.5, "00 00 00 00 00 00 f8 3f");
  ExpectGolden<float>(1.5f, "00 00 c0 3f");
  EXPECT_TRUE(std::isnan(RoundTrip(std::numeric_limits<double>::quiet_NaN())));
  EXPECT_EQ(RoundTrip(-std::numeric_limits<float>::infinity()),
            -std::numeric_limits<float>::infinity());
}

TEST(PrimitiveCodecTest, BooleanDecodesAnyNonZeroByteAsTrue) {
  ExpectGolden(true, "01");
  ExpectGolden(false, "00");
  EXPECT_THAT(DecodeAll<bool>(Bytes("02")), IsOkAndHolds(true));
}

TEST(PrimitiveCodecTest, TruncatedValueNamesTypeAndOffset) {
  EXPECT_THAT(DecodeError<uint32_t>("01 02"),
              StatusIs(StatusCode::kInvalidArgument,
                       Eq("offset 0: truncated UInt32: need 4 bytes, 2 left")));
}

TEST(PrimitiveCodecTest, TrailingBytesAreAnError) {
  EXPECT_THAT(DecodeError<uint16_t>("01 02 03"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("offset 2: 1 trailing bytes")));
}

// --- Strings ---------------------------------------------------------------------------------

TEST(StringCodecTest, NullAndEmptyStringsDiffer) {
  ExpectGolden(UaString(), "ff ff ff ff");
  ExpectGolden(UaString(""), "00 00 00 00");
  ExpectGolden(UaString("abc"), "03 00 00 00 61 62 63");
  EXPECT_NE(RoundTrip(UaString("")), UaString());
}

TEST(StringCodecTest, AnyNegativeLengthIsNull) {
  EXPECT_THAT(DecodeAll<UaString>(Bytes("fe ff ff ff")), IsOkAndHolds(Eq(UaString())));
  EXPECT_THAT(DecodeAll<ByteString>(Bytes("00 00 00 80")), IsOkAndHolds(Eq(ByteString())));
}

TEST(StringCodecTest, LengthBeyondTheBytesLeftIsRefused) {
  EXPECT_THAT(DecodeError<UaString>("05 00 00 00 61 62"),
              StatusIs(StatusCode::kInvalidArgument,
                       Eq("offset 4: String length 5 exceeds the 2 bytes left")));
  // A huge length must fail before anything is allocated.
  EXPECT_THAT(DecodeError<ByteString>("ff ff ff 7f"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("exceeds the limit")));
}

TEST(StringCodecTest, LengthBeyondTheLimitIsRefused) {
  DecodeLimits limits;
  limits.max_string_length = 2;
  EXPECT_THAT(DecodeError<UaString>("03 00 00 00 61 62 63", limits),
              StatusIs(StatusCode::kInvalidArgument,
                       Eq("offset 4: String length 3 exceeds the limit of 2")));
  EXPECT_THAT(DecodeAll<UaString>(Bytes("02 00 00 00 61 62"), limits), IsOk());
}

TEST(StringCodecTest, ByteStringAndXmlElement) {
  ExpectGolden(ByteString(), "ff ff ff ff");
  ExpectGolden(ByteString(std::vector<uint8_t>{}), "00 00 00 00");
  ExpectGolden(ByteString(std::vector<uint8_t>{0xDE, 0xAD}), "02 00 00 00 de ad");
  ExpectGolden(XmlElement{"<a/>"}, "04 00 00 00 \"<a/>\"");
  ExpectGolden(XmlElement{}, "ff ff ff ff");
}

// --- Guid, DateTime, StatusCode --------------------------------------------------------------

TEST(GuidCodecTest, MatchesTheSpecificationLayout) {
  // OPC 10000-6 §5.2.2.7: Data1..3 little-endian, Data4 as it is.
  Result<Guid> g = Guid::Parse("72962B91-FA75-4AE6-8D28-B404DC7DAF63");
  ASSERT_THAT(g, IsOk());
  ExpectGolden(*g, "91 2b 96 72 75 fa e6 4a 8d 28 b4 04 dc 7d af 63");
  EXPECT_EQ(g->ToString(), "72962B91-FA75-4AE6-8D28-B404DC7DAF63");
}

TEST(DateTimeCodecTest, MinAndMaxRoundTrip) {
  ExpectGolden(DateTime{0}, "00 00 00 00 00 00 00 00");
  ExpectGolden(DateTime{DateTime::kMaxTicks}, "ff ff ff ff ff ff ff 7f");
  ExpectGolden(DateTime{DateTime::kUnixEpochTicks}, "00 80 3e d5 de b1 9d 01");
}

TEST(StatusCodeCodecTest, IsAUInt32) {
  ExpectGolden(contract::status::kBadNodeIdUnknown, "00 00 34 80");
  ExpectGolden(Quality(0x408F0000), "00 00 8f 40");
}

// --- NodeId ----------------------------------------------------------------------------------

TEST(NodeIdCodecTest, GoldenForms) {
  // PROTOCOLS.md A2.5.
  ExpectGolden(NodeId(0, 85), "00 55");
  ExpectGolden(NodeId(0, 2258), "01 00 d2 08");
  ExpectGolden(NodeId(1, 70000), "02 01 00 70 11 01 00");
  ExpectGolden(NodeId(1, "Counter"), "03 01 00 07 00 00 00 43 6f 75 6e 74 65 72");
}

TEST(NodeIdCodecTest, EncoderPicksTheSmallestNumericForm) {
  ExpectGolden(NodeId(), "00 00");                         // the null NodeId
  ExpectGolden(NodeId(0, 255), "00 ff");                   // TwoByte up to 255
  ExpectGolden(NodeId(0, 256), "01 00 00 01");             // then FourByte
  ExpectGolden(NodeId(1, 5), "01 01 05 00");               // ns != 0: FourByte
  ExpectGolden(NodeId(255, 65535), "01 ff ff ff");         // FourByte limits
  ExpectGolden(NodeId(256, 1), "02 00 01 01 00 00 00");    // ns > 255: Numeric
  ExpectGolden(NodeId(1, 65536), "02 01 00 00 00 01 00");  // id > 65535: Numeric
}

TEST(NodeIdCodecTest, DecodesLargerFormsThanNeeded) {
  EXPECT_THAT(DecodeAll<NodeId>(Bytes("02 00 00 55 00 00 00")), IsOkAndHolds(Eq(NodeId(0, 85))));
  EXPECT_THAT(DecodeAll<NodeId>(Bytes("01 00 55 00")), IsOkAndHolds(Eq(NodeId(0, 85))));
}

TEST(NodeIdCodecTest, GuidAndOpaqueForms) {
  const Guid g = *Guid::Parse("72962B91-FA75-4AE6-8D28-B404DC7DAF63");
  ExpectGolden(NodeId(2, g), "04 02 00 91 2b 96 72 75 fa e6 4a 8d 28 b4 04 dc 7d af 63");
  // A session authentication token as node-opcua sends it: ByteString, 16 bytes.
  std::vector<uint8_t> token(16);
  for (size_t i = 0; i < token.size(); ++i) token[i] = static_cast<uint8_t>(i * 17);
  const NodeId opaque = NodeId::Opaque(0, token);
  ExpectGolden(opaque, "05 00 00 10 00 00 00 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff");
  EXPECT_EQ(opaque.type(), IdType::kOpaque);
}

TEST(NodeIdCodecTest, NullStringIdentifierDecodesAsEmpty) {
  EXPECT_THAT(DecodeAll<NodeId>(Bytes("03 01 00 ff ff ff ff")),
              IsOkAndHolds(Eq(NodeId(1, std::string()))));
}

TEST(NodeIdCodecTest, RefusesUnknownFormsAndExpandedFlags) {
  EXPECT_THAT(
      DecodeError<NodeId>("06 00"),
      StatusIs(StatusCode::kInvalidArgument, Eq("offset 1: unknown NodeId encoding byte 0x06")));
  EXPECT_THAT(DecodeError<NodeId>("80 55"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("has ExpandedNodeId flags")));
  EXPECT_THAT(DecodeError<NodeId>("03 01 00 09 00 00 00 41"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("NodeId string identifier")));
}

TEST(ExpandedNodeIdCodecTest, NamespaceUriAndServerIndexFlags) {
  ExpandedNodeId e(NodeId(0, 85));
  ExpectGolden(e, "00 55");
  e.namespace_uri = "urn:a";
  e.server_index = 2;
  ExpectGolden(e, "c0 55 05 00 00 00 \"urn:a\" 02 00 00 00");
  ExpandedNodeId s(NodeId(3, "x"));
  s.server_index = 1;
  ExpectGolden(s, "43 03 00 01 00 00 00 78 01 00 00 00");
  EXPECT_EQ(e.ToString(), "svr=2;nsu=urn:a;i=85");
}

// --- QualifiedName, LocalizedText, ExtensionObject -------------------------------------------

TEST(QualifiedNameCodecTest, NamespaceAndName) {
  ExpectGolden(QualifiedName{1, "Counter"}, "01 00 07 00 00 00 \"Counter\"");
  ExpectGolden(QualifiedName{}, "00 00 ff ff ff ff");  // as in ReadValueId.dataEncoding
}

TEST(LocalizedTextCodecTest, MaskSaysWhichFieldsFollow) {
  ExpectGolden(LocalizedText{}, "00");
  ExpectGolden(LocalizedText{"en", std::nullopt}, "01 02 00 00 00 \"en\"");
  ExpectGolden(LocalizedText{std::nullopt, "Hi"}, "02 02 00 00 00 \"Hi\"");
  ExpectGolden(LocalizedText{"en", "Hi"}, "03 02 00 00 00 \"en\" 02 00 00 00 \"Hi\"");
  ExpectGolden(LocalizedText{"", ""}, "03 00 00 00 00 00 00 00 00");
  EXPECT_THAT(DecodeError<LocalizedText>("04"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("mask 0x04 has unknown bits")));
}

TEST(ExtensionObjectCodecTest, BodiesStayOpaque) {
  ExpectGolden(ExtensionObject{}, "00 00 00");
  // PROTOCOLS.md A2.7: the AnonymousIdentityToken of ActivateSession.
  ExtensionObject anonymous;
  anonymous.type_id = NodeId(0, 321);
  anonymous.encoding = ExtensionObject::Encoding::kByteString;
  anonymous.body = Bytes("09 00 00 00 \"anonymous\"");
  ExpectGolden(anonymous, "01 00 41 01 01 0d 00 00 00 09 00 00 00 61 6e 6f 6e 79 6d 6f 75 73");
  ExtensionObject xml;
  xml.type_id = NodeId(2, 5000);
  xml.encoding = ExtensionObject::Encoding::kXml;
  xml.body = Bytes("\"<x/>\"");
  EXPECT_EQ(RoundTrip(xml), xml);
}

TEST(ExtensionObjectCodecTest, RefusesUnknownEncodingAndShortBody) {
  EXPECT_THAT(DecodeError<ExtensionObject>("00 00 03"),
              StatusIs(StatusCode::kInvalidArgument,
                       Eq("offset 3: ExtensionObject encoding byte 0x03 is not 0, 1 or 2")));
  EXPECT_THAT(DecodeError<ExtensionObject>("00 00 01 04 00 00 00 01"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("ExtensionObject body length 4")));
  // A null body decodes as empty.
  EXPECT_THAT(DecodeAll<ExtensionObject>(Bytes("00 00 01 ff ff ff ff")), IsOk());
}

// --- Variant ---------------------------------------------------------------------------------

TEST(VariantCodecTest, Goldens) {
  ExpectGolden(Variant(), "00");
  ExpectGolden(Variant::Scalar(1.5), "0b 00 00 00 00 00 00 f8 3f");
  ExpectGolden(Variant::Array(BuiltinType::kInt32, {int32_t{1}, int32_t{2}}),
               "86 02 00 00 00 01 00 00 00 02 00 00 00");
}

// One value of every built-in type.
std::vector<VariantValue> OneOfEachType() {
  DataValue dv;
  dv.value = Variant::Scalar(int16_t{-3});
  dv.status = contract::status::kUncertainLastUsableValue;
  DiagnosticInfo di;
  di.symbolic_id = 7;
  ExtensionObject eo;
  eo.type_id = NodeId(0, 811);
  eo.encoding = ExtensionObject::Encoding::kByteString;
  eo.body = {1, 2, 3};
  return {
      true,
      int8_t{-1},
      uint8_t{200},
      int16_t{-300},
      uint16_t{60000},
      int32_t{-70000},
      uint32_t{4000000000u},
      int64_t{-5000000000},
      uint64_t{18000000000000000000u},
      2.5f,
      -0.125,
      UaString("text"),
      DateTime{DateTime::kUnixEpochTicks + 10},
      *Guid::Parse("00000001-0002-0003-0405-060708090A0B"),
      ByteString(std::vector<uint8_t>{9, 8}),
      XmlElement{"<v/>"},
      NodeId(4, "Tag"),
      Boxed<ExpandedNodeId>(ExpandedNodeId(NodeId(0, 2253))),
      contract::status::kBadSensorFailure,
      QualifiedName{2, "Name"},
      Boxed<LocalizedText>(LocalizedText{"de", "Hallo"}),
      Boxed<ExtensionObject>(eo),
      Boxed<DataValue>(dv),
      Boxed<DiagnosticInfo>(di),
  };
}

TEST(VariantCodecTest, EveryBuiltinTypeRoundTripsAsScalarAndArray) {
  for (const VariantValue& value : OneOfEachType()) {
    const Variant scalar = Variant::Scalar(value);
    SCOPED_TRACE(BuiltinTypeName(scalar.type));
    EXPECT_EQ(RoundTrip(scalar), scalar);
    const Variant array = Variant::Array(scalar.type, {value, value, value});
    EXPECT_EQ(RoundTrip(array), array);
    EXPECT_EQ(RoundTrip(Variant::Array(scalar.type, {})), Variant::Array(scalar.type, {}));
  }
}

TEST(VariantCodecTest, GetIfUnboxes) {
  const Variant text = Variant::Scalar(Boxed<LocalizedText>(LocalizedText{"en", "x"}));
  ASSERT_NE(text.get_if<LocalizedText>(), nullptr);
  EXPECT_EQ(text.get_if<LocalizedText>()->text, "x");
  EXPECT_EQ(text.get_if<double>(), nullptr);
  EXPECT_EQ(*Variant::Scalar(7.0).get_if<double>(), 7.0);
}

TEST(VariantCodecTest, MultiDimensionalArrayKeepsItsDimensions) {
  std::vector<VariantValue> six;
  for (int i = 0; i < 6; ++i) six.emplace_back(std::in_place_index<11>, double(i));
  const Variant matrix = Variant::Array(BuiltinType::kDouble, six, {2, 3});
  Result<std::vector<uint8_t>> bytes = EncodeToBytes(matrix);
  ASSERT_THAT(bytes, IsOk());
  EXPECT_EQ((*bytes)[0], 0xCB);  // Double | dimensions | array
  // The dimensions follow the elements: Int32 count 2, then 2 and 3.
  EXPECT_EQ(Hex(std::vector<uint8_t>(bytes->end() - 12, bytes->end())),
            "02 00 00 00 02 00 00 00 03 00 00 00");
  EXPECT_EQ(RoundTrip(matrix), matrix);
  // A zero dimension goes with an empty array.
  EXPECT_EQ(RoundTrip(Variant::Array(BuiltinType::kDouble, {}, {0, 3})),
            Variant::Array(BuiltinType::kDouble, {}, {0, 3}));
}

TEST(VariantCodecTest, RefusesDimensionsThatDoNotMatchTheLength) {
  // Int32[1, 2] with dimensions [2, 2].
  EXPECT_THAT(DecodeError<Variant>("c6 02 00 00 00 01 00 00 00 02 00 00 00 "
                                   "02 00 00 00 02 00 00 00 02 00 00 00"),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("ArrayDimensions (2 dimensions) describe 4 elements but the "
                                 "array has 2")));
  EXPECT_THAT(EncodeToBytes(Variant::Array(BuiltinType::kInt32, {int32_t{1}}, {2, 2})).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("ArrayDimensions")));
  // Huge dimensions must not overflow the product.
  EXPECT_THAT(DecodeError<Variant>("c6 00 00 00 00 02 00 00 00 ff ff ff 7f ff ff ff 7f"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("ArrayDimensions")));
}

TEST(VariantCodecTest, RefusesMalformedMasks) {
  EXPECT_THAT(DecodeError<Variant>("80 00 00 00 00"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("has flags but no type")));
  EXPECT_THAT(DecodeError<Variant>("46 01 00 00 00"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("ArrayDimensions but no array")));
  EXPECT_THAT(DecodeError<Variant>("18 00"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("cannot hold a scalar Variant")));
  EXPECT_THAT(DecodeError<Variant>("28"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("type id 40 is not a built-in")));
}

TEST(VariantCodecTest, ReservedTypeIdsDecodeAsByteStringButDoNotEncode) {
  Result<Variant> v = DecodeAll<Variant>(Bytes("1a 02 00 00 00 aa bb"));
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(static_cast<int>(v->type), 26);
  ASSERT_NE(v->get_if<ByteString>(), nullptr);
  EXPECT_EQ(**v->get_if<ByteString>(), (std::vector<uint8_t>{0xAA, 0xBB}));
  EXPECT_THAT(EncodeToBytes(*v).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("type id 26 is reserved")));
  EXPECT_THAT(DecodeAll<Variant>(Bytes("9f 01 00 00 00 ff ff ff ff")), IsOk());
}

TEST(VariantCodecTest, EncoderRefusesValuesThatDoNotMatchTheType) {
  Variant wrong = Variant::Scalar(1.5);
  wrong.type = BuiltinType::kInt32;
  EXPECT_THAT(EncodeToBytes(wrong).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("Int32 holds a Double")));
  EXPECT_THAT(EncodeToBytes(Variant::Array(BuiltinType::kInt32, {int32_t{1}, 2.0})).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("element 1")));
  EXPECT_THAT(EncodeToBytes(Variant::Array(BuiltinType::kNull, {})).status(),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST(VariantCodecTest, NestedArraysOfVariants) {
  const Variant inner = Variant::Array(BuiltinType::kString, {UaString("a"), UaString()});
  const Variant outer = Variant::Array(
      BuiltinType::kVariant,
      {Boxed<Variant>(Variant::Scalar(uint8_t{1})), Boxed<Variant>(inner), Boxed<Variant>()});
  ExpectGolden(outer, "98 03 00 00 00 | 03 01 | 8c 02 00 00 00 01 00 00 00 61 ff ff ff ff | 00");
}

std::string NestedVariantArrays(int levels) {
  std::string hex;
  for (int i = 0; i < levels; ++i) hex += "98 01 00 00 00 ";
  return hex + "00";
}

TEST(VariantCodecTest, NestingIsBounded) {
  DecodeLimits limits;
  limits.max_depth = 8;
  EXPECT_THAT(DecodeAll<Variant>(Bytes(NestedVariantArrays(7)), limits), IsOk());
  EXPECT_THAT(DecodeError<Variant>(NestedVariantArrays(9), limits),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("nesting deeper than 8 levels")));
  // The default limit holds against a deep input too, without exhausting the stack.
  EXPECT_THAT(DecodeError<Variant>(NestedVariantArrays(5000)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("nesting deeper than 32")));
}

// --- Arrays ----------------------------------------------------------------------------------

TEST(ArrayCodecTest, NullArrayDecodesAsEmpty) {
  const std::vector<uint8_t> bytes = Bytes("ff ff ff ff 00 00 00 00");
  Reader r(bytes);
  EXPECT_THAT(r.ReadArray<uint32_t>(), IsEmpty());
  EXPECT_THAT(r.ReadArray<uint32_t>(), IsEmpty());
  EXPECT_THAT(r.Finish(), IsOk());
}

TEST(ArrayCodecTest, CountIsBoundedByTheBytesLeftAndTheLimits) {
  const std::vector<uint8_t> bytes = Bytes("03 00 00 00 01 00 00 00 02 00 00 00");
  Reader r(bytes);
  EXPECT_THAT(r.ReadArray<uint32_t>(), IsEmpty());
  EXPECT_THAT(r.status(), StatusIs(StatusCode::kInvalidArgument,
                                   Eq("offset 4: array length 3 needs at least 12 bytes, 8 left")));

  DecodeLimits limits;
  limits.max_array_length = 1;
  const std::vector<uint8_t> two = Bytes("02 00 00 00 01 02");
  Reader limited(two, limits);
  EXPECT_THAT(limited.ReadArray<uint8_t>(), IsEmpty());
  EXPECT_THAT(limited.status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("exceeds the limit of 1")));
}

TEST(ArrayCodecTest, ArrayMemoryIsBudgetedAcrossArrays) {
  // 1-byte DataValues take far more memory than wire bytes; the budget caps the total.
  DecodeLimits limits;
  limits.max_array_memory = 100 * sizeof(DataValue);
  std::vector<uint8_t> bytes = Bytes("3c 00 00 00");  // 60 DataValues
  bytes.resize(bytes.size() + 60, 0);
  const std::vector<uint8_t> once = bytes;
  bytes.insert(bytes.end(), once.begin(), once.end());  // twice
  Reader r(bytes, limits);
  EXPECT_EQ(r.ReadArray<DataValue>().size(), 60u);
  EXPECT_THAT(r.ReadArray<DataValue>(), IsEmpty());
  EXPECT_THAT(r.status(), StatusIs(StatusCode::kInvalidArgument, HasSubstr("bytes of memory")));
}

// --- DataValue -------------------------------------------------------------------------------

TEST(DataValueCodecTest, StatusOnlyGoldenFromNodeOpcua) {
  // PROTOCOLS.md A2.5: an unknown node reads as `02 00 00 34 80`.
  DataValue dv;
  dv.status = contract::status::kBadNodeIdUnknown;
  ExpectGolden(dv, "02 00 00 34 80");
  EXPECT_TRUE(RoundTrip(dv).quality().IsBad());
  EXPECT_EQ(DataValue().quality(), contract::status::kGood);
}

TEST(DataValueCodecTest, GoodValueAsNodeOpcuaSendsIt) {
  // Mask 0x3D: value, both timestamps, both picoseconds; wire order puts SourcePicoseconds
  // before ServerTimestamp.
  DataValue dv;
  dv.value = Variant::Scalar(1.5);
  dv.source_timestamp = DateTime{0x01D9000000000001};
  dv.source_picoseconds = 0x0102;
  dv.server_timestamp = DateTime{0x01D9000000000002};
  dv.server_picoseconds = 0x0304;
  EXPECT_EQ(dv.EncodingMask(), 0x3D);
  ExpectGolden(dv,
               "3d | 0b 00 00 00 00 00 00 f8 3f | 01 00 00 00 00 00 d9 01 | 02 01 | "
               "02 00 00 00 00 00 d9 01 | 04 03");
  dv.status = contract::status::kUncertainLastUsableValue;
  EXPECT_EQ(dv.EncodingMask(), 0x3F);
  EXPECT_EQ(RoundTrip(dv), dv);
}

TEST(DataValueCodecTest, EveryMaskRoundTrips) {
  for (int mask = 0; mask < 64; ++mask) {
    DataValue dv;
    if (mask & 0x01) dv.value = Variant::Scalar(UaString("v"));
    if (mask & 0x02) dv.status = contract::status::kBadSensorFailure;
    if (mask & 0x04) dv.source_timestamp = DateTime{12345};
    if (mask & 0x08) dv.server_timestamp = DateTime{67890};
    if (mask & 0x10) dv.source_picoseconds = 9999;
    if (mask & 0x20) dv.server_picoseconds = 1;
    ASSERT_EQ(dv.EncodingMask(), mask);
    Result<std::vector<uint8_t>> bytes = EncodeToBytes(dv);
    ASSERT_THAT(bytes, IsOk());
    EXPECT_EQ((*bytes)[0], mask);
    EXPECT_EQ(RoundTrip(dv), dv) << "mask " << mask;
  }
  // A value that is present but null differs from an absent one.
  DataValue null_value;
  null_value.value = Variant();
  ExpectGolden(null_value, "01 00");
}

TEST(DataValueCodecTest, RefusesUnknownMaskBits) {
  EXPECT_THAT(DecodeError<DataValue>("40"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("mask 0x40 has unknown bits")));
}

// --- DiagnosticInfo --------------------------------------------------------------------------

TEST(DiagnosticInfoCodecTest, LocaleComesBeforeLocalizedText) {
  DiagnosticInfo d;
  d.localized_text = 2;
  d.locale = 1;
  ExpectGolden(d, "0c 01 00 00 00 02 00 00 00");
}

TEST(DiagnosticInfoCodecTest, AllFieldsAndInnerInfosRoundTrip) {
  DiagnosticInfo innermost;
  innermost.additional_info = "";
  DiagnosticInfo inner;
  inner.inner_status_code = contract::status::kBadTimeout;
  inner.inner_diagnostic_info = innermost;
  DiagnosticInfo d;
  d.symbolic_id = 1;
  d.namespace_uri = 2;
  d.localized_text = 3;
  d.locale = 4;
  d.additional_info = "why";
  d.inner_status_code = contract::status::kBadInternalError;
  d.inner_diagnostic_info = inner;
  EXPECT_EQ(d.EncodingMask(), 0x7F);
  ExpectGolden(d,
               "7f 01 00 00 00 02 00 00 00 04 00 00 00 03 00 00 00 03 00 00 00 \"why\" "
               "00 00 02 80 | 60 00 00 0a 80 | 10 00 00 00 00");
}

TEST(DiagnosticInfoCodecTest, NestingIsBounded) {
  std::string hex;
  for (int i = 0; i < 40; ++i) hex += "40 ";
  hex += "00";
  EXPECT_THAT(DecodeError<DiagnosticInfo>(hex),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("nesting deeper than 32")));
  EXPECT_THAT(DecodeError<DiagnosticInfo>("80"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unknown bits")));
}

// --- Robustness ------------------------------------------------------------------------------

TEST(RobustnessTest, EveryTruncationOfAComplexValueFailsCleanly) {
  DataValue dv;
  std::vector<VariantValue> all = OneOfEachType();
  std::vector<VariantValue> boxed;
  for (VariantValue& v : all) boxed.emplace_back(Boxed<Variant>(Variant::Scalar(std::move(v))));
  dv.value = Variant::Array(BuiltinType::kVariant, std::move(boxed));
  dv.status = contract::status::kBadOutOfService;
  dv.server_timestamp = DateTime{1};
  Result<std::vector<uint8_t>> bytes = EncodeToBytes(dv);
  ASSERT_THAT(bytes, IsOk());
  for (size_t n = 0; n < bytes->size(); ++n) {
    std::vector<uint8_t> prefix(bytes->begin(), bytes->begin() + static_cast<ptrdiff_t>(n));
    EXPECT_THAT(DecodeAll<DataValue>(prefix).status(), StatusIs(StatusCode::kInvalidArgument))
        << "prefix of " << n << " bytes";
  }
  EXPECT_THAT(DecodeAll<DataValue>(*bytes), IsOkAndHolds(Eq(dv)));
}

TEST(RobustnessTest, NestedReaderReportsAbsoluteOffsets) {
  const std::vector<uint8_t> bytes = Bytes("00 00 00 00 01 02");
  Reader outer(bytes);
  outer.ReadUInt32();
  Reader inner = outer.Nested(std::span<const uint8_t>(bytes).subspan(4), outer.offset());
  inner.ReadUInt32();
  EXPECT_THAT(inner.status(), StatusIs(StatusCode::kInvalidArgument,
                                       Eq("offset 4: truncated UInt32: need 4 bytes, 2 left")));
  EXPECT_EQ(inner.depth(), 1u);
}

}  // namespace
}  // namespace kiln::drivers::opcua
