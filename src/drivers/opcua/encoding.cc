#include "drivers/opcua/encoding.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

namespace kiln::drivers::opcua {
namespace {

constexpr uint8_t kNodeIdTwoByte = 0x00;
constexpr uint8_t kNodeIdFourByte = 0x01;
constexpr uint8_t kNodeIdNumeric = 0x02;
constexpr uint8_t kNodeIdString = 0x03;
constexpr uint8_t kNodeIdGuid = 0x04;
constexpr uint8_t kNodeIdByteString = 0x05;
constexpr uint8_t kNamespaceUriFlag = 0x80;
constexpr uint8_t kServerIndexFlag = 0x40;

constexpr uint8_t kVariantArray = 0x80;
constexpr uint8_t kVariantDimensions = 0x40;
constexpr uint8_t kVariantTypeMask = 0x3F;

std::string Hex8(uint8_t v) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02X", v);
  return buf;
}

std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Scoped nesting level of a Reader or Writer.
template <typename RW>
class DepthGuard {
 public:
  explicit DepthGuard(RW& rw) : rw_(rw), entered_(rw.Enter()) {}
  ~DepthGuard() {
    if (entered_) rw_.Leave();
  }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;
  bool ok() const { return entered_; }

 private:
  RW& rw_;
  bool entered_;
};

// The fewest bytes one value of a Variant type id takes (arrays are bounded by it).
size_t MinScalarSize(uint8_t type_id) {
  switch (static_cast<BuiltinType>(type_id)) {
    case BuiltinType::kBoolean:
    case BuiltinType::kSByte:
    case BuiltinType::kByte:
    case BuiltinType::kLocalizedText:
    case BuiltinType::kDataValue:
    case BuiltinType::kVariant:
    case BuiltinType::kDiagnosticInfo:
      return 1;
    case BuiltinType::kInt16:
    case BuiltinType::kUInt16:
    case BuiltinType::kNodeId:
    case BuiltinType::kExpandedNodeId:
      return 2;
    case BuiltinType::kExtensionObject:
      return 3;
    case BuiltinType::kInt64:
    case BuiltinType::kUInt64:
    case BuiltinType::kDouble:
    case BuiltinType::kDateTime:
      return 8;
    case BuiltinType::kGuid:
      return 16;
    case BuiltinType::kQualifiedName:
      return 6;
    default:  // Int32, UInt32, Float, String, ByteString, XmlElement, StatusCode, reserved
      return 4;
  }
}

VariantValue DecodeScalar(Reader& r, uint8_t type_id) {
  switch (static_cast<BuiltinType>(type_id)) {
    case BuiltinType::kBoolean:
      return VariantValue(std::in_place_index<1>, r.Read<bool>());
    case BuiltinType::kSByte:
      return VariantValue(std::in_place_index<2>, r.Read<int8_t>());
    case BuiltinType::kByte:
      return VariantValue(std::in_place_index<3>, r.Read<uint8_t>());
    case BuiltinType::kInt16:
      return VariantValue(std::in_place_index<4>, r.Read<int16_t>());
    case BuiltinType::kUInt16:
      return VariantValue(std::in_place_index<5>, r.Read<uint16_t>());
    case BuiltinType::kInt32:
      return VariantValue(std::in_place_index<6>, r.Read<int32_t>());
    case BuiltinType::kUInt32:
      return VariantValue(std::in_place_index<7>, r.Read<uint32_t>());
    case BuiltinType::kInt64:
      return VariantValue(std::in_place_index<8>, r.Read<int64_t>());
    case BuiltinType::kUInt64:
      return VariantValue(std::in_place_index<9>, r.Read<uint64_t>());
    case BuiltinType::kFloat:
      return VariantValue(std::in_place_index<10>, r.Read<float>());
    case BuiltinType::kDouble:
      return VariantValue(std::in_place_index<11>, r.Read<double>());
    case BuiltinType::kString:
      return VariantValue(std::in_place_index<12>, r.Read<UaString>());
    case BuiltinType::kDateTime:
      return VariantValue(std::in_place_index<13>, r.Read<DateTime>());
    case BuiltinType::kGuid:
      return VariantValue(std::in_place_index<14>, r.Read<Guid>());
    case BuiltinType::kByteString:
      return VariantValue(std::in_place_index<15>, r.Read<ByteString>());
    case BuiltinType::kXmlElement:
      return VariantValue(std::in_place_index<16>, r.Read<XmlElement>());
    case BuiltinType::kNodeId:
      return VariantValue(std::in_place_index<17>, r.Read<NodeId>());
    case BuiltinType::kExpandedNodeId:
      return VariantValue(std::in_place_index<18>, r.Read<ExpandedNodeId>());
    case BuiltinType::kStatusCode:
      return VariantValue(std::in_place_index<19>, r.Read<contract::Quality>());
    case BuiltinType::kQualifiedName:
      return VariantValue(std::in_place_index<20>, r.Read<QualifiedName>());
    case BuiltinType::kLocalizedText:
      return VariantValue(std::in_place_index<21>, r.Read<LocalizedText>());
    case BuiltinType::kExtensionObject:
      return VariantValue(std::in_place_index<22>, r.Read<ExtensionObject>());
    case BuiltinType::kDataValue:
      return VariantValue(std::in_place_index<23>, r.Read<DataValue>());
    case BuiltinType::kVariant:  // only as an array element
      return VariantValue(std::in_place_index<24>, r.Read<Variant>());
    case BuiltinType::kDiagnosticInfo:
      return VariantValue(std::in_place_index<25>, r.Read<DiagnosticInfo>());
    case BuiltinType::kNull:
      break;
  }
  // Reserved ids 26..31: a ByteString passed on as it is (OPC 10000-6 §5.2.2.16).
  return VariantValue(std::in_place_index<15>, r.Read<ByteString>());
}

void EncodeScalar(Writer& w, const VariantValue& v) {
  std::visit(
      [&w](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          // Nothing: null has no body.
        } else if constexpr (requires { x.get(); }) {
          w.Write(x.get());  // Boxed<T>
        } else {
          w.Write(x);
        }
      },
      v);
}

