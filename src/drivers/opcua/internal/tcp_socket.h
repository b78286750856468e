#pragma once
// TcpSocket: a blocking-with-timeouts TCP client socket for the OPC UA client (POSIX, IPv4 and
// IPv6). Every call takes the time it may spend; nothing blocks beyond it. Single-threaded
// (owned by the client's device thread). Private to kiln::opcua.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "core/status.h"

namespace kiln::drivers::opcua::internal {

class TcpSocket {
 public:
  TcpSocket() = default;
  TcpSocket(const TcpSocket&) = delete;
  TcpSocket& operator=(const TcpSocket&) = delete;
  ~TcpSocket();

  // Resolves `host` and connects to the first address that accepts within `timeout` (the
  // whole budget). Closes a previous connection first. Errors: Unavailable naming the host,
  // port and errno text; DeadlineExceeded when nothing answered in time.
  Status Connect(const std::string& host, uint16_t port, std::chrono::milliseconds timeout);
  // Sends all of `data`. Errors: Unavailable on a socket error or a closed connection,
  // DeadlineExceeded if the peer did not take the bytes within `timeout`.
  Status SendAll(std::span<const uint8_t> data, std::chrono::milliseconds timeout);
  // Waits up to `timeout` for bytes and returns how many were read into `buffer` (>= 1).
  // Errors: Unavailable on a socket error or when the peer closed the connection,
  // DeadlineExceeded when nothing arrived in time.
  Result<size_t> Receive(std::span<uint8_t> buffer, std::chrono::milliseconds timeout);
  void Close();
  bool is_open() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace kiln::drivers::opcua::internal
