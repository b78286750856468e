#include "drivers/modbus/codec.h"

#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <limits>
#include <utility>

namespace kiln::drivers::modbus {

namespace {

using contract::Value;
using contract::ValueType;

bool ReversesRegisters(WordOrder order) {
  return order == WordOrder::kCDAB || order == WordOrder::kDCBA;
}
bool SwapsBytes(WordOrder order) { return order == WordOrder::kBADC || order == WordOrder::kDCBA; }
uint16_t ByteSwap(uint16_t r) { return static_cast<uint16_t>((r << 8) | (r >> 8)); }

// The big-endian bit pattern of a value spread over `registers` in `order`: register j of the
// value (most significant first) is wire register j, or n-1-j when the order reverses them,
// with its two bytes swapped when the order swaps bytes.
uint64_t Assemble(std::span<const uint16_t> registers, WordOrder order) {
  const size_t n = registers.size();
  const bool reverse = ReversesRegisters(order);
  const bool swap = SwapsBytes(order);
  uint64_t bits = 0;
  for (size_t j = 0; j < n; ++j) {
    const uint16_t r = registers[reverse ? n - 1 - j : j];
    bits = (bits << 16) | (swap ? ByteSwap(r) : r);
  }
  return bits;
}

std::vector<uint16_t> Disassemble(uint64_t bits, size_t n, WordOrder order) {
  const bool reverse = ReversesRegisters(order);
  const bool swap = SwapsBytes(order);
  std::vector<uint16_t> registers(n);
  for (size_t j = 0; j < n; ++j) {
    const auto word = static_cast<uint16_t>(bits >> (16 * (n - 1 - j)));
    registers[reverse ? n - 1 - j : j] = swap ? ByteSwap(word) : word;
  }
  return registers;
}

bool IsRegisterType(ValueType type) { return type != ValueType::kBool && RegisterCount(type) > 0; }

bool IsScaled(const ModbusTag& tag) { return tag.scale != 1.0 || tag.offset != 0.0; }

bool IsIntegral(const Value& v) { return v.is_numeric() && v.AsInt64().has_value(); }

// Converts `x` (already rounded) to integer type T (`type`); OutOfRange if it does not fit.
// `what` is the value given, before scale and offset were undone.
template <typename T>
Result<Value> IntegerFromDouble(double x, std::string_view what, ValueType type) {
  // 2^digits is the first value above T's maximum and is exact in a double.
  const double above_max = std::ldexp(1.0, std::numeric_limits<T>::digits);
  const double min = std::numeric_limits<T>::is_signed ? -above_max : 0.0;
  if (!std::isfinite(x) || x < min || x >= above_max) {
    return OutOfRangeError(fmt::format("{} is out of range for {} (raw value {})", what,
                                       contract::ValueTypeName(type), x));
  }
  return Value(static_cast<T>(x));
}

// Converts an integral `v` to integer type T (`type`) exactly; OutOfRange if it does not fit.
template <typename T>
Result<Value> IntegerFromIntegral(const Value& v, ValueType type) {
  if (const uint64_t* u = v.get_if<uint64_t>()) {
    if (std::in_range<T>(*u)) return Value(static_cast<T>(*u));
  } else {
    const int64_t s = *v.AsInt64();
    if (std::in_range<T>(s)) return Value(static_cast<T>(s));
  }
  return OutOfRangeError(
      fmt::format("{} is out of range for {}", v.ToString(), contract::ValueTypeName(type)));
}

template <typename T>
Result<Value> ToInteger(const Value& value, const ModbusTag& tag) {
  if (!IsScaled(tag) && IsIntegral(value)) return IntegerFromIntegral<T>(value, tag.type);
  const double raw = (*value.AsDouble() - tag.offset) / tag.scale;
  return IntegerFromDouble<T>(std::nearbyint(raw), value.ToString(), tag.type);
}

// Converts a published value of `tag` back to its raw type.
Result<Value> ToRaw(const Value& value, const ModbusTag& tag) {
  switch (tag.type) {
    case ValueType::kInt16:
      return ToInteger<int16_t>(value, tag);
    case ValueType::kUInt16:
      return ToInteger<uint16_t>(value, tag);
    case ValueType::kInt32:
      return ToInteger<int32_t>(value, tag);
    case ValueType::kUInt32:
      return ToInteger<uint32_t>(value, tag);
    case ValueType::kInt64:
      return ToInteger<int64_t>(value, tag);
    case ValueType::kUInt64:
      return ToInteger<uint64_t>(value, tag);
    case ValueType::kFloat: {
      const double raw = (*value.AsDouble() - tag.offset) / tag.scale;
      if (std::isfinite(raw) && std::fabs(raw) > std::numeric_limits<float>::max()) {
        return OutOfRangeError(fmt::format("{} does not fit float32", value.ToString()));
      }
      return Value(static_cast<float>(raw));
    }
    case ValueType::kDouble:
      return Value((*value.AsDouble() - tag.offset) / tag.scale);
    default:
      return InvalidArgumentError(
          fmt::format("{} is not a register type", contract::ValueTypeName(tag.type)));
  }
}

}  // namespace

Result<Value> DecodeRegisters(std::span<const uint16_t> registers, ValueType type,
                              WordOrder order) {
  if (!IsRegisterType(type)) {
    return InvalidArgumentError(
        fmt::format("{} is not a register type", contract::ValueTypeName(type)));
  }
  if (registers.size() != RegisterCount(type)) {
    return InvalidArgumentError(fmt::format("{} needs {} registers, got {}",
                                            contract::ValueTypeName(type), RegisterCount(type),
                                            registers.size()));
  }
  const uint64_t bits = Assemble(registers, order);
  switch (type) {
    case ValueType::kInt16:
      return Value(static_cast<int16_t>(bits));
    case ValueType::kUInt16:
      return Value(static_cast<uint16_t>(bits));
    case ValueType::kInt32:
      return Value(static_cast<int32_t>(bits));
    case ValueType::kUInt32:
      return Value(static_cast<uint32_t>(bits));
    case ValueType::kInt64:
      return Value(static_cast<int64_t>(bits));
    case ValueType::kUInt64:
      return Value(bits);
    case ValueType::kFloat:
      return Value(std::bit_cast<float>(static_cast<uint32_t>(bits)));
    case ValueType::kDouble:
      return Value(std::bit_cast<double>(bits));
    default:
      return InvalidArgumentError("unreachable");
  }
}

Result<std::vector<uint16_t>> EncodeRegisters(const Value& value, ValueType type, WordOrder order) {
  if (!IsRegisterType(type)) {
    return InvalidArgumentError(
        fmt::format("{} is not a register type", contract::ValueTypeName(type)));
  }
  if (value.type() != type) {
    return InvalidArgumentError(fmt::format("expected a {} value, got {}",
                                            contract::ValueTypeName(type),
                                            contract::ValueTypeName(value.type())));
  }
  uint64_t bits = 0;
  switch (type) {
    case ValueType::kInt16:
      bits = static_cast<uint16_t>(*value.get_if<int16_t>());
      break;
    case ValueType::kUInt16:
      bits = *value.get_if<uint16_t>();
      break;
    case ValueType::kInt32:
      bits = static_cast<uint32_t>(*value.get_if<int32_t>());
      break;
    case ValueType::kUInt32:
      bits = *value.get_if<uint32_t>();
      break;
    case ValueType::kInt64:
      bits = static_cast<uint64_t>(*value.get_if<int64_t>());
      break;
    case ValueType::kUInt64:
      bits = *value.get_if<uint64_t>();
      break;
    case ValueType::kFloat:
      bits = std::bit_cast<uint32_t>(*value.get_if<float>());
      break;
    case ValueType::kDouble:
      bits = std::bit_cast<uint64_t>(*value.get_if<double>());
      break;
    default:
      return InvalidArgumentError("unreachable");
  }
  return Disassemble(bits, RegisterCount(type), order);
}

Value ApplyScale(const Value& raw, double scale, double offset) {
  if (scale == 1.0 && offset == 0.0) return raw;
  const std::optional<double> x = raw.AsDouble();
  if (!x) return raw;
  return Value(*x * scale + offset);
}

Result<Value> DecodeRegisterTag(const ModbusTag& tag, std::span<const uint16_t> registers) {
  if (IsBitKind(tag.kind)) {
    return InvalidArgumentError(
        fmt::format("{} is not a register tag", FormatRegister(tag.kind, tag.address)));
  }
  KILN_ASSIGN_OR_RETURN(Value raw, DecodeRegisters(registers, tag.type, tag.word_order));
  return ApplyScale(raw, tag.scale, tag.offset);
}

Result<std::vector<uint16_t>> EncodeRegisterTag(const ModbusTag& tag, const Value& value) {
  if (IsBitKind(tag.kind)) {
    return InvalidArgumentError(
        fmt::format("{} is not a register tag", FormatRegister(tag.kind, tag.address)));
  }
  if (!value.is_numeric()) {
    return InvalidArgumentError(
        fmt::format("cannot write a {} value", contract::ValueTypeName(value.type())));
  }
  if (!IsScaled(tag) && value.type() == tag.type) {
    return EncodeRegisters(value, tag.type, tag.word_order);
  }
  Result<Value> raw = ToRaw(value, tag);
  if (!raw.ok()) return raw.status().WithContext(FormatRegister(tag.kind, tag.address));
  return EncodeRegisters(*raw, tag.type, tag.word_order);
}

Result<bool> EncodeBit(const Value& value) {
  if (const bool* b = value.get_if<bool>()) return *b;
  if (IsIntegral(value)) {
    if (const uint64_t* u = value.get_if<uint64_t>()) {
      if (*u <= 1) return *u == 1;
    } else if (const int64_t s = *value.AsInt64(); s == 0 || s == 1) {
      return s == 1;
    }
  }
  return InvalidArgumentError(
      fmt::format("a coil takes true, false, 0 or 1, not {}", value.ToString()));
}

std::string ExceptionName(uint8_t code) {
  switch (code) {
    case kIllegalFunction:
      return "illegal function";
    case kIllegalDataAddress:
      return "illegal data address";
    case kIllegalDataValue:
      return "illegal data value";
    case kServerDeviceFailure:
      return "server device failure";
    case kAcknowledge:
      return "acknowledge";
    case kServerDeviceBusy:
      return "server device busy";
    case kNegativeAcknowledge:
      return "negative acknowledge";
    case kMemoryParityError:
      return "memory parity error";
    case kGatewayPathUnavailable:
      return "gateway path unavailable";
    case kGatewayTargetFailedToRespond:
      return "gateway target device failed to respond";
    default:
      return fmt::format("exception 0x{:02X}", code);
  }
}

contract::Quality QualityForException(uint8_t code) {
  namespace st = contract::status;
  switch (code) {
    case kIllegalFunction:
      return st::kBadNotSupported;
    case kIllegalDataAddress:
      return st::kBadNodeIdUnknown;
    case kIllegalDataValue:
      return st::kBadOutOfRange;
    case kServerDeviceFailure:
    case kNegativeAcknowledge:
    case kMemoryParityError:
      return st::kBadDeviceFailure;
    case kAcknowledge:
    case kServerDeviceBusy:
      return contract::status::kBadResourceUnavailable;
    case kGatewayPathUnavailable:
    case kGatewayTargetFailedToRespond:
      return st::kBadNoCommunication;
    default:
      return st::kBadCommunicationError;
  }
}

}  // namespace kiln::drivers::modbus
