#pragma once
// The built-in data types of OPC UA (OPC 10000-6 §5.1.2, binary layout in §5.2.2) as plain
// value types: NodeId, ExpandedNodeId, QualifiedName, LocalizedText, Guid, DateTime,
// ExtensionObject, Variant, DataValue and DiagnosticInfo. A StatusCode is a contract::Quality.
// Their binary encoding lives in drivers/opcua/encoding.h. Value types; thread-compatible.
//
// Nullable strings: a UA String, XmlElement and ByteString may be null (length −1 on the wire),
// which is different from empty. UaString and ByteString are std::optional so that the
// difference survives a decode/encode round trip.
#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "contract/quality.h"
#include "contract/value.h"
#include "core/clock.h"
#include "core/status.h"

namespace kiln::drivers::opcua {

// A UA String (UTF-8): std::nullopt is the null string.
using UaString = std::optional<std::string>;
// A UA ByteString: std::nullopt is the null ByteString.
using ByteString = std::optional<std::vector<uint8_t>>;

// A UA XmlElement: a String that holds XML. A distinct type so a Variant can tell it from a
// String.
struct XmlElement {
  UaString xml;
  friend bool operator==(const XmlElement&, const XmlElement&) = default;
};

// The built-in type ids of OPC 10000-6 Table 1, as they appear in a Variant's encoding mask.
enum class BuiltinType : uint8_t {
  kNull = 0,
  kBoolean = 1,
  kSByte = 2,
  kByte = 3,
  kInt16 = 4,
  kUInt16 = 5,
  kInt32 = 6,
  kUInt32 = 7,
  kInt64 = 8,
  kUInt64 = 9,
  kFloat = 10,
  kDouble = 11,
  kString = 12,
  kDateTime = 13,
  kGuid = 14,
  kByteString = 15,
  kXmlElement = 16,
  kNodeId = 17,
  kExpandedNodeId = 18,
  kStatusCode = 19,
  kQualifiedName = 20,
  kLocalizedText = 21,
  kExtensionObject = 22,
  kDataValue = 23,
  kVariant = 24,
  kDiagnosticInfo = 25,
  // Ids 26..31 are reserved; a decoder passes them on with a ByteString value (§5.2.2.16).
};
inline constexpr uint8_t kMaxBuiltinTypeId = 25;
inline constexpr uint8_t kMaxReservedTypeId = 31;

// "Double", "StatusCode"; "Reserved27" for the reserved ids.
std::string BuiltinTypeName(BuiltinType type);

// A Guid (§5.2.2.7). Text form: 72962B91-FA75-4AE6-8D28-B404DC7DAF63.
struct Guid {
  uint32_t data1 = 0;
  uint16_t data2 = 0;
  uint16_t data3 = 0;
  std::array<uint8_t, 8> data4{};

  std::string ToString() const;
  // Errors: InvalidArgument unless `text` is 8-4-4-4-12 hex digits.
  static Result<Guid> Parse(std::string_view text);
  friend auto operator<=>(const Guid&, const Guid&) = default;
};

// A DateTime (§5.2.2.5): 100 ns ticks since 1601-01-01 00:00 UTC. 0 is DateTime.MinValue
// ("not set"); INT64_MAX is DateTime.MaxValue.
struct DateTime {
  int64_t ticks = 0;

  static constexpr int64_t kUnixEpochTicks = 116444736000000000;  // 1970-01-01 in ticks
  static constexpr int64_t kMaxTicks = INT64_MAX;

  // The special values clamp (§5.2.2.5): 0, a negative value and anything before the earliest
  // Timestamp (1677-09-21) become Timestamp::min(); INT64_MAX and anything after the latest
  // Timestamp (2262-04-11) become Timestamp::max().
  Timestamp ToTimestamp() const;
  // The inverse: Timestamp::min() and anything at or before 1601 become 0 (MinValue),
  // Timestamp::max() becomes INT64_MAX (MaxValue). Sub-100 ns digits are truncated.
  static DateTime FromTimestamp(Timestamp t);
  bool is_min() const { return ticks <= 0; }

  friend auto operator<=>(const DateTime&, const DateTime&) = default;
};

// How a NodeId's identifier is given (§5.2.2.9).
enum class IdType : uint8_t { kNumeric = 0, kString = 1, kGuid = 2, kOpaque = 3 };

// A NodeId: namespace index plus a numeric, string, Guid or opaque (ByteString) identifier.
// The default is the null NodeId ns=0;i=0. The encoder chooses the smallest numeric form
// (TwoByte, FourByte, Numeric) itself. A null String or ByteString identifier on the wire
// decodes as empty.
struct NodeId {
  using Identifier = std::variant<uint32_t, std::string, Guid, std::vector<uint8_t>>;

