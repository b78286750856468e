#include "server/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "testing/status_matchers.h"

namespace kiln::server {
namespace {

using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using namespace std::chrono_literals;

std::string SourceDir() {
  const char* dir = std::getenv("KILN_SOURCE_DIR");
  return dir ? dir : ".";
}

// The smallest valid config: every required key and nothing else.
constexpr std::string_view kMinimal = R"([mqtt]
url = "mqtt://broker.local:1884"
[sparkplug]
host_id = "scada"
[storage]
path = "/var/lib/kiln/server"
)";

TEST(ServerConfigTest, LoadsTheExample) {
  auto cfg = LoadServerConfig(SourceDir() + "/examples/server.toml");
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->mqtt_url, "mqtt://127.0.0.1:1883");
  EXPECT_EQ(cfg->mqtt.broker.host, "127.0.0.1");
  EXPECT_EQ(cfg->mqtt.broker.port, 1883);
  EXPECT_FALSE(cfg->mqtt.broker.tls);
  EXPECT_EQ(cfg->host_id, "kiln");
  EXPECT_EQ(cfg->mqtt.client_id, "kiln-server:kiln");
  EXPECT_THAT(cfg->groups, IsEmpty());
  EXPECT_EQ(cfg->storage_path, "/tmp/kiln-server");
  EXPECT_EQ(cfg->retention, std::chrono::hours(24 * 90));
  EXPECT_EQ(cfg->wal_sync, historian::WalSync::kInterval);
  EXPECT_EQ(cfg->wal_sync_interval, 1000ms);
  EXPECT_EQ(cfg->http_listen, "127.0.0.1:8080");
  EXPECT_EQ(cfg->log_level, LogLevel::kInfo);
  EXPECT_EQ(cfg->host.reorder_timeout, 2000ms);
  EXPECT_EQ(cfg->host.rebirth_debounce, 5000ms);
}

TEST(ServerConfigTest, LoadingAMissingFileIsNotFound) {
  auto cfg = LoadServerConfig(SourceDir() + "/examples/no-such-server.toml");
  EXPECT_THAT(cfg, StatusIs(StatusCode::kNotFound, HasSubstr("no-such-server.toml")));
}

TEST(ServerConfigTest, MinimalConfigGetsTheDocumentedDefaults) {
  auto cfg = ParseServerConfig(kMinimal, "server.toml");
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->mqtt_url, "mqtt://broker.local:1884");
  EXPECT_EQ(cfg->mqtt.broker.host, "broker.local");
  EXPECT_EQ(cfg->mqtt.broker.port, 1884);
  EXPECT_EQ(cfg->mqtt.keepalive_s, 30);
  EXPECT_EQ(cfg->host_id, "scada");
  EXPECT_EQ(cfg->mqtt.client_id, "kiln-server:scada");
  EXPECT_THAT(cfg->groups, IsEmpty());
  EXPECT_EQ(cfg->host.reorder_timeout, 2s);
  EXPECT_EQ(cfg->host.rebirth_debounce, 5s);
  EXPECT_EQ(cfg->storage_path, "/var/lib/kiln/server");
  EXPECT_EQ(cfg->retention, std::chrono::hours(24 * 90));
  EXPECT_EQ(cfg->wal_sync, historian::WalSync::kInterval);
  EXPECT_EQ(cfg->wal_sync_interval, 1s);
  EXPECT_EQ(cfg->http_listen, "127.0.0.1:8080");
  EXPECT_EQ(cfg->log_level, LogLevel::kInfo);
}

TEST(ServerConfigTest, ReadsEveryKey) {
  auto cfg = ParseServerConfig(R"([mqtt]
url = "mqtts://broker.local"
client_id = "scada-main"
keepalive_s = 60
ca_file = "/etc/kiln/ca.pem"
[sparkplug]
host_id = "scada"
groups = ["Plant1", "Plant2"]
reorder_timeout = "500ms"
rebirth_debounce = 0
[storage]
path = "/data"
retention = "7d"
wal_sync = "always"
wal_sync_interval = "250ms"
[http]
listen = "0.0.0.0:9000"
[log]
level = "debug"
)",
                               "server.toml");
  ASSERT_THAT(cfg, IsOk());
  EXPECT_TRUE(cfg->mqtt.broker.tls);
  EXPECT_EQ(cfg->mqtt.broker.port, 8883);
  EXPECT_EQ(cfg->mqtt.client_id, "scada-main") << "an explicit client_id is kept";
  EXPECT_EQ(cfg->mqtt.keepalive_s, 60);
  EXPECT_EQ(cfg->mqtt.ca_file, "/etc/kiln/ca.pem");
  EXPECT_THAT(cfg->groups, ElementsAre("Plant1", "Plant2"));
  EXPECT_EQ(cfg->host.reorder_timeout, 500ms);
  EXPECT_EQ(cfg->host.rebirth_debounce, 0ms);
  EXPECT_EQ(cfg->storage_path, "/data");
  EXPECT_EQ(cfg->retention, std::chrono::hours(24 * 7));
  EXPECT_EQ(cfg->wal_sync, historian::WalSync::kAlways);
  EXPECT_EQ(cfg->wal_sync_interval, 250ms);
  EXPECT_EQ(cfg->http_listen, "0.0.0.0:9000");
  EXPECT_EQ(cfg->log_level, LogLevel::kDebug);
}

