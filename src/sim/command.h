#pragma once
// Control commands of kiln-sim, one per line on its stdin (docs in apps/kiln-sim/main.cc):
//   set <id> <register> <value>                 e.g. "set press-3 holding:10 42.5"
//   fault <id> exception <register> <code>      e.g. "fault press-3 exception holding:10 2"
//   fault <id> freeze | silent | drop
//   clear <id>
//   quit
// Parsing only; Simulator executes them. Value types and pure functions.
#include <string>
#include <string_view>

#include "contract/value.h"
#include "core/status.h"
#include "sim/address.h"
#include "sim/config.h"

namespace kiln::sim {

struct Command {
  enum class Kind : uint8_t { kSet, kFault, kClear, kQuit };
  Kind kind = Kind::kQuit;
  std::string server;  // the server id; empty for kQuit
  RegisterRef ref;     // kSet
  std::string value;   // kSet: the text, parsed per the register's type by ParseValueText
  Fault fault;         // kFault

  friend bool operator==(const Command&, const Command&) = default;
};

// Parses one command line (words separated by blanks). Errors: InvalidArgument saying what
// is wrong, e.g. "unknown command 'sett' (use set, fault, clear or quit)".
Result<Command> ParseCommand(std::string_view line);

// Parses the value of a `set` for a register of `type`: true/false/on/off/1/0 for bool;
// a decimal integer (or 0x-prefixed hex) within the type's range for integers; a decimal
// number, nan or inf for floats. Errors: InvalidArgument naming the text and the type.
Result<contract::Value> ParseValueText(std::string_view text, contract::ValueType type);

}  // namespace kiln::sim
