#pragma once
// OPC UA device configuration: the OPC UA keys of one [[devices]] table of the edge TOML and of
// its [[devices.tags]], as plain values. Like the Modbus keys (drivers/modbus/modbus_config.h),
// the edge parses the generic keys (id, poll_ms, name, unit, deadband, heartbeat_s, write
// rules) itself. Value types; thread-compatible.
//
//   [[devices]]
//   driver = "opcua"
//   endpoint = "opc.tcp://10.0.0.5:4840"  # SecurityPolicy None
//   username = "operator"                # optional; with password (sent in clear)
//   password = "secret"
//   timeout_ms = 5000                    # connect and each request (default 5000)
//   publishing_ms = 0                    # subscription publishing interval; 0: the smallest
//                                        # sampling_ms of the subscribed tags
//     [[devices.tags]]
//     node_id = "ns=2;s=Temperature"     # the Variable's NodeId in text form
//     type = "float64"                   # published type (default float64)
//     mode = "subscribe"                 # default; or "poll": read every poll_ms
//     sampling_ms = 1000                 # subscribe: the server samples this often
//     queue_size = 1                     # subscribe: values the server keeps between publishes
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "contract/sample.h"
#include "contract/value.h"
#include "core/config.h"
#include "core/status.h"
#include "drivers/opcua/types.h"

namespace kiln::drivers::opcua {

enum class TagMode : uint8_t { kSubscribe, kPoll };

std::string_view TagModeName(TagMode mode);

struct OpcUaTag {
  contract::TagId id = 0;  // filled by the caller (the edge numbers tags in file order)
  std::string name;        // for messages; filled by the caller
  NodeId node_id;
  contract::ValueType type = contract::ValueType::kDouble;  // published type
  TagMode mode = TagMode::kSubscribe;
  std::chrono::milliseconds sampling{1000};  // subscribe
  uint32_t queue_size = 1;                   // subscribe
  double deadband = 0;  // absolute, filled by the caller; subscribe: the server filters too

  friend bool operator==(const OpcUaTag&, const OpcUaTag&) = default;
};

struct OpcUaDeviceConfig {
  std::string endpoint;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::chrono::milliseconds timeout{5000};
  std::chrono::milliseconds poll{1000};     // poll-mode tags; filled by the caller
  std::chrono::milliseconds publishing{0};  // 0: the smallest sampling of the subscribed tags
  std::vector<OpcUaTag> tags;

  friend bool operator==(const OpcUaDeviceConfig&, const OpcUaDeviceConfig&) = default;
};

// Reads the OPC UA keys of a [[devices]] table and of each of its [[devices.tags]] and records
// every problem through `device` (file:line:column: key: message): a missing or malformed
// endpoint, a password without a user name, a missing or malformed node_id, an unknown type
// or mode, sampling_ms or queue_size out of range, keys of the other mode. Returns one OpcUaTag
// per [[devices.tags]] entry in file order, even for an entry with errors; ids and names are
// left for the caller. Usable only if the document recorded no error.
OpcUaDeviceConfig ParseOpcUaDevice(const ConfigTable& device);

// The keys ParseOpcUaDevice reads in a [[devices]] table (including "tags") and in a
// [[devices.tags]] table.
const std::vector<std::string_view>& OpcUaDeviceKeys();
const std::vector<std::string_view>& OpcUaTagKeys();

}  // namespace kiln::drivers::opcua
