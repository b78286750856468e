#include "contract/sparkplug/payload.h"

#include <fmt/format.h>

#include "contract/sparkplug/sparkplug_b.pb.h"

namespace kiln::sparkplug {

namespace pb = org::eclipse::tahu::protobuf;
using contract::Quality;
using contract::Value;
using contract::ValueType;

DataType DataTypeFor(ValueType type) {
  switch (type) {
    case ValueType::kNull:
      return DataType::kUnknown;
    case ValueType::kBool:
      return DataType::kBoolean;
    case ValueType::kInt8:
      return DataType::kInt8;
    case ValueType::kInt16:
      return DataType::kInt16;
    case ValueType::kInt32:
      return DataType::kInt32;
    case ValueType::kInt64:
      return DataType::kInt64;
    case ValueType::kUInt8:
      return DataType::kUInt8;
    case ValueType::kUInt16:
      return DataType::kUInt16;
    case ValueType::kUInt32:
      return DataType::kUInt32;
    case ValueType::kUInt64:
      return DataType::kUInt64;
    case ValueType::kFloat:
      return DataType::kFloat;
    case ValueType::kDouble:
      return DataType::kDouble;
    case ValueType::kString:
      return DataType::kString;
  }
  return DataType::kUnknown;
}

std::optional<ValueType> ValueTypeFor(DataType type) {
  switch (type) {
    case DataType::kInt8:
      return ValueType::kInt8;
    case DataType::kInt16:
      return ValueType::kInt16;
    case DataType::kInt32:
      return ValueType::kInt32;
    case DataType::kInt64:
      return ValueType::kInt64;
    case DataType::kUInt8:
      return ValueType::kUInt8;
    case DataType::kUInt16:
      return ValueType::kUInt16;
    case DataType::kUInt32:
      return ValueType::kUInt32;
    case DataType::kUInt64:
      return ValueType::kUInt64;
    case DataType::kDateTime:
      return ValueType::kUInt64;
    case DataType::kFloat:
      return ValueType::kFloat;
    case DataType::kDouble:
      return ValueType::kDouble;
    case DataType::kBoolean:
      return ValueType::kBool;
    case DataType::kString:
    case DataType::kText:
    case DataType::kUUID:
      return ValueType::kString;
    default:
      return std::nullopt;
  }
}

Quality QualityOf(const Metric& metric) {
  std::optional<Quality> spec;
  for (const auto& p : metric.properties) {
    if (p.key == kStatusCodeProperty) {
      if (auto v = p.value.AsInt64()) return Quality(static_cast<uint32_t>(*v));
    } else if (p.key == kQualityProperty) {
      if (auto v = p.value.AsInt64()) {
        if (*v == kQualityBad)
          spec = contract::status::kBad;
        else if (*v == kQualityStale)
          spec = contract::status::kUncertainLastUsableValue;
        else
          spec = contract::status::kGood;
      }
    }
  }
  return spec.value_or(contract::status::kGood);
}

void SetQuality(Metric& metric, Quality quality) {
  if (quality.IsGood()) return;
  metric.properties.push_back(Property{std::string(kQualityProperty), DataType::kInt32,
                                       Value(quality.IsBad() ? kQualityBad : kQualityStale)});
  metric.properties.push_back(
      Property{std::string(kStatusCodeProperty), DataType::kUInt32, Value(quality.code())});
}

namespace {

constexpr std::string_view kUnitProperty = "engUnit";

// Sets the oneof field of `m` (Metric, PropertyValue) that carries `v`.
template <typename PbMessage>
Status SetValue(PbMessage& m, const Value& v) {
  return std::visit(
      [&m](const auto& x) -> Status {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          m.set_is_null(true);
        } else if constexpr (std::is_same_v<T, bool>) {
          m.set_boolean_value(x);
        } else if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, int16_t> ||
                             std::is_same_v<T, int32_t>) {
          m.set_int_value(static_cast<uint32_t>(static_cast<int32_t>(x)));
        } else if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, uint16_t> ||
                             std::is_same_v<T, uint32_t>) {
          m.set_int_value(static_cast<uint32_t>(x));
        } else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, uint64_t>) {
          m.set_long_value(static_cast<uint64_t>(x));
        } else if constexpr (std::is_same_v<T, float>) {
          m.set_float_value(x);
        } else if constexpr (std::is_same_v<T, double>) {
          m.set_double_value(x);
        } else {
          m.set_string_value(x);
        }
        return OkStatus();
      },
      v.storage());
}

