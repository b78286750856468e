#include "edge/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "testing/status_matchers.h"

namespace kiln::edge {
namespace {

using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

std::string SourceDir() {
  const char* dir = std::getenv("KILN_SOURCE_DIR");
  return dir ? dir : ".";
}

TEST(EdgeConfigTest, LoadsTheOpcUaExample) {
  auto cfg = LoadEdgeConfig(SourceDir() + "/examples/edge-opcua.toml");
  ASSERT_THAT(cfg, IsOk());
  ASSERT_EQ(cfg->devices.size(), 1u);
  const DeviceConfig& plc = cfg->devices[0];
  EXPECT_EQ(plc.driver, "opcua");
  EXPECT_EQ(plc.opcua.endpoint, "opc.tcp://127.0.0.1:4840");
  EXPECT_EQ(plc.opcua.poll, std::chrono::milliseconds(1000));
  ASSERT_EQ(plc.tags.size(), 4u);
  ASSERT_EQ(plc.opcua.tags.size(), 4u);
  const drivers::opcua::OpcUaTag& temperature = plc.opcua.tags[0];
  EXPECT_EQ(temperature.node_id.ToString(), "ns=2;s=Line1.Temperature");
  EXPECT_EQ(temperature.sampling, std::chrono::milliseconds(100));
  EXPECT_DOUBLE_EQ(temperature.deadband, 0.1);
  EXPECT_EQ(temperature.name, "Temperature");
  EXPECT_EQ(plc.opcua.tags[1].node_id.ToString(), "ns=2;i=1001");
  EXPECT_EQ(plc.tags[1].type, contract::ValueType::kUInt32);
  EXPECT_EQ(plc.opcua.tags[2].mode, drivers::opcua::TagMode::kPoll);
  EXPECT_EQ(plc.tags[2].type, contract::ValueType::kString);
  EXPECT_EQ(plc.opcua.tags[3].id, plc.tags[3].id);
  EXPECT_TRUE(plc.tags[3].write.writable);
}

TEST(EdgeConfigTest, LoadsTheExample) {
  auto cfg = LoadEdgeConfig(SourceDir() + "/examples/edge.toml");
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->group_id, "Plant1");
  EXPECT_EQ(cfg->edge_node_id, "gw-01");
  EXPECT_EQ(cfg->mqtt.broker.port, 1883);
  EXPECT_EQ(cfg->mqtt.client_id, "kiln-edge:Plant1:gw-01");
  ASSERT_EQ(cfg->devices.size(), 2u);
  const auto& press = cfg->devices[0];
  EXPECT_EQ(press.poll, std::chrono::milliseconds(100));
  ASSERT_EQ(press.tags.size(), 5u);
  EXPECT_EQ(press.tags[0].id, 0u);
  EXPECT_EQ(press.tags[0].type, contract::ValueType::kFloat);
  EXPECT_DOUBLE_EQ(press.tags[0].deadband, 0.5);
  EXPECT_EQ(press.tags[2].type, contract::ValueType::kDouble);  // scaled int16
  EXPECT_EQ(press.tags[3].heartbeat, std::chrono::milliseconds(60000));
  EXPECT_EQ(press.tags[4].type, contract::ValueType::kBool);
  EXPECT_EQ(cfg->devices[1].tags[0].id, 5u);  // ids continue across devices
  EXPECT_EQ(press.modbus.tags.size(), 5u);
  EXPECT_EQ(press.modbus.tags[4].id, 4u);
}

TEST(EdgeConfigTest, ReportsEveryErrorWithFileLineAndKey) {
  auto cfg = ParseEdgeConfig(R"([node]
group_id = "Plant/1"
edge_node_id = "gw-01"
[mqtt]
urll = "mqtt://127.0.0.1:1883"
[[devices]]
id = "press-3"
driver = "modbus-tcp"
address = "127.0.0.1:5020"
  [[devices.tags]]
  name = "T"
  register = "holding:0"
  type = "float32"
  deadband = -1
[[devices]]
id = "press-3"
driver = "profibus"
  [[devices.tags]]
  name = "T"
)",
                             "edge.toml");
  ASSERT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument));
  const std::string& msg = cfg.status().message();
  EXPECT_THAT(msg, HasSubstr("edge.toml:2:12: node.group_id: group_id 'Plant/1' contains '/'"));
  EXPECT_THAT(msg, HasSubstr("edge.toml:5:8: mqtt.urll: unknown key"));
  EXPECT_THAT(msg, HasSubstr("mqtt.url: missing required key"));
  EXPECT_THAT(msg, HasSubstr("edge.toml:14:14: devices[0].tags[0].deadband: must not be negative"));
  EXPECT_THAT(msg, HasSubstr("edge.toml:16:6: devices[1].id: duplicate device id 'press-3'"));
  EXPECT_THAT(msg, HasSubstr("edge.toml:17:10: devices[1].driver: unknown driver 'profibus'"));
}

