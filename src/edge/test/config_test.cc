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
