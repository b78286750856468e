#include "sim/config.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/config.h"
#include "core/host_port.h"

namespace kiln::sim {

namespace {

using contract::ValueType;

constexpr std::string_view kServerKeys[] = {"id",      "protocol",  "listen",    "serial",
                                            "baud",    "parity",    "data_bits", "stop_bits",
                                            "unit_id", "registers", "faults"};
constexpr std::string_view kSerialKeys[] = {"serial", "baud", "parity", "data_bits", "stop_bits"};
// Bound on time values (about 31 years): larger ones are typos, and would overflow.
constexpr double kMaxSeconds = 1e9;
constexpr std::string_view kRegisterKeys[] = {"register", "type",      "word_order",
                                              "signal",   "update_ms", "count"};
constexpr std::string_view kFaultKeys[] = {"kind", "at_s", "duration_s", "register", "code"};
// The baud rates libmodbus maps to termios speeds (it silently falls back to 9600 otherwise).
constexpr int64_t kBaudRates[] = {110,    300,    600,    1200,   2400,   4800,
                                  9600,   19200,  38400,  57600,  115200, 230400,
                                  460800, 500000, 576000, 921600, 1000000};

// The keys each signal kind reads.
std::vector<std::string_view> SignalKeys(SignalKind kind) {
  switch (kind) {
    case SignalKind::kConstant:
      return {"value"};
    case SignalKind::kSine:
      return {"offset", "amplitude", "period_s"};
    case SignalKind::kRamp:
      return {"min", "max", "period_s"};
    case SignalKind::kRandomWalk:
      return {"start", "step", "min", "max", "seed"};
    case SignalKind::kStep:
      return {"values", "period_s"};
  }
  return {};
}

// Reads "host:port" with an IPv4 host (or "localhost").
Result<std::pair<std::string, uint16_t>> ParseListen(std::string_view listen) {
  KILN_ASSIGN_OR_RETURN(
      HostPort hp, ParseHostPort(listen, {.default_port = std::nullopt, .allow_port_zero = true}));
  if (hp.host == "localhost") hp.host = "127.0.0.1";
  in_addr addr{};
  if (inet_pton(AF_INET, hp.host.c_str(), &addr) != 1) {
    return InvalidArgumentError(
        fmt::format("'{}': the host must be an IPv4 address or localhost", listen));
  }
  return std::make_pair(hp.host, hp.port);
}

// The range of values `type` holds, for "does not fit" checks.
std::pair<double, double> TypeRange(ValueType type) {
  switch (type) {
    case ValueType::kInt16:
      return {INT16_MIN, INT16_MAX};
    case ValueType::kUInt16:
      return {0, UINT16_MAX};
    case ValueType::kInt32:
      return {INT32_MIN, INT32_MAX};
    case ValueType::kUInt32:
      return {0, UINT32_MAX};
    case ValueType::kInt64:
      return {static_cast<double>(INT64_MIN), static_cast<double>(INT64_MAX)};
    case ValueType::kUInt64:
      return {0, static_cast<double>(UINT64_MAX)};
    case ValueType::kFloat:
      return {-std::numeric_limits<float>::max(), std::numeric_limits<float>::max()};
    default:
      return {-std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
  }
}

std::chrono::milliseconds SecondsToMillis(double seconds) {
  return std::chrono::milliseconds(std::llround(seconds * 1000));
}

// Walks the document with ConfigTable, which records errors, and falls back to the raw
// toml++ tree for what ConfigTable does not read (arrays of numbers, booleans as numbers).
class Loader {
 public:
  Loader(ConfigDocument& doc, const toml::table& raw) : doc_(doc), raw_(raw) {}

  SimConfig Load() {
    ConfigTable root = doc_.root();
    root.RejectUnknownKeys({"servers"});
    SimConfig config;
    const std::vector<ConfigTable> servers = root.GetTableArray("servers");
    if (servers.empty() && doc_.errors().empty()) {
      root.Error("servers", "at least one [[servers]] table is required");
    }
    for (const ConfigTable& t : servers) {
      ServerConfig server = LoadServer(t);
      for (size_t i = 0; i < config.servers.size(); ++i) {
        if (!server.id.empty() && config.servers[i].id == server.id) {
          t.Error("id", fmt::format("duplicate server id '{}' (also servers[{}])", server.id, i));
        }
      }
      config.servers.push_back(std::move(server));
    }
    return config;
  }

 private:
  ServerConfig LoadServer(const ConfigTable& t) {
    t.RejectUnknownKeys(
        std::vector<std::string_view>(std::begin(kServerKeys), std::end(kServerKeys)));
    ServerConfig server;
    if (auto id = t.RequireString("id")) {
      if (id->empty() || id->find_first_of(" \t\r\n") != std::string::npos) {
        t.Error("id", "must be non-empty and without spaces (control commands name it)");
      }
      server.id = *id;
    }
    bool protocol_known = false;
    if (auto protocol = t.RequireString("protocol")) {
      if (*protocol == "tcp" || *protocol == "rtu") {
        server.protocol = *protocol == "tcp" ? Protocol::kTcp : Protocol::kRtu;
        protocol_known = true;
      } else {
        t.Error("protocol", fmt::format("'{}' is not a protocol (use tcp or rtu)", *protocol));
      }
    }
    if (protocol_known && server.protocol == Protocol::kTcp) {
      for (std::string_view key : kSerialKeys) {
        if (t.Has(key)) t.Error(key, "applies to rtu servers only");
      }
      if (auto listen = t.RequireString("listen")) {
        auto parsed = ParseListen(*listen);
        if (parsed.ok()) {
          std::tie(server.host, server.port) = *parsed;
        } else {
          t.Error("listen", parsed.status().message());
        }
      }
      server.unit_id = static_cast<int32_t>(t.GetInt("unit_id", 1, 0, 255));
    } else if (protocol_known) {
      if (t.Has("listen")) t.Error("listen", "applies to tcp servers only");
      server.serial.device = t.RequireString("serial").value_or("");
      if (t.Has("serial") && server.serial.device.empty()) {
        t.Error("serial", "must be a device path or \"pty\"");
      }
      const int64_t baud = t.GetInt("baud", 19200, 1, INT32_MAX);
      if (std::find(std::begin(kBaudRates), std::end(kBaudRates), baud) == std::end(kBaudRates)) {
        t.Error("baud", fmt::format("{} is not a standard baud rate", baud));
      }
      server.serial.baud = static_cast<int32_t>(baud);
      const std::string parity = t.GetString("parity", "E");
      if (parity == "N" || parity == "E" || parity == "O") {
        server.serial.parity = parity[0];
      } else {
        t.Error("parity", fmt::format("'{}' is not a parity (use N, E or O)", parity));
      }
      server.serial.data_bits = static_cast<int32_t>(t.GetInt("data_bits", 8, 5, 8));
      server.serial.stop_bits = static_cast<int32_t>(t.GetInt("stop_bits", 1, 1, 2));
      server.unit_id = static_cast<int32_t>(t.GetInt("unit_id", 1, 1, 247));
    }

    const std::vector<ConfigTable> registers = t.GetTableArray("registers");
    std::vector<const ConfigTable*> loaded;  // the tables of server.registers, for overlaps
    for (const ConfigTable& r : registers) {
      if (auto reg = LoadRegister(r)) {
        server.registers.push_back(std::move(*reg));
        loaded.push_back(&r);
      }
    }
    CheckOverlaps(server.registers, loaded);

    for (const ConfigTable& f : t.GetTableArray("faults")) {
      if (auto fault =
              LoadFault(f, protocol_known ? std::optional(server.protocol) : std::nullopt)) {
        server.faults.push_back(*fault);
      }
    }
    return server;
  }

  // Nullopt when the entry is too broken to place (no address or type).
  std::optional<RegisterConfig> LoadRegister(const ConfigTable& t) {
    RegisterConfig reg;
    bool placed = true;
    if (auto text = t.RequireString("register")) {
      auto ref = ParseRegisterRef(*text);
      if (ref.ok()) {
        reg.first = *ref;
      } else {
        t.Error("register", ref.status().message());
        placed = false;
      }
    } else {
      placed = false;
    }
    if (auto name = t.RequireString("type")) {
      auto type = contract::ParseValueType(*name);
      if (type && RegisterWidth(*type) > 0) {
        reg.type = *type;
      } else {
        t.Error("type", fmt::format("'{}' is not a register type (use bool, int16, uint16, int32, "
                                    "uint32, int64, uint64, float32 or float64)",
                                    *name));
        placed = false;
      }
    } else {
      placed = false;
    }
    const bool bits = IsBitTable(reg.first.table);
    if (placed && bits && reg.type != ValueType::kBool) {
      t.Error("type",
              fmt::format("{} registers hold bool values only", TableName(reg.first.table)));
    } else if (placed && !bits && reg.type == ValueType::kBool) {
      t.Error("type", fmt::format("bool needs a coil or discrete register, not {}",
                                  TableName(reg.first.table)));
    }
    if (auto order = t.GetString("word_order")) {
      if (auto parsed = ParseWordOrder(*order)) {
        reg.word_order = *parsed;
        if (placed && bits) t.Error("word_order", "does not apply to bits");
      } else {
        t.Error("word_order",
                fmt::format("'{}' is not a word order (use ABCD, CDAB, BADC or DCBA)", *order));
      }
    }
    reg.update = std::chrono::milliseconds(t.GetInt("update_ms", 100, 1, 86'400'000));
    reg.count = static_cast<uint32_t>(t.GetInt("count", 1, 1, 65536));
    if (placed) {
      const uint64_t last = reg.first.address + uint64_t{reg.count} * reg.width() - 1;
      if (last > 65535) {
        t.Error(t.Has("count") ? "count" : "register",
                fmt::format("{} value(s) of {} from {} run past address 65535", reg.count,
                            contract::ValueTypeName(reg.type), FormatRegisterRef(reg.first)));
      }
    }

    std::vector<std::string_view> known(std::begin(kRegisterKeys), std::end(kRegisterKeys));
    const std::string kind_name = t.GetString("signal", "constant");
    if (auto kind = ParseSignalKind(kind_name)) {
      reg.signal.kind = *kind;
      for (auto key : SignalKeys(*kind)) known.push_back(key);
      LoadSignal(t, reg);
    } else {
      t.Error("signal", fmt::format("'{}' is not a signal (use constant, sine, ramp, random_walk "
                                    "or step)",
                                    kind_name));
      for (SignalKind k : {SignalKind::kConstant, SignalKind::kSine, SignalKind::kRamp,
                           SignalKind::kRandomWalk, SignalKind::kStep}) {
        for (auto key : SignalKeys(k)) known.push_back(key);
      }
    }
    t.RejectUnknownKeys(known);
    if (!placed) return std::nullopt;
    return reg;
  }

  void LoadSignal(const ConfigTable& t, RegisterConfig& reg) {
    SignalConfig& s = reg.signal;
    switch (s.kind) {
      case SignalKind::kConstant:
        s.value = Number(t, "value").value_or(0);
        CheckFits(t, "value", s.value, reg.type);
        break;
      case SignalKind::kSine:
        s.offset = Number(t, "offset").value_or(0);
        s.amplitude = RequireNumber(t, "amplitude").value_or(0);
        s.period_s = RequirePeriod(t);
        CheckFits(t, "amplitude", s.offset - std::abs(s.amplitude), reg.type);
        CheckFits(t, "amplitude", s.offset + std::abs(s.amplitude), reg.type);
        break;
      case SignalKind::kRamp:
        s.min = RequireNumber(t, "min").value_or(0);
        s.max = RequireNumber(t, "max").value_or(0);
        s.period_s = RequirePeriod(t);
        CheckFits(t, "min", s.min, reg.type);
        CheckFits(t, "max", s.max, reg.type);
        break;
      case SignalKind::kRandomWalk: {
        s.min = RequireNumber(t, "min").value_or(0);
        s.max = RequireNumber(t, "max").value_or(0);
        s.step = RequireNumber(t, "step").value_or(0);
        s.seed = static_cast<uint64_t>(t.GetInt("seed", 1, 0, INT64_MAX));
        if (s.max < s.min) {
          t.Error("max", fmt::format("{} is below min {}", s.max, s.min));
          s.max = s.min;
        }
        s.start = Number(t, "start").value_or((s.min + s.max) / 2);
        if (s.start < s.min || s.start > s.max) {
          t.Error("start",
                  fmt::format("{} is outside [min, max] = [{}, {}]", s.start, s.min, s.max));
        }
        if (s.step < 0) t.Error("step", "cannot be negative");
        CheckFits(t, "min", s.min, reg.type);
        CheckFits(t, "max", s.max, reg.type);
        break;
      }
      case SignalKind::kStep:
        s.values = NumberArray(t, "values", reg.type);
        s.period_s = RequirePeriod(t);
        break;
    }
  }

  // Records an error at `key` when `v` does not fit `type`.
  void CheckFits(const ConfigTable& t, std::string_view key, double v, ValueType type) {
    const auto [lo, hi] = TypeRange(type);
    if (!std::isfinite(v) || v < lo || v > hi) {
      t.Error(key, fmt::format("{} does not fit {}", v, contract::ValueTypeName(type)));
    }
  }

  std::optional<ScriptedFault> LoadFault(const ConfigTable& t, std::optional<Protocol> protocol) {
    t.RejectUnknownKeys(
        std::vector<std::string_view>(std::begin(kFaultKeys), std::end(kFaultKeys)));
    ScriptedFault scripted;
    bool ok = true;
    if (auto name = t.RequireString("kind")) {
      if (auto kind = ParseFaultKind(*name)) {
        scripted.fault.kind = *kind;
      } else {
        t.Error("kind",
                fmt::format("'{}' is not a fault (use exception, freeze, silent or drop)", *name));
        ok = false;
      }
    } else {
      ok = false;
    }
    if (auto at = RequireNumber(t, "at_s")) {
      if (!(*at >= 0 && *at <= kMaxSeconds)) {
        t.Error("at_s", "must be a number of seconds in [0, 1000000000]");
      }
      scripted.at = SecondsToMillis(*at);
    }
    if (auto duration = Number(t, "duration_s")) {
      if (!(*duration > 0 && *duration <= kMaxSeconds)) {
        t.Error("duration_s", "must be a number of seconds in (0, 1000000000]");
      }
      scripted.duration = SecondsToMillis(*duration);
    }
    if (!ok) return std::nullopt;
    if (scripted.fault.kind == FaultKind::kException) {
      if (auto text = t.RequireString("register")) {
        auto ref = ParseRegisterRef(*text);
        if (ref.ok()) {
          scripted.fault.ref = *ref;
        } else {
          t.Error("register", ref.status().message());
        }
      }
      scripted.fault.exception_code = static_cast<uint8_t>(
          t.RequireInt("code", kMinExceptionCode, kMaxExceptionCode).value_or(0));
    } else {
      for (std::string_view key : {"register", "code"}) {
        if (t.Has(key)) t.Error(key, "applies to exception faults only");
      }
    }
    if (scripted.fault.kind == FaultKind::kDrop && protocol == Protocol::kRtu) {
      t.Error("kind", "drop applies to tcp servers only");
    }
    return scripted;
  }

  // Records an error for every pair of definitions of one server that share an address.
  void CheckOverlaps(const std::vector<RegisterConfig>& regs,
                     const std::vector<const ConfigTable*>& tables) {
    struct Span {
      Table table;
      uint32_t begin;
      uint32_t end;  // exclusive
      size_t index;
    };
    std::vector<Span> spans;
    for (size_t i = 0; i < regs.size(); ++i) {
      const RegisterConfig& r = regs[i];
      spans.push_back(
          {r.first.table, r.first.address, r.first.address + r.count * uint32_t{r.width()}, i});
    }
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
      return std::tie(a.table, a.begin, a.index) < std::tie(b.table, b.begin, b.index);
    });
    // Sweep each table in address order, remembering the span that reaches furthest.
    const Span* reach = nullptr;
    for (const Span& s : spans) {
      if (reach != nullptr && reach->table == s.table && s.begin < reach->end) {
        const Span& earlier = reach->index < s.index ? *reach : s;
        const Span& later = reach->index < s.index ? s : *reach;
        tables[later.index]->Error(
            "register", fmt::format("overlaps {} ({}:{}..{})", tables[earlier.index]->path(),
                                    TableName(earlier.table), earlier.begin, earlier.end - 1));
      }
      if (reach == nullptr || reach->table != s.table || s.end > reach->end) reach = &s;
    }
  }