TEST(EdgeConfigTest, WarnsAboutNamesDifferingOnlyInCase) {
  auto cfg = ParseEdgeConfig(R"([node]
group_id = "G"
edge_node_id = "E"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[[devices]]
id = "d"
driver = "modbus-tcp"
address = "127.0.0.1:5020"
  [[devices.tags]]
  name = "Temp"
  register = "holding:0"
  type = "uint16"
  [[devices.tags]]
  name = "temp"
  register = "holding:1"
  type = "uint16"
)",
                             "edge.toml");
  ASSERT_THAT(cfg, IsOk());
  ASSERT_EQ(cfg->warnings.size(), 1u);
  EXPECT_THAT(cfg->warnings[0], HasSubstr("differ only in case"));
}

TEST(EdgeConfigTest, TlsFilesNeedMqtts) {
  auto cfg = ParseEdgeConfig(R"([node]
group_id = "G"
edge_node_id = "E"
[mqtt]
url = "mqtt://127.0.0.1:1883"
ca_file = "/etc/kiln/ca.pem"
)",
                             "edge.toml");
  EXPECT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument, HasSubstr("not mqtts://")));
}

constexpr std::string_view kMinimal = R"([node]
group_id = "G"
edge_node_id = "E"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[[devices]]
id = "d"
driver = "modbus-tcp"
address = "127.0.0.1:5020"
  [[devices.tags]]
  name = "T"
  register = "holding:0"
)";

TEST(EdgeConfigTest, ReadsTheStoreBudgetAndSyncPolicy) {
  auto cfg = ParseEdgeConfig(std::string(kMinimal) + R"([store]
path = "/var/lib/kiln/edge"
max_bytes = "3GiB"
max_age = "7d"
segment_bytes = "32MiB"
fsync = "batch"
fsync_interval = "50ms"
fsync_batch = 200
compression = "zstd"
replay_rate = 5000
)",
                             "edge.toml");
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->state_dir, "/var/lib/kiln/edge");
  EXPECT_EQ(cfg->journal.max_bytes, uint64_t{3} << 30);
  EXPECT_EQ(cfg->journal.max_age, std::chrono::hours(24 * 7));
  EXPECT_EQ(cfg->journal.segment_bytes, uint64_t{32} << 20);
  EXPECT_EQ(cfg->journal.sync, queue::SyncPolicy::kBatch);
  EXPECT_EQ(cfg->journal.sync_interval, std::chrono::milliseconds(50));
  EXPECT_EQ(cfg->journal.sync_batch, 200u);
  EXPECT_TRUE(cfg->journal.compress);
  EXPECT_DOUBLE_EQ(cfg->replay_rate, 5000);
}

TEST(EdgeConfigTest, StoreDefaultsAndIntegerBudget) {
  auto cfg = ParseEdgeConfig(std::string(kMinimal) + R"([store]
path = "/tmp/x"
max_bytes = 2147483648
)",
                             "edge.toml");
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->journal.max_bytes, uint64_t{2} << 30);
  EXPECT_EQ(cfg->journal.max_age, std::chrono::seconds(0));
  EXPECT_EQ(cfg->journal.sync, queue::SyncPolicy::kInterval);
  EXPECT_EQ(cfg->journal.sync_interval, std::chrono::milliseconds(100));
  EXPECT_FALSE(cfg->journal.compress);
}

