#include "drivers/opcua/types.h"

#include <array>
#include <charconv>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>

namespace kiln::drivers::opcua {

static_assert(std::variant_size_v<VariantValue> == kMaxBuiltinTypeId + 1);
static_assert(std::is_same_v<std::variant_alternative_t<11, VariantValue>, double>);
static_assert(std::is_same_v<std::variant_alternative_t<12, VariantValue>, UaString>);
static_assert(std::is_same_v<std::variant_alternative_t<19, VariantValue>, contract::Quality>);
static_assert(std::is_same_v<std::variant_alternative_t<24, VariantValue>, Boxed<Variant>>);

namespace {

constexpr std::array<std::string_view, kMaxBuiltinTypeId + 1> kTypeNames = {
    "Null",          "Boolean",       "SByte",           "Byte",           "Int16",
    "UInt16",        "Int32",         "UInt32",          "Int64",          "UInt64",
    "Float",         "Double",        "String",          "DateTime",       "Guid",
    "ByteString",    "XmlElement",    "NodeId",          "ExpandedNodeId", "StatusCode",
    "QualifiedName", "LocalizedText", "ExtensionObject", "DataValue",      "Variant",
    "DiagnosticInfo"};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64Encode(const std::vector<uint8_t>& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kBase64Alphabet[(v >> shift) & 63]);
  }
  if (i < in.size()) {
    uint32_t v = uint32_t{in[i]} << 16;
    if (i + 1 < in.size()) v |= uint32_t{in[i + 1]} << 8;
    out.push_back(kBase64Alphabet[(v >> 18) & 63]);
    out.push_back(kBase64Alphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kBase64Alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

Result<std::vector<uint8_t>> Base64Decode(std::string_view in) {
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  size_t padding = 0;
  for (char c : in) {
    if (c == '=') {
      ++padding;
      continue;
    }
    const size_t v = kBase64Alphabet.find(c);
    if (v == std::string_view::npos || padding > 0) {
      return InvalidArgumentError("invalid base64 in NodeId");
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  if (padding > 2 || (in.size() % 4 != 0 && padding > 0)) {
    return InvalidArgumentError("invalid base64 padding in NodeId");
  }
  return out;
}

Result<uint32_t> ParseUInt32(std::string_view s, std::string_view what) {
  uint32_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
    return InvalidArgumentError("invalid " + std::string(what) + " '" + std::string(s) + "'");
  }
  return v;
}

}  // namespace

std::string BuiltinTypeName(BuiltinType type) {
  const auto id = static_cast<uint8_t>(type);
  if (id <= kMaxBuiltinTypeId) return std::string(kTypeNames[id]);
  return "Reserved" + std::to_string(id);
}

// --- Guid ------------------------------------------------------------------------------------

std::string Guid::ToString() const {
  char buf[37];
  std::snprintf(buf, sizeof(buf), "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X", data1, data2,
                data3, data4[0], data4[1], data4[2], data4[3], data4[4], data4[5], data4[6],
                data4[7]);
  return buf;
}

Result<Guid> Guid::Parse(std::string_view text) {
  // 8-4-4-4-12 hex digits.
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' ||
      text[23] != '-') {
    return InvalidArgumentError("invalid Guid '" + std::string(text) + "'");
  }
  std::array<uint8_t, 16> b{};
  size_t n = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) continue;
    const int hi = HexValue(text[i]);
    const int lo = i + 1 < text.size() ? HexValue(text[i + 1]) : -1;
    if (hi < 0 || lo < 0) return InvalidArgumentError("invalid Guid '" + std::string(text) + "'");
    b[n++] = static_cast<uint8_t>(hi << 4 | lo);
    ++i;
  }
  Guid g;
  g.data1 = uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
  g.data2 = static_cast<uint16_t>(b[4] << 8 | b[5]);
  g.data3 = static_cast<uint16_t>(b[6] << 8 | b[7]);
  for (size_t i = 0; i < 8; ++i) g.data4[i] = b[8 + i];
  return g;
}