// Checks ArrayDimensions against the element count (§5.2.2.16): the product of the
// dimensions, or 0 when any dimension is <= 0. Returns what is wrong, or empty.
std::string CheckDimensions(const std::vector<int32_t>& dims, size_t count) {
  constexpr uint64_t kTooMany = uint64_t{1} << 32;  // more elements than any array can hold
  bool non_positive = false;
  uint64_t product = 1;
  for (int32_t d : dims) {
    if (d <= 0) {
      non_positive = true;
    } else if (product < kTooMany) {
      product = std::min(product * static_cast<uint64_t>(d), kTooMany);  // < 2^63: no overflow
    }
  }
  const uint64_t expected = non_positive ? 0 : product;
  if (expected == count) return {};
  const std::string described =
      expected >= kTooMany ? "more than 4294967295" : std::to_string(expected);
  return "ArrayDimensions (" + std::to_string(dims.size()) + " dimensions) describe " + described +
         " elements but the array has " + std::to_string(count);
}

void EncodeNodeIdWithFlags(Writer& w, const NodeId& id, uint8_t flags) {
  switch (id.type()) {
    case IdType::kNumeric: {
      const uint32_t n = std::get<uint32_t>(id.identifier);
      if (id.namespace_index == 0 && n <= 0xFF) {
        w.WriteUInt8(kNodeIdTwoByte | flags);
        w.WriteUInt8(static_cast<uint8_t>(n));
      } else if (id.namespace_index <= 0xFF && n <= 0xFFFF) {
        w.WriteUInt8(kNodeIdFourByte | flags);
        w.WriteUInt8(static_cast<uint8_t>(id.namespace_index));
        w.WriteUInt16(static_cast<uint16_t>(n));
      } else {
        w.WriteUInt8(kNodeIdNumeric | flags);
        w.WriteUInt16(id.namespace_index);
        w.WriteUInt32(n);
      }
      return;
    }
    case IdType::kString:
      w.WriteUInt8(kNodeIdString | flags);
      w.WriteUInt16(id.namespace_index);
      w.WriteLengthPrefixed(AsBytes(std::get<std::string>(id.identifier)));
      return;
    case IdType::kGuid:
      w.WriteUInt8(kNodeIdGuid | flags);
      w.WriteUInt16(id.namespace_index);
      w.Write(std::get<Guid>(id.identifier));
      return;
    case IdType::kOpaque:
      w.WriteUInt8(kNodeIdByteString | flags);
      w.WriteUInt16(id.namespace_index);
      w.WriteLengthPrefixed(
          std::span<const uint8_t>(std::get<std::vector<uint8_t>>(id.identifier)));
      return;
  }
}