  const toml::node* Raw(const ConfigTable& t, std::string_view key) const {
    return toml::at_path(raw_, t.KeyPath(key)).node();
  }

  // A number; booleans count as 1 and 0 (for bool registers). Nullopt when missing.
  std::optional<double> Number(const ConfigTable& t, std::string_view key) const {
    if (const toml::node* n = Raw(t, key); n != nullptr && n->is_boolean()) {
      return n->as_boolean()->get() ? 1.0 : 0.0;
    }
    return t.GetDouble(key);
  }

  std::optional<double> RequireNumber(const ConfigTable& t, std::string_view key) const {
    if (!t.Has(key)) {
      t.Error(key, "missing required key");
      return std::nullopt;
    }
    return Number(t, key);
  }

  double RequirePeriod(const ConfigTable& t) const {
    const auto period = RequireNumber(t, "period_s");
    if (!period) return 1;
    if (!(*period >= 0.001 && *period <= kMaxSeconds)) {
      t.Error("period_s", "must be a number of seconds in [0.001, 1000000000]");
      return 1;
    }
    return *period;
  }

  // A non-empty array of numbers (or booleans), each fitting `type`.
  std::vector<double> NumberArray(const ConfigTable& t, std::string_view key, ValueType type) {
    std::vector<double> out;
    if (!t.Has(key)) {
      t.Error(key, "missing required key");
      return out;
    }
    const toml::array* array = Raw(t, key)->as_array();
    if (array == nullptr || array->empty()) {
      t.Error(key, "expected a non-empty array of numbers");
      return out;
    }
    const auto [lo, hi] = TypeRange(type);
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& n = *array->get(i);
      std::optional<double> v;
      if (const auto* f = n.as_floating_point()) v = f->get();
      if (const auto* k = n.as_integer()) v = static_cast<double>(k->get());
      if (const auto* b = n.as_boolean()) v = b->get() ? 1.0 : 0.0;
      const std::string path = fmt::format("{}[{}]", t.KeyPath(key), i);
      const auto& src = n.source().begin;
      if (!v) {
        doc_.AddError({doc_.file(), src.line, src.column, path, "expected a number"});
      } else if (!std::isfinite(*v) || *v < lo || *v > hi) {
        doc_.AddError({doc_.file(), src.line, src.column, path,
                       fmt::format("{} does not fit {}", *v, contract::ValueTypeName(type))});
      } else {
        out.push_back(*v);
      }
    }
    return out;
  }

