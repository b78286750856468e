#pragma once
// Modbus data addresses as the simulator names them ("holding:10"), and the data a request
// touches, read from its PDU without I/O (used to inject exceptions and to notice client
// writes). Value types and pure functions; thread-compatible.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"

namespace kiln::sim {

// The four Modbus data tables.
enum class Table : uint8_t {
  kCoil,      // "coil": read/write bits (FC1, FC5, FC15)
  kDiscrete,  // "discrete": read-only bits (FC2)
  kHolding,   // "holding": read/write registers (FC3, FC6, FC16, FC22, FC23)
  kInput,     // "input": read-only registers (FC4)
};

// "coil", "discrete", "holding", "input".
std::string_view TableName(Table table);
// True for coils and discrete inputs, whose items are single bits.
bool IsBitTable(Table table);

// One 0-based address in one table.
struct RegisterRef {
  Table table = Table::kHolding;
  uint16_t address = 0;

  friend bool operator==(const RegisterRef&, const RegisterRef&) = default;
};

// Parses "holding:10" (table name, a colon, a decimal address 0..65535).
// Errors: InvalidArgument naming the text.
Result<RegisterRef> ParseRegisterRef(std::string_view text);
// "holding:10".
std::string FormatRegisterRef(RegisterRef ref);

// A run of `count` items from `address` in `table` that a request reads or writes.
struct Access {
  Table table = Table::kHolding;
  uint32_t address = 0;  // uint32: a malformed request may run past 65535
  uint32_t count = 0;
  bool write = false;

  // True if `ref` lies in this run.
  bool Covers(RegisterRef ref) const;
};

// The data one request touches: none, one run, or two (FC23 reads and writes).
struct RequestAccess {
  std::array<Access, 2> runs{};
  uint8_t size = 0;

  std::span<const Access> items() const { return {runs.data(), size}; }
};

// Reads the function code and the address fields of a request PDU (function code first).
// Functions that touch no data table, and PDUs too short for their function, give no run:
// libmodbus answers those itself.
RequestAccess ParseRequestAccess(std::span<const uint8_t> pdu);

}  // namespace kiln::sim
