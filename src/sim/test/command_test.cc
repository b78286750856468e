#include "sim/command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "testing/status_matchers.h"

namespace kiln::sim {
namespace {

using contract::Value;
using contract::ValueType;
using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::Eq;
using ::testing::HasSubstr;

TEST(CommandTest, ParsesSet) {
  auto c = ParseCommand("set press-3 holding:10 42.5");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->kind, Command::Kind::kSet);
  EXPECT_EQ(c->server, "press-3");
  EXPECT_EQ(c->ref, (RegisterRef{Table::kHolding, 10}));
  EXPECT_EQ(c->value, "42.5");
}

TEST(CommandTest, ParsesFaults) {
  auto exception = ParseCommand("fault press-3 exception holding:3 2");
  ASSERT_TRUE(exception.ok()) << exception.status();
  EXPECT_EQ(exception->kind, Command::Kind::kFault);
  EXPECT_EQ(exception->fault, (Fault{FaultKind::kException, {Table::kHolding, 3}, 2}));
  for (auto [text, kind] :
       {std::pair{"freeze", FaultKind::kFreeze}, std::pair{"silent", FaultKind::kSilent},
        std::pair{"drop", FaultKind::kDrop}}) {
    auto c = ParseCommand(std::string("fault oven-1 ") + text);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->server, "oven-1");
    EXPECT_EQ(c->fault.kind, kind);
  }
}

TEST(CommandTest, ParsesClearAndQuitAndToleratesBlanks) {
  auto clear = ParseCommand("  clear\tpress-3 \r");
  ASSERT_TRUE(clear.ok()) << clear.status();
  EXPECT_EQ(clear->kind, Command::Kind::kClear);
  EXPECT_EQ(clear->server, "press-3");
  auto quit = ParseCommand("quit");
  ASSERT_TRUE(quit.ok());
  EXPECT_EQ(quit->kind, Command::Kind::kQuit);
}

TEST(CommandTest, RejectsMalformedCommandsWithAReason) {
  EXPECT_THAT(ParseCommand(""), StatusIs(StatusCode::kInvalidArgument, Eq("empty command")));
  EXPECT_THAT(ParseCommand("sett a holding:1 2"),
              StatusIs(StatusCode::kInvalidArgument,
                       Eq("unknown command 'sett' (use set, fault, clear or quit)")));
  EXPECT_THAT(ParseCommand("set press-3 holding:1"),
              StatusIs(StatusCode::kInvalidArgument, Eq("usage: set <id> <register> <value>")));
  EXPECT_THAT(ParseCommand("set press-3 hr:1 5"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unknown table 'hr'")));
  EXPECT_THAT(ParseCommand("fault press-3 melt"),
              StatusIs(StatusCode::kInvalidArgument,
                       Eq("unknown fault 'melt' (use exception, freeze, silent or drop)")));
  EXPECT_THAT(ParseCommand("fault press-3 exception holding:1 12"),
              StatusIs(StatusCode::kInvalidArgument, Eq("'12' is not an exception code (1..11)")));
  EXPECT_THAT(ParseCommand("fault press-3 exception holding:1"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("usage: fault")));
  EXPECT_THAT(ParseCommand("fault press-3 freeze now"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCommand("clear"),
              StatusIs(StatusCode::kInvalidArgument, Eq("usage: clear <id>")));
  EXPECT_THAT(ParseCommand("quit now"), StatusIs(StatusCode::kInvalidArgument, Eq("usage: quit")));
}

TEST(ValueTextTest, ParsesPerType) {
  EXPECT_THAT(ParseValueText("42.5", ValueType::kFloat), IsOkAndHolds(Eq(Value(42.5f))));
  EXPECT_THAT(ParseValueText("-1e3", ValueType::kDouble), IsOkAndHolds(Eq(Value(-1000.0))));
  EXPECT_THAT(ParseValueText("-32768", ValueType::kInt16),
              IsOkAndHolds(Eq(Value(int16_t{-32768}))));
  EXPECT_THAT(ParseValueText("0xBEEF", ValueType::kUInt16),
              IsOkAndHolds(Eq(Value(uint16_t{0xBEEF}))));
  EXPECT_THAT(ParseValueText("-123456", ValueType::kInt32),
              IsOkAndHolds(Eq(Value(int32_t{-123456}))));
  EXPECT_THAT(ParseValueText("18446744073709551615", ValueType::kUInt64),
              IsOkAndHolds(Eq(Value(uint64_t{18446744073709551615ULL}))));
  EXPECT_THAT(ParseValueText("on", ValueType::kBool), IsOkAndHolds(Eq(Value(true))));
  EXPECT_THAT(ParseValueText("0", ValueType::kBool), IsOkAndHolds(Eq(Value(false))));
  auto nan = ParseValueText("nan", ValueType::kFloat);
  ASSERT_TRUE(nan.ok());
  EXPECT_TRUE(std::isnan(*nan->get_if<float>()));
}

TEST(ValueTextTest, RejectsValuesThatDoNotFit) {
  EXPECT_THAT(ParseValueText("65536", ValueType::kUInt16),
              StatusIs(StatusCode::kInvalidArgument, Eq("'65536' is out of range for uint16")));
  EXPECT_THAT(ParseValueText("-1", ValueType::kUInt32), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseValueText("4.5", ValueType::kInt32),
              StatusIs(StatusCode::kInvalidArgument, Eq("'4.5' is not a valid int32")));
  EXPECT_THAT(ParseValueText("1e39", ValueType::kFloat),
              StatusIs(StatusCode::kInvalidArgument, Eq("'1e39' is out of range for float32")));
  EXPECT_THAT(ParseValueText("abc", ValueType::kDouble), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseValueText("yes", ValueType::kBool), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kiln::sim
