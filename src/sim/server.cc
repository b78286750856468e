#include "sim/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <modbus/modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "core/mutex.h"
#include "sim/signal.h"

namespace kiln::sim {

namespace {

using contract::Value;
using contract::ValueType;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// One table of the mapping spans every address.
constexpr int kTableSize = 65536;
constexpr int kListenBacklog = 64;
// Upper bound of one poll() wait, so a stalled clock (FakeClock) cannot park the loop.
constexpr milliseconds kMaxPollWait{1000};
// A client that does not read its answers blocks the server at most this long per answer.
constexpr timeval kSendTimeout{1, 0};

std::string Errno(int err) { return std::strerror(err); }

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Binds and listens on host:port (port 0 = any free port). Returns the socket and the port.
Result<std::pair<int, uint16_t>> OpenListener(const std::string& host, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return InvalidArgumentError(fmt::format("'{}' is not an IPv4 address", host));
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return UnavailableError(fmt::format("socket: {}", Errno(errno)));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, kListenBacklog) != 0) {
    const int err = errno;
    ::close(fd);
    return UnavailableError(fmt::format("cannot listen on {}:{}: {}", host, port, Errno(err)));
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return std::make_pair(fd, ntohs(addr.sin_port));
}

// A pseudo-terminal whose slave side is raw: the server serves the master, clients open
// the slave path like a serial port. The server keeps the slave open too, so the master
// does not report a hang-up while no client has it open.
struct Pty {
  int master = -1;
  int slave = -1;
  std::string path;
};

Result<Pty> OpenPty() {
  Pty pty;
  pty.master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (pty.master < 0) return UnavailableError(fmt::format("posix_openpt: {}", Errno(errno)));
  char name[128] = {};
  if (::grantpt(pty.master) != 0 || ::unlockpt(pty.master) != 0 ||
      ::ptsname_r(pty.master, name, sizeof(name)) != 0) {
    const int err = errno;
    CloseFd(pty.master);
    return UnavailableError(fmt::format("cannot set up a pseudo-terminal: {}", Errno(err)));
  }
  pty.path = name;
  pty.slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  termios tio{};
  if (pty.slave < 0 || ::tcgetattr(pty.slave, &tio) != 0) {
    const int err = errno;
    CloseFd(pty.master);
    CloseFd(pty.slave);
    return UnavailableError(fmt::format("cannot open {}: {}", pty.path, Errno(err)));
  }
  ::cfmakeraw(&tio);
  ::tcsetattr(pty.slave, TCSANOW, &tio);
  return pty;
}

// A defined value in the mapping: one instance of a [[servers.registers]] entry.
struct Instance {
  Table table;
  uint16_t address;
  uint16_t width;
  ValueType type;
  WordOrder order;
  Signal signal;
  bool manual = false;  // a `set` or a client write took the value over from the signal
};

// The instances of one [[servers.registers]] entry, evaluated together.
struct Group {
  nanoseconds update;
  MonoTime next_due;
  size_t begin;  // [begin, end) in Impl::instances
  size_t end;
};

struct ActiveFault {
  uint64_t id;
  Fault fault;
};

struct Scheduled {
  ScriptedFault scripted;
  bool begun = false;
  bool ended = false;
  uint64_t active_id = 0;
};

// Work handed to the server's thread; nullopt command = a SyncForTest.
struct Pending {
  std::optional<Command> command;
  std::promise<Status> done;
};

std::string Describe(const Fault& fault) {
  if (fault.kind != FaultKind::kException) return std::string(FaultKindName(fault.kind));
  return fmt::format("exception {} at {}", fault.exception_code, FormatRegisterRef(fault.ref));
}

uint32_t Key(Table table, uint32_t address) {
  return (static_cast<uint32_t>(table) << 16) | address;
}

}  // namespace

struct ModbusServer::Impl {
  Impl(ServerConfig c, const Clock& clk, Logger logger)
      : config(std::move(c)), clock(clk), log(std::move(logger)) {}

