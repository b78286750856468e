#pragma once
// Register encoding of the simulator: typed values to 16-bit Modbus registers and back.
// Written from the wire bytes of the big-endian value (never from host memory layout or
// libmodbus's float helpers), so it does not depend on host endianness or library version,
// and it stays independent of the Modbus driver's codec, which tests cross-check against it.
// Pure functions; thread-safe.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "contract/value.h"

namespace kiln::sim {

// The order of the big-endian bytes A B C D of a 32-bit value in two registers
// (PROTOCOLS.md A3). 64-bit values extend the pattern over four registers (ABCD = AB CD EF GH,
// CDAB = GH EF CD AB, BADC = BA DC FE HG, DCBA = HG FE DC BA), and 16-bit values take its
// byte part (BADC and DCBA swap the two bytes of the register). Same semantics as the
// Modbus driver's WordOrder.
enum class WordOrder : uint8_t {
  kABCD,  // big-endian, the Modbus convention
  kCDAB,  // registers in reverse order, bytes big-endian within each register
  kBADC,  // registers in order, bytes swapped within each register
  kDCBA,  // fully little-endian
};

// Parses "ABCD" | "CDAB" | "BADC" | "DCBA".
std::optional<WordOrder> ParseWordOrder(std::string_view name);
std::string_view WordOrderName(WordOrder order);

// Registers (or bits) a value of `type` spans: 1 for bool and the 16-bit types, 2 for the
// 32-bit ones, 4 for the 64-bit ones; 0 for types Modbus does not carry (null, int8, uint8,
// string).
uint16_t RegisterWidth(contract::ValueType type);

// Writes `value` into `out`: bool as 0 or 1, integers as two's complement, floats as
// IEEE 754. REQUIRES: out.size() == RegisterWidth(value.type()) > 0.
void EncodeRegisters(const contract::Value& value, WordOrder order, std::span<uint16_t> out);

// The inverse of EncodeRegisters: reads a value of `type` from `in`.
// REQUIRES: in.size() == RegisterWidth(type) > 0.
contract::Value DecodeRegisters(std::span<const uint16_t> in, contract::ValueType type,
                                WordOrder order);

}  // namespace kiln::sim
