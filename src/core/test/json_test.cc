#include "core/json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "testing/status_matchers.h"

namespace kiln::json {
namespace {

using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using ::testing::HasSubstr;

std::string Quoted(std::string_view s) {
  std::string out;
  Writer(out).String(s);
  return out;
}

std::string NumberText(double v) {
  std::string out;
  Writer(out).Number(v);
  return out;
}

// The error message of parsing `text` ("" when it parsed).
std::string ParseError(std::string_view text) {
  Result<Value> r = Parse(text);
  return r.ok() ? "" : r.status().message();
}

TEST(JsonWriterTest, InsertsCommasAndColons) {
  std::string out;
  Writer w(out);
  w.BeginObject()
      .Key("a")
      .Int(1)
      .Key("b")
      .BeginArray()
      .Bool(true)
      .Null()
      .BeginObject()
      .EndObject()
      .BeginArray()
      .EndArray()
      .String("x")
      .EndArray()
      .Key("c")
      .Raw("{\"pre\":[1,2]}")
      .Key("d")
      .Uint(18446744073709551615u)
      .Key("e")
      .Int(std::numeric_limits<int64_t>::min())
      .EndObject();
  EXPECT_EQ(out,
            "{\"a\":1,\"b\":[true,null,{},[],\"x\"],\"c\":{\"pre\":[1,2]},"
            "\"d\":18446744073709551615,\"e\":-9223372036854775808}");
  EXPECT_TRUE(w.complete());
}

TEST(JsonWriterTest, AppendsToExistingContent) {
  std::string out = "data: ";
  Writer(out).BeginArray().Int(1).EndArray();
  EXPECT_EQ(out, "data: [1]");
}

TEST(JsonWriterTest, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(Quoted("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(Quoted("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(Quoted(std::string_view("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\x7f\"");
  EXPECT_EQ(Quoted("</script>"), "\"</script>\"");
  EXPECT_EQ(Quoted(""), "\"\"");
}

TEST(JsonWriterTest, PassesValidUtf8Through) {
  // 2-, 3- and 4-byte sequences, including the largest code point and U+FFFF.
  const std::string s = "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\xA5 \xF4\x8F\xBF\xBF \xEF\xBF\xBF";
  EXPECT_EQ(Quoted(s), "\"" + s + "\"");
}

TEST(JsonWriterTest, ReplacesEachMaximalInvalidUtf8SubpartByOneReplacementCharacter) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(Quoted("a\x80z"), "\"a" + r + "z\"");          // Stray continuation byte.
  EXPECT_EQ(Quoted("a\xFFz"), "\"a" + r + "z\"");          // Never valid.
  EXPECT_EQ(Quoted("a\xC0\xAFz"), "\"a" + r + r + "z\"");  // Overlong '/': C0 is never valid.
  EXPECT_EQ(Quoted("a\xE0\x80\xAFz"), "\"a" + r + r + r + "z\"");  // Overlong 3-byte form.
  EXPECT_EQ(Quoted("a\xE2\x82z"), "\"a" + r + "z\"");              // Truncated 3-byte sequence.
  EXPECT_EQ(Quoted("a\xED\xA0\x80z"), "\"a" + r + r + r + "z\"");  // Surrogate U+D800.
  EXPECT_EQ(Quoted("a\xF4\x90\x80\x80z"), "\"a" + r + r + r + r + "z\"");  // > U+10FFFF.
  EXPECT_EQ(Quoted("\xF0\x9F\x94"), "\"" + r + "\"");                      // Truncated at the end.
}

TEST(JsonWriterTest, WritesShortestRoundTrippingNumbers) {
  EXPECT_EQ(NumberText(0.1), "0.1");
  EXPECT_EQ(NumberText(1.5), "1.5");
  EXPECT_EQ(NumberText(3), "3");
  EXPECT_EQ(NumberText(-0.0), "-0");
  EXPECT_EQ(NumberText(1e100), "1e+100");
  EXPECT_EQ(NumberText(5e-324), "5e-324");
  EXPECT_EQ(NumberText(std::numeric_limits<double>::quiet_NaN()), "null");
  EXPECT_EQ(NumberText(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(NumberText(-std::numeric_limits<double>::infinity()), "null");
  std::string out;
  Writer(out).BeginArray().Number(NAN).Number(2).EndArray();
  EXPECT_EQ(out, "[null,2]");
}

TEST(JsonWriterTest, DoublesRoundTripThroughParse) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) {
    const uint64_t bits = rng();
    double v;
    std::memcpy(&v, &bits, sizeof(v));
    if (!std::isfinite(v)) continue;
    const std::string text = NumberText(v);
    Result<Value> parsed = Parse(text);
    ASSERT_THAT(parsed, IsOk()) << text;
    const double back = *parsed->AsDouble();
    EXPECT_EQ(std::memcmp(&back, &v, sizeof(v)), 0) << text;
  }
  for (double v : {0.1, 1.0 / 3, 123456789.123456789, 1.7976931348623157e308,
                   2.2250738585072014e-308, 4.9e-324, -2.5}) {
    EXPECT_EQ(*Parse(NumberText(v))->AsDouble(), v);
  }
}

TEST(JsonParseTest, ParsesEveryKind) {
  Result<Value> r = Parse(R"( {"n": null, "t": true, "f": false, "i": -42, "d": 2.5,
      "s": "h\u00e9llo", "a": [1, [2], {}], "o": {"k": "v"}} )");
  ASSERT_THAT(r, IsOk());
  const Value& v = *r;
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v.size(), 8u);
  EXPECT_TRUE(v.Find("n")->is_null());
  EXPECT_EQ(v.Find("t")->AsBool(), true);
  EXPECT_EQ(v.Find("f")->AsBool(), false);
  EXPECT_EQ(v.Find("i")->AsInt64(), -42);
  EXPECT_EQ(v.Find("i")->AsDouble(), -42.0);
  EXPECT_EQ(v.Find("d")->AsDouble(), 2.5);
  EXPECT_EQ(v.Find("d")->AsInt64(), std::nullopt);
  EXPECT_EQ(v.Find("s")->AsString(), "h\xC3\xA9llo");
  const Value& a = *v.Find("a");
  ASSERT_TRUE(a.is_array());
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].AsInt64(), 1);
  EXPECT_EQ(a[1][0].AsInt64(), 2);
  EXPECT_TRUE(a[2].is_object());
  EXPECT_EQ(a[2].size(), 0u);
  EXPECT_EQ(v.Find("o")->Find("k")->AsString(), "v");
  EXPECT_EQ(v.Find("missing"), nullptr);
  EXPECT_EQ(v.items()[0].first, "n");  // Document order.
  EXPECT_EQ(v.items()[7].first, "o");
  EXPECT_EQ(v.Find("t")->kind(), Kind::kBool);
  EXPECT_EQ(KindName(v.Find("a")->kind()), "array");
}

TEST(JsonParseTest, WrongKindAccessorsAreEmptyNotCrashes) {
  Result<Value> r = Parse(R"({"a": "x", "b": [1]})");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->AsBool(), std::nullopt);
  EXPECT_EQ(r->AsDouble(), std::nullopt);
  EXPECT_EQ(r->Find("a")->AsInt64(), std::nullopt);
  EXPECT_EQ(r->Find("a")->AsString(), "x");
  EXPECT_EQ(r->Find("a")->Find("x"), nullptr);  // Not an object.
  EXPECT_TRUE((*r)[0].is_null());               // Not an array.
  EXPECT_TRUE((*r->Find("b"))[5].is_null());    // Out of range.
  EXPECT_TRUE(r->Find("b")->items().empty());
  EXPECT_TRUE(r->elements().empty());
  EXPECT_TRUE(Value().is_null());
}

