#include "contract/sparkplug/topic.h"

#include <fmt/format.h>

#include <array>
#include <vector>

namespace kiln::sparkplug {

namespace {
constexpr std::array<std::pair<MessageType, std::string_view>, 9> kTypes = {{
    {MessageType::kNBirth, "NBIRTH"},
    {MessageType::kNDeath, "NDEATH"},
    {MessageType::kNData, "NDATA"},
    {MessageType::kNCmd, "NCMD"},
    {MessageType::kDBirth, "DBIRTH"},
    {MessageType::kDDeath, "DDEATH"},
    {MessageType::kDData, "DDATA"},
    {MessageType::kDCmd, "DCMD"},
    {MessageType::kState, "STATE"},
}};

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values above U+10FFFF are invalid.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

void Split(std::string_view s, std::vector<std::string_view>& out) {
  size_t start = 0;
  while (true) {
    const size_t pos = s.find('/', start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}
}  // namespace

std::string_view MessageTypeName(MessageType type) {
  for (const auto& [t, name] : kTypes) {
    if (t == type) return name;
  }
  return "?";
}

bool IsDeviceMessage(MessageType type) {
  return type == MessageType::kDBirth || type == MessageType::kDDeath ||
         type == MessageType::kDData || type == MessageType::kDCmd;
}

Status ValidateId(std::string_view id, std::string_view what) {
  if (id.empty()) return InvalidArgumentError(fmt::format("{} must not be empty", what));
  if (!ValidUtf8(id)) return InvalidArgumentError(fmt::format("{} is not valid UTF-8", what));
  for (char c : id) {
    if (c == '+' || c == '/' || c == '#' || c == '\0') {
      return InvalidArgumentError(
          fmt::format("{} '{}' contains '{}', which MQTT does not allow inside a topic level", what,
                      id, c == '\0' ? std::string("NUL") : std::string(1, c)));
    }
  }
  return OkStatus();
}

std::string BuildTopic(const Topic& t) {
  if (t.type == MessageType::kState) return fmt::format("{}/STATE/{}", kNamespace, t.host_id);
  std::string out =
      fmt::format("{}/{}/{}/{}", kNamespace, t.group_id, MessageTypeName(t.type), t.edge_node_id);
  if (IsDeviceMessage(t.type)) {
    out += '/';
    out += t.device_id;
  }
  return out;
}

Result<Topic> ParseTopic(std::string_view topic) {
  std::vector<std::string_view> parts;
  Split(topic, parts);
  if (parts.size() < 3 || parts[0] != kNamespace) {
    return InvalidArgumentError(fmt::format("'{}' is not in the {} namespace", topic, kNamespace));
  }
  for (auto p : parts) {
    if (p.empty()) return InvalidArgumentError(fmt::format("'{}' has an empty level", topic));
  }
  Topic t;
  if (parts[1] == "STATE") {
    if (parts.size() != 3) return InvalidArgumentError(fmt::format("'{}': bad STATE topic", topic));
    t.type = MessageType::kState;
    t.host_id = std::string(parts[2]);
    return t;
  }
  if (parts.size() < 4) return InvalidArgumentError(fmt::format("'{}': too few levels", topic));
  bool found = false;
  for (const auto& [type, name] : kTypes) {
    if (name == parts[2] && type != MessageType::kState) {
      t.type = type;
      found = true;
    }
  }
  if (!found) {
    return InvalidArgumentError(fmt::format("'{}': unknown message type '{}'", topic, parts[2]));
  }
  const size_t want = IsDeviceMessage(t.type) ? 5 : 4;
  if (parts.size() != want) {
    return InvalidArgumentError(
        fmt::format("'{}': {} needs {} levels, found {}", topic, parts[2], want, parts.size()));
  }
  t.group_id = std::string(parts[1]);
  t.edge_node_id = std::string(parts[3]);
  if (want == 5) t.device_id = std::string(parts[4]);
  return t;
}

}  // namespace kiln::sparkplug