// Decodes the NodeId part after the encoding byte `form` (flags removed).
NodeId DecodeNodeIdBody(Reader& r, uint8_t form, uint8_t encoding_byte) {
  switch (form) {
    case kNodeIdTwoByte:
      return NodeId(0, uint32_t{r.ReadUInt8()});
    case kNodeIdFourByte: {
      const uint8_t ns = r.ReadUInt8();
      return NodeId(ns, uint32_t{r.ReadUInt16()});
    }
    case kNodeIdNumeric: {
      const uint16_t ns = r.ReadUInt16();
      return NodeId(ns, r.ReadUInt32());
    }
    case kNodeIdString: {
      const uint16_t ns = r.ReadUInt16();
      auto bytes = r.ReadLengthPrefixed(r.limits().max_string_length, "NodeId string identifier");
      if (!bytes) return NodeId(ns, std::string());
      return NodeId(ns, std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
    }
    case kNodeIdGuid: {
      const uint16_t ns = r.ReadUInt16();
      return NodeId(ns, r.Read<Guid>());
    }
    case kNodeIdByteString: {
      const uint16_t ns = r.ReadUInt16();
      auto bytes =
          r.ReadLengthPrefixed(r.limits().max_byte_string_length, "NodeId opaque identifier");
      if (!bytes) return NodeId::Opaque(ns, {});
      return NodeId::Opaque(ns, std::vector<uint8_t>(bytes->begin(), bytes->end()));
    }
    default:
      r.Fail("unknown NodeId encoding byte " + Hex8(encoding_byte));
      return NodeId();
  }
}

}  // namespace

// --- Reader ----------------------------------------------------------------------------------

void Reader::Fail(std::string_view what) {
  if (!status_.ok()) return;
  status_ = InvalidArgumentError("offset " + std::to_string(offset()) + ": " + std::string(what));
  pos_ = data_.size();  // stop: later reads see no bytes
}

void Reader::Truncated(size_t need, const char* what) {
  Fail(std::string("truncated ") + what + ": need " + std::to_string(need) + " bytes, " +
       std::to_string(remaining()) + " left");
}

Status Reader::Finish(std::string_view what) {
  if (!status_.ok()) return status_;
  if (remaining() != 0) {
    return InvalidArgumentError("offset " + std::to_string(offset()) + ": " +
                                std::to_string(remaining()) + " trailing bytes after " +
                                std::string(what));
  }
  return OkStatus();
}

size_t Reader::ReadArrayLength(size_t min_element_size, size_t element_memory) {
  const int32_t n = ReadInt32();
  if (!ok() || n <= 0) return 0;  // any negative count is a null array
  const auto count = static_cast<uint64_t>(n);
  if (count > limits_.max_array_length) {
    Fail("array length " + std::to_string(n) + " exceeds the limit of " +
         std::to_string(limits_.max_array_length));
    return 0;
  }
  if (count * min_element_size > remaining()) {
    Fail("array length " + std::to_string(n) + " needs at least " +
         std::to_string(count * min_element_size) + " bytes, " + std::to_string(remaining()) +
         " left");
    return 0;
  }
  if (array_memory_ == nullptr) array_memory_ = std::make_shared<uint64_t>(0);
  *array_memory_ += count * element_memory;
  if (*array_memory_ > limits_.max_array_memory) {
    Fail("arrays of this message would take more than " + std::to_string(limits_.max_array_memory) +
         " bytes of memory");
    return 0;
  }
  return static_cast<size_t>(count);
}

std::span<const uint8_t> Reader::ReadRaw(size_t n, std::string_view what) {
  if (remaining() < n) {
    Fail("truncated " + std::string(what) + ": need " + std::to_string(n) + " bytes, " +
         std::to_string(remaining()) + " left");
    return {};
  }
  std::span<const uint8_t> out = data_.subspan(pos_, n);
  pos_ += n;
  return out;
}

