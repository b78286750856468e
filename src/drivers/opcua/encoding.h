#pragma once
// The OPC UA Binary encoding (OPC 10000-6 §5.2): a bounded Reader and a Writer over byte
// buffers, and Codec<T> for every built-in type of drivers/opcua/types.h. Sans-IO.
// Readers and Writers are single-threaded value objects; the free functions are thread-safe.
//
// Error policy (docs/formats/opcua.md): decoding never trusts the peer. Every length and count
// is checked against the bytes left and against DecodeLimits before anything is allocated;
// nesting of Variant, DataValue, DiagnosticInfo and ExtensionObject bodies is bounded. Errors
// are sticky: the first failure is kept as an InvalidArgument Status whose message reads
// "offset 17: <what was wrong>", later reads return zero values and do nothing, and the caller
// checks status() once at the end. Encoding failures (a value that cannot be encoded, such as
// a Variant whose elements do not match its type) are InvalidArgument too.
//
//   Reader r(bytes);
//   NodeId id = r.Read<NodeId>();
//   std::vector<DataValue> values = r.ReadArray<DataValue>();
//   KILN_RETURN_IF_ERROR(r.Finish());  // also fails on trailing bytes
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "contract/quality.h"
#include "core/status.h"
#include "drivers/opcua/types.h"

namespace kiln::drivers::opcua {

// Limits a decoder enforces on top of "no more than the bytes left".
struct DecodeLimits {
  uint32_t max_string_length = 16u << 20;       // bytes of one String or XmlElement
  uint32_t max_byte_string_length = 16u << 20;  // bytes of one ByteString or body
  uint32_t max_array_length = 1u << 20;         // elements of one array
  // Memory of all arrays one reader (with its nested readers) decodes, counted as elements x
  // sizeof(element). Without it, 1-byte elements that decode into 100-byte structures would
  // let a message claim ~100x its size in memory.
  uint64_t max_array_memory = 256u << 20;
  // Nesting of Variant (in arrays of Variants), DataValue, DiagnosticInfo and decoded
  // ExtensionObject bodies. Each level costs a few hundred bytes of stack.
  uint32_t max_depth = 32;
};

template <typename T>
struct Codec;  // Specialised per type: static void Encode(Writer&, const T&); static T
               // Decode(Reader&).

// Reads UA Binary from a byte span it does not own. See the error policy above.
class Reader {
 public:
  // `base_offset` is added to offsets in error messages (for readers over a part of a message).
  explicit Reader(std::span<const uint8_t> data, const DecodeLimits& limits = DecodeLimits(),
                  size_t base_offset = 0)
      : data_(data), limits_(limits), base_offset_(base_offset) {}

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  // The absolute offset of the next byte (base_offset + bytes consumed).
  size_t offset() const { return base_offset_ + pos_; }
  size_t remaining() const { return data_.size() - pos_; }
  const DecodeLimits& limits() const { return limits_; }
  uint32_t depth() const { return depth_; }

  // Records the first failure as InvalidArgument "offset N: what" and stops the reader.
  void Fail(std::string_view what);
  // Fails the reader with `what` unless `condition` holds; returns `condition`.
  bool Expect(bool condition, std::string_view what) {
    if (!condition) Fail(what);
    return condition;
  }
  // The status, after checking that every byte was consumed. Errors: the sticky error, or
  // InvalidArgument "offset N: 3 trailing bytes after <what>".
  Status Finish(std::string_view what = "message");

  // Decodes one T. On failure returns a default T (see status()).
  template <typename T>
  T Read() {
    return Codec<T>::Decode(*this);
  }
  // An array: Int32 count (−1 = null, decoded as empty) then the elements. The count is
  // checked against max_array_length and against the bytes left, counting at least
  // `MinEncodedSize<T>()` bytes an element.
  template <typename T>
  std::vector<T> ReadArray();
  // The checked element count of an array whose elements take at least `min_element_size`
  // bytes each and `element_memory` bytes in memory; 0 for a null array or on failure.
  size_t ReadArrayLength(size_t min_element_size, size_t element_memory);
  // `n` raw bytes; an empty span (and a failure) if fewer are left.
  std::span<const uint8_t> ReadRaw(size_t n, std::string_view what);
  // The bytes of a length-prefixed String/ByteString (nullopt for null) as a view.
  std::optional<std::span<const uint8_t>> ReadLengthPrefixed(uint32_t max_length,
                                                             std::string_view what);