  ~Impl() {
    for (int& fd : clients) CloseFd(fd);
    CloseFd(listen_fd);
    if (ctx != nullptr) {
      if (serial_is_device) {
        modbus_close(ctx);  // restores the line settings and closes serial_fd
        serial_fd = -1;
      }
      modbus_free(ctx);
    }
    CloseFd(serial_fd);
    CloseFd(pty_slave);
    CloseFd(wake_fd);
    if (mapping != nullptr) modbus_mapping_free(mapping);
  }

  Status Open();
  Status NewRtuContext();
  void BuildInstances();

  void Run(std::stop_token stop);
  void Wake();
  void ProcessPending();
  void FailPending();
  Status Apply(const Command& command);
  Status ApplySet(const Command& command);
  Status ApplyFaults();
  void Tick(MonoTime now);
  MonoTime NextDeadline(MonoTime now) const;
  void Evaluate(Instance& instance, nanoseconds elapsed);
  void AcceptClients();
  bool ServeOne(int fd);  // false: close the connection
  void MarkManual(const Access& run);
  Instance* FindContaining(Table table, uint16_t address);
  std::optional<uint8_t> ExceptionFor(const RequestAccess& access) const;
  void CloseClients();

  const ServerConfig config;
  const Clock& clock;
  const Logger log;

  modbus_t* ctx = nullptr;
  modbus_mapping_t* mapping = nullptr;
  int wake_fd = -1;
  // tcp
  int listen_fd = -1;
  uint16_t port = 0;
  std::vector<int> clients;
  // rtu
  int serial_fd = -1;
  int pty_slave = -1;
  std::string device;
  bool serial_is_device = false;  // ctx opened serial_fd with modbus_connect
  bool serial_failed = false;     // the line reported an error: stop polling it

  Mutex mu;
  bool running KILN_GUARDED_BY(mu) = false;
  std::deque<Pending*> pending KILN_GUARDED_BY(mu);

  // Owned by the server's thread once started.
  MonoTime start;
  std::vector<Instance> instances;
  std::vector<Group> groups;
  std::vector<std::pair<uint32_t, uint32_t>> index;  // (Key of first address, instance), sorted
  std::vector<ActiveFault> faults;
  std::vector<Scheduled> schedule;
  uint64_t next_fault_id = 1;
  bool frozen = false;
  bool silent = false;
  bool dropped = false;
};

Status ModbusServer::Impl::Open() {
  wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) return InternalError(fmt::format("eventfd: {}", Errno(errno)));
  mapping = modbus_mapping_new(kTableSize, kTableSize, kTableSize, kTableSize);
  if (mapping == nullptr) return InternalError("modbus_mapping_new failed");

  if (config.protocol == Protocol::kTcp) {
    KILN_ASSIGN_OR_RETURN(auto listener, OpenListener(config.host, config.port));
    std::tie(listen_fd, port) = listener;
    ctx = modbus_new_tcp(config.host.c_str(), port);
    if (ctx == nullptr) return InternalError(fmt::format("modbus_new_tcp: {}", Errno(errno)));
    return OkStatus();
  }
  if (config.serial.device == kPtyDevice) {
    KILN_ASSIGN_OR_RETURN(Pty pty, OpenPty());
    serial_fd = pty.master;
    pty_slave = pty.slave;
    device = pty.path;
    return NewRtuContext();
  }
  device = config.serial.device;
  KILN_RETURN_IF_ERROR(NewRtuContext());
  if (modbus_connect(ctx) != 0) {
    return UnavailableError(fmt::format("cannot open {}: {}", device, modbus_strerror(errno)));
  }
  serial_is_device = true;
  serial_fd = modbus_get_socket(ctx);
  return OkStatus();
}