  uint16_t namespace_index = 0;
  Identifier identifier = uint32_t{0};

  NodeId() = default;
  NodeId(uint16_t ns, uint32_t id) : namespace_index(ns), identifier(id) {}
  NodeId(uint16_t ns, std::string id) : namespace_index(ns), identifier(std::move(id)) {}
  NodeId(uint16_t ns, Guid id) : namespace_index(ns), identifier(id) {}
  static NodeId Opaque(uint16_t ns, std::vector<uint8_t> id);

  IdType type() const { return static_cast<IdType>(identifier.index()); }
  bool is_null() const;  // ns=0;i=0
  // The numeric identifier, or nullopt for the other forms.
  std::optional<uint32_t> numeric() const;

  // The text form of OPC 10000-6 §5.3.1.10: "i=85", "ns=1;s=Counter", "ns=2;g=<guid>",
  // "ns=3;b=<base64>".
  std::string ToString() const;
  // Parses the text form. Errors: InvalidArgument naming what is wrong.
  static Result<NodeId> Parse(std::string_view text);

  friend bool operator==(const NodeId&, const NodeId&) = default;
  friend bool operator<(const NodeId& a, const NodeId& b) {
    return std::tie(a.namespace_index, a.identifier) < std::tie(b.namespace_index, b.identifier);
  }
};

// An ExpandedNodeId (§5.2.2.10): a NodeId that may name its namespace by URI and live on
// another server. namespace_uri set <=> the 0x80 flag; server_index != 0 <=> the 0x40 flag.
struct ExpandedNodeId {
  NodeId node_id;
  UaString namespace_uri;
  uint32_t server_index = 0;

  ExpandedNodeId() = default;
  ExpandedNodeId(NodeId id) : node_id(std::move(id)) {}  // NOLINT: a NodeId is an expanded one
  std::string ToString() const;  // "svr=1;nsu=urn:x;s=Counter" (svr and nsu when set)
  friend bool operator==(const ExpandedNodeId&, const ExpandedNodeId&) = default;
};

// A QualifiedName (§5.2.2.13).
struct QualifiedName {
  uint16_t namespace_index = 0;
  UaString name;
  friend bool operator==(const QualifiedName&, const QualifiedName&) = default;
};

// A LocalizedText (§5.2.2.14). A field is on the wire iff it is set; a field that the mask says
// is present but that holds a null String decodes as unset.
struct LocalizedText {
  UaString locale;
  UaString text;
  friend bool operator==(const LocalizedText&, const LocalizedText&) = default;
};

// An ExtensionObject (§5.2.2.15): a structure as its encoding's NodeId plus an opaque body.
// Service code decodes the bodies it knows (drivers/opcua/services.h). A null body with
// encoding kByteString or kXml decodes as an empty body.
struct ExtensionObject {
  enum class Encoding : uint8_t { kNone = 0, kByteString = 1, kXml = 2 };

  NodeId type_id;
  Encoding encoding = Encoding::kNone;
  std::vector<uint8_t> body;

  bool is_empty() const { return encoding == Encoding::kNone; }
  friend bool operator==(const ExtensionObject&, const ExtensionObject&) = default;
};

// A heap-allocated T with value semantics (deep copy, deep compare): lets the recursive types
// (a Variant holding a DataValue holding a Variant) and the large, rare Variant alternatives
// live in a small std::variant. A moved-from Boxed may only be assigned or destroyed.
template <typename T>
class Boxed {
 public:
  Boxed() : p_(std::make_unique<T>()) {}
  Boxed(T value) : p_(std::make_unique<T>(std::move(value))) {}  // NOLINT: implicit on purpose
  Boxed(const Boxed& other) : p_(std::make_unique<T>(*other.p_)) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& other) {
    if (this != &other) p_ = std::make_unique<T>(*other.p_);
    return *this;
  }
  Boxed& operator=(Boxed&&) noexcept = default;
  ~Boxed() = default;

  const T& operator*() const { return *p_; }
  T& operator*() { return *p_; }
  const T* operator->() const { return p_.get(); }
  T* operator->() { return p_.get(); }
  const T& get() const { return *p_; }

  friend bool operator==(const Boxed& a, const Boxed& b) { return *a.p_ == *b.p_; }

 private:
  std::unique_ptr<T> p_;
};

struct Variant;
struct DataValue;
struct DiagnosticInfo;

template <typename T, typename V>
inline constexpr bool kIsVariantAlternative = false;
template <typename T, typename... Ts>
inline constexpr bool kIsVariantAlternative<T, std::variant<Ts...>> = (std::is_same_v<T, Ts> ||
                                                                       ...);

