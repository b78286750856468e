#pragma once
// Modbus device configuration: the Modbus keys of one [[devices]] table of the edge TOML and
// of its [[devices.tags]], as plain values. The edge parses the generic keys (id, poll_ms, name,
// unit, deadband, heartbeat_s) itself and rejects unknown keys with the union of its keys and
// ModbusDeviceKeys() / ModbusTagKeys(). Value types; thread-compatible.
//
//   [[devices]]
//   driver = "modbus-tcp"          # or "modbus-rtu" with serial, baud, parity, ...
//   address = "127.0.0.1:5020"     # host:port ([v6]:port); the port defaults to 502
//   unit_id = 1                    # 1..247 (RTU), 0..247 or 255 (TCP); default 1
//   timeout_ms = 1000              # response timeout (default 1000)
//   max_gap = 0                    # unused registers a coalesced read may bridge (default 0)
//     [[devices.tags]]
//     register = "holding:0"       # holding | input | coil | discrete, then the 0-based address
//     type = "float32"             # bool int16 uint16 int32 uint32 int64 uint64 float32 float64
//     word_order = "ABCD"          # ABCD (default) CDAB BADC DCBA
//     scale = 1.0                  # published = raw * scale + offset
//     offset = 0.0
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "contract/sample.h"
#include "contract/value.h"
#include "core/config.h"
#include "core/status.h"

namespace kiln::drivers::modbus {

// The four Modbus data tables; each is read with its own function code.
enum class RegisterKind : uint8_t {
  kCoil,             // "coil": read/write bits, FC1
  kDiscreteInput,    // "discrete": read-only bits, FC2
  kHoldingRegister,  // "holding": read/write 16-bit registers, FC3
  kInputRegister,    // "input": read-only 16-bit registers, FC4
};

// "coil", "discrete", "holding", "input".
std::string_view RegisterKindName(RegisterKind kind);
// True for coils and discrete inputs, whose items are single bits.
bool IsBitKind(RegisterKind kind);
// The read function code of `kind`: 1, 2, 3 or 4.
uint8_t ReadFunctionCode(RegisterKind kind);
// "holding:17".
std::string FormatRegister(RegisterKind kind, uint16_t address);

// The order of the big-endian bytes A B C D of a 32-bit value in two registers (PROTOCOLS.md
// A3); 64-bit values extend the pattern over four registers (ABCD = A B C D E F G H, CDAB =
// G H E F C D A B, BADC = B A D C F E H G, DCBA = H G F E D C B A), and 16-bit values take the
// byte part of it (BADC and DCBA swap the two bytes of the register).
enum class WordOrder : uint8_t {
  kABCD,  // big-endian, the Modbus convention
  kCDAB,  // registers in reverse order, bytes big-endian within each register
  kBADC,  // registers in order, bytes swapped within each register
  kDCBA,  // fully little-endian
};

std::string_view WordOrderName(WordOrder order);

// Registers (FC3/FC4) or bits (FC1/FC2) that a value of raw type `type` spans: 1 for bool
// and the 16-bit types, 2 for the 32-bit ones, 4 for the 64-bit ones; 0 for a type Modbus
// does not carry (int8, uint8, string, null).
uint16_t RegisterCount(contract::ValueType type);

// One tag of a Modbus device.
struct ModbusTag {
  contract::TagId id = 0;  // filled by the caller (the edge numbers tags in file order)
  RegisterKind kind = RegisterKind::kHoldingRegister;
  uint16_t address = 0;                                     // 0-based PDU address
  contract::ValueType type = contract::ValueType::kUInt16;  // raw type on the wire
  WordOrder word_order = WordOrder::kABCD;
  double scale = 1.0;  // published value = raw * scale + offset
  double offset = 0.0;

  friend bool operator==(const ModbusTag&, const ModbusTag&) = default;
};

// Registers or bits the tag spans: RegisterCount(tag.type).
uint16_t Width(const ModbusTag& tag);

// The type of the values a tag publishes: its raw type, except that a tag with scale != 1
// or offset != 0 publishes float64 (kDouble), the scaled value of any raw type.
contract::ValueType PublishedType(const ModbusTag& tag);

enum class Transport : uint8_t { kTcp, kRtu };

// Serial parity; the enumerator value is libmodbus's parity character.
enum class Parity : char { kNone = 'N', kEven = 'E', kOdd = 'O' };

// The serial line of a Modbus RTU device.
struct SerialSettings {
  std::string device;             // e.g. "/dev/ttyUSB0"
  int32_t baud = 19200;           // a standard termios rate
  Parity parity = Parity::kEven;  // Modbus over serial line V1.02 §2.5.1: even by default
  int32_t data_bits = 8;
  int32_t stop_bits = 1;

  friend bool operator==(const SerialSettings&, const SerialSettings&) = default;
};

struct ModbusDeviceConfig {
  Transport transport = Transport::kTcp;
  std::string host;       // TCP: a name or an IP address (IPv6 without brackets)
  uint16_t port = 502;    // TCP
  SerialSettings serial;  // RTU
  uint8_t unit_id = 1;
  std::chrono::milliseconds timeout{1000};  // response timeout, also used for connecting
  uint16_t max_gap = 0;  // unused registers (or bits) a coalesced read may bridge
  std::vector<ModbusTag> tags;

  // "host:port" ("[v6]:port") for TCP, the serial device for RTU; for messages.
  std::string Endpoint() const;

  friend bool operator==(const ModbusDeviceConfig&, const ModbusDeviceConfig&) = default;
};

// Reads the Modbus keys of a [[devices]] table and of each of its [[devices.tags]] and
// records every problem through `device` (so in its ConfigDocument, as file:line:column:
// key: message): a missing or unknown driver, a bad address or port, serial keys on a TCP
// device and the reverse, unit_id out of range, a bad register ("holding:N" with N in
// 0..65535), a value running past register 65535, an unknown type or word order, bool on
// registers or a non-bool on coils and discrete inputs, a zero or non-finite scale.
// Returns one ModbusTag per [[devices.tags]] entry in file order, even for an entry with
// errors, so the caller can zip them with its own per-tag keys; ids are left 0. The result is
// usable only if the document recorded no error.
ModbusDeviceConfig ParseModbusDevice(const ConfigTable& device);

// The keys ParseModbusDevice reads in a [[devices]] table (including "tags") and in a
// [[devices.tags]] table.
const std::vector<std::string_view>& ModbusDeviceKeys();
const std::vector<std::string_view>& ModbusTagKeys();

// Checks the invariants ParseModbusDevice guarantees, for configs built in code.
// Errors: InvalidArgument naming the first offending tag or setting.
Status ValidateModbusDevice(const ModbusDeviceConfig& config);

}  // namespace kiln::drivers::modbus
