#include "contract/sparkplug/state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/status_matchers.h"

namespace kiln::sparkplug {
namespace {

using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::Eq;

TEST(HostStateTest, ParsesWhatHostsPublish) {
  EXPECT_THAT(ParseHostState(R"({"online":true,"timestamp":1700000000000})"),
              IsOkAndHolds(Eq(HostState{true, 1700000000000})));
  EXPECT_THAT(ParseHostState(" { \"timestamp\" : 5 , \"online\" : false, \"x\": \"a,}\" } "),
              IsOkAndHolds(Eq(HostState{false, 5})));
  EXPECT_THAT(ParseHostState(BuildHostState({true, 42})), IsOkAndHolds(Eq(HostState{true, 42})));
}

TEST(HostStateTest, RejectsMalformedPayloads) {
  for (const char* bad : {"", "ONLINE", "{}", R"({"online":true})", R"({"timestamp":1})",
                          R"({"online":"yes","timestamp":1})", R"({"online":true,"timestamp":-1})",
                          R"({"online":true,"timestamp":1)", R"({"online":true,"timestamp":1}x)",
                          R"({"online":true,"timestamp":1,"a":{"b":1}})", "{\"online"}) {
    EXPECT_THAT(ParseHostState(bad), StatusIs(StatusCode::kInvalidArgument)) << bad;
  }
}

}  // namespace
}  // namespace kiln::sparkplug
