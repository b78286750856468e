#pragma once
// Sans-IO Modbus value codec: turns the registers (or bits) of a read response into a
// contract::Value by type, word order, scale and offset, and back for writes. Pure functions
// of their arguments; thread-safe.
//
// A register is a uint16_t as the transport hands it over: register r came on the wire as the
// two bytes r >> 8, then r & 0xFF. The codec reassembles values from those wire bytes itself,
// independently of the host's endianness and of libmodbus's modbus_get_float_* helpers (whose
// behaviour changed between libmodbus versions, PROTOCOLS.md A3).
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "contract/quality.h"
#include "contract/value.h"
#include "core/status.h"
#include "drivers/modbus/modbus_config.h"

namespace kiln::drivers::modbus {

// Decodes a value of raw `type` from exactly RegisterCount(type) registers in `order`.
// Errors: InvalidArgument if `type` is not a register type (bool, int8, uint8, string, null)
// or `registers` has the wrong size.
Result<contract::Value> DecodeRegisters(std::span<const uint16_t> registers,
                                        contract::ValueType type, WordOrder order);

// The inverse: the RegisterCount(type) registers of `value` in `order`.
// Errors: InvalidArgument if `type` is not a register type or `value` is not of type `type`.
Result<std::vector<uint16_t>> EncodeRegisters(const contract::Value& value,
                                              contract::ValueType type, WordOrder order);

// Returns `raw` unchanged when scale is 1 and offset 0; otherwise the float64 value
// raw * scale + offset (bool counts as 0 or 1; 64-bit integers lose precision beyond 2^53).
// A null or string `raw` stays as it is.
contract::Value ApplyScale(const contract::Value& raw, double scale, double offset);

// Decodes a register tag (holding or input) from the Width(tag) registers it spans and
// applies its scale and offset; the value has type PublishedType(tag).
// Errors: InvalidArgument as DecodeRegisters, or if `tag` is a bit tag.
Result<contract::Value> DecodeRegisterTag(const ModbusTag& tag,
                                          std::span<const uint16_t> registers);

// The registers to write for `value` on a register tag: undoes scale and offset, rounds to
// the nearest integer for integer raw types.
// Errors: InvalidArgument if `value` is null, a string, or `tag` is a bit tag;
// OutOfRange if the raw value does not fit the tag's raw type.
Result<std::vector<uint16_t>> EncodeRegisterTag(const ModbusTag& tag, const contract::Value& value);

// The coil state to write for `value`: a bool, or an integer 0 or 1.
// Errors: InvalidArgument for any other value.
Result<bool> EncodeBit(const contract::Value& value);

// "illegal data address" for 2, "exception 0x0C" for codes without a name.
std::string ExceptionName(uint8_t code);

// The quality of the tags of a request the device refused with exception `code`:
// 01 BadNotSupported, 02 BadNodeIdUnknown, 03 BadOutOfRange, 04 BadDeviceFailure,
// 05 and 06 BadResourceUnavailable (0x80040000), 07 and 08 BadDeviceFailure,
// 0A and 0B BadNoCommunication; any other code BadCommunicationError.
contract::Quality QualityForException(uint8_t code);

// Exception codes (Modbus Application Protocol V1.1b §7).
inline constexpr uint8_t kIllegalFunction = 0x01;
inline constexpr uint8_t kIllegalDataAddress = 0x02;
inline constexpr uint8_t kIllegalDataValue = 0x03;
inline constexpr uint8_t kServerDeviceFailure = 0x04;
inline constexpr uint8_t kAcknowledge = 0x05;
inline constexpr uint8_t kServerDeviceBusy = 0x06;
inline constexpr uint8_t kNegativeAcknowledge = 0x07;
inline constexpr uint8_t kMemoryParityError = 0x08;
inline constexpr uint8_t kGatewayPathUnavailable = 0x0A;
inline constexpr uint8_t kGatewayTargetFailedToRespond = 0x0B;

}  // namespace kiln::drivers::modbus
