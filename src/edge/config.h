#pragma once
// The kiln-edge configuration (TOML, see docs/CONFIGURATION.md) and its loader, which
// reports every error with file, line and key.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "contract/sample.h"
#include "core/log.h"
#include "core/status.h"
#include "drivers/modbus/modbus_config.h"
#include "drivers/opcua/opcua_config.h"
#include "mqtt/client.h"
#include "queue/journal.h"

namespace kiln::edge {

// `interlock = { tag = "Mode", equals = 1 }`: a write is allowed only while another tag of
// the same device currently has a Good value equal to `equals`.
struct Interlock {
  std::string tag;    // the name of another tag of the same device
  double equals = 0;  // compared numerically; a bool tag is 1 (true) or 0 (false)

  friend bool operator==(const Interlock&, const Interlock&) = default;
};

// What OT allows commands to write to one tag; enforced by CommandGate (edge/command_gate.h).
// The loader guarantees: min <= max, both finite; min, max, min_write_interval and
// interlock only when writable; the interlock names another tag of the device.
struct WriteRules {
  bool writable = false;
  std::optional<double> min;  // inclusive, in the published unit
  std::optional<double> max;  // inclusive
  // A write sooner than this after the last write to the tag is refused; 0: no limit.
  std::chrono::milliseconds min_write_interval{0};
  std::optional<Interlock> interlock;

  friend bool operator==(const WriteRules&, const WriteRules&) = default;
};

struct TagConfig {
  contract::TagId id = 0;  // assigned in file order across all devices
  std::string name;
  std::string unit;
  double deadband = 0;
  std::optional<std::chrono::milliseconds> heartbeat;
  contract::ValueType type = contract::ValueType::kDouble;  // published type
  WriteRules write;  // writable, min, max, min_write_interval, interlock
};

struct DeviceConfig {
  std::string id;
  std::string driver;  // "modbus-tcp" | "modbus-rtu" | "opcua"
  std::chrono::milliseconds poll{1000};
  std::vector<TagConfig> tags;
  drivers::modbus::ModbusDeviceConfig modbus;  // driver modbus-*
  drivers::opcua::OpcUaDeviceConfig opcua;     // driver opcua
};

struct EdgeConfig {
  std::string file;
  std::string group_id;
  std::string edge_node_id;
  std::string mqtt_url;
  mqtt::ClientOptions mqtt;
  std::string http_listen = "127.0.0.1:9102";
  std::string state_dir;  // [store] path; empty: nothing persisted, samples kept in memory
  // [store] budget, age limit, segments, fsync policy and compression of the journal kept in
  // <path>/queue (dir, env and tag_fingerprint are set by the caller).
  queue::JournalOptions journal;
  double replay_rate = 1000000;       // [store] replay_rate: backlog samples/s at most
  size_t queue_max_samples = 100000;  // [queue] without [store] path
  size_t max_metrics_per_message = 1000;
  std::string primary_host_id;  // [sparkplug] primary_host_id; empty: none
  LogLevel log_level = LogLevel::kInfo;
  std::vector<DeviceConfig> devices;
  std::vector<std::string> warnings;  // suspicious but accepted (e.g. names differing in case)
};

// A fingerprint of the tag table (device ids, tag names and types in id order): samples
// stored under another fingerprint may use ids that now mean other tags.
uint64_t TagFingerprint(const EdgeConfig& config);

// Loads and validates a config file. Errors: NotFound when unreadable; InvalidArgument
// listing every problem, one per line, as "file:line:column: key: message".
Result<EdgeConfig> LoadEdgeConfig(const std::string& path);
Result<EdgeConfig> ParseEdgeConfig(std::string_view text, const std::string& file_name);

}  // namespace kiln::edge