// A fresh RTU context on `device` (and on the pty master when there is one).
Status ModbusServer::Impl::NewRtuContext() {
  if (ctx != nullptr) modbus_free(ctx);
  const SerialConfig& s = config.serial;
  ctx = modbus_new_rtu(device.c_str(), s.baud, s.parity, s.data_bits, s.stop_bits);
  if (ctx == nullptr) return InternalError(fmt::format("modbus_new_rtu: {}", Errno(errno)));
  if (modbus_set_slave(ctx, config.unit_id) != 0) {
    return InternalError(fmt::format("unit id {}: {}", config.unit_id, modbus_strerror(errno)));
  }
  if (pty_slave >= 0) modbus_set_socket(ctx, serial_fd);
  return OkStatus();
}

void ModbusServer::Impl::BuildInstances() {
  size_t total = 0;
  for (const RegisterConfig& r : config.registers) total += r.count;
  instances.reserve(total);
  for (const RegisterConfig& r : config.registers) {
    Group group{r.update, MonoTime(), instances.size(), 0};
    for (uint32_t i = 0; i < r.count; ++i) {
      const auto address = static_cast<uint16_t>(r.first.address + i * r.width());
      instances.push_back(Instance{r.first.table, address, r.width(), r.type, r.word_order,
                                   Signal(r.signal, r.update, i, r.count)});
      index.emplace_back(Key(r.first.table, address), instances.size() - 1);
    }
    group.end = instances.size();
    groups.push_back(group);
  }
  std::sort(index.begin(), index.end());
  for (Instance& instance : instances) Evaluate(instance, nanoseconds(0));
  for (const ScriptedFault& f : config.faults) schedule.push_back(Scheduled{f});
}

void ModbusServer::Impl::Evaluate(Instance& instance, nanoseconds elapsed) {
  const double v = instance.signal.ValueAt(elapsed);
  switch (instance.table) {
    case Table::kCoil:
      mapping->tab_bits[instance.address] = v != 0 ? 1 : 0;
      return;
    case Table::kDiscrete:
      mapping->tab_input_bits[instance.address] = v != 0 ? 1 : 0;
      return;
    case Table::kHolding:
      EncodeRegisters(Value::FromDouble(v, instance.type), instance.order,
                      {mapping->tab_registers + instance.address, instance.width});
      return;
    case Table::kInput:
      EncodeRegisters(Value::FromDouble(v, instance.type), instance.order,
                      {mapping->tab_input_registers + instance.address, instance.width});
      return;
  }
}

void ModbusServer::Impl::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd, &one, sizeof(one));
}

void ModbusServer::Impl::Run(std::stop_token stop) {
  std::vector<pollfd> fds;
  std::vector<int> closed;
  while (!stop.stop_requested()) {
    const MonoTime now = clock.Monotonic();
    Tick(now);
    const auto wait = std::clamp(std::chrono::ceil<milliseconds>(NextDeadline(now) - now),
                                 milliseconds(0), kMaxPollWait);

    fds.clear();
    fds.push_back({wake_fd, POLLIN, 0});
    if (listen_fd >= 0) fds.push_back({listen_fd, POLLIN, 0});
    if (serial_fd >= 0 && !serial_failed) fds.push_back({serial_fd, POLLIN, 0});
    for (int fd : clients) fds.push_back({fd, POLLIN, 0});
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(wait.count()));
    if (ready < 0 && errno != EINTR) {
      log.Error("poll: {}; the server stops", Errno(errno));
      break;
    }
    if (ready <= 0) continue;

    closed.clear();
    for (const pollfd& p : fds) {
      if (p.revents == 0 || p.fd == wake_fd) continue;
      if (p.fd == serial_fd && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
        log.Error("{} failed; no longer serving it", device);
        serial_failed = true;
      } else if (p.fd == listen_fd) {
        AcceptClients();
      } else if (!ServeOne(p.fd) && p.fd != serial_fd) {
        closed.push_back(p.fd);
      }
    }
    for (int fd : closed) {
      log.Debug("client {} disconnected", fd);
      ::close(fd);
      std::erase(clients, fd);
    }
    // Commands last: a drop may close the sockets polled above.
    if (fds[0].revents != 0) ProcessPending();
  }
  FailPending();
}

