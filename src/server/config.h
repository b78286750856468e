#pragma once
// kiln-server's configuration (TOML; every key in docs/CONFIGURATION.md):
//   [mqtt]       url, client_id, keepalive_s, username, password, ca_file, cert_file, key_file
//   [sparkplug]  host_id (required), groups, reorder_timeout, rebirth_debounce
//   [storage]    path (required), retention, wal_sync, wal_sync_interval
//   [http]       listen
//   [log]        level
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "core/status.h"
#include "historian/historian.h"
#include "mqtt/client.h"
#include "server/host.h"

namespace kiln::server {

struct ServerConfig {
  std::string mqtt_url;
  mqtt::ClientOptions mqtt;
  std::string host_id;              // publishes spBv1.0/STATE/<host_id>
  std::vector<std::string> groups;  // subscribe to these groups only; empty: all
  HostOptions host;
  std::string storage_path;
  std::chrono::milliseconds retention{std::chrono::hours(24 * 90)};  // 0: keep forever
  historian::WalSync wal_sync = historian::WalSync::kInterval;
  std::chrono::milliseconds wal_sync_interval{1000};
  std::string http_listen = "127.0.0.1:8080";
  LogLevel log_level = LogLevel::kInfo;
};

// Errors: InvalidArgument listing every problem as file:line:column: key: message.
Result<ServerConfig> ParseServerConfig(std::string_view text, const std::string& file_name);
Result<ServerConfig> LoadServerConfig(const std::string& path);

}  // namespace kiln::server