std::optional<std::span<const uint8_t>> Reader::ReadLengthPrefixed(uint32_t max_length,
                                                                   std::string_view what) {
  const int32_t n = ReadInt32();
  if (!ok() || n < 0) return std::nullopt;  // −1 (any negative length) is null
  if (static_cast<uint32_t>(n) > max_length) {
    Fail(std::string(what) + " length " + std::to_string(n) + " exceeds the limit of " +
         std::to_string(max_length));
    return std::nullopt;
  }
  if (static_cast<size_t>(n) > remaining()) {
    Fail(std::string(what) + " length " + std::to_string(n) + " exceeds the " +
         std::to_string(remaining()) + " bytes left");
    return std::nullopt;
  }
  std::span<const uint8_t> out = data_.subspan(pos_, static_cast<size_t>(n));
  pos_ += static_cast<size_t>(n);
  return out;
}

Reader Reader::Nested(std::span<const uint8_t> data, size_t base_offset) {
  Reader child(data, limits_, base_offset);
  if (array_memory_ == nullptr) array_memory_ = std::make_shared<uint64_t>(0);
  child.array_memory_ = array_memory_;
  child.depth_ = depth_;
  child.Enter();
  return child;
}

bool Reader::Enter() {
  if (depth_ >= limits_.max_depth) {
    Fail("nesting deeper than " + std::to_string(limits_.max_depth) + " levels");
    return false;
  }
  ++depth_;
  return true;
}

// --- Writer ----------------------------------------------------------------------------------

void Writer::Fail(std::string_view what) {
  if (status_.ok()) status_ = InvalidArgumentError("encoding: " + std::string(what));
}

Result<std::vector<uint8_t>> Writer::Finish() && {
  if (!status_.ok()) return status_;
  return std::move(buf_);
}

bool Writer::WriteArrayLength(size_t n) {
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    Fail("array of " + std::to_string(n) + " elements is too long");
    return false;
  }
  WriteInt32(static_cast<int32_t>(n));
  return true;
}

void Writer::WriteLengthPrefixed(std::optional<std::span<const uint8_t>> bytes) {
  if (!bytes) {
    WriteInt32(-1);
    return;
  }
  if (bytes->size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    Fail("string of " + std::to_string(bytes->size()) + " bytes is too long");
    return;
  }
  WriteInt32(static_cast<int32_t>(bytes->size()));
  WriteRaw(*bytes);
}

void Writer::PatchUInt32(size_t pos, uint32_t v) {
  if (pos + 4 > buf_.size()) {
    Fail("patch beyond the end of the buffer");
    return;
  }
  for (int i = 0; i < 4; ++i) buf_[pos + i] = static_cast<uint8_t>(v >> (8 * i));
}

bool Writer::Enter() {
  if (depth_ >= kMaxEncodeDepth) {
    Fail("nesting deeper than " + std::to_string(kMaxEncodeDepth) + " levels");
    return false;
  }
  ++depth_;
  return true;
}

// --- Codecs ----------------------------------------------------------------------------------

void Codec<float>::Encode(Writer& w, float v) { w.WriteUInt32(std::bit_cast<uint32_t>(v)); }
float Codec<float>::Decode(Reader& r) { return std::bit_cast<float>(r.ReadUInt32()); }
void Codec<double>::Encode(Writer& w, double v) { w.WriteUInt64(std::bit_cast<uint64_t>(v)); }
double Codec<double>::Decode(Reader& r) { return std::bit_cast<double>(r.ReadUInt64()); }

void Codec<Guid>::Encode(Writer& w, const Guid& v) {
  w.WriteUInt32(v.data1);
  w.WriteUInt16(v.data2);
  w.WriteUInt16(v.data3);
  w.WriteRaw(v.data4);
}

Guid Codec<Guid>::Decode(Reader& r) {
  Guid g;
  g.data1 = r.ReadUInt32();
  g.data2 = r.ReadUInt16();
  g.data3 = r.ReadUInt16();
  std::span<const uint8_t> d4 = r.ReadRaw(8, "Guid");
  if (d4.size() == 8) std::copy(d4.begin(), d4.end(), g.data4.begin());
  return g;
}

void Codec<UaString>::Encode(Writer& w, const UaString& v) {
  if (!v) {
    w.WriteLengthPrefixed(std::nullopt);
  } else {
    w.WriteLengthPrefixed(AsBytes(*v));
  }
}