TEST(JsonParseTest, DuplicateKeysAreKeptAndFindAnswersTheLast) {
  Result<Value> r = Parse(R"({"k": 1, "k": 2})");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->size(), 2u);
  EXPECT_EQ(r->Find("k")->AsInt64(), 2);
}

TEST(JsonParseTest, KeepsIntegersExactAndKnowsIntegralDoubles) {
  EXPECT_EQ(Parse("9007199254740993")->AsInt64(), 9007199254740993);  // 2^53 + 1.
  EXPECT_EQ(Parse("9223372036854775807")->AsInt64(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(Parse("-9223372036854775808")->AsInt64(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(Parse("9223372036854775808")->AsInt64(), std::nullopt);  // 2^63: out of range.
  EXPECT_EQ(Parse("9223372036854775808")->AsDouble(), 9223372036854775808.0);
  EXPECT_EQ(Parse("2.0")->AsInt64(), 2);
  EXPECT_EQ(Parse("1e3")->AsInt64(), 1000);
  EXPECT_EQ(Parse("-0")->AsInt64(), 0);
  EXPECT_EQ(Parse("2.5")->AsInt64(), std::nullopt);
  EXPECT_EQ(Parse("1e19")->AsInt64(), std::nullopt);
  EXPECT_EQ(Parse("1E+2")->AsDouble(), 100.0);
  EXPECT_EQ(Parse("1e-2")->AsDouble(), 0.01);
  EXPECT_EQ(Parse("1e-400")->AsDouble(), 0.0);  // Underflow rounds to zero.
  EXPECT_TRUE(std::signbit(*Parse("-1e-400")->AsDouble()));
  EXPECT_EQ(Parse("0.0000000000000000000000000000000000000000000001e-300")->AsDouble(), 0.0);
}

TEST(JsonParseTest, DecodesEscapesAndSurrogatePairs) {
  EXPECT_EQ(Parse(R"("\"\\\/\b\f\n\r\t")")->AsString(), "\"\\/\b\f\n\r\t");
  EXPECT_EQ(Parse(R"("\u0041\u00e9\u20AC")")->AsString(), "A\xC3\xA9\xE2\x82\xAC");
  EXPECT_EQ(Parse(R"("\ud83d\udd25")")->AsString(), "\xF0\x9F\x94\xA5");
  EXPECT_EQ(*Parse(R"("a\u0000b")")->AsString(), std::string_view("a\0b", 3));
  // Lone surrogates cannot be UTF-8: each becomes U+FFFD; what follows is kept.
  EXPECT_EQ(Parse(R"("\ud83dx")")->AsString(), "\xEF\xBF\xBDx");
  EXPECT_EQ(Parse(R"("\udd25")")->AsString(), "\xEF\xBF\xBD");
  EXPECT_EQ(Parse(R"("\ud83d\u0041")")->AsString(),
            "\xEF\xBF\xBD"
            "A");
  // Raw UTF-8 passes through.
  EXPECT_EQ(Parse("\"\xF0\x9F\x94\xA5\"")->AsString(), "\xF0\x9F\x94\xA5");
}

TEST(JsonParseTest, RoundTripsThroughWriter) {
  const std::string text =
      R"({"a":[1,-2.5,true,false,null,"x\"y\u0001"],"b":{"c":{}},"big":9007199254740993,"e":1e+300})";
  Result<Value> r = Parse(text);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->ToJson(), text);
  EXPECT_EQ(Parse(r->ToJson())->ToJson(), text);
}

