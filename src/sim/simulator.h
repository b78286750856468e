#pragma once
// Simulator: the simulated plant, one ModbusServer per [[servers]] entry, and the control
// protocol that drives it (one command per line, one reply line per command; see
// command.h). Thread-safe like ModbusServer; Create/Start/Stop from one owner thread.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "core/status.h"
#include "sim/command.h"
#include "sim/config.h"
#include "sim/server.h"

namespace kiln::sim {

class Simulator {
 public:
  // Creates every server (their sockets and devices open here). `clock` must outlive the
  // simulator. Errors: those of ModbusServer::Create, for the first server that fails.
  static Result<std::unique_ptr<Simulator>> Create(const SimConfig& config, const Clock& clock,
                                                   const Logger& logger);

  // Starts every server. Idempotent.
  void Start();
  // Stops every server. Idempotent.
  void Stop();

  // The servers in config order.
  const std::vector<std::unique_ptr<ModbusServer>>& servers() const { return servers_; }
  // "ready <id> tcp 127.0.0.1:<port>" or "ready <id> rtu <device>", one per server in config
  // order.
  std::vector<std::string> ReadyLines() const;

  // Runs a set, fault or clear command on the server it names. Errors: NotFound for an
  // unknown server id; InvalidArgument for quit; those of ModbusServer::Execute.
  Status Execute(const Command& command);

  // The reply to one control line: "ok" or "error <message>"; `quit` is true for a valid
  // quit command, which the caller carries out.
  struct Reply {
    std::string text;
    bool quit = false;
  };
  Reply HandleLine(std::string_view line);

 private:
  Simulator() = default;
  std::vector<std::unique_ptr<ModbusServer>> servers_;
};

}  // namespace kiln::sim