// Ends the server's service: later commands fail fast, waiting ones fail now.
void ModbusServer::Impl::FailPending() {
  std::deque<Pending*> left;
  {
    MutexLock lock(mu);
    running = false;
    left.swap(pending);
  }
  for (Pending* p : left) p->done.set_value(FailedPreconditionError("the server stopped"));
}

void ModbusServer::Impl::AcceptClients() {
  while (true) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        // The connection stays pending and poll() would report it at once: pause instead
        // of spinning until a client goes away.
        log.Warn("accept: {} ({} clients); pausing", Errno(errno), clients.size());
        ::poll(nullptr, 0, 100);
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        log.Warn("accept: {}", Errno(errno));
      }
      return;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &kSendTimeout, sizeof(kSendTimeout));
    clients.push_back(fd);
    log.Debug("client {} connected", fd);
  }
}

bool ModbusServer::Impl::ServeOne(int fd) {
  uint8_t query[MODBUS_MAX_ADU_LENGTH];
  if (fd != serial_fd) modbus_set_socket(ctx, fd);
  const int length = modbus_receive(ctx, query);
  if (length < 0) {
    if (fd == serial_fd) {
      log.Debug("{}: {}", device, modbus_strerror(errno));
      modbus_flush(ctx);  // resynchronise on the next frame
    }
    return false;
  }
  if (length == 0) {
    // An RTU request for another unit. libmodbus now expects that unit's answer and would
    // swallow the next request as one; a pseudo-terminal has no other unit, so forget it.
    if (pty_slave >= 0) NewRtuContext().IgnoreError();
    return true;
  }
  if (silent) return true;
  const int header = modbus_get_header_length(ctx);
  const RequestAccess access = ParseRequestAccess(
      std::span<const uint8_t>(query + header, static_cast<size_t>(length - header)));
  int rc = 0;
  if (const auto code = ExceptionFor(access)) {
    rc = modbus_reply_exception(ctx, query, *code);
  } else {
    rc = modbus_reply(ctx, query, length, mapping);
    // Only a write libmodbus carried out takes registers away from their signals. A refused
    // one (bad quantity, address or coil value) gets an exception reply: the header,
    // function | 0x80 and the code (+ CRC over RTU); every successful write reply is longer.
    const int exception_length = header + 2 + (header == 1 ? 2 : 0);
    const bool refused = rc == exception_length;
    for (const Access& run : access.items()) {
      if (run.write && !refused) MarkManual(run);
    }
  }
  if (rc < 0) {
    log.Debug("reply: {}", modbus_strerror(errno));
    return false;
  }
  return true;
}

std::optional<uint8_t> ModbusServer::Impl::ExceptionFor(const RequestAccess& access) const {
  for (const ActiveFault& f : faults) {
    if (f.fault.kind != FaultKind::kException) continue;
    for (const Access& run : access.items()) {
      if (run.Covers(f.fault.ref)) return f.fault.exception_code;
    }
  }
  return std::nullopt;
}

Instance* ModbusServer::Impl::FindContaining(Table table, uint16_t address) {
  const uint32_t key = Key(table, address);
  auto it = std::upper_bound(index.begin(), index.end(), std::make_pair(key, UINT32_MAX));
  if (it == index.begin()) return nullptr;
  Instance& instance = instances[std::prev(it)->second];
  if (instance.table != table || address >= instance.address + instance.width) return nullptr;
  return &instance;
}

void ModbusServer::Impl::MarkManual(const Access& run) {
  if (index.empty() || run.count == 0 || run.address > 65535) return;
  const uint32_t end = run.address + run.count;
  // The first instance that may overlap starts at or before run.address.
  auto it = std::upper_bound(index.begin(), index.end(),
                             std::make_pair(Key(run.table, run.address), UINT32_MAX));
  if (it != index.begin()) --it;
  for (; it != index.end(); ++it) {
    Instance& instance = instances[it->second];
    if (instance.table < run.table) continue;
    if (instance.table > run.table || instance.address >= end) break;
    if (instance.address + instance.width > run.address) instance.manual = true;
  }
}

