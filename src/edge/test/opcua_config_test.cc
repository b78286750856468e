// The edge config with OPC UA devices: the driver's own device and tag keys, the generic keys the
// edge fills into the OPC UA tags, and the output of `kiln-edge discover`.
#include "drivers/opcua/opcua_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/opcua/discover.h"
#include "edge/config.h"
#include "testing/status_matchers.h"

namespace kiln::edge {
namespace {

using contract::ValueType;
using drivers::opcua::DiscoveredVariable;
using drivers::opcua::NodeId;
using drivers::opcua::TagMode;
using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

constexpr std::string_view kHeader = R"([node]
group_id = "G"
edge_node_id = "E"
[mqtt]
url = "mqtt://127.0.0.1:1883"
)";

Result<EdgeConfig> Parse(std::string_view devices) {
  return ParseEdgeConfig(std::string(kHeader) + std::string(devices), "edge.toml");
}

TEST(EdgeOpcUaConfigTest, ParsesAnOpcUaDeviceBesideAModbusDevice) {
  auto cfg = Parse(R"([[devices]]
id = "press"
driver = "modbus-tcp"
address = "127.0.0.1:5020"
  [[devices.tags]]
  name = "Pressure"
  register = "holding:0"
[[devices]]
id = "line-1"
driver = "opcua"
endpoint = "opc.tcp://10.0.0.5:4840"
username = "operator"
password = "secret"
poll_ms = 250
publishing_ms = 100
  [[devices.tags]]
  name = "Temperature"
  node_id = "ns=2;s=Temperature"
  type = "float32"
  unit = "degC"
  deadband = 0.5
  sampling_ms = 100
  [[devices.tags]]
  name = "Counter"
  node_id = "ns=2;i=1001"
  type = "uint32"
  mode = "poll"
  heartbeat_s = 30
)");
  ASSERT_THAT(cfg, IsOk());
  ASSERT_THAT(cfg->devices, SizeIs(2));
  const DeviceConfig& d = cfg->devices[1];
  EXPECT_EQ(d.id, "line-1");
  EXPECT_EQ(d.driver, "opcua");
  EXPECT_EQ(d.poll, std::chrono::milliseconds(250));
  EXPECT_EQ(d.opcua.endpoint, "opc.tcp://10.0.0.5:4840");
  EXPECT_EQ(d.opcua.username, "operator");
  EXPECT_EQ(d.opcua.password, "secret");
  EXPECT_EQ(d.opcua.poll, std::chrono::milliseconds(250));
  EXPECT_EQ(d.opcua.publishing, std::chrono::milliseconds(100));

  // The generic tag keys, with the type the OPC UA keys give.
  ASSERT_THAT(d.tags, SizeIs(2));
  EXPECT_EQ(d.tags[0].id, 1u);  // ids continue after the Modbus device
  EXPECT_EQ(d.tags[0].name, "Temperature");
  EXPECT_EQ(d.tags[0].unit, "degC");
  EXPECT_EQ(d.tags[0].type, ValueType::kFloat);
  EXPECT_EQ(d.tags[1].id, 2u);
  EXPECT_EQ(d.tags[1].type, ValueType::kUInt32);
  EXPECT_EQ(d.tags[1].heartbeat, std::chrono::milliseconds(30000));

  // The OPC UA tags carry the edge's ids, names and deadbands.
  ASSERT_THAT(d.opcua.tags, SizeIs(2));
  EXPECT_EQ(d.opcua.tags[0].id, 1u);
  EXPECT_EQ(d.opcua.tags[0].name, "Temperature");
  EXPECT_EQ(d.opcua.tags[0].deadband, 0.5);
  EXPECT_EQ(d.opcua.tags[0].node_id, NodeId(2, std::string("Temperature")));
  EXPECT_EQ(d.opcua.tags[0].sampling, std::chrono::milliseconds(100));
  EXPECT_EQ(d.opcua.tags[1].id, 2u);
  EXPECT_EQ(d.opcua.tags[1].name, "Counter");
  EXPECT_EQ(d.opcua.tags[1].node_id, NodeId(2, 1001));
  EXPECT_EQ(d.opcua.tags[1].mode, TagMode::kPoll);

  // The Modbus device is untouched by the OPC UA keys.
  EXPECT_EQ(cfg->devices[0].tags[0].id, 0u);
  EXPECT_THAT(cfg->devices[0].opcua.tags, SizeIs(0));
  EXPECT_THAT(cfg->devices[0].modbus.tags, SizeIs(1));
}

TEST(EdgeOpcUaConfigTest, TagTypeDefaultsToFloat64) {
  auto cfg = Parse(R"([[devices]]
id = "d"
driver = "opcua"
endpoint = "opc.tcp://plc"
  [[devices.tags]]
  name = "A"
  node_id = "i=2258"
)");
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->devices[0].tags[0].type, ValueType::kDouble);
}

