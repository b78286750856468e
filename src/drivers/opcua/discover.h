#pragma once
// Discover: browses an OPC UA server's address space for the Variables a kiln-edge device can
// publish, and prints them as a ready [[devices]] table (`kiln-edge discover`).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "contract/value.h"
#include "core/status.h"
#include "drivers/opcua/client.h"
#include "drivers/opcua/types.h"

namespace kiln::drivers::opcua {

struct DiscoveredVariable {
  NodeId node_id;
  std::string browse_name;  // without the namespace index
  std::string path;         // browse names from the root, joined by '/'
  std::string data_type;    // e.g. "Double", "DateTime", "ns=2;i=3002"
  // The tag type that publishes it; nullopt when Kiln cannot (arrays, structures, DateTime...).
  std::optional<contract::ValueType> type;
  bool writable = false;  // the session's user may write the value
};

struct DiscoverOptions {
  NodeId root = NodeId(0, 85);  // the Objects folder
  size_t max_depth = 16;        // levels below the root
  size_t max_nodes = 100000;    // nodes visited at most
  // Skip the nodes of namespace 0 below the root (the Server object and its diagnostics).
  bool skip_standard = true;
};

// Follows the forward hierarchical references from the root (not HasProperty), into Objects
// and folders, and returns the Variables found, in browse order, each once.
// Errors: as the Client's calls (Unavailable when the connection breaks).
Result<std::vector<DiscoveredVariable>> Discover(Client& client, const DiscoverOptions& options);

// The variables as a kiln-edge [[devices]] table in TOML: the device's driver and endpoint,
// then one [[devices.tags]] per variable with name (the browse name; the path when two share
// it), node_id and type, and a comment with the path; variables Kiln cannot publish are listed
// as comments.
std::string FormatDeviceToml(const std::vector<DiscoveredVariable>& variables,
                             std::string_view device_id, std::string_view endpoint);

}  // namespace kiln::drivers::opcua