TEST(EdgeConfigTest, ReportsBadStoreKeysWithLine) {
  auto cfg = ParseEdgeConfig(std::string(kMinimal) + R"([store]
path = "/tmp/x"
max_bytes = "lots"
fsync = "sometimes"
compression = "lz4"
segment_bytes = "1GiB"
replay_rate = 0
)",
                             "edge.toml");
  ASSERT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument));
  const std::string& m = cfg.status().message();
  EXPECT_THAT(m, HasSubstr("edge.toml:15:"));
  EXPECT_THAT(m, HasSubstr("store.max_bytes"));
  EXPECT_THAT(m, HasSubstr("'sometimes' is not interval, batch or always"));
  EXPECT_THAT(m, HasSubstr("'lz4' is not none or zstd"));
  EXPECT_THAT(m, HasSubstr("max_bytes must hold at least 3 segments"));
  EXPECT_THAT(m, HasSubstr("store.replay_rate"));
}

TEST(EdgeConfigTest, BudgetWithoutPathIsAnError) {
  auto cfg = ParseEdgeConfig(std::string(kMinimal) + R"([store]
max_bytes = "1GiB"
)",
                             "edge.toml");
  EXPECT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument, HasSubstr("needs [store] path")));
}

constexpr std::string_view kHeader = R"([node]
group_id = "G"
edge_node_id = "E"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[[devices]]
id = "d"
driver = "modbus-tcp"
address = "127.0.0.1:5020"
)";

TEST(EdgeConfigTest, ReadsTheWriteRulesOfTags) {
  auto cfg = ParseEdgeConfig(std::string(kHeader) + R"(  [[devices.tags]]
  name = "Setpoint"
  register = "holding:0"
  type = "float32"
  writable = true
  min = 10
  max = 70.5
  min_write_interval = "2s"
  interlock = { tag = "Mode", equals = 1 }
  [[devices.tags]]
  name = "Mode"
  register = "holding:2"
  [[devices.tags]]
  name = "Run"
  register = "coil:0"
  writable = true
  min_write_interval = 500
  interlock = { tag = "Door", equals = 0 }
  [[devices.tags]]
  name = "Door"
  register = "coil:1"
  [[devices.tags]]
  name = "Plain"
  register = "holding:3"
  writable = false
)",
                             "edge.toml");
  ASSERT_THAT(cfg, IsOk());
  const auto& tags = cfg->devices[0].tags;
  ASSERT_EQ(tags.size(), 5u);
  const WriteRules& sp = tags[0].write;
  EXPECT_TRUE(sp.writable);
  EXPECT_EQ(sp.min, 10.0);
  EXPECT_EQ(sp.max, 70.5);
  EXPECT_EQ(sp.min_write_interval, std::chrono::seconds(2));
  EXPECT_EQ(sp.interlock, (Interlock{"Mode", 1}));
  EXPECT_EQ(tags[1].write, WriteRules{});  // not writable by default, no rules
  const WriteRules& run = tags[2].write;
  EXPECT_TRUE(run.writable);
  EXPECT_FALSE(run.min.has_value());
  EXPECT_FALSE(run.max.has_value());
  EXPECT_EQ(run.min_write_interval, std::chrono::milliseconds(500));  // integers are ms
  EXPECT_EQ(run.interlock, (Interlock{"Door", 0}));
  EXPECT_FALSE(tags[4].write.writable);
}

TEST(EdgeConfigTest, TheExampleHasAWritableSetpoint) {
  auto cfg = LoadEdgeConfig(SourceDir() + "/examples/edge.toml");
  ASSERT_THAT(cfg, IsOk());
  const DeviceConfig& oven = cfg->devices[1];
  ASSERT_GE(oven.tags.size(), 3u);
  EXPECT_EQ(oven.tags[1].name, "Setpoint");
  EXPECT_TRUE(oven.tags[1].write.writable);
  EXPECT_TRUE(oven.tags[1].write.min && oven.tags[1].write.max);
  ASSERT_TRUE(oven.tags[1].write.interlock.has_value());
  EXPECT_EQ(oven.tags[1].write.interlock->tag, "FanRunning");
  EXPECT_FALSE(cfg->devices[0].tags[0].write.writable);
}