TEST(EdgeOpcUaConfigTest, ModbusKeysAreUnknownInAnOpcUaDevice) {
  auto cfg = Parse(R"([[devices]]
id = "d"
driver = "opcua"
endpoint = "opc.tcp://plc"
unit_id = 3
  [[devices.tags]]
  name = "A"
  node_id = "ns=2;s=A"
  register = "holding:0"
)");
  ASSERT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument));
  const std::string& msg = cfg.status().message();
  EXPECT_THAT(msg, HasSubstr("edge.toml:10:11: devices[0].unit_id: unknown key"));
  EXPECT_THAT(msg, HasSubstr("edge.toml:14:14: devices[0].tags[0].register: unknown key"));
}

TEST(EdgeOpcUaConfigTest, OpcUaKeysAreUnknownInAModbusDevice) {
  auto cfg = Parse(R"([[devices]]
id = "d"
driver = "modbus-tcp"
address = "127.0.0.1"
endpoint = "opc.tcp://plc"
  [[devices.tags]]
  name = "A"
  register = "holding:0"
  node_id = "ns=2;s=A"
  mode = "poll"
)");
  ASSERT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument));
  const std::string& msg = cfg.status().message();
  EXPECT_THAT(msg, HasSubstr("edge.toml:10:12: devices[0].endpoint: unknown key"));
  EXPECT_THAT(msg, HasSubstr("edge.toml:14:13: devices[0].tags[0].node_id: unknown key"));
  EXPECT_THAT(msg, HasSubstr("edge.toml:15:10: devices[0].tags[0].mode: unknown key"));
}

TEST(EdgeOpcUaConfigTest, OpcUaErrorsCarryFileLineAndKey) {
  auto cfg = Parse(R"([[devices]]
id = "d"
driver = "opcua"
endpoint = "tcp://plc"
password = "secret"
  [[devices.tags]]
  name = "A"
  node_id = "ns=2;q=A"
  mode = "poll"
  sampling_ms = 100
)");
  ASSERT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument));
  const std::string& msg = cfg.status().message();
  EXPECT_THAT(msg, HasSubstr("edge.toml:9:12: devices[0].endpoint: endpoint 'tcp://plc'"));
  EXPECT_THAT(msg, HasSubstr("edge.toml:10:12: devices[0].password: needs username"));
  EXPECT_THAT(msg, HasSubstr("edge.toml:13:13: devices[0].tags[0].node_id: NodeId 'ns=2;q=A'"));
  EXPECT_THAT(msg, HasSubstr("edge.toml:15:17: devices[0].tags[0].sampling_ms: only for mode"));
}

TEST(EdgeOpcUaConfigTest, UnknownDriverListsOpcUa) {
  auto cfg = Parse(R"([[devices]]
id = "d"
driver = "profinet"
  [[devices.tags]]
  name = "A"
)");
  EXPECT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument,
                            HasSubstr("edge.toml:8:10: devices[0].driver: unknown driver "
                                      "'profinet' (modbus-tcp, modbus-rtu, opcua)")));
}

TEST(EdgeOpcUaConfigTest, WritableOpcUaTagsTakeMinMaxAndInterlocks) {
  auto cfg = Parse(R"([[devices]]
id = "d"
driver = "opcua"
endpoint = "opc.tcp://plc"
  [[devices.tags]]
  name = "Setpoint"
  node_id = "ns=2;s=Setpoint"
  type = "int32"
  writable = true
  min = 0
  max = 100
  min_write_interval = "1s"
  interlock = { tag = "Auto", equals = 1 }
  [[devices.tags]]
  name = "Auto"
  node_id = "ns=2;s=Auto"
  type = "bool"
)");
  ASSERT_THAT(cfg, IsOk());
  const WriteRules& w = cfg->devices[0].tags[0].write;
  EXPECT_TRUE(w.writable);
  EXPECT_EQ(w.min, 0.0);
  EXPECT_EQ(w.max, 100.0);
  EXPECT_EQ(w.min_write_interval, std::chrono::seconds(1));
  EXPECT_EQ(w.interlock, (Interlock{"Auto", 1}));
  EXPECT_FALSE(cfg->devices[0].tags[1].write.writable);
}