void ModbusServer::Impl::Tick(MonoTime now) {
  const nanoseconds elapsed = now - start;
  bool changed = false;
  for (Scheduled& s : schedule) {
    if (!s.begun && elapsed >= s.scripted.at) {
      s.begun = true;
      s.active_id = next_fault_id++;
      faults.push_back({s.active_id, s.scripted.fault});
      log.Info("scripted fault begins: {}", Describe(s.scripted.fault));
      changed = true;
    }
    if (s.begun && !s.ended && s.scripted.duration &&
        elapsed >= s.scripted.at + *s.scripted.duration) {
      s.ended = true;
      std::erase_if(faults, [&s](const ActiveFault& f) { return f.id == s.active_id; });
      log.Info("scripted fault ends: {}", Describe(s.scripted.fault));
      changed = true;
    }
  }
  if (changed) {
    if (Status status = ApplyFaults(); !status.ok()) log.Warn("{}", status.message());
  }
  if (frozen) return;
  for (Group& group : groups) {
    if (now < group.next_due) continue;
    for (size_t i = group.begin; i < group.end; ++i) {
      if (!instances[i].manual) Evaluate(instances[i], elapsed);
    }
    group.next_due += group.update;
    if (group.next_due <= now) group.next_due = now + group.update;  // skip missed updates
  }
}

MonoTime ModbusServer::Impl::NextDeadline(MonoTime now) const {
  MonoTime next = now + kMaxPollWait;
  if (!frozen) {
    for (const Group& group : groups) next = std::min(next, group.next_due);
  }
  for (const Scheduled& s : schedule) {
    if (!s.begun) {
      next = std::min(next, start + s.scripted.at);
    } else if (!s.ended && s.scripted.duration) {
      next = std::min(next, start + s.scripted.at + *s.scripted.duration);
    }
  }
  return next;
}

void ModbusServer::Impl::CloseClients() {
  for (int& fd : clients) CloseFd(fd);
  clients.clear();
}

// Derives frozen/silent/dropped from the active faults and opens or closes sockets to match.
Status ModbusServer::Impl::ApplyFaults() {
  auto any = [this](FaultKind kind) {
    return std::any_of(faults.begin(), faults.end(),
                       [kind](const ActiveFault& f) { return f.fault.kind == kind; });
  };
  frozen = any(FaultKind::kFreeze);
  silent = any(FaultKind::kSilent);
  const bool drop = any(FaultKind::kDrop);
  if (drop && !dropped) {
    CloseClients();
    CloseFd(listen_fd);
    dropped = true;
    log.Info("dropped every connection and stopped listening");
  } else if (!drop && dropped) {
    auto listener = OpenListener(config.host, port);
    if (!listener.ok()) return listener.status();
    listen_fd = listener->first;
    dropped = false;
    log.Info("listening again on {}:{}", config.host, port);
  }
  return OkStatus();
}

Status ModbusServer::Impl::ApplySet(const Command& command) {
  const RegisterRef ref = command.ref;
  Instance* instance = FindContaining(ref.table, ref.address);
  if (instance != nullptr && instance->address != ref.address) {
    return InvalidArgumentError(
        fmt::format("{} is inside the {} at {}", FormatRegisterRef(ref),
                    contract::ValueTypeName(instance->type),
                    FormatRegisterRef({instance->table, instance->address})));
  }
  if (IsBitTable(ref.table)) {
    KILN_ASSIGN_OR_RETURN(const Value value, ParseValueText(command.value, ValueType::kBool));
    uint8_t* bits = ref.table == Table::kCoil ? mapping->tab_bits : mapping->tab_input_bits;
    bits[ref.address] = *value.get_if<bool>() ? 1 : 0;
  } else {
    const ValueType type = instance != nullptr ? instance->type : ValueType::kUInt16;
    const WordOrder order = instance != nullptr ? instance->order : WordOrder::kABCD;
    KILN_ASSIGN_OR_RETURN(const Value value, ParseValueText(command.value, type));
    uint16_t* registers =
        ref.table == Table::kHolding ? mapping->tab_registers : mapping->tab_input_registers;
    EncodeRegisters(value, order, {registers + ref.address, RegisterWidth(type)});
  }
  if (instance != nullptr) instance->manual = true;
  return OkStatus();
}

