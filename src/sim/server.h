#pragma once
// ModbusServer: one simulated Modbus device, TCP or RTU, served by its own thread. Its
// registers follow the signals of a ServerConfig evaluated on the injected Clock; control
// commands (set, fault, clear) and the config's scripted faults change it. libmodbus stays
// inside server.cc: the thread polls the listening socket, the client sockets (or the serial
// line) and a wake-up fd, and answers with modbus_receive/modbus_reply over one
// modbus_mapping_t that spans all 65536 addresses of each table.
//
// A register defined in the config shows its signal until a `set` or a client write
// (FC5/6/15/16/22/23) touches it; from then on it holds the written value. Addresses not
// defined in the config read 0 until written.
//
// Thread-safe: Execute() and SyncForTest() may be called from any thread; they hand their
// work to the server's thread and wait for it. Create/Start/Stop from one owner thread.
#include <memory>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/log.h"
#include "core/status.h"
#include "sim/command.h"
#include "sim/config.h"

namespace kiln::sim {

class ModbusServer {
 public:
  // Opens the listening socket (tcp; port 0 picks a free one) or the serial device or
  // pseudo-terminal (rtu), so endpoint() is known before Start(), and sets every defined
  // register to its signal's value at time 0. REQUIRES: `config` passed ParseSimConfig's
  // checks. `clock` must outlive the server. Errors: Unavailable when the port cannot be
  // bound or the device cannot be opened; Internal when libmodbus cannot allocate.
  static Result<std::unique_ptr<ModbusServer>> Create(ServerConfig config, const Clock& clock,
                                                      const Logger& logger);
  ~ModbusServer();  // Stops the server.
  ModbusServer(const ModbusServer&) = delete;
  ModbusServer& operator=(const ModbusServer&) = delete;

  // Starts serving; the current time becomes time 0 of signals and scripted faults.
  // Idempotent.
  void Start();
  // Closes every connection and joins the thread. Commands still waiting fail with
  // FailedPrecondition. Idempotent; the server cannot be started again.
  void Stop();

  const ServerConfig& config() const;
  // "127.0.0.1:5020" with the bound port (tcp); the device path, e.g. "/dev/pts/3" (rtu).
  std::string endpoint() const;

  // Runs a kSet, kFault or kClear command on the server's thread and returns its outcome
  // (the command's server id is not checked). Errors: InvalidArgument for a value that does
  // not parse as the register's type, a `set` into the middle of a multi-register value, or
  // another command kind; FailedPrecondition for `drop` on an RTU server or when the server
  // is not running; Unavailable when `clear` cannot listen on the port again.
  Status Execute(const Command& command);

  // Returns once the server's thread has applied the scripted faults and evaluated the
  // signals due at the clock's current time: for tests that advance a FakeClock.
  // Errors: FailedPrecondition when the server is not running.
  Status SyncForTest();

 private:
  struct Impl;
  explicit ModbusServer(std::unique_ptr<Impl> impl);
  // Hands `command` (nullptr: a sync) to the server's thread and waits for its outcome.
  Status Submit(const Command* command);

  std::unique_ptr<Impl> impl_;
  std::jthread thread_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace kiln::sim