TEST(EdgeOpcUaConfigTest, BadWriteRulesOfOpcUaTagsCarryFileLineAndKey) {
  auto cfg = Parse(R"([[devices]]
id = "d"
driver = "opcua"
endpoint = "opc.tcp://plc"
  [[devices.tags]]
  name = "Run"
  node_id = "ns=2;s=Run"
  type = "bool"
  writable = true
  max = 1
  [[devices.tags]]
  name = "Speed"
  node_id = "ns=2;s=Speed"
  min = 5
)");
  ASSERT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument));
  const std::string& msg = cfg.status().message();
  EXPECT_THAT(msg, HasSubstr("edge.toml:15:9: devices[0].tags[0].max: not for bool tags"));
  EXPECT_THAT(msg, HasSubstr("edge.toml:19:9: devices[0].tags[1].min: only for writable tags"));
}

TEST(EdgeOpcUaConfigTest, TheFingerprintFollowsTheOpcUaTagTypes) {
  constexpr std::string_view kDevice = R"([[devices]]
id = "d"
driver = "opcua"
endpoint = "opc.tcp://plc"
  [[devices.tags]]
  name = "A"
  node_id = "ns=2;s=A"
)";
  auto float64 = Parse(kDevice);
  auto int32 = Parse(std::string(kDevice) + "  type = \"int32\"\n");
  ASSERT_THAT(float64, IsOk());
  ASSERT_THAT(int32, IsOk());
  EXPECT_NE(TagFingerprint(*float64), TagFingerprint(*int32));
}

DiscoveredVariable Var(NodeId node, std::string browse_name, std::string path,
                       std::optional<ValueType> type, bool writable = false) {
  return {std::move(node), std::move(browse_name), std::move(path), "Double", type, writable};
}

TEST(EdgeOpcUaConfigTest, DiscoverOutputIsAValidConfigAfterNodeAndMqtt) {
  const std::vector<DiscoveredVariable> variables = {
      Var(NodeId(2, std::string("L1.Temperature")), "Temperature", "Line1/Temperature",
          ValueType::kDouble),
      Var(NodeId(2, std::string("L2.Temperature")), "Temperature", "Line2/Temperature",
          ValueType::kFloat),
      Var(NodeId(2, 7), "Setpoint", "Line1/Setpoint", ValueType::kInt32, true),
      Var(NodeId(2, std::string(R"(Tank "A"\Level)")), R"(Tank "A"\Level)",
          R"(Tanks/Tank "A"\Level)", ValueType::kDouble),
      Var(NodeId(2, 8), "Vector", "Line1/Vector", std::nullopt),
      Var(NodeId(3, std::string("Run")), "Run", "Line1/Run", ValueType::kBool),
  };
  const std::string toml =
      drivers::opcua::FormatDeviceToml(variables, "plc", "opc.tcp://10.0.0.5:4840");
  auto cfg = Parse(toml);
  ASSERT_THAT(cfg, IsOk()) << toml;
  ASSERT_THAT(cfg->devices, SizeIs(1));
  const DeviceConfig& d = cfg->devices[0];
  EXPECT_EQ(d.id, "plc");
  EXPECT_EQ(d.driver, "opcua");
  EXPECT_EQ(d.opcua.endpoint, "opc.tcp://10.0.0.5:4840");
  std::vector<std::string> names;
  for (const TagConfig& t : d.tags) names.push_back(t.name);
  EXPECT_THAT(names, ElementsAre("Line1/Temperature", "Line2/Temperature", "Setpoint",
                                 R"(Tank "A"\Level)", "Run"));
  ASSERT_THAT(d.opcua.tags, SizeIs(5));
  EXPECT_EQ(d.tags[1].type, ValueType::kFloat);
  EXPECT_EQ(d.tags[2].type, ValueType::kInt32);
  EXPECT_EQ(d.tags[4].type, ValueType::kBool);
  EXPECT_EQ(d.opcua.tags[3].node_id, NodeId(2, std::string(R"(Tank "A"\Level)")));
  // Discovery never makes a tag writable: that is the operator's decision.
  for (const TagConfig& t : d.tags) EXPECT_FALSE(t.write.writable) << t.name;
  EXPECT_THAT(cfg->warnings, SizeIs(0));
}

TEST(EdgeOpcUaConfigTest, DiscoverOutputWithNothingPublishableIsRefused) {
  const std::string toml = drivers::opcua::FormatDeviceToml(
      {Var(NodeId(2, 8), "Vector", "Line1/Vector", std::nullopt)}, "plc", "opc.tcp://plc");
  EXPECT_THAT(Parse(toml), StatusIs(StatusCode::kInvalidArgument,
                                    HasSubstr("a device needs at least one [[devices.tags]]")));
  EXPECT_THAT(toml, Not(HasSubstr("name =")));
}

}  // namespace
}  // namespace kiln::edge
