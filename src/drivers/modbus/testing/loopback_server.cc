#include "drivers/modbus/testing/loopback_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <modbus/modbus.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "core/mutex.h"

namespace kiln::drivers::modbus {

namespace {

constexpr int kTableSize = 65536;

enum class FaultKind : uint8_t { kException, kBadResponse };

struct Fault {
  FaultKind kind;
  uint8_t exception_code;
  FaultScope scope = FaultScope::kAll;
};

bool InScope(FaultScope scope, bool is_read) {
  return scope == FaultScope::kAll || (scope == FaultScope::kReads) == is_read;
}

// Kind and span [address, address + count) of a request, when it addresses a table.
struct Target {
  RegisterKind kind;
  uint32_t address;
  uint32_t count;
  bool is_read;
};

std::optional<Target> ParseTarget(const uint8_t* query, int length, int header) {
  if (length < header + 5) return std::nullopt;
  const uint8_t function = query[header];
  const uint32_t address = (uint32_t{query[header + 1]} << 8) | query[header + 2];
  const uint32_t quantity = (uint32_t{query[header + 3]} << 8) | query[header + 4];
  switch (function) {
    case 0x01:
      return Target{RegisterKind::kCoil, address, quantity, true};
    case 0x02:
      return Target{RegisterKind::kDiscreteInput, address, quantity, true};
    case 0x03:
      return Target{RegisterKind::kHoldingRegister, address, quantity, true};
    case 0x04:
      return Target{RegisterKind::kInputRegister, address, quantity, true};
    case 0x05:
      return Target{RegisterKind::kCoil, address, 1, false};
    case 0x06:
      return Target{RegisterKind::kHoldingRegister, address, 1, false};
    case 0x0F:
      return Target{RegisterKind::kCoil, address, quantity, false};
    case 0x10:
      return Target{RegisterKind::kHoldingRegister, address, quantity, false};
    default:
      return std::nullopt;
  }
}

Status Errno(std::string_view what) {
  return UnavailableError(fmt::format("loopback server: {}: {}", what, std::strerror(errno)));
}

}  // namespace

struct LoopbackServer::Impl {
  ~Impl() {
    Stop();
    modbus_mapping_free(mapping);
    modbus_free(ctx);
  }

  Status Listen() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) return Errno("socket");
    const int on = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) == -1 ||
        listen(fd, SOMAXCONN) == -1 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == -1) {
      Status s = Errno(fmt::format("listen on 127.0.0.1:{}", port));
      close(fd);
      return s;
    }
    port = ntohs(addr.sin_port);
    wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd == -1) {
      Status s = Errno("eventfd");
      close(fd);
      return s;
    }
    listen_fd = fd;
    thread = std::jthread([this] { Serve(); });
    return OkStatus();
  }

  void Stop() {
    if (!thread.joinable()) return;
    const uint64_t one = 1;
    (void)!write(wake_fd, &one, sizeof(one));
    thread.join();
    close(wake_fd);
    close(listen_fd);
    wake_fd = listen_fd = -1;
  }

  // The server thread: accepts connections and answers requests until woken.
  void Serve() {
    std::vector<int> clients;
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    while (true) {
      std::vector<pollfd> fds = {{wake_fd, POLLIN, 0}, {listen_fd, POLLIN, 0}};
      for (int c : clients) fds.push_back({c, POLLIN, 0});
      if (poll(fds.data(), fds.size(), -1) == -1) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[0].revents != 0) break;
      if (fds[1].revents & POLLIN) {
        const int c = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c != -1) {
          clients.push_back(c);
          connections.fetch_add(1);
        }
      }
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        const int c = fds[i].fd;
        modbus_set_socket(ctx, c);
        const int length = modbus_receive(ctx, query);
        if (length > 0) {
          Answer(c, query, length);
        } else if (length == -1) {
          close(c);
          clients.erase(std::find(clients.begin(), clients.end(), c));
        }
      }
    }
    for (int c : clients) close(c);
    modbus_set_socket(ctx, -1);
  }

  void Answer(int client, const uint8_t* query, int length) {
    requests.fetch_add(1);
    const int header = modbus_get_header_length(ctx);
    if (length > header) by_function[query[header]].fetch_add(1);
    const std::optional<Target> target = ParseTarget(query, length, header);
    MutexLock lock(mu);
    if (silent) return;
    if (target) {
      for (const auto& [key, fault] : faults) {
        const auto& [kind, address] = key;
        if (kind != target->kind || address < target->address ||
            address >= target->address + target->count) {
          continue;
        }
        if (fault.kind == FaultKind::kException) {
          if (!InScope(fault.scope, target->is_read)) continue;
          (void)modbus_reply_exception(ctx, query, fault.exception_code);
          return;
        }
        if (target->is_read) {
          SendBadResponse(client, query, header, *target);
          return;
        }
      }
    }
    (void)modbus_reply(ctx, query, length, mapping);
  }

  // A read response carrying one data byte more than the request asked for.
  static void SendBadResponse(int client, const uint8_t* query, int header, const Target& t) {
    const uint32_t data = IsBitKind(t.kind) ? (t.count + 7) / 8 : 2 * t.count;
    const uint32_t byte_count = std::min<uint32_t>(data + 1, 255);
    std::vector<uint8_t> frame(query, query + header + 1);  // MBAP, unit id, function
    const uint32_t mbap_length = 3 + byte_count;            // unit id, function, count, data
    frame[4] = static_cast<uint8_t>(mbap_length >> 8);
    frame[5] = static_cast<uint8_t>(mbap_length);
    frame.push_back(static_cast<uint8_t>(byte_count));
    frame.resize(frame.size() + byte_count, 0xAB);
    (void)!send(client, frame.data(), frame.size(), MSG_NOSIGNAL);
  }

  modbus_t* ctx = nullptr;
  uint16_t port = 0;
  int listen_fd = -1;
  int wake_fd = -1;
  std::jthread thread;
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> connections{0};
  std::array<std::atomic<uint64_t>, 256> by_function{};

  mutable Mutex mu;
  modbus_mapping_t* mapping KILN_GUARDED_BY(mu) = nullptr;
  std::map<std::pair<RegisterKind, uint16_t>, Fault> faults KILN_GUARDED_BY(mu);
  bool silent KILN_GUARDED_BY(mu) = false;
};

