#include "core/status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/status_matchers.h"

namespace kiln {
namespace {

using ::kiln::testing::IsOk;
using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::Eq;
using ::testing::HasSubstr;

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  KILN_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

Status CheckEven(int x) {
  KILN_RETURN_IF_ERROR(Half(x));
  return OkStatus();
}

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, CarriesCodeAndMessage) {
  Status s = DataLossError("segment 42: crc mismatch");
  EXPECT_THAT(s, StatusIs(StatusCode::kDataLoss, HasSubstr("crc")));
  EXPECT_EQ(s.ToString(), "DATA_LOSS: segment 42: crc mismatch");
}

TEST(StatusTest, WithContextPrefixesMessage) {
  EXPECT_EQ(UnavailableError("refused").WithContext("modbus 127.0.0.1:502").message(),
            "modbus 127.0.0.1:502: refused");
  EXPECT_TRUE(OkStatus().WithContext("x").ok());
}

TEST(ResultTest, AssignOrReturnPropagates) {
  EXPECT_THAT(Quarter(8), IsOkAndHolds(Eq(2)));
  EXPECT_THAT(Quarter(6), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(CheckEven(4), IsOk());
  EXPECT_THAT(CheckEven(5), StatusIs(StatusCode::kInvalidArgument, Eq("odd")));
}

TEST(ResultTest, ValueOr) {
  EXPECT_EQ(Half(3).value_or(-1), -1);
  EXPECT_EQ(Half(4).value_or(-1), 2);
}

TEST(ResultDeathTest, ValueOfErrorAborts) { EXPECT_DEATH((void)Half(3).value(), "odd"); }

}  // namespace
}  // namespace kiln
