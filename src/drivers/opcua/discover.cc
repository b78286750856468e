#include "drivers/opcua/discover.h"

#include <fmt/format.h>

#include <deque>
#include <map>
#include <set>
#include <utility>

#include "core/json.h"

namespace kiln::drivers::opcua {
namespace {

constexpr uint32_t kNodeClassObject = 1;
constexpr uint32_t kNodeClassVariable = 2;
constexpr uint32_t kHasProperty = 46;
constexpr uint32_t kAccessCurrentWrite = 0x02;
constexpr size_t kReadBatch = 1000;

// The tag type of a built-in DataType (ns=0, i=1..12), or of Enumeration (an Int32).
std::optional<contract::ValueType> TagType(const NodeId& data_type) {
  using contract::ValueType;
  if (data_type.namespace_index != 0 || !data_type.numeric()) return std::nullopt;
  switch (*data_type.numeric()) {
    case 1:
      return ValueType::kBool;
    case 2:
      return ValueType::kInt8;
    case 3:
      return ValueType::kUInt8;
    case 4:
      return ValueType::kInt16;
    case 5:
      return ValueType::kUInt16;
    case 6:
    case 29:  // Enumeration
      return ValueType::kInt32;
    case 7:
      return ValueType::kUInt32;
    case 8:
      return ValueType::kInt64;
    case 9:
      return ValueType::kUInt64;
    case 10:
      return ValueType::kFloat;
    case 11:
    case 26:   // Number
    case 290:  // Duration (a Double in milliseconds)
      return ValueType::kDouble;
    case 27:  // Integer
      return ValueType::kInt64;
    case 28:  // UInteger
      return ValueType::kUInt64;
    case 12:
      return ValueType::kString;
    default:
      return std::nullopt;
  }
}

std::string DataTypeName(const NodeId& data_type) {
  if (data_type.namespace_index == 0 && data_type.numeric()) {
    const uint32_t id = *data_type.numeric();
    if (id >= 1 && id <= kMaxBuiltinTypeId) return BuiltinTypeName(static_cast<BuiltinType>(id));
    if (id == 29) return "Enumeration";
    if (id == 26) return "Number";
    if (id == 27) return "Integer";
    if (id == 28) return "UInteger";
    if (id == 290) return "Duration";
    if (id == 294) return "UtcTime";
  }
  return data_type.ToString();
}

struct Pending {
  NodeId node;
  std::string path;
  size_t depth = 0;
};

}  // namespace

Result<std::vector<DiscoveredVariable>> Discover(Client& client, const DiscoverOptions& options) {
  std::vector<DiscoveredVariable> found;
  std::set<std::string> seen{options.root.ToString()};
  std::deque<Pending> queue{{options.root, "", 0}};
  while (!queue.empty() && seen.size() < options.max_nodes) {
    Pending at = std::move(queue.front());
    queue.pop_front();
    KILN_ASSIGN_OR_RETURN(BrowseResult result, client.Browse(at.node));
    if (result.status_code.IsBad()) continue;  // e.g. BadUserAccessDenied: nothing below
    std::vector<ReferenceDescription> refs = std::move(result.references);
    for (int rounds = 0; result.continuation_point && rounds < 10000; ++rounds) {
      KILN_ASSIGN_OR_RETURN(result, client.BrowseNext(*result.continuation_point));
      refs.insert(refs.end(), std::make_move_iterator(result.references.begin()),
                  std::make_move_iterator(result.references.end()));
    }
    for (ReferenceDescription& ref : refs) {
      if (ref.node_id.server_index != 0) continue;  // on another server
      if (ref.reference_type_id == NodeId(0, kHasProperty)) continue;
      NodeId node = std::move(ref.node_id.node_id);
      if (options.skip_standard && node.namespace_index == 0) continue;
      if (!seen.insert(node.ToString()).second) continue;
      const std::string name = ref.browse_name.name.value_or("");
      std::string path = at.path.empty() ? name : at.path + "/" + name;
      if (ref.node_class == kNodeClassVariable) {
        found.push_back({node, name, path, "", std::nullopt, false});
      } else if (ref.node_class == kNodeClassObject && at.depth + 1 < options.max_depth) {
        queue.push_back({std::move(node), std::move(path), at.depth + 1});
      }
      if (seen.size() >= options.max_nodes) break;
    }
  }

  // DataType, ValueRank and UserAccessLevel of each variable, in batches the server takes
  // (halved while it answers BadTooManyOperations).
  size_t batch = kReadBatch;
  size_t start = 0;
  while (start < found.size()) {
    const size_t end = std::min(found.size(), start + batch);
    std::vector<NodeId> nodes;
    for (size_t i = start; i < end; ++i) nodes.push_back(found[i].node_id);
    Result<std::vector<DataValue>> types = client.Read(nodes, kAttributeDataType);
    Result<std::vector<DataValue>> ranks =
        types.ok() ? client.Read(nodes, kAttributeValueRank) : types;
    Result<std::vector<DataValue>> access =
        ranks.ok() ? client.Read(nodes, kAttributeUserAccessLevel) : ranks;
    if (!access.ok()) {
      if (batch > 1 && client.connected() &&
          access.status().message().starts_with("BadTooManyOperations")) {
        batch = std::max<size_t>(1, batch / 2);
        continue;
      }
      return access.status();
    }
    for (size_t i = start; i < end; ++i) {
      DiscoveredVariable& v = found[i];
      const size_t k = i - start;
      const NodeId* type = (*types)[k].value ? (*types)[k].value->get_if<NodeId>() : nullptr;
      const int32_t* rank = (*ranks)[k].value ? (*ranks)[k].value->get_if<int32_t>() : nullptr;
      const uint8_t* level = (*access)[k].value ? (*access)[k].value->get_if<uint8_t>() : nullptr;
      v.data_type = type != nullptr ? DataTypeName(*type) : "unknown";
      const bool scalar = rank == nullptr || *rank == -1;
      if (type != nullptr && scalar) v.type = TagType(*type);
      if (!scalar) v.data_type += "[]";
      v.writable = level != nullptr && (*level & kAccessCurrentWrite) != 0;
    }
    start = end;
  }
  return found;
}

namespace {

// `s` as a TOML basic string: like a JSON string, plus DEL escaped (TOML forbids it raw).
std::string TomlQuoted(std::string_view s) {
  std::string out;
  json::AppendQuoted(out, s);
  for (size_t at = out.find('\x7f'); at != std::string::npos; at = out.find('\x7f', at)) {
    out.replace(at, 1, "\\u007F");
  }
  return out;
}

// `s` fit for a TOML comment, which must stay on its line and holds no control characters.
std::string CommentText(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == '\x7f') c = '?';
  }
  return out;
}

}  // namespace

