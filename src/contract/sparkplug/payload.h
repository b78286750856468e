#pragma once
// Sparkplug B 3.0 payloads as plain C++ values, and their protobuf encoding.
// The protobuf schema (sparkplug_b.proto) is private to this library: callers see only
// these types. Encoder/Decoder are single-threaded; reuse one per thread, since they keep
// their buffers between calls.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "contract/quality.h"
#include "contract/value.h"
#include "core/status.h"

namespace kiln::sparkplug {

// The Sparkplug DataType enumeration (spec chapter 6).
enum class DataType : uint32_t {
  kUnknown = 0,
  kInt8 = 1,
  kInt16 = 2,
  kInt32 = 3,
  kInt64 = 4,
  kUInt8 = 5,
  kUInt16 = 6,
  kUInt32 = 7,
  kUInt64 = 8,
  kFloat = 9,
  kDouble = 10,
  kBoolean = 11,
  kString = 12,
  kDateTime = 13,
  kText = 14,
  kUUID = 15,
  kDataSet = 16,
  kBytes = 17,
  kFile = 18,
  kTemplate = 19,
  kPropertySet = 20,
  kPropertySetList = 21,
};

// The Sparkplug datatype that carries a contract ValueType (kUnknown for null).
DataType DataTypeFor(contract::ValueType type);
// The contract ValueType a scalar Sparkplug datatype decodes to (nullopt for the rest).
std::optional<contract::ValueType> ValueTypeFor(DataType type);

// The specification's `Quality` property values (chapter 6: 0 bad, 192 good, 500 stale).
inline constexpr int32_t kQualityBad = 0;
inline constexpr int32_t kQualityGood = 192;
inline constexpr int32_t kQualityStale = 500;
// The metrics of the specification's node control and session: an NCMD of
// "Node Control/Rebirth" = true asks a node for its births again; "bdSeq" (in NBIRTH and
// NDEATH) matches a death to its birth.
inline constexpr std::string_view kRebirthMetric = "Node Control/Rebirth";
inline constexpr std::string_view kBdSeqMetric = "bdSeq";
// Kiln's own property carrying the full OPC UA StatusCode (UInt32) of a value that is not
// Good; documented in docs/formats/sparkplug.md.
inline constexpr std::string_view kStatusCodeProperty = "kiln.statusCode";
inline constexpr std::string_view kQualityProperty = "Quality";

struct Property {
  std::string key;
  DataType type = DataType::kUnknown;
  contract::Value value;  // null when is_null or of a type Kiln does not decode
  friend bool operator==(const Property&, const Property&) = default;
};

struct Metric {
  std::optional<std::string> name;
  std::optional<uint64_t> alias;
  std::optional<uint64_t> timestamp;  // ms since the Unix epoch, UTC
  std::optional<DataType> datatype;
  bool is_historical = false;
  bool is_transient = false;
  bool is_null = false;
  // The value, decoded according to `datatype` (sign-converted for signed integers). Null
  // when is_null, when no value field is set, or for a type Kiln does not decode.
  contract::Value value;
  // Raw bytes_value (Bytes, File and *Array types), kept opaque.
  std::optional<std::string> bytes_value;
  std::optional<std::string> unit;   // PropertySet "engUnit" (Kiln) when present
  std::vector<Property> properties;  // every other property, in order

  friend bool operator==(const Metric&, const Metric&) = default;
};

struct Payload {
  std::optional<uint64_t> timestamp;
  std::optional<uint64_t> seq;
  std::optional<std::string> uuid;
  std::vector<Metric> metrics;
  friend bool operator==(const Payload&, const Payload&) = default;
};

// The quality carried by a metric: kiln.statusCode if present, else the specification's
// Quality property mapped to Bad (0) / Uncertain (500) / Good (192 or absent).
contract::Quality QualityOf(const Metric& metric);
// Adds the properties that describe `quality` to `metric` (none when Good).
void SetQuality(Metric& metric, contract::Quality quality);

class Encoder {
 public:
  Encoder();
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;
  // Encodes `payload` into `out` (replacing its contents). A metric whose value does not
  // match its datatype is encoded with the value's own type. Never fails for well-formed
  // values; returns InvalidArgument for a string value declared numeric and vice versa.
  Status Encode(const Payload& payload, std::string& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Decoder {
 public:
  Decoder();
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
  // Decodes bytes from the network. Errors: InvalidArgument when the bytes are not a
  // Sparkplug B protobuf payload. Never trusts the input.
  Result<Payload> Decode(std::string_view bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::sparkplug
