#pragma once
// Parsing of network addresses as users write them in configs: "host:port", "host" (with a
// default port) and "[IPv6]:port". Pure functions; thread-safe.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace kiln {

struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
};

struct HostPortOptions {
  std::optional<uint16_t> default_port;  // used when the text has no port; unset: required
  bool allow_port_zero = false;          // listen addresses: 0 = any free port
};

// Errors: InvalidArgument naming what is wrong ("'h:x': 'x' is not a port (1..65535)").
Result<HostPort> ParseHostPort(std::string_view text, const HostPortOptions& options);

}  // namespace kiln
