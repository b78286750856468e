#include "core/host_port.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/status_matchers.h"

namespace kiln {
namespace {

using ::kiln::testing::StatusIs;
using ::testing::HasSubstr;

TEST(HostPortTest, ParsesHostPortDefaultsAndIpv6) {
  auto a = ParseHostPort("plc-7.plant:5020", {502});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "plc-7.plant");
  EXPECT_EQ(a->port, 5020);
  EXPECT_EQ(ParseHostPort("10.0.0.5", {502})->port, 502);
  auto v6 = ParseHostPort("[fe80::1]:1884", {});
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "fe80::1");
  EXPECT_EQ(v6->port, 1884);
  EXPECT_EQ(ParseHostPort("[::1]", {1883})->port, 1883);
  EXPECT_EQ(
      ParseHostPort("127.0.0.1:0", {.default_port = std::nullopt, .allow_port_zero = true})->port,
      0);
}

TEST(HostPortTest, RejectsWhatIsNotAnAddress) {
  EXPECT_THAT(ParseHostPort("h:x", {502}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("'x' is not a port (1..65535)")));
  EXPECT_THAT(ParseHostPort("h:0", {502}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseHostPort("h:70000", {.default_port = std::nullopt, .allow_port_zero = true}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseHostPort("h", {}), StatusIs(StatusCode::kInvalidArgument, HasSubstr("no port")));
  EXPECT_THAT(ParseHostPort(":80", {}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("no host")));
  EXPECT_THAT(ParseHostPort("fe80::1:80", {}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("in brackets")));
  EXPECT_THAT(ParseHostPort("[::1", {}), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseHostPort("[::1]x", {}), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kiln