std::string FormatDeviceToml(const std::vector<DiscoveredVariable>& variables,
                             std::string_view device_id, std::string_view endpoint) {
  auto quoted = TomlQuoted;
  std::map<std::string, int> name_count;
  std::set<std::string> used;
  size_t usable = 0;
  for (const DiscoveredVariable& v : variables) {
    if (v.type) {
      ++name_count[v.browse_name];
      ++usable;
    }
  }
  std::string out = fmt::format(
      "# {} variables found on {} by kiln-edge discover ({} Kiln can publish).\n"
      "# Add [node] and [mqtt] (docs/CONFIGURATION.md), then remove what you do not need.\n"
      "\n"
      "[[devices]]\n"
      "id = {}\n"
      "driver = \"opcua\"\n"
      "endpoint = {}\n",
      variables.size(), CommentText(endpoint), usable, quoted(device_id), quoted(endpoint));
  for (const DiscoveredVariable& v : variables) {
    if (!v.type) {
      out += fmt::format("\n  # not publishable: {} ({}), {}\n", CommentText(v.path),
                         CommentText(v.node_id.ToString()), CommentText(v.data_type));
      continue;
    }
    // Tag names must be unique: the browse name, else the path, else the node id.
    std::string name =
        name_count[v.browse_name] > 1 || v.browse_name.empty() ? v.path : v.browse_name;
    if (!used.insert(name).second) {
      name = v.node_id.ToString();
      used.insert(name);
    }
    out += fmt::format(
        "\n  [[devices.tags]]  # {}{}\n"
        "  name = {}\n"
        "  node_id = {}\n"
        "  type = \"{}\"\n",
        CommentText(v.path), v.writable ? " (writable)" : "", quoted(name),
        quoted(v.node_id.ToString()), contract::ValueTypeName(*v.type));
  }
  return out;
}

}  // namespace kiln::drivers::opcua
