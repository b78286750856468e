#include "drivers/opcua/opcua_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "testing/config_testing.h"
#include "testing/status_matchers.h"

namespace kiln::drivers::opcua {
namespace {

using contract::ValueType;
using ::kiln::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

using Parsed = ::kiln::testing::ParsedTable<OpcUaDeviceConfig>;

// Parses the one [[devices]] table of `toml` (file name "test.toml").
Parsed ParseDevice(std::string_view toml) {
  return ::kiln::testing::ParseOnlyTable(toml, "devices", ParseOpcUaDevice);
}

TEST(OpcUaConfigTest, ParsesDeviceAndTags) {
  const Parsed p = ParseDevice(R"(
[[devices]]
id = "line-1"
driver = "opcua"
endpoint = "opc.tcp://10.0.0.5:4841/UA/Server"
username = "operator"
password = "secret"
timeout_ms = 2500
publishing_ms = 250
  [[devices.tags]]
  name = "Temperature"
  node_id = "ns=2;s=Temperature"
  type = "float32"
  sampling_ms = 100
  queue_size = 10
  [[devices.tags]]
  node_id = "i=2258"
  type = "string"
  mode = "poll"
  [[devices.tags]]
  node_id = "ns=3;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63"
  type = "int32"
  mode = "subscribe"
  [[devices.tags]]
  node_id = "ns=1;i=1001"
  type = "bool"
)");
  EXPECT_THAT(p.errors, IsEmpty());
  const OpcUaDeviceConfig& c = p.config;
  EXPECT_EQ(c.endpoint, "opc.tcp://10.0.0.5:4841/UA/Server");
  EXPECT_EQ(c.username, "operator");
  EXPECT_EQ(c.password, "secret");
  EXPECT_EQ(c.timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(c.publishing, std::chrono::milliseconds(250));
  ASSERT_THAT(c.tags, SizeIs(4));

  EXPECT_EQ(c.tags[0].node_id, NodeId(2, std::string("Temperature")));
  EXPECT_EQ(c.tags[0].type, ValueType::kFloat);
  EXPECT_EQ(c.tags[0].mode, TagMode::kSubscribe);
  EXPECT_EQ(c.tags[0].sampling, std::chrono::milliseconds(100));
  EXPECT_EQ(c.tags[0].queue_size, 10u);
  // Ids, names and deadbands are the caller's.
  EXPECT_EQ(c.tags[0].id, 0u);
  EXPECT_EQ(c.tags[0].name, "");
  EXPECT_EQ(c.tags[0].deadband, 0);

  EXPECT_EQ(c.tags[1].node_id, NodeId(0, 2258));
  EXPECT_EQ(c.tags[1].type, ValueType::kString);
  EXPECT_EQ(c.tags[1].mode, TagMode::kPoll);
  EXPECT_EQ(c.tags[2].node_id,
            NodeId(3, Guid::Parse("72962B91-FA75-4AE6-8D28-B404DC7DAF63").value()));
  EXPECT_EQ(c.tags[2].type, ValueType::kInt32);
  EXPECT_EQ(c.tags[2].mode, TagMode::kSubscribe);
  EXPECT_EQ(c.tags[3].node_id, NodeId(1, 1001));
  EXPECT_EQ(c.tags[3].type, ValueType::kBool);
}

TEST(OpcUaConfigTest, AppliesDefaults) {
  const Parsed p = ParseDevice(R"(
[[devices]]
driver = "opcua"
endpoint = "opc.tcp://plc"
  [[devices.tags]]
  node_id = "ns=2;s=Level"
)");
  EXPECT_THAT(p.errors, IsEmpty());
  const OpcUaDeviceConfig& c = p.config;
  EXPECT_EQ(c.endpoint, "opc.tcp://plc");
  EXPECT_EQ(c.username, std::nullopt);
  EXPECT_EQ(c.password, std::nullopt);
  EXPECT_EQ(c.timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(c.publishing, std::chrono::milliseconds(0));
  ASSERT_THAT(c.tags, SizeIs(1));
  EXPECT_EQ(c.tags[0].type, ValueType::kDouble);
  EXPECT_EQ(c.tags[0].mode, TagMode::kSubscribe);
  EXPECT_EQ(c.tags[0].sampling, std::chrono::milliseconds(1000));
  EXPECT_EQ(c.tags[0].queue_size, 1u);
}

TEST(OpcUaConfigTest, MissingEndpointNamesFileLineAndKey) {
  const Parsed p = ParseDevice(R"([[devices]]
driver = "opcua"
)");
  EXPECT_THAT(p.errors, ElementsAre("test.toml:1:1: devices[0].endpoint: missing required key"));
}

TEST(OpcUaConfigTest, EndpointOfAnotherSchemeNamesFileLineAndKey) {
  const Parsed p = ParseDevice(R"([[devices]]
driver = "opcua"
endpoint = "http://plc:4840"
)");
  EXPECT_THAT(p.errors,
              ElementsAre("test.toml:3:12: devices[0].endpoint: endpoint 'http://plc:4840' does "
                          "not start with opc.tcp://"));
}

TEST(OpcUaConfigTest, EndpointWithoutHostOrWithABadPortIsAnError) {
  EXPECT_THAT(ParseDevice("[[devices]]\nendpoint = \"opc.tcp://\"\n").errors,
              ElementsAre(StartsWith("test.toml:2:12: devices[0].endpoint: ")));
  EXPECT_THAT(ParseDevice("[[devices]]\nendpoint = \"opc.tcp://plc:70000\"\n").errors,
              ElementsAre(StartsWith("test.toml:2:12: devices[0].endpoint: ")));
  EXPECT_THAT(ParseDevice("[[devices]]\nendpoint = 4840\n").errors,
              ElementsAre(StartsWith("test.toml:2:12: devices[0].endpoint: ")));
}

TEST(OpcUaConfigTest, PasswordWithoutUsernameNamesFileLineAndKey) {
  const Parsed p = ParseDevice(R"([[devices]]
driver = "opcua"
endpoint = "opc.tcp://plc:4840"
password = "secret"
)");
  EXPECT_THAT(p.errors, ElementsAre("test.toml:4:12: devices[0].password: needs username"));
}

TEST(OpcUaConfigTest, EmptyUsernameIsAnError) {
  const Parsed p = ParseDevice(R"([[devices]]
endpoint = "opc.tcp://plc:4840"
username = ""
)");
  EXPECT_THAT(p.errors, ElementsAre("test.toml:3:12: devices[0].username: must not be empty"));
}

TEST(OpcUaConfigTest, MalformedNodeIdNamesFileLineAndKey) {
  const Parsed p = ParseDevice(R"([[devices]]
endpoint = "opc.tcp://plc:4840"
  [[devices.tags]]
  node_id = "ns=2;x=Temperature"
  [[devices.tags]]
  node_id = "ns=70000;i=1"
  [[devices.tags]]
  node_id = "Temperature"
  [[devices.tags]]
  type = "int16"
)");
  ASSERT_THAT(p.errors, SizeIs(4));
  EXPECT_THAT(p.errors[0], StartsWith("test.toml:4:13: devices[0].tags[0].node_id: NodeId "
                                      "'ns=2;x=Temperature': "));
  EXPECT_THAT(p.errors[1], StartsWith("test.toml:6:13: devices[0].tags[1].node_id: NodeId "
                                      "'ns=70000;i=1': "));
  EXPECT_THAT(p.errors[2], StartsWith("test.toml:8:13: devices[0].tags[2].node_id: "));
  EXPECT_THAT(p.errors[3], HasSubstr("devices[0].tags[3].node_id: missing required key"));
  // One tag per entry, even for those with errors.
  ASSERT_THAT(p.config.tags, SizeIs(4));
  EXPECT_EQ(p.config.tags[3].type, ValueType::kInt16);
}

TEST(OpcUaConfigTest, UnknownTypeNamesFileLineAndKey) {
  const Parsed p = ParseDevice(R"([[devices]]
endpoint = "opc.tcp://plc:4840"
  [[devices.tags]]
  node_id = "ns=2;s=A"
  type = "float128"
)");
  EXPECT_THAT(p.errors, ElementsAre("test.toml:5:10: devices[0].tags[0].type: 'float128' is not "
                                    "one of bool int8 int16 int32 int64 uint8 uint16 uint32 "
                                    "uint64 float32 float64 string"));
}

TEST(OpcUaConfigTest, PollModeTakesNoSubscriptionKeys) {
  const Parsed p = ParseDevice(R"([[devices]]
endpoint = "opc.tcp://plc:4840"
  [[devices.tags]]
  node_id = "ns=2;s=A"
  mode = "poll"
  sampling_ms = 100
  queue_size = 5
)");
  EXPECT_THAT(p.errors,
              ElementsAre("test.toml:6:17: devices[0].tags[0].sampling_ms: only for mode = "
                          "\"subscribe\" (poll tags use poll_ms)",
                          "test.toml:7:16: devices[0].tags[0].queue_size: only for mode = "
                          "\"subscribe\" (poll tags use poll_ms)"));
}

TEST(OpcUaConfigTest, UnknownModeNamesFileLineAndKey) {
  const Parsed p = ParseDevice(R"([[devices]]
endpoint = "opc.tcp://plc:4840"
  [[devices.tags]]
  node_id = "ns=2;s=A"
  mode = "push"
)");
  EXPECT_THAT(p.errors, ElementsAre("test.toml:5:10: devices[0].tags[0].mode: 'push' is not "
                                    "subscribe or poll"));
}

TEST(OpcUaConfigTest, NumbersOutOfRangeNameTheirKey) {
  const Parsed p = ParseDevice(R"([[devices]]
endpoint = "opc.tcp://plc:4840"
timeout_ms = 50
publishing_ms = -1
  [[devices.tags]]
  node_id = "ns=2;s=A"
  sampling_ms = -5
  queue_size = 0
)");
  ASSERT_THAT(p.errors, SizeIs(4));
  EXPECT_THAT(p.errors[0], StartsWith("test.toml:3:14: devices[0].timeout_ms: "));
  EXPECT_THAT(p.errors[1], StartsWith("test.toml:4:17: devices[0].publishing_ms: "));
  EXPECT_THAT(p.errors[2], StartsWith("test.toml:7:17: devices[0].tags[0].sampling_ms: "));
  EXPECT_THAT(p.errors[3], StartsWith("test.toml:8:16: devices[0].tags[0].queue_size: "));
  // The defaults stand in for the bad values.
  EXPECT_EQ(p.config.timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(p.config.tags.at(0).queue_size, 1u);
}

TEST(OpcUaConfigTest, ListsItsKeys) {
  EXPECT_THAT(OpcUaDeviceKeys(), UnorderedElementsAre("endpoint", "username", "password",
                                                      "timeout_ms", "publishing_ms", "tags"));
  EXPECT_THAT(OpcUaTagKeys(),
              UnorderedElementsAre("node_id", "type", "mode", "sampling_ms", "queue_size"));
  EXPECT_EQ(TagModeName(TagMode::kPoll), "poll");
  EXPECT_EQ(TagModeName(TagMode::kSubscribe), "subscribe");
}

}  // namespace
}  // namespace kiln::drivers::opcua
