#include "sim/address.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "testing/status_matchers.h"

namespace kiln::sim {
namespace {

using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::Eq;
using ::testing::HasSubstr;

TEST(RegisterRefTest, ParsesEveryTable) {
  EXPECT_THAT(ParseRegisterRef("holding:10"), IsOkAndHolds(Eq(RegisterRef{Table::kHolding, 10})));
  EXPECT_THAT(ParseRegisterRef("input:0"), IsOkAndHolds(Eq(RegisterRef{Table::kInput, 0})));
  EXPECT_THAT(ParseRegisterRef("coil:65535"), IsOkAndHolds(Eq(RegisterRef{Table::kCoil, 65535})));
  EXPECT_THAT(ParseRegisterRef("discrete:7"), IsOkAndHolds(Eq(RegisterRef{Table::kDiscrete, 7})));
  EXPECT_EQ(FormatRegisterRef({Table::kDiscrete, 7}), "discrete:7");
}

TEST(RegisterRefTest, RejectsBadText) {
  EXPECT_THAT(ParseRegisterRef("holding"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("'holding' is not a register")));
  EXPECT_THAT(ParseRegisterRef("hr:1"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unknown table 'hr'")));
  EXPECT_THAT(ParseRegisterRef("holding:65536"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("integer in 0..65535")));
  EXPECT_THAT(ParseRegisterRef("holding:"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseRegisterRef("holding:1x"), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseRegisterRef("holding:-1"), StatusIs(StatusCode::kInvalidArgument));
}

std::vector<Access> Runs(std::vector<uint8_t> pdu) {
  const RequestAccess access = ParseRequestAccess(pdu);
  return {access.items().begin(), access.items().end()};
}

MATCHER_P4(IsRun, table, address, count, write, "") {
  return arg.table == table && arg.address == address && arg.count == count && arg.write == write;
}

TEST(RequestAccessTest, ReadsAddressFieldsOfEachFunction) {
  // PDUs of the frames captured in PROTOCOLS.md A3.
  EXPECT_THAT(Runs({0x03, 0x00, 0x0e, 0x00, 0x02}),
              ::testing::ElementsAre(IsRun(Table::kHolding, 14u, 2u, false)));
  EXPECT_THAT(Runs({0x06, 0x00, 0x1a, 0x12, 0x34}),
              ::testing::ElementsAre(IsRun(Table::kHolding, 26u, 1u, true)));
  EXPECT_THAT(Runs({0x10, 0x00, 0x1b, 0x00, 0x02, 0x04, 0xab, 0xcd, 0x00, 0x01}),
              ::testing::ElementsAre(IsRun(Table::kHolding, 27u, 2u, true)));
  EXPECT_THAT(Runs({0x17, 0x00, 0x00, 0x00, 0x02, 0x00, 0x1d, 0x00, 0x01, 0x02, 0x00, 0x09}),
              ::testing::ElementsAre(IsRun(Table::kHolding, 0u, 2u, false),
                                     IsRun(Table::kHolding, 29u, 1u, true)));
  EXPECT_THAT(Runs({0x05, 0x00, 0x03, 0xff, 0x00}),
              ::testing::ElementsAre(IsRun(Table::kCoil, 3u, 1u, true)));
  EXPECT_THAT(Runs({0x0f, 0x00, 0x04, 0x00, 0x03, 0x01, 0x05}),
              ::testing::ElementsAre(IsRun(Table::kCoil, 4u, 3u, true)));
  EXPECT_THAT(Runs({0x01, 0x00, 0x00, 0x00, 0x08}),
              ::testing::ElementsAre(IsRun(Table::kCoil, 0u, 8u, false)));
  EXPECT_THAT(Runs({0x02, 0x00, 0x01, 0x00, 0x01}),
              ::testing::ElementsAre(IsRun(Table::kDiscrete, 1u, 1u, false)));
  EXPECT_THAT(Runs({0x04, 0x01, 0x2c, 0x00, 0x7e}),
              ::testing::ElementsAre(IsRun(Table::kInput, 300u, 126u, false)));
}

TEST(RequestAccessTest, IgnoresOtherFunctionsAndShortPdus) {
  EXPECT_THAT(Runs({0x2b, 0x0e, 0x01, 0x00, 0x00}), ::testing::IsEmpty());
  EXPECT_THAT(Runs({0x03, 0x00, 0x0e, 0x00}), ::testing::IsEmpty());
  EXPECT_THAT(Runs({0x17, 0x00, 0x00, 0x00, 0x02, 0x00}), ::testing::IsEmpty());
}

TEST(RequestAccessTest, CoversAddressesInsideTheRun) {
  const Access run{Table::kHolding, 10, 3, false};
  EXPECT_FALSE(run.Covers({Table::kHolding, 9}));
  EXPECT_TRUE(run.Covers({Table::kHolding, 10}));
  EXPECT_TRUE(run.Covers({Table::kHolding, 12}));
  EXPECT_FALSE(run.Covers({Table::kHolding, 13}));
  EXPECT_FALSE(run.Covers({Table::kInput, 10}));
}

}  // namespace
}  // namespace kiln::sim