Status ModbusServer::Impl::Apply(const Command& command) {
  switch (command.kind) {
    case Command::Kind::kSet:
      return ApplySet(command);
    case Command::Kind::kFault:
      if (command.fault.kind == FaultKind::kDrop && config.protocol != Protocol::kTcp) {
        return FailedPreconditionError("drop applies to tcp servers only");
      }
      if (command.fault.kind == FaultKind::kException) {
        // A new exception for an address replaces the previous one.
        std::erase_if(faults, [&command](const ActiveFault& f) {
          return f.fault.kind == FaultKind::kException && f.fault.ref == command.fault.ref;
        });
      }
      faults.push_back({next_fault_id++, command.fault});
      log.Info("fault: {}", Describe(command.fault));
      return ApplyFaults();
    case Command::Kind::kClear:
      faults.clear();
      log.Info("faults cleared");
      return ApplyFaults();
    case Command::Kind::kQuit:
      break;
  }
  return InvalidArgumentError("a server runs set, fault and clear commands only");
}

void ModbusServer::Impl::ProcessPending() {
  uint64_t count = 0;
  [[maybe_unused]] const ssize_t n = ::read(wake_fd, &count, sizeof(count));
  std::deque<Pending*> batch;
  {
    MutexLock lock(mu);
    batch.swap(pending);
  }
  if (batch.empty()) return;
  // Commands act on the state the clock says is current.
  Tick(clock.Monotonic());
  for (Pending* p : batch) p->done.set_value(p->command ? Apply(*p->command) : OkStatus());
}

ModbusServer::ModbusServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ModbusServer::~ModbusServer() { Stop(); }

Result<std::unique_ptr<ModbusServer>> ModbusServer::Create(ServerConfig config, const Clock& clock,
                                                           const Logger& logger) {
  Logger log = logger.Child(config.id);
  auto impl = std::make_unique<Impl>(std::move(config), clock, std::move(log));
  if (Status status = impl->Open(); !status.ok()) return status.WithContext(impl->config.id);
  impl->BuildInstances();
  return std::unique_ptr<ModbusServer>(new ModbusServer(std::move(impl)));
}

void ModbusServer::Start() {
  if (started_) return;
  started_ = true;
  Impl& impl = *impl_;
  impl.start = impl.clock.Monotonic();
  for (Group& group : impl.groups) group.next_due = impl.start;
  {
    MutexLock lock(impl.mu);
    impl.running = true;
  }
  impl.log.Info("serving {} {}", ProtocolName(impl.config.protocol), endpoint());
  thread_ = std::jthread([&impl](std::stop_token stop) { impl.Run(std::move(stop)); });
}

void ModbusServer::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  thread_.request_stop();
  impl_->Wake();
  thread_.join();  // the thread fails the commands still waiting
  impl_->CloseClients();
  CloseFd(impl_->listen_fd);
}

const ServerConfig& ModbusServer::config() const { return impl_->config; }

std::string ModbusServer::endpoint() const {
  if (impl_->config.protocol == Protocol::kTcp) {
    return fmt::format("{}:{}", impl_->config.host, impl_->port);
  }
  return impl_->device;
}

Status ModbusServer::Submit(const Command* command) {
  Pending p{command != nullptr ? std::optional<Command>(*command) : std::nullopt, {}};
  auto done = p.done.get_future();
  {
    MutexLock lock(impl_->mu);
    if (!impl_->running) {
      return FailedPreconditionError(fmt::format("server {} is not running", impl_->config.id));
    }
    impl_->pending.push_back(&p);
  }
  impl_->Wake();
  return done.get();
}

Status ModbusServer::Execute(const Command& command) { return Submit(&command); }

Status ModbusServer::SyncForTest() { return Submit(nullptr); }

}  // namespace kiln::sim