  ConfigDocument& doc_;
  const toml::table& raw_;
};

}  // namespace

std::string_view ProtocolName(Protocol protocol) {
  return protocol == Protocol::kTcp ? "tcp" : "rtu";
}

std::optional<FaultKind> ParseFaultKind(std::string_view name) {
  if (name == "exception") return FaultKind::kException;
  if (name == "freeze") return FaultKind::kFreeze;
  if (name == "silent") return FaultKind::kSilent;
  if (name == "drop") return FaultKind::kDrop;
  return std::nullopt;
}

std::string_view FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kException:
      return "exception";
    case FaultKind::kFreeze:
      return "freeze";
    case FaultKind::kSilent:
      return "silent";
    case FaultKind::kDrop:
      return "drop";
  }
  return "unknown";
}

Result<SimConfig> LoadSimConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(fmt::format("{}: cannot read config file", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseSimConfig(text.str(), path);
}

Result<SimConfig> ParseSimConfig(std::string_view text, const std::string& file_name) {
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<ConfigDocument> doc,
                        ConfigDocument::Parse(text, file_name));
  // ConfigDocument accepted the text, so toml++ parses it again without error; the raw tree
  // serves the few reads ConfigTable does not offer.
  toml::table raw;
  try {
    raw = toml::parse(text, file_name);
  } catch (const toml::parse_error& e) {
    return InvalidArgumentError(fmt::format("{}: {}", file_name, e.description()));
  }
  SimConfig config = Loader(*doc, raw).Load();
  KILN_RETURN_IF_ERROR(doc->ToStatus());
  return config;
}

}  // namespace kiln::sim