// Decodes the value fields common to Metric and PropertyValue according to `type`. Errors
// say what is wrong, not where: the caller adds that (only on error, since building a
// description for every metric costs more than decoding it).
template <typename PbMessage>
Result<Value> GetValue(const PbMessage& m, DataType type) {
  const auto vt = ValueTypeFor(type);
  if (!vt) return Value();
  const bool has_int = m.has_int_value();
  const bool has_long = m.has_long_value();
  auto integer = [&]() -> std::optional<uint64_t> {
    if (has_int) return m.int_value();
    if (has_long) return m.long_value();
    return std::nullopt;
  };
  auto mismatch = [&]() {
    return InvalidArgumentError(
        fmt::format("value field does not match datatype {}", static_cast<uint32_t>(type)));
  };
  switch (*vt) {
    case ValueType::kInt8:
    case ValueType::kInt16:
    case ValueType::kInt32:
    case ValueType::kInt64:
    case ValueType::kUInt8:
    case ValueType::kUInt16:
    case ValueType::kUInt32:
    case ValueType::kUInt64: {
      auto raw = integer();
      if (!raw) break;
      switch (*vt) {
        case ValueType::kInt8:
          return Value(static_cast<int8_t>(static_cast<uint32_t>(*raw)));
        case ValueType::kInt16:
          return Value(static_cast<int16_t>(static_cast<uint32_t>(*raw)));
        case ValueType::kInt32:
          return Value(static_cast<int32_t>(static_cast<uint32_t>(*raw)));
        case ValueType::kInt64: {
          // A negative Int64 sent in the 32-bit field is sign-extended.
          if (has_int) return Value(static_cast<int64_t>(static_cast<int32_t>(*raw)));
          return Value(static_cast<int64_t>(*raw));
        }
        case ValueType::kUInt8:
          return Value(static_cast<uint8_t>(*raw));
        case ValueType::kUInt16:
          return Value(static_cast<uint16_t>(*raw));
        case ValueType::kUInt32:
          return Value(static_cast<uint32_t>(*raw));
        default:
          return Value(*raw);
      }
    }
    case ValueType::kFloat:
      if (m.has_float_value()) return Value(m.float_value());
      if (m.has_double_value()) return Value(static_cast<float>(m.double_value()));
      break;
    case ValueType::kDouble:
      if (m.has_double_value()) return Value(m.double_value());
      if (m.has_float_value()) return Value(static_cast<double>(m.float_value()));
      break;
    case ValueType::kBool:
      if (m.has_boolean_value()) return Value(m.boolean_value());
      break;
    case ValueType::kString:
      if (m.has_string_value()) return Value(m.string_value());
      break;
    default:
      break;
  }
  // No field for this datatype: null when nothing is set, else a mismatch.
  if (has_int || has_long || m.has_float_value() || m.has_double_value() || m.has_boolean_value() ||
      m.has_string_value()) {
    return mismatch();
  }
  return Value();
}

}  // namespace

struct Encoder::Impl {
  pb::Payload payload;
};

Encoder::Encoder() : impl_(std::make_unique<Impl>()) {}
Encoder::~Encoder() = default;

Status Encoder::Encode(const Payload& in, std::string& out) {
  pb::Payload& p = impl_->payload;
  p.Clear();
  if (in.timestamp) p.set_timestamp(*in.timestamp);
  if (in.seq) p.set_seq(*in.seq);
  if (in.uuid) p.set_uuid(*in.uuid);
  for (const Metric& m : in.metrics) {
    pb::Payload::Metric* pm = p.add_metrics();
    if (m.name) pm->set_name(*m.name);
    if (m.alias) pm->set_alias(*m.alias);
    if (m.timestamp) pm->set_timestamp(*m.timestamp);
    if (m.datatype) pm->set_datatype(static_cast<uint32_t>(*m.datatype));
    if (m.is_historical) pm->set_is_historical(true);
    if (m.is_transient) pm->set_is_transient(true);
    if (m.is_null || m.value.is_null()) {
      if (m.bytes_value) {
        pm->set_bytes_value(*m.bytes_value);
      } else {
        pm->set_is_null(true);
      }
    } else {
      if (m.datatype && ValueTypeFor(*m.datatype)) {
        const bool want_string = *ValueTypeFor(*m.datatype) == ValueType::kString;
        if (want_string != (m.value.type() == ValueType::kString)) {
          const std::string what = m.name ? *m.name : fmt::format("#{}", m.alias.value_or(0));
          return InvalidArgumentError(fmt::format("metric {}: value of type {} for datatype {}",
                                                  what, ValueTypeName(m.value.type()),
                                                  static_cast<uint32_t>(*m.datatype)));
        }
      }
      KILN_RETURN_IF_ERROR(SetValue(*pm, m.value));
    }
    if (m.unit || !m.properties.empty()) {
      pb::Payload::PropertySet* ps = pm->mutable_properties();
      if (m.unit) {
        ps->add_keys(std::string(kUnitProperty));
        auto* pv = ps->add_values();
        pv->set_type(static_cast<uint32_t>(DataType::kString));
        pv->set_string_value(*m.unit);
      }
      for (const Property& prop : m.properties) {
        ps->add_keys(prop.key);
        auto* pv = ps->add_values();
        pv->set_type(static_cast<uint32_t>(prop.type));
        KILN_RETURN_IF_ERROR(SetValue(*pv, prop.value));
      }
    }
  }
  out.clear();
  if (!p.SerializeToString(&out)) return InternalError("protobuf serialization failed");
  return OkStatus();
}