TEST(JsonParseTest, ReportsEveryErrorClassWithItsOffset) {
  EXPECT_EQ(ParseError(""), "offset 0: unexpected end of input");
  EXPECT_EQ(ParseError("   "), "offset 3: unexpected end of input");
  EXPECT_EQ(ParseError("[1, 2"), "offset 5: unexpected end of input");
  EXPECT_EQ(ParseError("{\"a\""), "offset 4: unexpected end of input");
  EXPECT_EQ(ParseError("\"abc"), "offset 4: unexpected end of input");
  EXPECT_EQ(ParseError("-"), "offset 1: unexpected end of input");
  EXPECT_EQ(ParseError("\"\\u12"), "offset 1: invalid \\u escape (expected 4 hex digits)");
  EXPECT_EQ(ParseError("{\"a\" 1}"), "offset 5: expected ':' after object key, found '1'");
  EXPECT_EQ(ParseError("{\"a\":1 \"b\":2}"), "offset 7: expected ',' or '}', found '\"'");
  EXPECT_EQ(ParseError("[1 2]"), "offset 3: expected ',' or ']', found '2'");
  EXPECT_EQ(ParseError("{1:2}"), "offset 1: expected a string key, found '1'");
  EXPECT_EQ(ParseError("{\"a\":1,}"), "offset 7: expected a string key, found '}'");
  EXPECT_EQ(ParseError("[1,]"), "offset 3: expected a value, found ']'");
  EXPECT_EQ(ParseError("[,1]"), "offset 1: expected a value, found ','");
  EXPECT_EQ(ParseError("{'a':1}"), "offset 1: expected a string key, found '''");
  EXPECT_EQ(ParseError("NaN"), "offset 0: expected a value, found 'N'");
  EXPECT_EQ(ParseError("\xEF\xBB\xBF{}"), "offset 0: expected a value, found byte 0xEF");
  EXPECT_EQ(ParseError("[tru]"), "offset 4: invalid literal, expected 'true'");
  EXPECT_EQ(ParseError("nul"), "offset 3: unexpected end of input");
  EXPECT_EQ(ParseError("[nulL]"), "offset 4: invalid literal, expected 'null'");
  EXPECT_EQ(ParseError("0123"), "offset 0: invalid number (leading zero)");
  EXPECT_EQ(ParseError("-a"), "offset 1: invalid number, expected a digit, found 'a'");
  EXPECT_EQ(ParseError("1."), "offset 2: unexpected end of input");
  EXPECT_EQ(ParseError("[1.e5]"),
            "offset 3: invalid number, expected a digit after '.', found 'e'");
  EXPECT_EQ(ParseError("[1e+]"),
            "offset 4: invalid number, expected a digit in the exponent, found ']'");
  EXPECT_EQ(ParseError("[+1]"), "offset 1: expected a value, found '+'");
  EXPECT_EQ(ParseError("[.5]"), "offset 1: expected a value, found '.'");
  EXPECT_EQ(ParseError("[1, 1e400]"), "offset 4: number out of range");
  EXPECT_EQ(ParseError("-1e99999999999999999999999"), "offset 0: number out of range");
  EXPECT_EQ(ParseError("\"a\nb\""), "offset 2: control character 0x0A in string (must be escaped)");
  EXPECT_EQ(ParseError("\"a\\xb\""), "offset 2: invalid escape in string: '\\' followed by 'x'");
  EXPECT_EQ(ParseError("\"\\u00g0\""), "offset 1: invalid \\u escape (expected 4 hex digits)");
  EXPECT_EQ(ParseError("\"ab\xC3(\""), "offset 3: invalid UTF-8 in string");
  EXPECT_EQ(ParseError("\"\xED\xA0\x80\""), "offset 1: invalid UTF-8 in string");  // Surrogate.
  EXPECT_EQ(ParseError("\"\xC0\x80\""), "offset 1: invalid UTF-8 in string");      // Overlong.
  EXPECT_EQ(ParseError("{} x"), "offset 3: unexpected 'x' after the value");
  EXPECT_EQ(ParseError("1 2"), "offset 2: unexpected '2' after the value");
  EXPECT_EQ(ParseError("[1] // comment"), "offset 4: unexpected '/' after the value");
  EXPECT_THAT(Parse("[1,]"), StatusIs(StatusCode::kInvalidArgument));
}

