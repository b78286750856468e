#pragma once
// The Sparkplug B 3.0 STATE message of a host application: topic spBv1.0/STATE/<host_id>,
// payload JSON {"online": true|false, "timestamp": <ms since the epoch, UTC>}. Pure functions.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace kiln::sparkplug {

struct HostState {
  bool online = false;
  uint64_t timestamp = 0;
  friend bool operator==(const HostState&, const HostState&) = default;
};

// Parses a STATE payload. Both members are required; others are ignored. Errors:
// InvalidArgument naming what is missing or malformed (never trusts the input).
Result<HostState> ParseHostState(std::string_view json);
// {"online":true,"timestamp":1700000000000}
std::string BuildHostState(const HostState& state);

}  // namespace kiln::sparkplug
