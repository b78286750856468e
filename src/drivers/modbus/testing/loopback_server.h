#pragma once
// LoopbackServer: a real Modbus TCP server on 127.0.0.1 for the tests and benchmarks of the
// Modbus driver. It answers with libmodbus's modbus_reply from four tables of 65536 items
// (coils, discrete inputs, holding and input registers, all zero at first) and serves any
// number of connections from one thread. Faults can be injected per address: an exception, an
// answer that does not fit the request, or silence. Thread-safe; the tables and faults can be
// changed while clients read.
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/status.h"
#include "drivers/modbus/modbus_config.h"

namespace kiln::drivers::modbus {

// The requests an injected exception answers.
enum class FaultScope : uint8_t {
  kAll,     // reads and writes
  kReads,   // FC1-FC4 only
  kWrites,  // FC5, FC6, FC15, FC16 only
};

class LoopbackServer {
 public:
  // Listens on 127.0.0.1:`port`; 0 picks a free port.
  // Errors: Unavailable if the port cannot be bound.
  static Result<std::unique_ptr<LoopbackServer>> Start(uint16_t port = 0);
  ~LoopbackServer();  // Stops.
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  uint16_t port() const;
  // "127.0.0.1:port", the form of a modbus-tcp `address`.
  std::string address() const;

  // Closes the listening socket and every connection, then joins the server thread; a client
  // sees its connection closed and further connects refused. Idempotent.
  void Stop();
  // Listens again on the same port with the same tables and faults. Idempotent.
  // Errors: Unavailable if the port cannot be bound again.
  Status Restart();
  bool running() const;

  // Sets holding or input registers (a bit kind sets nothing).
  void SetRegisters(RegisterKind kind, uint16_t address, std::span<const uint16_t> values);
  void SetRegister(RegisterKind kind, uint16_t address, uint16_t value);
  // Sets a coil or discrete input (a register kind sets nothing).
  void SetBit(RegisterKind kind, uint16_t address, bool value);
  uint16_t GetRegister(RegisterKind kind, uint16_t address) const;
  bool GetBit(RegisterKind kind, uint16_t address) const;

  // Answers every request of `kind` in `scope` that touches `address` with exception `code`;
  // a refused write changes nothing.
  void InjectException(RegisterKind kind, uint16_t address, uint8_t code,
                       FaultScope scope = FaultScope::kAll);
  // Answers every read of `kind` that touches `address` with one data byte too many, which
  // does not fit the request.
  void InjectBadResponse(RegisterKind kind, uint16_t address);
  void ClearFaults();
  // While set, reads requests but never answers them, so clients time out.
  void SetSilent(bool silent);

  uint64_t requests() const;  // requests received
  // Requests received with function code `function`, e.g. 6 for write single register.
  uint64_t requests(uint8_t function) const;
  uint64_t connections() const;  // connections accepted

 private:
  struct Impl;
  explicit LoopbackServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::drivers::modbus
