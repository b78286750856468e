#include "contract/value.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace kiln::contract {

std::string_view ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kNull:
      return "null";
    case ValueType::kBool:
      return "bool";
    case ValueType::kInt8:
      return "int8";
    case ValueType::kInt16:
      return "int16";
    case ValueType::kInt32:
      return "int32";
    case ValueType::kInt64:
      return "int64";
    case ValueType::kUInt8:
      return "uint8";
    case ValueType::kUInt16:
      return "uint16";
    case ValueType::kUInt32:
      return "uint32";
    case ValueType::kUInt64:
      return "uint64";
    case ValueType::kFloat:
      return "float32";
    case ValueType::kDouble:
      return "float64";
    case ValueType::kString:
      return "string";
  }
  return "unknown";
}

std::optional<ValueType> ParseValueType(std::string_view name) {
  for (int i = 1; i <= static_cast<int>(ValueType::kString); ++i) {
    auto t = static_cast<ValueType>(i);
    if (ValueTypeName(t) == name) return t;
  }
  if (name == "float") return ValueType::kFloat;
  if (name == "double") return ValueType::kDouble;
  if (name == "boolean") return ValueType::kBool;
  return std::nullopt;
}

bool Value::is_numeric() const { return !is_null() && type() != ValueType::kString; }

std::optional<double> Value::AsDouble() const {
  return std::visit(
      [](const auto& v) -> std::optional<double> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate> || std::is_same_v<T, std::string>) {
          return std::nullopt;
        } else {
          return static_cast<double>(v);
        }
      },
      v_);
}

std::optional<int64_t> Value::AsInt64() const {
  return std::visit(
      [](const auto& v) -> std::optional<int64_t> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_integral_v<T>) {
          return static_cast<int64_t>(v);
        } else {
          return std::nullopt;
        }
      },
      v_);
}

namespace {
template <typename T>
Value Saturate(double v) {
  const double r = std::nearbyint(v);
  if (std::isnan(r)) return Value(T{0});
  if (r <= static_cast<double>(std::numeric_limits<T>::min())) {
    return Value(std::numeric_limits<T>::min());
  }
  if (r >= static_cast<double>(std::numeric_limits<T>::max())) {
    return Value(std::numeric_limits<T>::max());
  }
  return Value(static_cast<T>(r));
}
}  // namespace

Value Value::FromDouble(double v, ValueType type) {
  switch (type) {
    case ValueType::kBool:
      return Value(v != 0.0);
    case ValueType::kInt8:
      return Saturate<int8_t>(v);
    case ValueType::kInt16:
      return Saturate<int16_t>(v);
    case ValueType::kInt32:
      return Saturate<int32_t>(v);
    case ValueType::kInt64:
      return Saturate<int64_t>(v);
    case ValueType::kUInt8:
      return Saturate<uint8_t>(v);
    case ValueType::kUInt16:
      return Saturate<uint16_t>(v);
    case ValueType::kUInt32:
      return Saturate<uint32_t>(v);
    case ValueType::kUInt64:
      return Saturate<uint64_t>(v);
    case ValueType::kFloat:
      return Value(static_cast<float>(v));
    case ValueType::kDouble:
      return Value(v);
    case ValueType::kString:
      return Value(fmt::format("{}", v));
    case ValueType::kNull:
      return Value();
  }
  return Value();
}

std::string Value::ToString() const {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return "null";
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return v;
        } else if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t>) {
          return std::to_string(static_cast<int>(v));
        } else {
          return fmt::format("{}", v);
        }
      },
      v_);
}

}  // namespace kiln::contract