Result<std::unique_ptr<LoopbackServer>> LoopbackServer::Start(uint16_t port) {
  auto impl = std::make_unique<Impl>();
  // The context only frames and answers messages on sockets the server accepts itself:
  // libmodbus's own listen cannot bind port 0.
  impl->ctx = modbus_new_tcp("127.0.0.1", MODBUS_TCP_DEFAULT_PORT);
  {
    MutexLock lock(impl->mu);
    impl->mapping = modbus_mapping_new(kTableSize, kTableSize, kTableSize, kTableSize);
    if (impl->ctx == nullptr || impl->mapping == nullptr) {
      return UnavailableError("loopback server: libmodbus out of memory");
    }
  }
  impl->port = port;
  KILN_RETURN_IF_ERROR(impl->Listen());
  return std::unique_ptr<LoopbackServer>(new LoopbackServer(std::move(impl)));
}

LoopbackServer::LoopbackServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LoopbackServer::~LoopbackServer() = default;

uint16_t LoopbackServer::port() const { return impl_->port; }
std::string LoopbackServer::address() const { return fmt::format("127.0.0.1:{}", impl_->port); }

void LoopbackServer::Stop() { impl_->Stop(); }

Status LoopbackServer::Restart() {
  if (running()) return OkStatus();
  return impl_->Listen();
}

bool LoopbackServer::running() const { return impl_->thread.joinable(); }

void LoopbackServer::SetRegisters(RegisterKind kind, uint16_t address,
                                  std::span<const uint16_t> values) {
  MutexLock lock(impl_->mu);
  uint16_t* table = kind == RegisterKind::kHoldingRegister ? impl_->mapping->tab_registers
                    : kind == RegisterKind::kInputRegister ? impl_->mapping->tab_input_registers
                                                           : nullptr;
  if (table == nullptr) return;
  for (size_t i = 0; i < values.size() && address + i < kTableSize; ++i) {
    table[address + i] = values[i];
  }
}

void LoopbackServer::SetRegister(RegisterKind kind, uint16_t address, uint16_t value) {
  SetRegisters(kind, address, std::span<const uint16_t>(&value, 1));
}

void LoopbackServer::SetBit(RegisterKind kind, uint16_t address, bool value) {
  MutexLock lock(impl_->mu);
  uint8_t* table = kind == RegisterKind::kCoil            ? impl_->mapping->tab_bits
                   : kind == RegisterKind::kDiscreteInput ? impl_->mapping->tab_input_bits
                                                          : nullptr;
  if (table != nullptr) table[address] = value ? 1 : 0;
}

uint16_t LoopbackServer::GetRegister(RegisterKind kind, uint16_t address) const {
  MutexLock lock(impl_->mu);
  if (kind == RegisterKind::kHoldingRegister) return impl_->mapping->tab_registers[address];
  if (kind == RegisterKind::kInputRegister) return impl_->mapping->tab_input_registers[address];
  return 0;
}

bool LoopbackServer::GetBit(RegisterKind kind, uint16_t address) const {
  MutexLock lock(impl_->mu);
  if (kind == RegisterKind::kCoil) return impl_->mapping->tab_bits[address] != 0;
  if (kind == RegisterKind::kDiscreteInput) return impl_->mapping->tab_input_bits[address] != 0;
  return false;
}

void LoopbackServer::InjectException(RegisterKind kind, uint16_t address, uint8_t code,
                                     FaultScope scope) {
  MutexLock lock(impl_->mu);
  impl_->faults[{kind, address}] = Fault{FaultKind::kException, code, scope};
}

void LoopbackServer::InjectBadResponse(RegisterKind kind, uint16_t address) {
  MutexLock lock(impl_->mu);
  impl_->faults[{kind, address}] = Fault{FaultKind::kBadResponse, 0};
}

void LoopbackServer::ClearFaults() {
  MutexLock lock(impl_->mu);
  impl_->faults.clear();
}

void LoopbackServer::SetSilent(bool silent) {
  MutexLock lock(impl_->mu);
  impl_->silent = silent;
}

uint64_t LoopbackServer::requests() const { return impl_->requests.load(); }
uint64_t LoopbackServer::requests(uint8_t function) const {
  return impl_->by_function[function].load();
}
uint64_t LoopbackServer::connections() const { return impl_->connections.load(); }

}  // namespace kiln::drivers::modbus
