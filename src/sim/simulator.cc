#include "sim/simulator.h"

#include <fmt/format.h>

namespace kiln::sim {

Result<std::unique_ptr<Simulator>> Simulator::Create(const SimConfig& config, const Clock& clock,
                                                     const Logger& logger) {
  std::unique_ptr<Simulator> sim(new Simulator());
  for (const ServerConfig& server : config.servers) {
    KILN_ASSIGN_OR_RETURN(auto created, ModbusServer::Create(server, clock, logger));
    sim->servers_.push_back(std::move(created));
  }
  return sim;
}

void Simulator::Start() {
  for (auto& server : servers_) server->Start();
}

void Simulator::Stop() {
  for (auto& server : servers_) server->Stop();
}

std::vector<std::string> Simulator::ReadyLines() const {
  std::vector<std::string> lines;
  for (const auto& server : servers_) {
    lines.push_back(fmt::format("ready {} {} {}", server->config().id,
                                ProtocolName(server->config().protocol), server->endpoint()));
  }
  return lines;
}

Status Simulator::Execute(const Command& command) {
  if (command.kind == Command::Kind::kQuit) {
    return InvalidArgumentError("quit is carried out by the caller");
  }
  for (auto& server : servers_) {
    if (server->config().id == command.server) return server->Execute(command);
  }
  return NotFoundError(fmt::format("no server '{}'", command.server));
}

Simulator::Reply Simulator::HandleLine(std::string_view line) {
  Result<Command> command = ParseCommand(line);
  if (!command.ok()) return {"error " + command.status().message()};
  if (command->kind == Command::Kind::kQuit) return {"ok", true};
  const Status status = Execute(*command);
  if (!status.ok()) return {"error " + status.message()};
  return {"ok"};
}

}  // namespace kiln::sim