// --- DateTime --------------------------------------------------------------------------------

Timestamp DateTime::ToTimestamp() const {
  if (ticks <= 0) return Timestamp::min();
  if (ticks == kMaxTicks) return Timestamp::max();
  const int64_t since_unix = ticks - kUnixEpochTicks;  // no overflow: ticks > 0
  constexpr int64_t kLimit = std::numeric_limits<int64_t>::max() / 100;
  if (since_unix > kLimit) return Timestamp::max();
  if (since_unix < -kLimit) return Timestamp::min();
  return Timestamp(std::chrono::nanoseconds(since_unix * 100));
}

DateTime DateTime::FromTimestamp(Timestamp t) {
  if (t == Timestamp::min()) return DateTime{0};
  if (t == Timestamp::max()) return DateTime{kMaxTicks};
  const int64_t ns = t.time_since_epoch().count();
  int64_t ticks = ns / 100;
  if (ns % 100 < 0) --ticks;  // floor, so times before 1970 round down like later ones
  // Every Timestamp lies within 1677..2262, well inside 1601..9999: no clamping needed here.
  const int64_t result = ticks + kUnixEpochTicks;
  return DateTime{result <= 0 ? 0 : result};
}

// --- NodeId ----------------------------------------------------------------------------------

NodeId NodeId::Opaque(uint16_t ns, std::vector<uint8_t> id) {
  NodeId n;
  n.namespace_index = ns;
  n.identifier = std::move(id);
  return n;
}

bool NodeId::is_null() const {
  const uint32_t* n = std::get_if<uint32_t>(&identifier);
  return namespace_index == 0 && n != nullptr && *n == 0;
}

std::optional<uint32_t> NodeId::numeric() const {
  const uint32_t* n = std::get_if<uint32_t>(&identifier);
  if (n == nullptr) return std::nullopt;
  return *n;
}

std::string NodeId::ToString() const {
  std::string out;
  if (namespace_index != 0) out = "ns=" + std::to_string(namespace_index) + ";";
  switch (type()) {
    case IdType::kNumeric:
      out += "i=" + std::to_string(std::get<uint32_t>(identifier));
      break;
    case IdType::kString:
      out += "s=" + std::get<std::string>(identifier);
      break;
    case IdType::kGuid:
      out += "g=" + std::get<Guid>(identifier).ToString();
      break;
    case IdType::kOpaque:
      out += "b=" + Base64Encode(std::get<std::vector<uint8_t>>(identifier));
      break;
  }
  return out;
}

Result<NodeId> NodeId::Parse(std::string_view text) {
  std::string_view rest = text;
  uint16_t ns = 0;
  if (rest.starts_with("ns=")) {
    const size_t semi = rest.find(';');
    if (semi == std::string_view::npos) {
      return InvalidArgumentError("NodeId '" + std::string(text) + "': missing ';' after ns=");
    }
    KILN_ASSIGN_OR_RETURN(uint32_t n, ParseUInt32(rest.substr(3, semi - 3), "namespace index"));
    if (n > 0xFFFF) {
      return InvalidArgumentError("NodeId '" + std::string(text) + "': namespace index > 65535");
    }
    ns = static_cast<uint16_t>(n);
    rest.remove_prefix(semi + 1);
  }
  if (rest.size() < 2 || rest[1] != '=') {
    return InvalidArgumentError("NodeId '" + std::string(text) +
                                "': expected i=, s=, g= or b= identifier");
  }
  const std::string_view id = rest.substr(2);
  switch (rest[0]) {
    case 'i': {
      KILN_ASSIGN_OR_RETURN(uint32_t n, ParseUInt32(id, "numeric identifier"));
      return NodeId(ns, n);
    }
    case 's':
      return NodeId(ns, std::string(id));
    case 'g': {
      KILN_ASSIGN_OR_RETURN(Guid g, Guid::Parse(id));
      return NodeId(ns, g);
    }
    case 'b': {
      KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, Base64Decode(id));
      return NodeId::Opaque(ns, std::move(bytes));
    }
    default:
      return InvalidArgumentError("NodeId '" + std::string(text) + "': unknown identifier type '" +
                                  std::string(1, rest[0]) + "'");
  }
}