TEST(ServerConfigTest, RetentionZeroKeepsForeverAndWalSyncNever) {
  auto cfg = ParseServerConfig(std::string(kMinimal) + R"(retention = 0
wal_sync = "never"
)",
                               "server.toml");
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->retention, 0ms);
  EXPECT_EQ(cfg->wal_sync, historian::WalSync::kNever);
}

TEST(ServerConfigTest, MissingHostIdNamesFileLineAndKey) {
  auto cfg = ParseServerConfig(R"([mqtt]
url = "mqtt://127.0.0.1:1883"
[sparkplug]
groups = ["Plant1"]
[storage]
path = "/tmp/x"
)",
                               "server.toml");
  ASSERT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument));
  const std::string& msg = cfg.status().message();
  EXPECT_THAT(msg, HasSubstr("1 error in server.toml"));
  EXPECT_THAT(msg, HasSubstr("server.toml:3:1: sparkplug.host_id: missing required key"));
}

TEST(ServerConfigTest, MissingTablesAreEachReported) {
  auto cfg = ParseServerConfig("[http]\nlisten = \"127.0.0.1:0\"\n", "server.toml");
  ASSERT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument));
  const std::string& msg = cfg.status().message();
  EXPECT_THAT(msg, HasSubstr("3 errors in server.toml"));
  EXPECT_THAT(msg, HasSubstr("mqtt: missing required table [mqtt] with url"));
  EXPECT_THAT(msg, HasSubstr("sparkplug: missing required table [sparkplug] with host_id"));
  EXPECT_THAT(msg, HasSubstr("storage: missing required table [storage] with path"));
}

TEST(ServerConfigTest, HostIdWithASlashIsRejected) {
  auto cfg = ParseServerConfig(R"([mqtt]
url = "mqtt://127.0.0.1:1883"
[sparkplug]
host_id = "kiln/main"
[storage]
path = "/tmp/x"
)",
                               "server.toml");
  ASSERT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(cfg.status().message(),
              HasSubstr("server.toml:4:11: sparkplug.host_id: host_id 'kiln/main' contains '/'"));
}

TEST(ServerConfigTest, EmptyHostIdIsRejected) {
  auto cfg = ParseServerConfig(R"([mqtt]
url = "mqtt://127.0.0.1:1883"
[sparkplug]
host_id = ""
[storage]
path = "/tmp/x"
)",
                               "server.toml");
  EXPECT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument,
                            HasSubstr("server.toml:4:11: sparkplug.host_id: host_id must not be "
                                      "empty")));
}

TEST(ServerConfigTest, UnknownKeysAreRejectedWithTheirLine) {
  auto cfg = ParseServerConfig(R"([mqtt]
url = "mqtt://127.0.0.1:1883"
[sparkplug]
host_id = "kiln"
hostid = "typo"
[storage]
path = "/tmp/x"
retension = "30d"
[http]
port = 8080
[metrics]
enabled = true
)",
                               "server.toml");
  ASSERT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument));
  const std::string& msg = cfg.status().message();
  EXPECT_THAT(msg, HasSubstr("4 errors in server.toml"));
  EXPECT_THAT(msg, HasSubstr("server.toml:5:10: sparkplug.hostid: unknown key"));
  EXPECT_THAT(msg, HasSubstr("server.toml:8:13: storage.retension: unknown key"));
  EXPECT_THAT(msg, HasSubstr("server.toml:10:8: http.port: unknown key"));
  EXPECT_THAT(msg, HasSubstr("server.toml:11:1: metrics: unknown key"));
}

TEST(ServerConfigTest, UnknownWalSyncModeIsRejected) {
  auto cfg = ParseServerConfig(std::string(kMinimal) + "wal_sync = \"sometimes\"\n", "server.toml");
  ASSERT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(cfg.status().message(),
              HasSubstr("server.toml:7:12: storage.wal_sync: 'sometimes' is not one of interval, "
                        "always, never"));
}