  // Fixed-size primitives, little-endian.
  uint8_t ReadUInt8() { return Fixed<uint8_t>("Byte"); }
  uint16_t ReadUInt16() { return Fixed<uint16_t>("UInt16"); }
  uint32_t ReadUInt32() { return Fixed<uint32_t>("UInt32"); }
  uint64_t ReadUInt64() { return Fixed<uint64_t>("UInt64"); }
  int32_t ReadInt32() { return static_cast<int32_t>(Fixed<uint32_t>("Int32")); }

  // A reader over `data` (a part of this reader's input or an ExtensionObject body starting at
  // absolute offset `base_offset`) one nesting level deeper, with the same limits. Fails (and
  // returns a failed reader) beyond max_depth.
  Reader Nested(std::span<const uint8_t> data, size_t base_offset);

  // Scoped nesting: Enter() fails the reader beyond max_depth.
  bool Enter();
  void Leave() { --depth_; }

 private:
  template <typename U>
  U Fixed(const char* what) {
    if (remaining() < sizeof(U)) {
      Truncated(sizeof(U), what);
      return U{};
    }
    U v;
    std::memcpy(&v, data_.data() + pos_, sizeof(U));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    if constexpr (sizeof(U) == 2) v = __builtin_bswap16(v);
    if constexpr (sizeof(U) == 4) v = __builtin_bswap32(v);
    if constexpr (sizeof(U) == 8) v = __builtin_bswap64(v);
#endif
    pos_ += sizeof(U);
    return v;
  }
  void Truncated(size_t need, const char* what);

  std::span<const uint8_t> data_;
  DecodeLimits limits_;
  // Array memory charged so far, shared with nested readers (allocated on first use).
  std::shared_ptr<uint64_t> array_memory_;
  size_t base_offset_ = 0;
  size_t pos_ = 0;
  uint32_t depth_ = 0;
  Status status_;
};

// Appends UA Binary to a byte buffer it owns. Sticky errors like Reader.
class Writer {
 public:
  Writer() = default;
  // Appends to `buffer` (whose capacity is reused).
  explicit Writer(std::vector<uint8_t> buffer) : buf_(std::move(buffer)) {}

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  size_t size() const { return buf_.size(); }
  const std::vector<uint8_t>& bytes() const { return buf_; }
  // The bytes, or the first error.
  Result<std::vector<uint8_t>> Finish() &&;
  // Records the first failure as InvalidArgument "encoding: what".
  void Fail(std::string_view what);

  template <typename T>
  void Write(const T& v) {
    Codec<T>::Encode(*this, v);
  }
  // Int32 count then the elements. Fails beyond INT32_MAX elements.
  template <typename T>
  void WriteArray(const std::vector<T>& v) {
    if (!WriteArrayLength(v.size())) return;
    for (const T& e : v) Write(e);
  }
  bool WriteArrayLength(size_t n);
  void WriteRaw(std::span<const uint8_t> bytes) {
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  }
  void WriteUInt8(uint8_t v) { buf_.push_back(v); }
  void WriteUInt16(uint16_t v) { Fixed(v); }
  void WriteUInt32(uint32_t v) { Fixed(v); }
  void WriteUInt64(uint64_t v) { Fixed(v); }
  void WriteInt32(int32_t v) { Fixed(static_cast<uint32_t>(v)); }
  // A length-prefixed String/ByteString body; nullopt writes −1.
  void WriteLengthPrefixed(std::optional<std::span<const uint8_t>> bytes);
  // Overwrites 4 bytes at `pos` (a length or size field written earlier).
  void PatchUInt32(size_t pos, uint32_t v);

  // Nesting guard for the recursive types; fails beyond kMaxEncodeDepth.
  bool Enter();
  void Leave() { --depth_; }
  static constexpr uint32_t kMaxEncodeDepth = 64;

 private:
  template <typename U>
  void Fixed(U v) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    if constexpr (sizeof(U) == 2) v = __builtin_bswap16(v);
    if constexpr (sizeof(U) == 4) v = __builtin_bswap32(v);
    if constexpr (sizeof(U) == 8) v = __builtin_bswap64(v);
#endif
    const size_t at = buf_.size();
    buf_.resize(at + sizeof(U));
    std::memcpy(buf_.data() + at, &v, sizeof(U));
  }

