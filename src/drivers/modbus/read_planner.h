#pragma once
// Read planner: coalesces the tags of a device into the fewest read requests (FC1 coils, FC2
// discrete inputs, FC3 holding and FC4 input registers) that cover every tag within the
// protocol limits. Pure functions; thread-safe.
#include <cstdint>
#include <span>
#include <vector>

#include "drivers/modbus/modbus_config.h"

namespace kiln::drivers::modbus {

// Protocol limits of one read (Modbus Application Protocol V1.1b §6.1 to §6.4).
inline constexpr uint16_t kMaxReadRegisters = 125;  // FC3, FC4
inline constexpr uint16_t kMaxReadBits = 2000;      // FC1, FC2

struct PlanOptions {
  // Registers (or bits) that belong to no tag which one request may read to join two tags;
  // 0 joins only adjacent or overlapping tags. Bridged registers must exist on the device,
  // or the whole request fails with exception 02.
  uint16_t max_gap = 0;
  // Largest request; lower them for devices that refuse full-size reads.
  // REQUIRES: 4 <= max_registers <= kMaxReadRegisters, 1 <= max_bits <= kMaxReadBits.
  uint16_t max_registers = kMaxReadRegisters;
  uint16_t max_bits = kMaxReadBits;
};

// One read request and the tags it serves.
struct ReadRequest {
  RegisterKind kind = RegisterKind::kHoldingRegister;
  uint16_t address = 0;        // first register or bit
  uint16_t count = 0;          // registers or bits, 1..limit
  std::vector<uint32_t> tags;  // indices into the planned tag list, by address

  friend bool operator==(const ReadRequest&, const ReadRequest&) = default;
};

// Returns the fewest requests that read every tag of `tags` whole, each within the limits of
// `options` and bridging at most `options.max_gap` registers that belong to no tag. Requests
// come grouped by kind (coils, discrete inputs, holding, input registers), by address within a
// kind. REQUIRES: every tag passes ValidateModbusDevice.
std::vector<ReadRequest> PlanReads(std::span<const ModbusTag> tags, const PlanOptions& options);

// As above, for the tags of `tags` listed in `subset` only; indices in the requests still
// refer to `tags`.
std::vector<ReadRequest> PlanReads(std::span<const ModbusTag> tags,
                                   std::span<const uint32_t> subset, const PlanOptions& options);

// Largest request for `kind` under `options`: max_bits or max_registers.
uint16_t RequestLimit(RegisterKind kind, const PlanOptions& options);

}  // namespace kiln::drivers::modbus
