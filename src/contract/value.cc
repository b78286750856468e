#include "contract/value.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>

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

// Calls f(T{}) with the C++ type of integer ValueType `type`.
template <typename F>
auto WithIntegerType(ValueType type, F&& f) {
  switch (type) {
    case ValueType::kInt8:
      return f(int8_t{});
    case ValueType::kInt16:
      return f(int16_t{});
    case ValueType::kInt32:
      return f(int32_t{});
    case ValueType::kUInt8:
      return f(uint8_t{});
    case ValueType::kUInt16:
      return f(uint16_t{});
    case ValueType::kUInt32:
      return f(uint32_t{});
    case ValueType::kUInt64:
      return f(uint64_t{});
    default:
      return f(int64_t{});
  }
}

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

bool IsIntegerType(ValueType type) {
  return type >= ValueType::kInt8 && type <= ValueType::kUInt64;
}

std::pair<double, double> IntegerRange(ValueType type) {
  return WithIntegerType(type, [](auto zero) {
    using T = decltype(zero);
    const double hi = std::ldexp(1.0, std::numeric_limits<T>::digits);
    return std::pair<double, double>(std::is_signed_v<T> ? -hi : 0.0, hi);
  });
}

std::pair<Value, Value> IntegerLimits(ValueType type) {
  return WithIntegerType(type, [](auto zero) {
    using T = decltype(zero);
    return std::pair<Value, Value>(Value(std::numeric_limits<T>::min()),
                                   Value(std::numeric_limits<T>::max()));
  });
}

std::optional<Value> Value::ToExactInteger(ValueType type) const {
  return WithIntegerType(type, [&](auto zero) -> std::optional<Value> {
    using T = decltype(zero);
    return std::visit(
        [&](const auto& x) -> std::optional<Value> {
          using S = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<S, bool> || !std::is_arithmetic_v<S>) {
            return std::nullopt;
          } else if constexpr (std::is_integral_v<S>) {
            if (!std::in_range<T>(x)) return std::nullopt;
            return Value(static_cast<T>(x));
          } else {
            const auto [lo, hi] = IntegerRange(type);
            const double d = static_cast<double>(x);
            if (!(d >= lo && d < hi) || std::trunc(d) != d) return std::nullopt;
            return Value(static_cast<T>(d));
          }
        },
        v_);
  });
}

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