  std::vector<uint8_t> buf_;
  uint32_t depth_ = 0;
  Status status_;
};

// The fewest bytes one T takes on the wire: bounds array counts by the bytes left.
template <typename T>
constexpr size_t MinEncodedSize() {
  if constexpr (requires { Codec<T>::kMinSize; }) {
    return Codec<T>::kMinSize;
  } else {
    return 1;
  }
}

template <typename T>
std::vector<T> Reader::ReadArray() {
  const size_t n = ReadArrayLength(MinEncodedSize<T>(), sizeof(T));
  std::vector<T> out;
  if (n == 0) return out;
  out.reserve(n);  // n * MinEncodedSize<T>() <= bytes left: bounded by the input
  for (size_t i = 0; i < n && ok(); ++i) out.push_back(Read<T>());
  return out;
}

// Decodes a whole buffer as one T; InvalidArgument on malformed input or trailing bytes.
template <typename T>
Result<T> DecodeAll(std::span<const uint8_t> bytes, const DecodeLimits& limits = DecodeLimits()) {
  Reader r(bytes, limits);
  T value = r.Read<T>();
  KILN_RETURN_IF_ERROR(r.Finish());
  return value;
}

// Encodes one T into a new buffer.
template <typename T>
Result<std::vector<uint8_t>> EncodeToBytes(const T& value) {
  Writer w;
  w.Write(value);
  return std::move(w).Finish();
}

// --- Codecs of the built-in types ------------------------------------------------------------

template <typename T, size_t kSize>
struct FixedCodec {
  static constexpr size_t kMinSize = kSize;
};