TEST(JsonParseTest, RejectsNestingDeeperThanTheLimit) {
  const auto nested = [](int depth) {
    return std::string(static_cast<size_t>(depth), '[') +
           std::string(static_cast<size_t>(depth), ']');
  };
  EXPECT_THAT(Parse(nested(64)), IsOk());
  EXPECT_EQ(ParseError(nested(65)), "offset 64: nesting deeper than 64");
  // Far deeper input fails the same way, without exhausting the stack.
  EXPECT_EQ(ParseError(std::string(1000000, '[')), "offset 64: nesting deeper than 64");
  std::string objects;
  for (int i = 0; i < 100; ++i) objects += "{\"a\":";
  EXPECT_EQ(ParseError(objects), "offset 320: nesting deeper than 64");
  EXPECT_THAT(Parse("[[[1]]]", {.max_depth = 2}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("offset 2: nesting deeper than 2")));
  EXPECT_THAT(Parse("[[1]]", {.max_depth = 2}), IsOk());
}

TEST(JsonParseTest, NeverCrashesOnMutatedInput) {
  // Every truncation and single-byte corruption of a valid document either parses or gives
  // InvalidArgument.
  const std::string text =
      R"({"a":[1,-2.5e3,true,false,null,"x\"y\u00e9\ud83d\udd25"],"b":{"c":{}},"d":"\u00e9"})";
  for (size_t n = 0; n <= text.size(); ++n) {
    Result<Value> r = Parse(text.substr(0, n));
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    }
  }
  for (size_t i = 0; i < text.size(); ++i) {
    for (int b : {0x00, 0x22, 0x5C, 0x7B, 0x5D, 0x80, 0xFF, 0x30}) {
      std::string t = text;
      t[i] = static_cast<char>(b);
      Result<Value> r = Parse(t);
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      }
    }
  }
}

}  // namespace
}  // namespace kiln::json
