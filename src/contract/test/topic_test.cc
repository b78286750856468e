#include "contract/sparkplug/topic.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/status_matchers.h"

namespace kiln::sparkplug {
namespace {

using ::kiln::testing::IsOk;
using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::Eq;

TEST(TopicTest, BuildsNodeDeviceAndStateTopics) {
  EXPECT_EQ(BuildTopic({MessageType::kNBirth, "Plant1", "gw-01", "", ""}),
            "spBv1.0/Plant1/NBIRTH/gw-01");
  EXPECT_EQ(BuildTopic({MessageType::kDData, "Plant1", "gw-01", "press-3", ""}),
            "spBv1.0/Plant1/DDATA/gw-01/press-3");
  EXPECT_EQ(BuildTopic({MessageType::kState, "", "", "", "kiln"}), "spBv1.0/STATE/kiln");
}

TEST(TopicTest, ParseRoundTrips) {
  for (auto type :
       {MessageType::kNBirth, MessageType::kNDeath, MessageType::kNData, MessageType::kNCmd,
        MessageType::kDBirth, MessageType::kDDeath, MessageType::kDData, MessageType::kDCmd}) {
    Topic t{type, "Zürich", "gw-01", IsDeviceMessage(type) ? "press-3" : "", ""};
    EXPECT_THAT(ParseTopic(BuildTopic(t)), IsOkAndHolds(Eq(t)));
  }
  Topic state{MessageType::kState, "", "", "", "kiln"};
  EXPECT_THAT(ParseTopic("spBv1.0/STATE/kiln"), IsOkAndHolds(Eq(state)));
}

TEST(TopicTest, RejectsMalformedTopics) {
  for (const char* bad : {"spBv1.0/G/NDATA/E/extra", "spBv1.0/G/DDATA/E", "spbv1.0/G/NDATA/E",
                          "spBv1.0/G/FOO/E", "spBv1.0//NDATA/E", "spBv1.0/STATE/a/b", "x"}) {
    EXPECT_THAT(ParseTopic(bad), StatusIs(StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(TopicTest, ValidatesIds) {
  EXPECT_THAT(ValidateId("gw-01", "edge_node_id"), IsOk());
  EXPECT_THAT(ValidateId("Zürich", "group_id"), IsOk());
  for (const std::string& bad :
       std::vector<std::string>{"", "a+b", "a/b", "a#", std::string("a\0b", 3), "\xC3\x28"}) {
    EXPECT_THAT(ValidateId(bad, "group_id"), StatusIs(StatusCode::kInvalidArgument)) << bad;
  }
}

}  // namespace
}  // namespace kiln::sparkplug