template <>
struct Codec<bool> : FixedCodec<bool, 1> {
  static void Encode(Writer& w, bool v) { w.WriteUInt8(v ? 1 : 0); }
  static bool Decode(Reader& r) { return r.ReadUInt8() != 0; }  // any non-zero byte is true
};
template <>
struct Codec<int8_t> : FixedCodec<int8_t, 1> {
  static void Encode(Writer& w, int8_t v) { w.WriteUInt8(static_cast<uint8_t>(v)); }
  static int8_t Decode(Reader& r) { return static_cast<int8_t>(r.ReadUInt8()); }
};
template <>
struct Codec<uint8_t> : FixedCodec<uint8_t, 1> {
  static void Encode(Writer& w, uint8_t v) { w.WriteUInt8(v); }
  static uint8_t Decode(Reader& r) { return r.ReadUInt8(); }
};
template <>
struct Codec<int16_t> : FixedCodec<int16_t, 2> {
  static void Encode(Writer& w, int16_t v) { w.WriteUInt16(static_cast<uint16_t>(v)); }
  static int16_t Decode(Reader& r) { return static_cast<int16_t>(r.ReadUInt16()); }
};
template <>
struct Codec<uint16_t> : FixedCodec<uint16_t, 2> {
  static void Encode(Writer& w, uint16_t v) { w.WriteUInt16(v); }
  static uint16_t Decode(Reader& r) { return r.ReadUInt16(); }
};
template <>
struct Codec<int32_t> : FixedCodec<int32_t, 4> {
  static void Encode(Writer& w, int32_t v) { w.WriteInt32(v); }
  static int32_t Decode(Reader& r) { return r.ReadInt32(); }
};
template <>
struct Codec<uint32_t> : FixedCodec<uint32_t, 4> {
  static void Encode(Writer& w, uint32_t v) { w.WriteUInt32(v); }
  static uint32_t Decode(Reader& r) { return r.ReadUInt32(); }
};
template <>
struct Codec<int64_t> : FixedCodec<int64_t, 8> {
  static void Encode(Writer& w, int64_t v) { w.WriteUInt64(static_cast<uint64_t>(v)); }
  static int64_t Decode(Reader& r) { return static_cast<int64_t>(r.ReadUInt64()); }
};
template <>
struct Codec<uint64_t> : FixedCodec<uint64_t, 8> {
  static void Encode(Writer& w, uint64_t v) { w.WriteUInt64(v); }
  static uint64_t Decode(Reader& r) { return r.ReadUInt64(); }
};
template <>
struct Codec<float> : FixedCodec<float, 4> {
  static void Encode(Writer& w, float v);
  static float Decode(Reader& r);
};
template <>
struct Codec<double> : FixedCodec<double, 8> {
  static void Encode(Writer& w, double v);
  static double Decode(Reader& r);
};
template <>
struct Codec<DateTime> : FixedCodec<DateTime, 8> {
  static void Encode(Writer& w, DateTime v) { w.WriteUInt64(static_cast<uint64_t>(v.ticks)); }
  static DateTime Decode(Reader& r) { return DateTime{static_cast<int64_t>(r.ReadUInt64())}; }
};
template <>
struct Codec<contract::Quality> : FixedCodec<contract::Quality, 4> {  // StatusCode
  static void Encode(Writer& w, contract::Quality v) { w.WriteUInt32(v.code()); }
  static contract::Quality Decode(Reader& r) { return contract::Quality(r.ReadUInt32()); }
};
template <>
struct Codec<Guid> : FixedCodec<Guid, 16> {
  static void Encode(Writer& w, const Guid& v);
  static Guid Decode(Reader& r);
};
// String: Int32 length (−1 = null) + UTF-8 bytes. The bytes are not checked for valid UTF-8.
template <>
struct Codec<UaString> : FixedCodec<UaString, 4> {
  static void Encode(Writer& w, const UaString& v);
  static UaString Decode(Reader& r);
};
template <>
struct Codec<ByteString> : FixedCodec<ByteString, 4> {
  static void Encode(Writer& w, const ByteString& v);
  static ByteString Decode(Reader& r);
};
template <>
struct Codec<XmlElement> : FixedCodec<XmlElement, 4> {
  static void Encode(Writer& w, const XmlElement& v);
  static XmlElement Decode(Reader& r);
};
template <>
struct Codec<NodeId> : FixedCodec<NodeId, 2> {
  static void Encode(Writer& w, const NodeId& v);
  // Errors: an unknown encoding byte, or ExpandedNodeId flags on a plain NodeId.
  static NodeId Decode(Reader& r);
};
template <>
struct Codec<ExpandedNodeId> : FixedCodec<ExpandedNodeId, 2> {
  static void Encode(Writer& w, const ExpandedNodeId& v);
  static ExpandedNodeId Decode(Reader& r);
};
template <>
struct Codec<QualifiedName> : FixedCodec<QualifiedName, 6> {
  static void Encode(Writer& w, const QualifiedName& v);
  static QualifiedName Decode(Reader& r);
};
template <>
struct Codec<LocalizedText> : FixedCodec<LocalizedText, 1> {
  static void Encode(Writer& w, const LocalizedText& v);
  // Errors: mask bits other than 0x01 and 0x02.
  static LocalizedText Decode(Reader& r);
};
template <>
struct Codec<ExtensionObject> : FixedCodec<ExtensionObject, 3> {
  static void Encode(Writer& w, const ExtensionObject& v);
  // Errors: an encoding byte other than 0, 1, 2.
  static ExtensionObject Decode(Reader& r);
};
template <>
struct Codec<Variant> : FixedCodec<Variant, 1> {
  // Errors: a value that does not match `type`, a reserved type id, a scalar Variant inside a
  // Variant, dimensions whose product is not the element count.
  static void Encode(Writer& w, const Variant& v);
  // Errors: array bit with type 0, ArrayDimensions without the array bit or inconsistent with
  // the length, a scalar of type Variant, nesting beyond max_depth.
  static Variant Decode(Reader& r);
};
template <>
struct Codec<DataValue> : FixedCodec<DataValue, 1> {
  static void Encode(Writer& w, const DataValue& v);
  // Errors: mask bits 0x40/0x80, nesting beyond max_depth.
  static DataValue Decode(Reader& r);
};
template <>
struct Codec<DiagnosticInfo> : FixedCodec<DiagnosticInfo, 1> {
  static void Encode(Writer& w, const DiagnosticInfo& v);
  // Errors: mask bit 0x80, nesting beyond max_depth.
  static DiagnosticInfo Decode(Reader& r);
};

}  // namespace kiln::drivers::opcua
