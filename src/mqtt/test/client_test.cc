#include "mqtt/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/status_matchers.h"

namespace kiln::mqtt {
namespace {

using ::kiln::testing::StatusIs;

TEST(ParseBrokerUrlTest, AcceptsMqttAndMqtts) {
  auto a = ParseBrokerUrl("mqtt://127.0.0.1:1884");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 1884);
  EXPECT_FALSE(a->tls);
  auto b = ParseBrokerUrl("mqtts://broker.plant");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->port, 8883);
  EXPECT_TRUE(b->tls);
  EXPECT_EQ(ParseBrokerUrl("mqtt://localhost")->port, 1883);
  auto v6 = ParseBrokerUrl("mqtt://[::1]:1884");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 1884);
  EXPECT_EQ(ParseBrokerUrl("mqtts://[fe80::1]")->host, "fe80::1");
}

TEST(ParseBrokerUrlTest, RejectsBadUrls) {
  for (const char* bad : {"tcp://x:1", "mqtt://", "mqtt://h:0", "mqtt://h:70000", "mqtt://h:x",
                          "mqtt://[::1", "mqtt://[::1]x", "mqtt://[]:1"}) {
    EXPECT_THAT(ParseBrokerUrl(bad), StatusIs(StatusCode::kInvalidArgument)) << bad;
  }
}

}  // namespace
}  // namespace kiln::mqtt
