// The only file of kiln::drivers that includes libmodbus.
#include <fmt/format.h>
#include <modbus/modbus.h>

#include <cerrno>
#include <chrono>
#include <span>
#include <string>
#include <utility>

#include "drivers/modbus/internal/channel.h"

namespace kiln::drivers::modbus::internal {

namespace {

// Maps a libmodbus errno to the driver's error policy.
RequestOutcome Classify(int err) {
  RequestOutcome out;
  out.error = modbus_strerror(err);
  if (err >= MODBUS_ENOBASE && err - MODBUS_ENOBASE < MODBUS_EXCEPTION_MAX) {
    out.outcome = Outcome::kException;
    out.exception_code = static_cast<uint8_t>(err - MODBUS_ENOBASE);
    return out;
  }
  switch (err) {
    case ETIMEDOUT:
      out.outcome = Outcome::kTimeout;
      break;
    case EMBBADCRC:
    case EMBBADDATA:
    case EMBBADEXC:
    case EMBUNKEXC:
    case EMBMDATA:
    case EMBBADSLAVE:
      out.outcome = Outcome::kBadResponse;
      break;
    // ECONNRESET (also a peer that closed), EPIPE, EBADF, ECONNREFUSED, ENOTCONN, EIO...
    default:
      out.outcome = Outcome::kConnectionLost;
      break;
  }
  return out;
}

void SetTimeout(modbus_t* ctx, std::chrono::milliseconds timeout,
                int (*set)(modbus_t*, uint32_t, uint32_t)) {
  const auto ms = static_cast<uint32_t>(timeout.count());
  (void)set(ctx, ms / 1000, (ms % 1000) * 1000);
}

class LibmodbusChannel final : public Channel {
 public:
  LibmodbusChannel(modbus_t* ctx, std::string endpoint)
      : ctx_(ctx), endpoint_(std::move(endpoint)) {}
  ~LibmodbusChannel() override {
    Close();
    modbus_free(ctx_);
  }
  LibmodbusChannel(const LibmodbusChannel&) = delete;
  LibmodbusChannel& operator=(const LibmodbusChannel&) = delete;

  bool connected() const override { return connected_; }

  Status Connect() override {
    Close();
    if (modbus_connect(ctx_) == -1) {
      const int err = errno;
      Close();
      return UnavailableError(
          fmt::format("{}: cannot connect: {}", endpoint_, modbus_strerror(err)));
    }
    connected_ = true;
    return OkStatus();
  }

  void Close() override {
    // libmodbus leaves no socket behind a failed connect; closing -1 would be harmless in
    // 3.1.6, but do not rely on it.
    if (modbus_get_socket(ctx_) != -1) modbus_close(ctx_);
    connected_ = false;
  }

  RequestOutcome ReadRegisters(RegisterKind kind, uint16_t address, uint16_t count,
                               std::span<uint16_t> out) override {
    if (out.size() < count) return Refuse(count);
    const int rc = kind == RegisterKind::kInputRegister
                       ? modbus_read_input_registers(ctx_, address, count, out.data())
                       : modbus_read_registers(ctx_, address, count, out.data());
    return Check(rc, count);
  }

  RequestOutcome ReadBits(RegisterKind kind, uint16_t address, uint16_t count,
                          std::span<uint8_t> out) override {
    if (out.size() < count) return Refuse(count);
    const int rc = kind == RegisterKind::kDiscreteInput
                       ? modbus_read_input_bits(ctx_, address, count, out.data())
                       : modbus_read_bits(ctx_, address, count, out.data());
    return Check(rc, count);
  }

  RequestOutcome WriteRegisters(uint16_t address, std::span<const uint16_t> values) override {
    if (values.empty() || values.size() > MODBUS_MAX_WRITE_REGISTERS) {
      return RequestOutcome{Outcome::kBadResponse, 0,
                            fmt::format("cannot write {} registers at once", values.size())};
    }
    const auto count = static_cast<uint16_t>(values.size());
    // libmodbus checks that the answer is a confirmation of this request (FC16: the count).
    const int rc = count == 1 ? modbus_write_register(ctx_, address, values[0])
                              : modbus_write_registers(ctx_, address, count, values.data());
    return Check(rc, count);
  }

  RequestOutcome WriteCoil(uint16_t address, bool value) override {
    return Check(modbus_write_bit(ctx_, address, value ? 1 : 0), 1);
  }

 private:
  static RequestOutcome Check(int rc, uint16_t count) {
    if (rc == count) return RequestOutcome{};
    if (rc >= 0) {
      return RequestOutcome{Outcome::kBadResponse, 0,
                            fmt::format("{} values in the response, {} requested", rc, count)};
    }
    return Classify(errno);
  }
  static RequestOutcome Refuse(uint16_t count) {
    return RequestOutcome{Outcome::kBadResponse, 0,
                          fmt::format("no room for {} values in the read buffer", count)};
  }

  modbus_t* const ctx_;
  const std::string endpoint_;
  bool connected_ = false;
};

}  // namespace

Result<std::unique_ptr<Channel>> NewLibmodbusChannel(const ModbusDeviceConfig& config) {
  const std::string endpoint = config.Endpoint();
  modbus_t* ctx = nullptr;
  if (config.transport == Transport::kTcp) {
    ctx = modbus_new_tcp_pi(config.host.c_str(), std::to_string(config.port).c_str());
  } else {
    const SerialSettings& s = config.serial;
    ctx = modbus_new_rtu(s.device.c_str(), s.baud, static_cast<char>(s.parity), s.data_bits,
                         s.stop_bits);
  }
  if (ctx == nullptr) {
    return InvalidArgumentError(
        fmt::format("{}: libmodbus refused the settings: {}", endpoint, modbus_strerror(errno)));
  }
  if (modbus_set_slave(ctx, config.unit_id) == -1) {
    const int err = errno;
    modbus_free(ctx);
    return InvalidArgumentError(fmt::format("{}: libmodbus refused unit_id {}: {}", endpoint,
                                            config.unit_id, modbus_strerror(err)));
  }
  // The response timeout bounds the whole answer (and a TCP connect). A byte timeout would
  // restart at every recv(), so a device trickling bytes could hold a read for minutes; with
  // it at zero libmodbus uses the response timeout for the entire response.
  SetTimeout(ctx, config.timeout, modbus_set_response_timeout);
  modbus_set_byte_timeout(ctx, 0, 0);
  return std::unique_ptr<Channel>(new LibmodbusChannel(ctx, endpoint));
}

}  // namespace kiln::drivers::modbus::internal
