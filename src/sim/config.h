#pragma once
// The simulator's TOML configuration (examples/sim.toml shows every key):
//
//   [[servers]]
//   id = "press-3"
//   protocol = "tcp"                 # or "rtu"
//   listen = "127.0.0.1:5020"        # tcp: IPv4 address (or localhost) and port; 0 = any free port
//   serial = "pty"                   # rtu: a device such as "/dev/ttyUSB0", or "pty" to create a
//   baud = 19200                     #   pseudo-terminal; baud, parity ("N", "E", "O"),
//   parity = "E"                     #   data_bits (7, 8) and stop_bits (1, 2) apply to devices
//   unit_id = 1                      # rtu: the only unit answered (1..247); tcp answers any
//     [[servers.registers]]
//     register = "holding:0"         # holding | input | coil | discrete, 0-based address
//     type = "float32"               # bool on coils and discrete inputs; int16 uint16 int32
//                                    # uint32 int64 uint64 float32 float64 on registers
//     word_order = "ABCD"            # ABCD (default) CDAB BADC DCBA
//     signal = "sine"                # constant (default) | sine | ramp | random_walk | step
//     offset = 20.0                  # the parameters of the signal (see SignalKind)
//     amplitude = 5.0
//     period_s = 60
//     update_ms = 100                # re-evaluation period (default 100)
//     count = 1                      # consecutive instances of this definition (default 1)
//     [[servers.faults]]
//     kind = "exception"             # exception | freeze | silent | drop (drop: tcp only)
//     at_s = 10                      # seconds after start
//     duration_s = 5                 # optional; without it the fault lasts until `clear`
//     register = "holding:0"         # exception only
//     code = 2                       # exception only: 1..11
//
// Loading records every problem as "file:line:column: key: message". Value types.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "contract/value.h"
#include "core/status.h"
#include "sim/address.h"
#include "sim/register_codec.h"
#include "sim/signal.h"

namespace kiln::sim {

enum class Protocol : uint8_t { kTcp, kRtu };
std::string_view ProtocolName(Protocol protocol);

// The `serial` value that makes an RTU server create a pseudo-terminal.
inline constexpr std::string_view kPtyDevice = "pty";

struct SerialConfig {
  std::string device;  // a serial device path, or kPtyDevice
  int32_t baud = 19200;
  char parity = 'E';  // 'N', 'E' or 'O' (libmodbus's letters); even, as the Modbus serial line spec
  int32_t data_bits = 8;
  int32_t stop_bits = 1;
};

// One [[servers.registers]] entry: `count` consecutive values of one type from `first`.
struct RegisterConfig {
  RegisterRef first;
  contract::ValueType type = contract::ValueType::kUInt16;
  WordOrder word_order = WordOrder::kABCD;
  SignalConfig signal;
  std::chrono::milliseconds update{100};
  uint32_t count = 1;

  // Registers (or bits) one instance spans.
  uint16_t width() const { return RegisterWidth(type); }
};

enum class FaultKind : uint8_t {
  kException,  // requests touching one address get a Modbus exception
  kFreeze,     // registers stop following their signals
  kSilent,     // requests are read and never answered
  kDrop,       // connections are closed and the listening socket too (tcp only)
};

// "exception" | "freeze" | "silent" | "drop".
std::optional<FaultKind> ParseFaultKind(std::string_view name);
std::string_view FaultKindName(FaultKind kind);

// One active fault: a kind and, for exceptions, where and which code.
struct Fault {
  FaultKind kind = FaultKind::kFreeze;
  RegisterRef ref;             // kException
  uint8_t exception_code = 0;  // kException: 1..11

  friend bool operator==(const Fault&, const Fault&) = default;
};

// Modbus exception codes the server can send (libmodbus accepts 1..11).
inline constexpr int kMinExceptionCode = 1;
inline constexpr int kMaxExceptionCode = 11;

// One [[servers.faults]] entry.
struct ScriptedFault {
  Fault fault;
  std::chrono::milliseconds at{0};                    // after the server starts
  std::optional<std::chrono::milliseconds> duration;  // nullopt: until cleared
};

struct ServerConfig {
  std::string id;
  Protocol protocol = Protocol::kTcp;
  std::string host = "127.0.0.1";  // tcp: IPv4 address to bind
  uint16_t port = 0;               // tcp: 0 picks a free port
  SerialConfig serial;             // rtu
  int32_t unit_id = 1;
  std::vector<RegisterConfig> registers;
  std::vector<ScriptedFault> faults;
};

struct SimConfig {
  std::vector<ServerConfig> servers;
};

// Reads and checks the configuration file at `path`. Errors: NotFound if it cannot be read;
// InvalidArgument listing every problem, one "file:line:column: key: message" per line.
Result<SimConfig> LoadSimConfig(const std::string& path);

// Same for TOML `text`; `file_name` names it in messages.
Result<SimConfig> ParseSimConfig(std::string_view text, const std::string& file_name);

}  // namespace kiln::sim
