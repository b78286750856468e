#include "drivers/modbus/modbus_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <optional>

#include "core/host_port.h"

namespace kiln::drivers::modbus {

namespace {

using contract::ValueType;

constexpr uint32_t kLastAddress = 65535;
// Unit ids libmodbus 3.1.6 accepts: 0..247 (0 = broadcast), and 255 over TCP only.
constexpr int64_t kMaxRtuUnitId = 247;
constexpr int64_t kTcpAnyUnitId = 255;
constexpr int64_t kMaxTimeoutMs = 60'000;
constexpr int64_t kMaxGap = 1999;  // one less than the largest bit read (2000)
// The rates libmodbus 3.1.6 maps to termios (an unknown one silently becomes 9600, and it has
// no case for 2000000).
constexpr std::array<int32_t, 22> kBaudRates = {
    300,    600,    1200,   2400,   4800,    9600,    19200,   38400,   57600,   115200,  230400,
    460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2500000, 3000000, 3500000, 4000000};

constexpr std::array<std::pair<std::string_view, ValueType>, 9> kTypes = {{
    {"bool", ValueType::kBool},
    {"int16", ValueType::kInt16},
    {"uint16", ValueType::kUInt16},
    {"int32", ValueType::kInt32},
    {"uint32", ValueType::kUInt32},
    {"int64", ValueType::kInt64},
    {"uint64", ValueType::kUInt64},
    {"float32", ValueType::kFloat},
    {"float64", ValueType::kDouble},
}};

constexpr std::array<RegisterKind, 4> kKinds = {RegisterKind::kHoldingRegister,
                                                RegisterKind::kInputRegister, RegisterKind::kCoil,
                                                RegisterKind::kDiscreteInput};

constexpr std::array<WordOrder, 4> kWordOrders = {WordOrder::kABCD, WordOrder::kCDAB,
                                                  WordOrder::kBADC, WordOrder::kDCBA};

// Parses a decimal number made of digits only (no sign, no spaces).
std::optional<uint64_t> ParseDigits(std::string_view text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return n;
}

struct RegisterRef {
  RegisterKind kind;
  uint16_t address;
};

Result<RegisterRef> ParseRegister(std::string_view text) {
  const size_t colon = text.find(':');
  const std::string_view kind_name = text.substr(0, colon);
  const auto kind = std::find_if(kKinds.begin(), kKinds.end(),
                                 [&](RegisterKind k) { return RegisterKindName(k) == kind_name; });
  if (colon == std::string_view::npos || kind == kKinds.end()) {
    return InvalidArgumentError(
        fmt::format("'{}' is not a register (use holding:N, input:N, coil:N or discrete:N)", text));
  }
  const std::string_view digits = text.substr(colon + 1);
  const std::optional<uint64_t> address = ParseDigits(digits);
  if (!address) {
    return InvalidArgumentError(fmt::format(
        "'{}' is not a register: '{}' is not a 0-based address (0..65535)", text, digits));
  }
  if (*address > kLastAddress) {
    return InvalidArgumentError(
        fmt::format("'{}': address {} is out of range [0, 65535]", text, *address));
  }
  return RegisterRef{*kind, static_cast<uint16_t>(*address)};
}

void ParseTcp(const ConfigTable& device, ModbusDeviceConfig& config) {
  if (std::optional<std::string> address = device.RequireString("address")) {
    Result<HostPort> hp = ParseHostPort(*address, {.default_port = 502});
    if (hp.ok()) {
      config.host = hp->host;
      config.port = hp->port;
    } else {
      device.Error("address", hp.status().message());
    }
  }
  for (std::string_view key : {"serial", "baud", "parity", "data_bits", "stop_bits"}) {
    if (device.Has(key)) device.Error(key, "only for driver = \"modbus-rtu\"");
  }
}

void ParseRtu(const ConfigTable& device, ModbusDeviceConfig& config) {
  SerialSettings& serial = config.serial;
  serial.device = device.RequireString("serial").value_or("");
  if (device.Has("serial") && serial.device.empty()) device.Error("serial", "must not be empty");
  if (std::optional<int64_t> baud = device.GetInt("baud", 1, 4'000'000)) {
    if (std::find(kBaudRates.begin(), kBaudRates.end(), *baud) == kBaudRates.end()) {
      device.Error("baud",
                   fmt::format("{} is not a standard baud rate (e.g. 9600, 19200, 115200)", *baud));
    } else {
      serial.baud = static_cast<int32_t>(*baud);
    }
  }
  if (std::optional<std::string> parity = device.GetString("parity")) {
    if (*parity == "N") {
      serial.parity = Parity::kNone;
    } else if (*parity == "E") {
      serial.parity = Parity::kEven;
    } else if (*parity == "O") {
      serial.parity = Parity::kOdd;
    } else {
      device.Error("parity",
                   fmt::format("'{}' is not a parity (use \"N\", \"E\" or \"O\")", *parity));
    }
  }
  serial.data_bits = static_cast<int32_t>(device.GetInt("data_bits", 8, 7, 8));
  serial.stop_bits = static_cast<int32_t>(device.GetInt("stop_bits", 1, 1, 2));
  if (device.Has("address")) device.Error("address", "only for driver = \"modbus-tcp\"");
}

ModbusTag ParseTag(const ConfigTable& table) {
  ModbusTag tag;
  bool register_ok = false;
  if (std::optional<std::string> text = table.RequireString("register")) {
    Result<RegisterRef> ref = ParseRegister(*text);
    if (ref.ok()) {
      tag.kind = ref->kind;
      tag.address = ref->address;
      register_ok = true;
    } else {
      table.Error("register", ref.status().message());
    }
  }
  const bool bits = IsBitKind(tag.kind);
  tag.type = bits ? ValueType::kBool : ValueType::kUInt16;

  bool type_ok = true;
  if (std::optional<std::string> name = table.GetString("type")) {
    const auto it = std::find_if(kTypes.begin(), kTypes.end(),
                                 [&](const auto& entry) { return entry.first == *name; });
    if (it == kTypes.end()) {
      table.Error("type", fmt::format("unknown type '{}' (use bool, int16, uint16, int32, uint32, "
                                      "int64, uint64, float32 or float64)",
                                      *name));
      type_ok = false;
    } else {
      tag.type = it->second;
    }
  } else if (table.Has("type")) {
    type_ok = false;  // wrong TOML type, already recorded
  }
  if (register_ok && type_ok) {
    const std::string where = FormatRegister(tag.kind, tag.address);
    if (bits && tag.type != ValueType::kBool) {
      table.Error("type", fmt::format("{} is a single bit: its type must be bool", where));
    } else if (!bits && tag.type == ValueType::kBool) {
      table.Error("type", fmt::format("{} is a 16-bit register: bool needs a coil or discrete "
                                      "input",
                                      where));
    } else if (tag.address + uint32_t{Width(tag)} - 1 > kLastAddress) {
      table.Error("register", fmt::format("{} at {} spans {} registers and runs past 65535",
                                          contract::ValueTypeName(tag.type), where, Width(tag)));
    }
  }

  if (std::optional<std::string> order = table.GetString("word_order")) {
    const auto it = std::find_if(kWordOrders.begin(), kWordOrders.end(),
                                 [&](WordOrder w) { return WordOrderName(w) == *order; });
    if (it == kWordOrders.end()) {
      table.Error("word_order", fmt::format("unknown word order '{}' (use ABCD, CDAB, BADC or "
                                            "DCBA)",
                                            *order));
    } else if (bits) {
      table.Error("word_order", "applies to registers only, not to coils or discrete inputs");
    } else {
      tag.word_order = *it;
    }
  }

  if (std::optional<double> scale = table.GetDouble("scale")) {
    if (!std::isfinite(*scale) || *scale == 0.0) {
      table.Error("scale", "must be a finite, non-zero number");
    } else if (bits) {
      table.Error("scale", "applies to registers only, not to coils or discrete inputs");
    } else {
      tag.scale = *scale;
    }
  }
  if (std::optional<double> offset = table.GetDouble("offset")) {
    if (!std::isfinite(*offset)) {
      table.Error("offset", "must be a finite number");
    } else if (bits) {
      table.Error("offset", "applies to registers only, not to coils or discrete inputs");
    } else {
      tag.offset = *offset;
    }
  }
  return tag;
}

}  // namespace

std::string_view RegisterKindName(RegisterKind kind) {
  switch (kind) {
    case RegisterKind::kCoil:
      return "coil";
    case RegisterKind::kDiscreteInput:
      return "discrete";
    case RegisterKind::kHoldingRegister:
      return "holding";
    case RegisterKind::kInputRegister:
      return "input";
  }
  return "unknown";
}

bool IsBitKind(RegisterKind kind) {
  return kind == RegisterKind::kCoil || kind == RegisterKind::kDiscreteInput;
}

uint8_t ReadFunctionCode(RegisterKind kind) {
  switch (kind) {
    case RegisterKind::kCoil:
      return 1;
    case RegisterKind::kDiscreteInput:
      return 2;
    case RegisterKind::kHoldingRegister:
      return 3;
    case RegisterKind::kInputRegister:
      return 4;
  }
  return 0;
}

std::string FormatRegister(RegisterKind kind, uint16_t address) {
  return fmt::format("{}:{}", RegisterKindName(kind), address);
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

uint16_t RegisterCount(ValueType type) {
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
    default:
      return 0;
  }
}

uint16_t Width(const ModbusTag& tag) { return RegisterCount(tag.type); }

ValueType PublishedType(const ModbusTag& tag) {
  return (tag.scale != 1.0 || tag.offset != 0.0) ? ValueType::kDouble : tag.type;
}

std::string ModbusDeviceConfig::Endpoint() const {
  if (transport == Transport::kRtu) return serial.device;
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

ModbusDeviceConfig ParseModbusDevice(const ConfigTable& device) {
  ModbusDeviceConfig config;
  std::optional<std::string> driver = device.RequireString("driver");
  if (driver == "modbus-rtu") {
    config.transport = Transport::kRtu;
    ParseRtu(device, config);
  } else {
    if (driver && *driver != "modbus-tcp") {
      device.Error("driver", fmt::format("'{}' is not a Modbus driver (use \"modbus-tcp\" or "
                                         "\"modbus-rtu\")",
                                         *driver));
    }
    ParseTcp(device, config);
  }

  const bool tcp = config.transport == Transport::kTcp;
  // Over a serial line 0 is the broadcast address, which devices never answer.
  if (std::optional<int64_t> unit =
          device.GetInt("unit_id", tcp ? 0 : 1, tcp ? kTcpAnyUnitId : kMaxRtuUnitId)) {
    if (*unit > kMaxRtuUnitId && *unit != kTcpAnyUnitId) {
      device.Error("unit_id", fmt::format("{} is reserved: use 0..247, or 255 over TCP", *unit));
    } else {
      config.unit_id = static_cast<uint8_t>(*unit);
    }
  }
  config.timeout = std::chrono::milliseconds(device.GetInt("timeout_ms", 1000, 1, kMaxTimeoutMs));
  config.max_gap = static_cast<uint16_t>(device.GetInt("max_gap", 0, 0, kMaxGap));

  for (const ConfigTable& table : device.GetTableArray("tags")) {
    config.tags.push_back(ParseTag(table));
  }
  return config;
}

const std::vector<std::string_view>& ModbusDeviceKeys() {
  static const std::vector<std::string_view> kKeys = {
      "driver",    "address", "serial",     "baud",    "parity", "data_bits",
      "stop_bits", "unit_id", "timeout_ms", "max_gap", "tags"};
  return kKeys;
}

const std::vector<std::string_view>& ModbusTagKeys() {
  static const std::vector<std::string_view> kKeys = {"register", "type", "word_order", "scale",
                                                      "offset"};
  return kKeys;
}

Status ValidateModbusDevice(const ModbusDeviceConfig& config) {
  if (config.transport == Transport::kTcp) {
    if (config.host.empty()) return InvalidArgumentError("modbus-tcp device without a host");
    if (config.unit_id > kMaxRtuUnitId && config.unit_id != kTcpAnyUnitId) {
      return InvalidArgumentError(fmt::format("unit_id {} is reserved", config.unit_id));
    }
  } else {
    if (config.serial.device.empty()) {
      return InvalidArgumentError("modbus-rtu device without a serial device");
    }
    if (config.unit_id == 0 || config.unit_id > kMaxRtuUnitId) {
      return InvalidArgumentError(
          fmt::format("unit_id {} is out of range [1, 247]", config.unit_id));
    }
  }
  if (config.timeout.count() < 1) return InvalidArgumentError("timeout must be positive");
  for (size_t i = 0; i < config.tags.size(); ++i) {
    const ModbusTag& tag = config.tags[i];
    const std::string where = fmt::format("tag {} ({})", i, FormatRegister(tag.kind, tag.address));
    if (Width(tag) == 0) {
      return InvalidArgumentError(fmt::format("{}: type {} is not a Modbus type", where,
                                              contract::ValueTypeName(tag.type)));
    }
    if (IsBitKind(tag.kind) != (tag.type == ValueType::kBool)) {
      return InvalidArgumentError(
          fmt::format("{}: bool goes with coils and discrete inputs, and only there", where));
    }
    if (tag.address + uint32_t{Width(tag)} - 1 > kLastAddress) {
      return InvalidArgumentError(fmt::format("{}: runs past register 65535", where));
    }
    if (!std::isfinite(tag.scale) || tag.scale == 0.0 || !std::isfinite(tag.offset)) {
      return InvalidArgumentError(
          fmt::format("{}: scale must be finite and non-zero, offset "
                      "finite",
                      where));
    }
  }
  return OkStatus();
}

}  // namespace kiln::drivers::modbus
