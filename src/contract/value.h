#pragma once
// Value: one typed reading of a tag (null, bool, signed and unsigned integers of 8 to 64
// bits, float, double or string). A value type; thread-compatible.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace kiln::contract {

// The order matches the alternatives of Value's variant.
enum class ValueType : uint8_t {
  kNull = 0,
  kBool,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kUInt8,
  kUInt16,
  kUInt32,
  kUInt64,
  kFloat,
  kDouble,
  kString,
};

std::string_view ValueTypeName(ValueType type);
// Parses the config names "bool", "int16", "uint32", "float32", "float64", "string"...
std::optional<ValueType> ParseValueType(std::string_view name);

// True for int8 .. uint64 (not bool).
bool IsIntegerType(ValueType type);
// The values of integer type `type` as doubles, [lo, hi): both are 0 or a power of two, so
// exact (a double cannot hold INT64_MAX; 2^63 it can). REQUIRES: IsIntegerType(type).
std::pair<double, double> IntegerRange(ValueType type);
class Value;
// The smallest and largest value of integer type `type`, exactly (for messages).
// REQUIRES: IsIntegerType(type).
std::pair<Value, Value> IntegerLimits(ValueType type);

class Value {
 public:
  using Storage = std::variant<std::monostate, bool, int8_t, int16_t, int32_t, int64_t, uint8_t,
                               uint16_t, uint32_t, uint64_t, float, double, std::string>;

  Value() = default;
  template <typename T>
  requires std::is_constructible_v<Storage, T&&>
  explicit Value(T&& v) : v_(std::forward<T>(v)) {}
  explicit Value(const char* s) : v_(std::string(s)) {}

  ValueType type() const { return static_cast<ValueType>(v_.index()); }
  bool is_null() const { return v_.index() == 0; }
  bool is_numeric() const;  // every type but null and string
  template <typename T>
  const T* get_if() const {
    return std::get_if<T>(&v_);
  }
  const Storage& storage() const { return v_; }

  // Numeric and bool values as double (true = 1); nullopt for null and strings.
  std::optional<double> AsDouble() const;
  // Integer and bool values as int64 (uint64 above INT64_MAX wraps); nullopt otherwise.
  std::optional<int64_t> AsInt64() const;
  // Converts a double to `type`, rounding to nearest and saturating integers.
  static Value FromDouble(double v, ValueType type);
  // This value as integer type `type`, exactly: an integer that fits, or a float or double
  // that is integral and fits (no detour through double for integers: 2^53 + 1 stays). nullopt
  // for anything else: out of range, a fraction, NaN, bool, string, null.
  // REQUIRES: IsIntegerType(type).
  std::optional<Value> ToExactInteger(ValueType type) const;
  std::string ToString() const;

  friend bool operator==(const Value& a, const Value& b) { return a.v_ == b.v_; }

 private:
  Storage v_;
};

}  // namespace kiln::contract
