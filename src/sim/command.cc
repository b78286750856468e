#include "sim/command.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <vector>

namespace kiln::sim {

namespace {

using contract::Value;
using contract::ValueType;

std::vector<std::string_view> SplitWords(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

Status Usage(std::string_view verb) {
  if (verb == "set") return InvalidArgumentError("usage: set <id> <register> <value>");
  if (verb == "fault") {
    return InvalidArgumentError(
        "usage: fault <id> exception <register> <code> | fault <id> freeze|silent|drop");
  }
  if (verb == "clear") return InvalidArgumentError("usage: clear <id>");
  return InvalidArgumentError("usage: quit");
}

template <typename T>
Result<Value> ParseInteger(std::string_view text, ValueType type) {
  std::string_view digits = text;
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    digits.remove_prefix(2);
    base = 16;
  }
  T v{};
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
  if (ec == std::errc::result_out_of_range) {
    return InvalidArgumentError(
        fmt::format("'{}' is out of range for {}", text, contract::ValueTypeName(type)));
  }
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return InvalidArgumentError(
        fmt::format("'{}' is not a valid {}", text, contract::ValueTypeName(type)));
  }
  return Value(v);
}

Result<double> ParseDouble(std::string_view text, ValueType type) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return InvalidArgumentError(
        fmt::format("'{}' is not a valid {}", text, contract::ValueTypeName(type)));
  }
  return v;
}

}  // namespace

Result<Command> ParseCommand(std::string_view line) {
  const std::vector<std::string_view> words = SplitWords(line);
  if (words.empty()) return InvalidArgumentError("empty command");
  const std::string_view verb = words[0];
  Command command;
  if (verb == "quit") {
    if (words.size() != 1) return Usage(verb);
    command.kind = Command::Kind::kQuit;
    return command;
  }
  if (verb != "set" && verb != "fault" && verb != "clear") {
    return InvalidArgumentError(
        fmt::format("unknown command '{}' (use set, fault, clear or quit)", verb));
  }
  if (words.size() < 2) return Usage(verb);
  command.server = std::string(words[1]);
  if (verb == "clear") {
    if (words.size() != 2) return Usage(verb);
    command.kind = Command::Kind::kClear;
    return command;
  }
  if (verb == "set") {
    if (words.size() != 4) return Usage(verb);
    command.kind = Command::Kind::kSet;
    KILN_ASSIGN_OR_RETURN(command.ref, ParseRegisterRef(words[2]));
    command.value = std::string(words[3]);
    return command;
  }
  command.kind = Command::Kind::kFault;
  if (words.size() < 3) return Usage(verb);
  const auto kind = ParseFaultKind(words[2]);
  if (!kind) {
    return InvalidArgumentError(
        fmt::format("unknown fault '{}' (use exception, freeze, silent or drop)", words[2]));
  }
  command.fault.kind = *kind;
  if (*kind != FaultKind::kException) {
    if (words.size() != 3) return Usage(verb);
    return command;
  }
  if (words.size() != 5) return Usage(verb);
  KILN_ASSIGN_OR_RETURN(command.fault.ref, ParseRegisterRef(words[3]));
  int code = 0;
  const std::string_view text = words[4];
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), code);
  if (ec != std::errc() || end != text.data() + text.size() || code < kMinExceptionCode ||
      code > kMaxExceptionCode) {
    return InvalidArgumentError(fmt::format("'{}' is not an exception code ({}..{})", text,
                                            kMinExceptionCode, kMaxExceptionCode));
  }
  command.fault.exception_code = static_cast<uint8_t>(code);
  return command;
}

Result<Value> ParseValueText(std::string_view text, ValueType type) {
  switch (type) {
    case ValueType::kBool:
      if (text == "true" || text == "on" || text == "1") return Value(true);
      if (text == "false" || text == "off" || text == "0") return Value(false);
      return InvalidArgumentError(
          fmt::format("'{}' is not a valid bool (use true, false, on, off, 1 or 0)", text));
    case ValueType::kInt16:
      return ParseInteger<int16_t>(text, type);
    case ValueType::kUInt16:
      return ParseInteger<uint16_t>(text, type);
    case ValueType::kInt32:
      return ParseInteger<int32_t>(text, type);
    case ValueType::kUInt32:
      return ParseInteger<uint32_t>(text, type);
    case ValueType::kInt64:
      return ParseInteger<int64_t>(text, type);
    case ValueType::kUInt64:
      return ParseInteger<uint64_t>(text, type);
    case ValueType::kFloat: {
      KILN_ASSIGN_OR_RETURN(const double v, ParseDouble(text, type));
      if (std::isfinite(v) && std::abs(v) > std::numeric_limits<float>::max()) {
        return InvalidArgumentError(fmt::format("'{}' is out of range for float32", text));
      }
      return Value(static_cast<float>(v));
    }
    case ValueType::kDouble: {
      KILN_ASSIGN_OR_RETURN(const double v, ParseDouble(text, type));
      return Value(v);
    }
    default:
      return InvalidArgumentError(
          fmt::format("{} is not a register type", contract::ValueTypeName(type)));
  }
}

}  // namespace kiln::sim
