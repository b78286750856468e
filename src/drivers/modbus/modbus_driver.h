#pragma once
// ModbusDriver: reads the tags of one Modbus TCP or RTU device through libmodbus, coalescing
// them into the fewest read requests (read_planner.h) and decoding the answers (codec.h), and
// writes single tags on command (FC5, FC6, FC16) with a read-back.
// Single-threaded: owned and called by its device loop, like every Driver. Owns its
// connection; borrows the clock, which must outlive it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "contract/sample.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/status.h"
#include "drivers/driver.h"
#include "drivers/modbus/modbus_config.h"
#include "drivers/modbus/read_planner.h"

namespace kiln::drivers::modbus {

namespace internal {
class Channel;
}  // namespace internal

// Counters since the driver was created; read them on the driver's thread, e.g. after each
// ReadAll(), to publish metrics.
struct ModbusStats {
  uint64_t requests = 0;           // requests sent, reads and writes
  uint64_t writes = 0;             // write requests sent (also counted in `requests`)
  uint64_t exceptions = 0;         // exception responses
  uint64_t timeouts = 0;           // requests without a complete answer in time
  uint64_t bad_responses = 0;      // answers that did not fit their request
  uint64_t connection_errors = 0;  // failed connects and broken connections
  uint64_t connects = 0;           // successful connects
  uint64_t splits = 0;             // requests split to isolate refused addresses

  friend bool operator==(const ModbusStats&, const ModbusStats&) = default;
};

class ModbusDriver final : public Driver {
 public:
  // Checks `config` (ValidateModbusDevice) and plans its reads; does not connect.
  // Errors: InvalidArgument for an invalid config or settings libmodbus refuses.
  static Result<std::unique_ptr<ModbusDriver>> Create(const ModbusDeviceConfig& config,
                                                      const Clock& clock, Logger logger);
  ~ModbusDriver() override;
  ModbusDriver(const ModbusDriver&) = delete;
  ModbusDriver& operator=(const ModbusDriver&) = delete;

  // Reads every tag once: connects if needed, then issues the planned requests in order.
  // Each sample's source_time is clock.Now() when its answer arrived. Per request:
  // - an exception makes the request's tags Bad (QualityForException) with null values.
  //   When a request of several tags is refused with 02 (illegal data address), its tags are
  //   re-read one by one at once; the plan then keeps the refused tags in requests of their
  //   own and re-joins the others into adjacent runs (no gaps bridged), so one missing
  //   register does not blank its neighbours in later reads. A run refused again with 02 is
  //   split into one request per tag for good.
  // - an answer that does not fit the request makes its tags BadCommunicationError and drops
  //   the connection (the stream may be out of step); the next request reconnects.
  // Errors (the read stops; the connection is closed, the next call reconnects; backing off
  // is the caller's job):
  //   Unavailable: cannot connect ("host:port: cannot connect: Connection refused"), or the
  //                connection broke (reset, closed by the device, ...);
  //   DeadlineExceeded: a request got no complete answer within the timeout.
  Result<std::vector<contract::Sample>> ReadAll() override;

  // Writes one tag and reads it back with a request of its own (FC1 or FC3), decoded like a
  // poll; connects if needed. Holding registers take FC6 when the tag spans one register and
  // FC16 when it spans several; coils take FC5. The value is converted to the registers
  // (EncodeRegisterTag: scale and offset undone, integers rounded to the nearest, word order)
  // or the coil state (EncodeBit: true, false, 0 or 1) before anything is sent, so a refused
  // value never reaches the device.
  // Errors:
  //   NotFound: no tag has id `id`;
  //   FailedPrecondition: the tag is an input register or a discrete input;
  //   InvalidArgument: null, a string, NaN or infinity; a fraction for an integer tag without
  //                    scale and offset; a value whose raw value does not fit the tag's type
  //                    ("holding:4: 40000 is out of range for int16"); for a coil, anything but
  //                    a bool, 0 or 1;
  //   Aborted: the device refused the write ("... FC6 holding:4 refused: exception 02 illegal
  //            data address") or, after the write, the read-back ("... written, but the
  //            read-back ... was refused: ..."); the connection stays open;
  //   Unavailable: cannot connect, the connection broke, or an answer did not fit the request
  //                (the write may have taken effect);
  //   DeadlineExceeded: no answer within the timeout (the write may have taken effect).
  // After Unavailable and DeadlineExceeded the connection is closed, as after a failed
  // ReadAll(); the next call reconnects.
  Result<contract::Value> WriteAndReadBack(contract::TagId id,
                                           const contract::Value& value) override;

  void Disconnect() override;
  uint64_t requests_sent() const override { return stats_.requests; }

  bool connected() const;
  const ModbusStats& stats() const { return stats_; }
  // Requests one ReadAll() issues when every request succeeds: the optimal cover of the
  // tags (PlanReads), grown by splits.
  size_t planned_requests() const { return plan_.size(); }
  // The current plan; indices refer to config().tags.
  std::vector<ReadRequest> plan() const;
  const ModbusDeviceConfig& config() const { return config_; }

 private:
  struct Block {
    ReadRequest request;
    bool split = false;  // made by a split: refused again with 02, it splits into single tags
  };

  ModbusDriver(const ModbusDeviceConfig& config, const Clock& clock, Logger logger,
               std::unique_ptr<internal::Channel> channel);
  Status Connect();
  // Issues `request` and fills the samples of its tags. Returns the exception code when the
  // device refused it, else 0.
  Result<uint8_t> Execute(const ReadRequest& request, std::vector<contract::Sample>& samples);
  // Re-reads the tags of plan_[index] one by one and replaces it in the plan. Returns the
  // index of the block after the replacement.
  Result<size_t> Split(size_t index, std::vector<contract::Sample>& samples);
  // Reads tag config_.tags[index] alone after a write to it.
  Result<contract::Value> ReadBack(uint32_t index);
  void Decode(const ReadRequest& request, Timestamp now, std::vector<contract::Sample>& samples);
  void MarkBad(const ReadRequest& request, contract::Quality quality, Timestamp now,
               std::vector<contract::Sample>& samples) const;

  const ModbusDeviceConfig config_;
  const std::string endpoint_;
  const PlanOptions options_;
  const Clock& clock_;
  Logger logger_;
  LogRateLimiter limiter_;
  std::unique_ptr<internal::Channel> channel_;
  std::vector<Block> plan_;
  ModbusStats stats_;
  std::vector<uint16_t> registers_;  // read buffers, sized for the largest request
  std::vector<uint8_t> bits_;
};

}  // namespace kiln::drivers::modbus
