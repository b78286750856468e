#pragma once
// Channel: sends one read or write request at a time to one Modbus device and classifies the
// outcome for the driver's error policy. The seam between ModbusDriver and libmodbus, which
// only internal/libmodbus_channel.cc includes. Private to kiln::drivers. Single-threaded.
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/status.h"
#include "drivers/modbus/modbus_config.h"

namespace kiln::drivers::modbus::internal {

enum class Outcome : uint8_t {
  kOk,              // read: the values are in the output span; write: the device confirmed it
  kException,       // the device answered with exception `exception_code`
  kTimeout,         // no complete answer within the response timeout
  kConnectionLost,  // the connection broke: reset, closed, refused, bad descriptor...
  kBadResponse,     // an answer that does not fit the request: short, odd, bad CRC
};

struct RequestOutcome {
  Outcome outcome = Outcome::kOk;
  uint8_t exception_code = 0;  // kException only
  std::string error;           // the transport's text for anything but kOk
};

class Channel {
 public:
  virtual ~Channel() = default;

  virtual bool connected() const = 0;
  // Opens the connection (closing any previous one first).
  // Errors: Unavailable naming the endpoint and the system error.
  virtual Status Connect() = 0;
  // Closes the connection; harmless when closed.
  virtual void Close() = 0;
  // Reads `count` holding or input registers at `address` into out[0, count).
  // REQUIRES: 1 <= count <= 125, out.size() >= count.
  virtual RequestOutcome ReadRegisters(RegisterKind kind, uint16_t address, uint16_t count,
                                       std::span<uint16_t> out) = 0;
  // Reads `count` coils or discrete inputs at `address` into out[0, count), one 0/1 byte each.
  // REQUIRES: 1 <= count <= 2000, out.size() >= count.
  virtual RequestOutcome ReadBits(RegisterKind kind, uint16_t address, uint16_t count,
                                  std::span<uint8_t> out) = 0;
  // Writes holding registers [address, address + values.size()): FC6 (write single register)
  // for one value, FC16 (write multiple registers) for more.
  // REQUIRES: 1 <= values.size() <= 123.
  virtual RequestOutcome WriteRegisters(uint16_t address, std::span<const uint16_t> values) = 0;
  // Writes one coil with FC5 (write single coil).
  virtual RequestOutcome WriteCoil(uint16_t address, bool value) = 0;
};

// A channel over libmodbus: TCP (modbus_new_tcp_pi) or RTU (modbus_new_rtu). Does not
// connect. Errors: InvalidArgument if libmodbus refuses the settings.
Result<std::unique_ptr<Channel>> NewLibmodbusChannel(const ModbusDeviceConfig& config);

}  // namespace kiln::drivers::modbus::internal
