#include "drivers/opcua/opcua_config.h"

#include <fmt/format.h>

#include "drivers/opcua/client.h"

namespace kiln::drivers::opcua {

std::string_view TagModeName(TagMode mode) { return mode == TagMode::kPoll ? "poll" : "subscribe"; }

const std::vector<std::string_view>& OpcUaDeviceKeys() {
  static const std::vector<std::string_view> keys = {"endpoint",   "username",      "password",
                                                     "timeout_ms", "publishing_ms", "tags"};
  return keys;
}

const std::vector<std::string_view>& OpcUaTagKeys() {
  static const std::vector<std::string_view> keys = {"node_id", "type", "mode", "sampling_ms",
                                                     "queue_size"};
  return keys;
}

OpcUaDeviceConfig ParseOpcUaDevice(const ConfigTable& device) {
  OpcUaDeviceConfig config;
  if (auto endpoint = device.RequireString("endpoint")) {
    config.endpoint = *endpoint;
    if (Result<EndpointUrl> url = ParseEndpointUrl(*endpoint); !url.ok()) {
      device.Error("endpoint", url.status().message());
    }
  }
  config.username = device.GetString("username");
  config.password = device.GetString("password");
  if (config.password && !config.username) device.Error("password", "needs username");
  if (config.username && config.username->empty()) device.Error("username", "must not be empty");
  config.timeout = std::chrono::milliseconds(device.GetInt("timeout_ms", 5000, 100, 600000));
  config.publishing = std::chrono::milliseconds(device.GetInt("publishing_ms", 0, 0, 3600000));

  for (const ConfigTable& t : device.GetTableArray("tags")) {
    OpcUaTag tag;
    if (auto text = t.RequireString("node_id")) {
      Result<NodeId> id = NodeId::Parse(*text);
      if (id.ok()) {
        tag.node_id = std::move(*id);
      } else {
        t.Error("node_id", id.status().message());
      }
    }
    const std::string type = t.GetString("type", "float64");
    std::optional<contract::ValueType> parsed = contract::ParseValueType(type);
    if (!parsed || *parsed == contract::ValueType::kNull) {
      t.Error("type", fmt::format("'{}' is not one of bool int8 int16 int32 int64 uint8 uint16 "
                                  "uint32 uint64 float32 float64 string",
                                  type));
    } else {
      tag.type = *parsed;
    }
    const std::string mode = t.GetString("mode", "subscribe");
    if (mode == "poll") {
      tag.mode = TagMode::kPoll;
      for (std::string_view key : {"sampling_ms", "queue_size"}) {
        if (t.Has(key)) t.Error(key, "only for mode = \"subscribe\" (poll tags use poll_ms)");
      }
    } else if (mode != "subscribe") {
      t.Error("mode", fmt::format("'{}' is not subscribe or poll", mode));
    }
    tag.sampling = std::chrono::milliseconds(t.GetInt("sampling_ms", 1000, 0, 3600000));
    tag.queue_size = static_cast<uint32_t>(t.GetInt("queue_size", 1, 1, 10000));
    config.tags.push_back(std::move(tag));
  }
  return config;
}

}  // namespace kiln::drivers::opcua