std::string ExpandedNodeId::ToString() const {
  std::string out;
  if (server_index != 0) out += "svr=" + std::to_string(server_index) + ";";
  if (namespace_uri.has_value()) {
    out += "nsu=" + *namespace_uri + ";";
    NodeId without_ns = node_id;
    without_ns.namespace_index = 0;
    return out + without_ns.ToString();
  }
  return out + node_id.ToString();
}

// --- Variant, DataValue, DiagnosticInfo ------------------------------------------------------

Variant Variant::Scalar(VariantValue v) {
  Variant out;
  out.type = static_cast<BuiltinType>(v.index());
  out.value = std::move(v);
  return out;
}

Variant Variant::Array(BuiltinType type, std::vector<VariantValue> elements,
                       std::vector<int32_t> dimensions) {
  Variant out;
  out.type = type;
  out.is_array = true;
  out.elements = std::move(elements);
  out.dimensions = std::move(dimensions);
  return out;
}

bool operator==(const Variant& a, const Variant& b) {
  return a.type == b.type && a.is_array == b.is_array && a.value == b.value &&
         a.elements == b.elements && a.dimensions == b.dimensions;
}

uint8_t DataValue::EncodingMask() const {
  return static_cast<uint8_t>((value ? 0x01 : 0) | (status ? 0x02 : 0) |
                              (source_timestamp ? 0x04 : 0) | (server_timestamp ? 0x08 : 0) |
                              (source_picoseconds ? 0x10 : 0) | (server_picoseconds ? 0x20 : 0));
}

bool operator==(const DataValue& a, const DataValue& b) {
  return a.value == b.value && a.status == b.status && a.source_timestamp == b.source_timestamp &&
         a.source_picoseconds == b.source_picoseconds && a.server_timestamp == b.server_timestamp &&
         a.server_picoseconds == b.server_picoseconds;
}

uint8_t DiagnosticInfo::EncodingMask() const {
  return static_cast<uint8_t>((symbolic_id ? 0x01 : 0) | (namespace_uri ? 0x02 : 0) |
                              (localized_text ? 0x04 : 0) | (locale ? 0x08 : 0) |
                              (additional_info ? 0x10 : 0) | (inner_status_code ? 0x20 : 0) |
                              (inner_diagnostic_info ? 0x40 : 0));
}

bool operator==(const DiagnosticInfo& a, const DiagnosticInfo& b) {
  return a.symbolic_id == b.symbolic_id && a.namespace_uri == b.namespace_uri &&
         a.localized_text == b.localized_text && a.locale == b.locale &&
         a.additional_info == b.additional_info && a.inner_status_code == b.inner_status_code &&
         a.inner_diagnostic_info == b.inner_diagnostic_info;
}

// --- contract::Value ------------------------------------------------------------------------

std::optional<contract::Value> ToContractValue(const Variant& v) {
  if (v.is_array) return std::nullopt;
  return std::visit(
      [](const auto& x) -> std::optional<contract::Value> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_arithmetic_v<T>) {
          return contract::Value(x);
        } else if constexpr (std::is_same_v<T, UaString>) {
          return x ? contract::Value(*x) : contract::Value();
        } else {
          return std::nullopt;
        }
      },
      v.value);
}

Variant FromContractValue(const contract::Value& v) {
  return std::visit(
      [](const auto& x) -> Variant {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return Variant();
        } else if constexpr (std::is_same_v<T, std::string>) {
          return Variant::Scalar(UaString(x));
        } else {
          return Variant::Scalar(VariantValue(std::in_place_type<T>, x));
        }
      },
      v.storage());
}

}  // namespace kiln::drivers::opcua
