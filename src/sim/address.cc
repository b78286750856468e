#include "sim/address.h"

#include <fmt/format.h>

#include <charconv>

namespace kiln::sim {

namespace {

constexpr uint8_t kReadCoils = 0x01;
constexpr uint8_t kReadDiscreteInputs = 0x02;
constexpr uint8_t kReadHoldingRegisters = 0x03;
constexpr uint8_t kReadInputRegisters = 0x04;
constexpr uint8_t kWriteSingleCoil = 0x05;
constexpr uint8_t kWriteSingleRegister = 0x06;
constexpr uint8_t kWriteMultipleCoils = 0x0F;
constexpr uint8_t kWriteMultipleRegisters = 0x10;
constexpr uint8_t kMaskWriteRegister = 0x16;
constexpr uint8_t kReadWriteRegisters = 0x17;

uint16_t Word(std::span<const uint8_t> pdu, size_t offset) {
  return static_cast<uint16_t>((pdu[offset] << 8) | pdu[offset + 1]);
}

}  // namespace

std::string_view TableName(Table table) {
  switch (table) {
    case Table::kCoil:
      return "coil";
    case Table::kDiscrete:
      return "discrete";
    case Table::kHolding:
      return "holding";
    case Table::kInput:
      return "input";
  }
  return "unknown";
}

bool IsBitTable(Table table) { return table == Table::kCoil || table == Table::kDiscrete; }

Result<RegisterRef> ParseRegisterRef(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return InvalidArgumentError(
        fmt::format("'{}' is not a register (use holding:N, input:N, coil:N or discrete:N)", text));
  }
  const std::string_view name = text.substr(0, colon);
  const std::string_view number = text.substr(colon + 1);
  RegisterRef ref;
  if (name == "holding") {
    ref.table = Table::kHolding;
  } else if (name == "input") {
    ref.table = Table::kInput;
  } else if (name == "coil") {
    ref.table = Table::kCoil;
  } else if (name == "discrete") {
    ref.table = Table::kDiscrete;
  } else {
    return InvalidArgumentError(
        fmt::format("'{}': unknown table '{}' (use holding, input, coil or discrete)", text, name));
  }
  uint32_t address = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), address);
  if (number.empty() || ec != std::errc() || end != number.data() + number.size() ||
      address > 65535) {
    return InvalidArgumentError(
        fmt::format("'{}': the address must be an integer in 0..65535", text));
  }
  ref.address = static_cast<uint16_t>(address);
  return ref;
}

std::string FormatRegisterRef(RegisterRef ref) {
  return fmt::format("{}:{}", TableName(ref.table), ref.address);
}

bool Access::Covers(RegisterRef ref) const {
  return ref.table == table && ref.address >= address && ref.address < address + count;
}

RequestAccess ParseRequestAccess(std::span<const uint8_t> pdu) {
  RequestAccess out;
  if (pdu.size() < 5) return out;
  const uint16_t address = Word(pdu, 1);
  const uint16_t value = Word(pdu, 3);
  auto add = [&out](Table table, uint32_t addr, uint32_t count, bool write) {
    out.runs[out.size++] = Access{table, addr, count, write};
  };
  switch (pdu[0]) {
    case kReadCoils:
      add(Table::kCoil, address, value, false);
      break;
    case kReadDiscreteInputs:
      add(Table::kDiscrete, address, value, false);
      break;
    case kReadHoldingRegisters:
      add(Table::kHolding, address, value, false);
      break;
    case kReadInputRegisters:
      add(Table::kInput, address, value, false);
      break;
    case kWriteSingleCoil:
      add(Table::kCoil, address, 1, true);
      break;
    case kWriteSingleRegister:
      add(Table::kHolding, address, 1, true);
      break;
    case kWriteMultipleCoils:
      add(Table::kCoil, address, value, true);
      break;
    case kWriteMultipleRegisters:
      add(Table::kHolding, address, value, true);
      break;
    case kMaskWriteRegister:
      add(Table::kHolding, address, 1, true);
      break;
    case kReadWriteRegisters:
      if (pdu.size() < 9) break;
      add(Table::kHolding, address, value, false);
      add(Table::kHolding, Word(pdu, 5), Word(pdu, 7), true);
      break;
    default:
      break;
  }
  return out;
}

}  // namespace kiln::sim
