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

}  // namespace
}  // namespace kiln::edge