TEST(EdgeConfigTest, ReportsBadWriteRulesWithFileLineAndKey) {
  auto cfg = ParseEdgeConfig(std::string(kHeader) + R"(  [[devices.tags]]
  name = "A"
  register = "holding:0"
  writable = true
  min = 80
  max = 70
  interlock = { tag = "Mod", equals = 1 }
  [[devices.tags]]
  name = "B"
  register = "holding:1"
  min = 1
  max = 2
  min_write_interval = "2s"
  interlock = { tag = "A", equals = 1 }
  [[devices.tags]]
  name = "C"
  register = "input:0"
  writable = true
  [[devices.tags]]
  name = "D"
  register = "discrete:0"
  writable = true
  [[devices.tags]]
  name = "E"
  register = "coil:0"
  writable = true
  min = 0
  interlock = { tag = "E", equals = 1 }
  [[devices.tags]]
  name = "F"
  register = "holding:2"
  writable = "yes"
  min = nan
  min_write_interval = "soon"
  interlock = { tag = "E", equals = 2 }
  [[devices.tags]]
  name = "G"
  register = "holding:3"
  writable = true
  interlock = { tag = "A", value = 1 }
  [[devices.tags]]
  name = "H"
  register = "holding:4"
  writable = true
  interlock = { equals = true }
)",
                             "edge.toml");
  ASSERT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument));
  const std::string& m = cfg.status().message();
  EXPECT_THAT(m, HasSubstr("edge.toml:14:9: devices[0].tags[0].min: min 80 is above max 70"));
  EXPECT_THAT(m, HasSubstr("edge.toml:16:23: devices[0].tags[0].interlock.tag: no tag 'Mod' in "
                           "device 'd'"));
  EXPECT_THAT(m, HasSubstr("edge.toml:20:9: devices[0].tags[1].min: only for writable tags"));
  EXPECT_THAT(m, HasSubstr("edge.toml:21:9: devices[0].tags[1].max: only for writable tags"));
  EXPECT_THAT(m, HasSubstr("edge.toml:22:24: devices[0].tags[1].min_write_interval: only for "
                           "writable tags"));
  EXPECT_THAT(m, HasSubstr("edge.toml:23:15: devices[0].tags[1].interlock: only for writable "
                           "tags"));
  EXPECT_THAT(m, HasSubstr("edge.toml:27:14: devices[0].tags[2].writable: input:0 is an input "
                           "register, which Modbus cannot write"));
  EXPECT_THAT(m, HasSubstr("edge.toml:31:14: devices[0].tags[3].writable: discrete:0 is a "
                           "discrete input, which Modbus cannot write"));
  EXPECT_THAT(m, HasSubstr("edge.toml:36:9: devices[0].tags[4].min: not for bool tags"));
  EXPECT_THAT(
      m, HasSubstr("edge.toml:37:23: devices[0].tags[4].interlock.tag: must name another tag"));
  EXPECT_THAT(m, HasSubstr("edge.toml:41:14: devices[0].tags[5].writable: expected true or false"));
  EXPECT_THAT(m, HasSubstr("devices[0].tags[5].min: must be a finite number"));
  EXPECT_THAT(m, HasSubstr("devices[0].tags[5].min_write_interval:"));
  EXPECT_THAT(m, HasSubstr("devices[0].tags[5].interlock.equals: 'E' is a bool tag: equals must "
                           "be 1 (true) or 0 (false)"));
  EXPECT_THAT(m, HasSubstr("devices[0].tags[6].interlock.value: unknown key"));
  EXPECT_THAT(m, HasSubstr("devices[0].tags[6].interlock.equals: missing required key"));
  EXPECT_THAT(m, HasSubstr("devices[0].tags[7].interlock.tag: missing required key"));
  EXPECT_THAT(m, HasSubstr("devices[0].tags[7].interlock.equals: expected a number"));
}

TEST(EdgeConfigTest, FingerprintFollowsTheTagTable) {
  auto a = ParseEdgeConfig(kMinimal, "edge.toml");
  ASSERT_THAT(a, IsOk());
  EdgeConfig b = *a;
  EXPECT_EQ(TagFingerprint(*a), TagFingerprint(b));
  b.devices[0].tags[0].name = "U";
  EXPECT_NE(TagFingerprint(*a), TagFingerprint(b));
  b = *a;
  b.devices[0].tags[0].type = contract::ValueType::kFloat;
  EXPECT_NE(TagFingerprint(*a), TagFingerprint(b));
}

}  // namespace
}  // namespace kiln::edge
