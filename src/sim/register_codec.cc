#include "sim/register_codec.h"

#include <array>
#include <bit>

#include "core/check.h"

namespace kiln::sim {

namespace {

using contract::Value;
using contract::ValueType;

bool SwapsRegisters(WordOrder order) {
  return order == WordOrder::kCDAB || order == WordOrder::kDCBA;
}
bool SwapsBytes(WordOrder order) { return order == WordOrder::kBADC || order == WordOrder::kDCBA; }

uint16_t SwapBytes(uint16_t word) { return static_cast<uint16_t>((word << 8) | (word >> 8)); }

// The raw bits of a register-carried value, right-aligned in 64 bits.
uint64_t RawBits(const Value& value) {
  return std::visit(
      [](const auto& v) -> uint64_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          return v ? 1 : 0;
        } else if constexpr (std::is_same_v<T, float>) {
          return std::bit_cast<uint32_t>(v);
        } else if constexpr (std::is_same_v<T, double>) {
          return std::bit_cast<uint64_t>(v);
        } else if constexpr (std::is_integral_v<T>) {
          // Two's complement truncated to the type's width.
          return static_cast<std::make_unsigned_t<T>>(v);
        } else {
          return 0;
        }
      },
      value.storage());
}

}  // namespace

std::optional<WordOrder> ParseWordOrder(std::string_view name) {
  if (name == "ABCD") return WordOrder::kABCD;
  if (name == "CDAB") return WordOrder::kCDAB;
  if (name == "BADC") return WordOrder::kBADC;
  if (name == "DCBA") return WordOrder::kDCBA;
  return std::nullopt;
}

std::string_view WordOrderName(WordOrder order) {
  switch (order) {
    case WordOrder::kABCD:
      return "ABCD";
    case WordOrder::kCDAB:
      return "CDAB";
    case WordOrder::kBADC:
      return "BADC";
    case WordOrder::kDCBA:
      return "DCBA";
  }
  return "unknown";
}

uint16_t RegisterWidth(ValueType type) {
  switch (type) {
    case ValueType::kBool:
    case ValueType::kInt16:
    case ValueType::kUInt16:
      return 1;
    case ValueType::kInt32:
    case ValueType::kUInt32:
    case ValueType::kFloat:
      return 2;
    case ValueType::kInt64:
    case ValueType::kUInt64:
    case ValueType::kDouble:
      return 4;
    case ValueType::kNull:
    case ValueType::kInt8:
    case ValueType::kUInt8:
    case ValueType::kString:
      return 0;
  }
  return 0;
}

void EncodeRegisters(const Value& value, WordOrder order, std::span<uint16_t> out) {
  const size_t width = RegisterWidth(value.type());
  KILN_CHECK(width > 0 && out.size() == width)
      << "cannot encode " << contract::ValueTypeName(value.type()) << " into " << out.size()
      << " registers";
  const uint64_t bits = RawBits(value);
  // Register k of the big-endian layout holds bytes 2k and 2k+1 of the value (AB, CD, ...).
  for (size_t k = 0; k < width; ++k) {
    uint16_t word = static_cast<uint16_t>(bits >> (16 * (width - 1 - k)));
    if (SwapsBytes(order)) word = SwapBytes(word);
    out[SwapsRegisters(order) ? width - 1 - k : k] = word;
  }
}

Value DecodeRegisters(std::span<const uint16_t> in, ValueType type, WordOrder order) {
  const size_t width = RegisterWidth(type);
  KILN_CHECK(width > 0 && in.size() == width)
      << "cannot decode " << contract::ValueTypeName(type) << " from " << in.size() << " registers";
  uint64_t bits = 0;
  for (size_t k = 0; k < width; ++k) {
    uint16_t word = in[SwapsRegisters(order) ? width - 1 - k : k];
    if (SwapsBytes(order)) word = SwapBytes(word);
    bits = (bits << 16) | word;
  }
  switch (type) {
    case ValueType::kBool:
      return Value(bits != 0);
    case ValueType::kInt16:
      return Value(static_cast<int16_t>(bits));
    case ValueType::kUInt16:
      return Value(static_cast<uint16_t>(bits));
    case ValueType::kInt32:
      return Value(static_cast<int32_t>(bits));
    case ValueType::kUInt32:
      return Value(static_cast<uint32_t>(bits));
    case ValueType::kFloat:
      return Value(std::bit_cast<float>(static_cast<uint32_t>(bits)));
    case ValueType::kInt64:
      return Value(static_cast<int64_t>(bits));
    case ValueType::kUInt64:
      return Value(bits);
    case ValueType::kDouble:
      return Value(std::bit_cast<double>(bits));
    default:
      return Value();
  }
}

}  // namespace kiln::sim