UaString Codec<UaString>::Decode(Reader& r) {
  auto bytes = r.ReadLengthPrefixed(r.limits().max_string_length, "String");
  if (!bytes) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size());
}

void Codec<ByteString>::Encode(Writer& w, const ByteString& v) {
  if (!v) {
    w.WriteLengthPrefixed(std::nullopt);
  } else {
    w.WriteLengthPrefixed(std::span<const uint8_t>(*v));
  }
}

ByteString Codec<ByteString>::Decode(Reader& r) {
  auto bytes = r.ReadLengthPrefixed(r.limits().max_byte_string_length, "ByteString");
  if (!bytes) return std::nullopt;
  return std::vector<uint8_t>(bytes->begin(), bytes->end());
}

void Codec<XmlElement>::Encode(Writer& w, const XmlElement& v) { w.Write(v.xml); }
XmlElement Codec<XmlElement>::Decode(Reader& r) { return XmlElement{r.Read<UaString>()}; }

void Codec<NodeId>::Encode(Writer& w, const NodeId& v) { EncodeNodeIdWithFlags(w, v, 0); }

NodeId Codec<NodeId>::Decode(Reader& r) {
  const uint8_t encoding = r.ReadUInt8();
  if (!r.ok()) return NodeId();
  if ((encoding & (kNamespaceUriFlag | kServerIndexFlag)) != 0) {
    r.Fail("NodeId encoding byte " + Hex8(encoding) + " has ExpandedNodeId flags");
    return NodeId();
  }
  return DecodeNodeIdBody(r, encoding, encoding);
}

void Codec<ExpandedNodeId>::Encode(Writer& w, const ExpandedNodeId& v) {
  const uint8_t flags = static_cast<uint8_t>((v.namespace_uri ? kNamespaceUriFlag : 0) |
                                             (v.server_index != 0 ? kServerIndexFlag : 0));
  EncodeNodeIdWithFlags(w, v.node_id, flags);
  if (v.namespace_uri) w.Write(v.namespace_uri);
  if (v.server_index != 0) w.WriteUInt32(v.server_index);
}

ExpandedNodeId Codec<ExpandedNodeId>::Decode(Reader& r) {
  const uint8_t encoding = r.ReadUInt8();
  if (!r.ok()) return ExpandedNodeId();
  ExpandedNodeId out;
  out.node_id = DecodeNodeIdBody(
      r, encoding & static_cast<uint8_t>(~(kNamespaceUriFlag | kServerIndexFlag)), encoding);
  if ((encoding & kNamespaceUriFlag) != 0) out.namespace_uri = r.Read<UaString>();
  if ((encoding & kServerIndexFlag) != 0) out.server_index = r.ReadUInt32();
  return out;
}

void Codec<QualifiedName>::Encode(Writer& w, const QualifiedName& v) {
  w.WriteUInt16(v.namespace_index);
  w.Write(v.name);
}

QualifiedName Codec<QualifiedName>::Decode(Reader& r) {
  QualifiedName q;
  q.namespace_index = r.ReadUInt16();
  q.name = r.Read<UaString>();
  return q;
}

void Codec<LocalizedText>::Encode(Writer& w, const LocalizedText& v) {
  w.WriteUInt8(static_cast<uint8_t>((v.locale ? 0x01 : 0) | (v.text ? 0x02 : 0)));
  if (v.locale) w.Write(v.locale);
  if (v.text) w.Write(v.text);
}

LocalizedText Codec<LocalizedText>::Decode(Reader& r) {
  LocalizedText t;
  const uint8_t mask = r.ReadUInt8();
  if (!r.ok()) return t;
  if ((mask & ~0x03) != 0) {
    r.Fail("LocalizedText encoding mask " + Hex8(mask) + " has unknown bits");
    return t;
  }
  if ((mask & 0x01) != 0) t.locale = r.Read<UaString>();
  if ((mask & 0x02) != 0) t.text = r.Read<UaString>();
  return t;
}