// One value of a Variant. The alternative's index is the built-in type id (0 = null), which
// keeps Variant's type and storage in step; the large or recursive types are boxed. Index 24
// (a Variant) only appears as an element of an array of Variants.
using VariantValue =
    std::variant<std::monostate, bool, int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t,
                 int64_t, uint64_t, float, double, UaString, DateTime, Guid, ByteString, XmlElement,
                 NodeId, Boxed<ExpandedNodeId>, contract::Quality, QualifiedName,
                 Boxed<LocalizedText>, Boxed<ExtensionObject>, Boxed<DataValue>, Boxed<Variant>,
                 Boxed<DiagnosticInfo>>;

// A Variant (§5.2.2.16): null, a scalar of one built-in type, or an array of one built-in type
// with optional ArrayDimensions (rank >= 2, higher rank first; their product is the number of
// elements). Arrays of Variants nest. A null array on the wire decodes as an empty array.
//
// Invariants (checked by the encoder, kept by the decoder): a scalar's `value` holds the
// alternative of `type`; every element of an array does. The reserved type ids 26..31 are
// accepted from the wire with ByteString values but never encoded.
struct Variant {
  BuiltinType type = BuiltinType::kNull;
  bool is_array = false;
  VariantValue value;                  // the scalar, when !is_array
  std::vector<VariantValue> elements;  // the elements, when is_array
  std::vector<int32_t> dimensions;     // ArrayDimensions when is_array and rank >= 2

  Variant() = default;  // null
  // A scalar of the type of the alternative `v` holds.
  static Variant Scalar(VariantValue v);
  // An array of `type`; `dimensions` empty for a one-dimensional array.
  static Variant Array(BuiltinType type, std::vector<VariantValue> elements,
                       std::vector<int32_t> dimensions = {});

  bool is_null() const { return type == BuiltinType::kNull && !is_array; }
  // The scalar as T (for boxed types: the unboxed T), or nullptr if it is not a scalar T.
  template <typename T>
  const T* get_if() const {
    if (is_array) return nullptr;
    if constexpr (kIsVariantAlternative<T, VariantValue>) {
      return std::get_if<T>(&value);
    } else {
      const Boxed<T>* boxed = std::get_if<Boxed<T>>(&value);
      return boxed != nullptr ? &boxed->get() : nullptr;
    }
  }

  friend bool operator==(const Variant& a, const Variant& b);
};

// A DataValue (§5.2.2.17). Each field is on the wire iff it is set, so the encoding mask
// round-trips. An absent status means Good.
struct DataValue {
  std::optional<Variant> value;                // 0x01
  std::optional<contract::Quality> status;     // 0x02
  std::optional<DateTime> source_timestamp;    // 0x04
  std::optional<uint16_t> source_picoseconds;  // 0x10, in 10 ps units
  std::optional<DateTime> server_timestamp;    // 0x08
  std::optional<uint16_t> server_picoseconds;  // 0x20

  contract::Quality quality() const { return status.value_or(contract::Quality()); }
  uint8_t EncodingMask() const;

  friend bool operator==(const DataValue& a, const DataValue& b);
};

// A DiagnosticInfo (§5.2.2.12). The Int32 fields index ResponseHeader.stringTable. Each field
// is on the wire iff set; an additional_info that the mask says is present but that is a null
// String decodes as unset. Decoding bounds the nesting of inner infos (DecodeLimits).
struct DiagnosticInfo {
  std::optional<int32_t> symbolic_id;                          // 0x01
  std::optional<int32_t> namespace_uri;                        // 0x02
  std::optional<int32_t> localized_text;                       // 0x04
  std::optional<int32_t> locale;                               // 0x08
  UaString additional_info;                                    // 0x10
  std::optional<contract::Quality> inner_status_code;          // 0x20
  std::optional<Boxed<DiagnosticInfo>> inner_diagnostic_info;  // 0x40

  uint8_t EncodingMask() const;
  friend bool operator==(const DiagnosticInfo& a, const DiagnosticInfo& b);
};

// The contract::Value of a scalar Boolean, integer, Float, Double or String Variant (a null
// String gives a null Value); nullopt for null Variants, arrays and every other type, which
// Kiln's tags cannot carry.
std::optional<contract::Value> ToContractValue(const Variant& v);
// The Variant of a contract::Value, type for type (int8 is SByte, uint8 Byte, ...); a null
// Value gives a null Variant.
Variant FromContractValue(const contract::Value& v);

}  // namespace kiln::drivers::opcua