TEST(ServerConfigTest, GroupsMustBeAnArrayOfStrings) {
  auto not_array = ParseServerConfig(R"([mqtt]
url = "mqtt://127.0.0.1:1883"
[sparkplug]
host_id = "kiln"
groups = "Plant1"
[storage]
path = "/tmp/x"
)",
                                     "server.toml");
  ASSERT_THAT(not_array, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(not_array.status().message(),
              HasSubstr("server.toml:5:10: sparkplug.groups: expected an array of strings, found "
                        "string"));

  auto not_strings = ParseServerConfig(R"([mqtt]
url = "mqtt://127.0.0.1:1883"
[sparkplug]
host_id = "kiln"
groups = ["Plant1", 7, "Plant/3"]
[storage]
path = "/tmp/x"
)",
                                       "server.toml");
  ASSERT_THAT(not_strings, StatusIs(StatusCode::kInvalidArgument));
  const std::string& msg = not_strings.status().message();
  EXPECT_THAT(msg, HasSubstr("2 errors in server.toml"));
  EXPECT_THAT(msg, HasSubstr("server.toml:5:21: sparkplug.groups[1]: expected a string"));
  EXPECT_THAT(msg, HasSubstr("sparkplug.groups: group 'Plant/3' contains '/'"));
}

TEST(ServerConfigTest, BadDurationsAreRejected) {
  auto cfg = ParseServerConfig(R"([mqtt]
url = "mqtt://127.0.0.1:1883"
[sparkplug]
host_id = "kiln"
reorder_timeout = "2 fortnights"
rebirth_debounce = -5
[storage]
path = "/tmp/x"
retention = "ninety days"
wal_sync_interval = true
)",
                               "server.toml");
  ASSERT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument));
  const std::string& msg = cfg.status().message();
  EXPECT_THAT(msg, HasSubstr("4 errors in server.toml"));
  EXPECT_THAT(msg, HasSubstr("server.toml:5:19: sparkplug.reorder_timeout: '2 fortnights' is not a "
                             "duration (use a number with ms, s, m, h or d)"));
  EXPECT_THAT(msg, HasSubstr("server.toml:6:20: sparkplug.rebirth_debounce: a duration cannot be "
                             "negative"));
  EXPECT_THAT(msg, HasSubstr("server.toml:9:13: storage.retention: 'ninety days' does not start "
                             "with a number"));
  EXPECT_THAT(msg, HasSubstr("server.toml:10:21: storage.wal_sync_interval: expected a duration "
                             "such as \"30s\", found boolean"));
}

TEST(ServerConfigTest, BadLogLevelAndMqttUrlAreRejected) {
  auto cfg = ParseServerConfig(R"([mqtt]
url = "http://127.0.0.1"
[sparkplug]
host_id = "kiln"
[storage]
path = "/tmp/x"
[log]
level = "verbose"
)",
                               "server.toml");
  ASSERT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument));
  const std::string& msg = cfg.status().message();
  EXPECT_THAT(msg, HasSubstr("server.toml:2:7: mqtt.url: "));
  EXPECT_THAT(msg, HasSubstr("server.toml:8:9: log.level: 'verbose' is not one of debug, info, "
                             "warning, error"));
}

TEST(ServerConfigTest, MissingStoragePathIsRequired) {
  auto cfg = ParseServerConfig(R"([mqtt]
url = "mqtt://127.0.0.1:1883"
[sparkplug]
host_id = "kiln"
[storage]
retention = "1d"
)",
                               "server.toml");
  EXPECT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument,
                            HasSubstr("server.toml:5:1: storage.path: missing required key")));
}

TEST(ServerConfigTest, TomlSyntaxErrorNamesTheLine) {
  auto cfg = ParseServerConfig("[mqtt]\nurl = \"mqtt://x\n", "server.toml");
  EXPECT_THAT(cfg, StatusIs(StatusCode::kInvalidArgument, HasSubstr("server.toml:2:")));
}

TEST(ServerConfigTest, ClientIdIsDerivedFromTheHostId) {
  auto cfg = ParseServerConfig(R"([mqtt]
url = "mqtt://127.0.0.1:1883"
[sparkplug]
host_id = "plant-scada"
[storage]
path = "/tmp/x"
)",
                               "server.toml");
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->mqtt.client_id, "kiln-server:plant-scada");
}

}  // namespace
}  // namespace kiln::server