void Codec<ExtensionObject>::Encode(Writer& w, const ExtensionObject& v) {
  w.Write(v.type_id);
  w.WriteUInt8(static_cast<uint8_t>(v.encoding));
  switch (v.encoding) {
    case ExtensionObject::Encoding::kNone:
      if (!v.body.empty()) w.Fail("ExtensionObject without an encoding has a body");
      return;
    case ExtensionObject::Encoding::kByteString:
    case ExtensionObject::Encoding::kXml:
      w.WriteLengthPrefixed(std::span<const uint8_t>(v.body));
      return;
  }
  w.Fail("ExtensionObject encoding " + std::to_string(static_cast<int>(v.encoding)));
}

ExtensionObject Codec<ExtensionObject>::Decode(Reader& r) {
  ExtensionObject e;
  e.type_id = r.Read<NodeId>();
  const uint8_t encoding = r.ReadUInt8();
  if (!r.ok()) return e;
  if (encoding > 2) {
    r.Fail("ExtensionObject encoding byte " + Hex8(encoding) + " is not 0, 1 or 2");
    return e;
  }
  e.encoding = static_cast<ExtensionObject::Encoding>(encoding);
  if (e.encoding != ExtensionObject::Encoding::kNone) {
    auto body = r.ReadLengthPrefixed(r.limits().max_byte_string_length, "ExtensionObject body");
    if (body) e.body.assign(body->begin(), body->end());
  }
  return e;
}

void Codec<Variant>::Encode(Writer& w, const Variant& v) {
  DepthGuard guard(w);
  if (!guard.ok()) return;
  const auto type_id = static_cast<uint8_t>(v.type);
  if (type_id > kMaxBuiltinTypeId) {
    w.Fail("Variant type id " + std::to_string(type_id) + " is reserved");
    return;
  }
  const std::string type_name = BuiltinTypeName(v.type);
  if (!v.is_array) {
    if (v.type == BuiltinType::kVariant) {
      w.Fail("a Variant cannot hold a scalar Variant");
      return;
    }
    if (v.value.index() != type_id) {
      w.Fail("Variant of type " + type_name + " holds a " +
             BuiltinTypeName(static_cast<BuiltinType>(v.value.index())));
      return;
    }
    w.WriteUInt8(type_id);
    EncodeScalar(w, v.value);
    return;
  }
  if (v.type == BuiltinType::kNull) {
    w.Fail("Variant array of type Null");
    return;
  }
  for (size_t i = 0; i < v.elements.size(); ++i) {
    if (v.elements[i].index() != type_id) {
      w.Fail("element " + std::to_string(i) + " of a Variant array of " + type_name + " holds a " +
             BuiltinTypeName(static_cast<BuiltinType>(v.elements[i].index())));
      return;
    }
  }
  if (!v.dimensions.empty()) {
    const std::string problem = CheckDimensions(v.dimensions, v.elements.size());
    if (!problem.empty()) {
      w.Fail(problem);
      return;
    }
  }
  w.WriteUInt8(static_cast<uint8_t>(type_id | kVariantArray |
                                    (v.dimensions.empty() ? 0 : kVariantDimensions)));
  if (!w.WriteArrayLength(v.elements.size())) return;
  for (const VariantValue& e : v.elements) EncodeScalar(w, e);
  if (!v.dimensions.empty()) w.WriteArray(v.dimensions);
}

Variant Codec<Variant>::Decode(Reader& r) {
  Variant v;
  const uint8_t mask = r.ReadUInt8();
  if (!r.ok() || mask == 0) return v;
  DepthGuard guard(r);
  if (!guard.ok()) return v;
  const uint8_t type_id = mask & kVariantTypeMask;
  const bool is_array = (mask & kVariantArray) != 0;
  const bool has_dimensions = (mask & kVariantDimensions) != 0;
  if (type_id == 0) {
    r.Fail("Variant encoding mask " + Hex8(mask) + " has flags but no type");
    return v;
  }
  if (type_id > kMaxReservedTypeId) {
    r.Fail("Variant type id " + std::to_string(type_id) + " is not a built-in type");
    return v;
  }
  if (has_dimensions && !is_array) {
    r.Fail("Variant encoding mask " + Hex8(mask) + " has ArrayDimensions but no array");
    return v;
  }
  v.type = static_cast<BuiltinType>(type_id);
  if (!is_array) {
    if (v.type == BuiltinType::kVariant) {
      r.Fail("a Variant cannot hold a scalar Variant");
      return v;
    }
    v.value = DecodeScalar(r, type_id);
    return v;
  }
  v.is_array = true;
  const size_t n = r.ReadArrayLength(MinScalarSize(type_id), sizeof(VariantValue));
  v.elements.reserve(n);
  for (size_t i = 0; i < n && r.ok(); ++i) v.elements.push_back(DecodeScalar(r, type_id));
  if (has_dimensions && r.ok()) {
    v.dimensions = r.ReadArray<int32_t>();
    if (r.ok() && !v.dimensions.empty()) {
      const std::string problem = CheckDimensions(v.dimensions, v.elements.size());
      if (!problem.empty()) r.Fail(problem);
    }
  }
  return v;
}