struct Decoder::Impl {
  pb::Payload payload;
};

Decoder::Decoder() : impl_(std::make_unique<Impl>()) {}
Decoder::~Decoder() = default;

Result<Payload> Decoder::Decode(std::string_view bytes) {
  pb::Payload& p = impl_->payload;
  p.Clear();
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgumentError(
        fmt::format("not a Sparkplug B payload ({} bytes of invalid protobuf)", bytes.size()));
  }
  Payload out;
  if (p.has_timestamp()) out.timestamp = p.timestamp();
  if (p.has_seq()) out.seq = p.seq();
  if (p.has_uuid()) out.uuid = p.uuid();
  out.metrics.reserve(p.metrics_size());
  for (int i = 0; i < p.metrics_size(); ++i) {
    const auto& pm = p.metrics(i);
    Metric m;
    if (pm.has_name()) m.name = pm.name();
    if (pm.has_alias()) m.alias = pm.alias();
    if (pm.has_timestamp()) m.timestamp = pm.timestamp();
    if (pm.has_datatype()) m.datatype = static_cast<DataType>(pm.datatype());
    m.is_historical = pm.is_historical();
    m.is_transient = pm.is_transient();
    m.is_null = pm.is_null();
    auto what = [&] {
      return m.name ? fmt::format("metric '{}'", *m.name) : fmt::format("metric #{}", i);
    };
    if (pm.has_bytes_value()) m.bytes_value = pm.bytes_value();
    if (!m.is_null) {
      DataType dt = m.datatype.value_or(DataType::kUnknown);
      if (!m.datatype) {
        // DATA messages may omit the datatype: take the one the value field implies.
        if (pm.has_int_value())
          dt = DataType::kUInt32;
        else if (pm.has_long_value())
          dt = DataType::kUInt64;
        else if (pm.has_float_value())
          dt = DataType::kFloat;
        else if (pm.has_double_value())
          dt = DataType::kDouble;
        else if (pm.has_boolean_value())
          dt = DataType::kBoolean;
        else if (pm.has_string_value())
          dt = DataType::kString;
      }
      auto value = GetValue(pm, dt);
      if (!value.ok()) return value.status().WithContext(what());
      m.value = std::move(*value);
    }
    if (pm.has_properties()) {
      const auto& ps = pm.properties();
      if (ps.keys_size() != ps.values_size()) {
        return InvalidArgumentError(fmt::format("{}: {} property keys but {} values", what(),
                                                ps.keys_size(), ps.values_size()));
      }
      for (int k = 0; k < ps.keys_size(); ++k) {
        const auto& pv = ps.values(k);
        const auto type = static_cast<DataType>(pv.type());
        if (ps.keys(k) == kUnitProperty && pv.has_string_value()) {
          m.unit = pv.string_value();
          continue;
        }
        Property prop{ps.keys(k), type, Value()};
        if (!pv.is_null()) {
          auto value = GetValue(pv, type);
          if (!value.ok()) {
            return value.status().WithContext(fmt::format("{} property '{}'", what(), ps.keys(k)));
          }
          prop.value = std::move(*value);
        }
        m.properties.push_back(std::move(prop));
      }
    }
    out.metrics.push_back(std::move(m));
  }
  return out;
}

}  // namespace kiln::sparkplug
