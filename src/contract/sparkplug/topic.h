#pragma once
// Sparkplug B 3.0 topic namespace: spBv1.0/group/TYPE/node[/device] and
// spBv1.0/STATE/host. Pure functions; thread-safe.
#include <string>
#include <string_view>

#include "core/status.h"

namespace kiln::sparkplug {

inline constexpr std::string_view kNamespace = "spBv1.0";

enum class MessageType { kNBirth, kNDeath, kNData, kNCmd, kDBirth, kDDeath, kDData, kDCmd, kState };

std::string_view MessageTypeName(MessageType type);  // "NBIRTH" ...
bool IsDeviceMessage(MessageType type);              // D* types carry a device id

struct Topic {
  MessageType type = MessageType::kNData;
  std::string group_id;
  std::string edge_node_id;
  std::string device_id;  // D* messages only
  std::string host_id;    // STATE only

  friend bool operator==(const Topic&, const Topic&) = default;
};

// Checks a group, edge node, device or host id: non-empty valid UTF-8 without '+', '/',
// '#' or NUL. `what` names the id in the error. Errors: InvalidArgument.
Status ValidateId(std::string_view id, std::string_view what);

// Builds the topic string. REQUIRES: the ids are valid (ValidateId) and device_id is set
// exactly for D* types.
std::string BuildTopic(const Topic& topic);
// Parses a topic string. Errors: InvalidArgument for anything that is not a Sparkplug B
// 3.0 topic (wrong namespace, unknown type, wrong number of levels, empty id).
Result<Topic> ParseTopic(std::string_view topic);

}  // namespace kiln::sparkplug