void Codec<DataValue>::Encode(Writer& w, const DataValue& v) {
  DepthGuard guard(w);
  if (!guard.ok()) return;
  w.WriteUInt8(v.EncodingMask());
  if (v.value) w.Write(*v.value);
  if (v.status) w.Write(*v.status);
  if (v.source_timestamp) w.Write(*v.source_timestamp);
  if (v.source_picoseconds) w.WriteUInt16(*v.source_picoseconds);
  if (v.server_timestamp) w.Write(*v.server_timestamp);
  if (v.server_picoseconds) w.WriteUInt16(*v.server_picoseconds);
}

DataValue Codec<DataValue>::Decode(Reader& r) {
  DataValue v;
  const uint8_t mask = r.ReadUInt8();
  if (!r.ok()) return v;
  if ((mask & 0xC0) != 0) {
    r.Fail("DataValue encoding mask " + Hex8(mask) + " has unknown bits");
    return v;
  }
  DepthGuard guard(r);
  if (!guard.ok()) return v;
  // Wire order: Value, Status, SourceTimestamp, SourcePicoseconds, ServerTimestamp,
  // ServerPicoseconds (not mask order).
  if ((mask & 0x01) != 0) v.value = r.Read<Variant>();
  if ((mask & 0x02) != 0) v.status = r.Read<contract::Quality>();
  if ((mask & 0x04) != 0) v.source_timestamp = r.Read<DateTime>();
  if ((mask & 0x10) != 0) v.source_picoseconds = r.ReadUInt16();
  if ((mask & 0x08) != 0) v.server_timestamp = r.Read<DateTime>();
  if ((mask & 0x20) != 0) v.server_picoseconds = r.ReadUInt16();
  return v;
}

void Codec<DiagnosticInfo>::Encode(Writer& w, const DiagnosticInfo& v) {
  DepthGuard guard(w);
  if (!guard.ok()) return;
  w.WriteUInt8(v.EncodingMask());
  if (v.symbolic_id) w.WriteInt32(*v.symbolic_id);
  if (v.namespace_uri) w.WriteInt32(*v.namespace_uri);
  if (v.locale) w.WriteInt32(*v.locale);
  if (v.localized_text) w.WriteInt32(*v.localized_text);
  if (v.additional_info) w.Write(v.additional_info);
  if (v.inner_status_code) w.Write(*v.inner_status_code);
  if (v.inner_diagnostic_info) w.Write(**v.inner_diagnostic_info);
}

DiagnosticInfo Codec<DiagnosticInfo>::Decode(Reader& r) {
  DiagnosticInfo d;
  const uint8_t mask = r.ReadUInt8();
  if (!r.ok()) return d;
  if ((mask & 0x80) != 0) {
    r.Fail("DiagnosticInfo encoding mask " + Hex8(mask) + " has unknown bits");
    return d;
  }
  DepthGuard guard(r);
  if (!guard.ok()) return d;
  // Wire order: SymbolicId, NamespaceUri, Locale, LocalizedText (not mask order), ...
  if ((mask & 0x01) != 0) d.symbolic_id = r.ReadInt32();
  if ((mask & 0x02) != 0) d.namespace_uri = r.ReadInt32();
  if ((mask & 0x08) != 0) d.locale = r.ReadInt32();
  if ((mask & 0x04) != 0) d.localized_text = r.ReadInt32();
  if ((mask & 0x10) != 0) d.additional_info = r.Read<UaString>();
  if ((mask & 0x20) != 0) d.inner_status_code = r.Read<contract::Quality>();
  if ((mask & 0x40) != 0) d.inner_diagnostic_info = r.Read<DiagnosticInfo>();
  return d;
}

}  // namespace kiln::drivers::opcua
