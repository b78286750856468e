#pragma once
// DeviceRunner: the loop of one field device. It polls the driver every poll period (or, for
// a driver whose device pushes changes, calls it back to back: it waits for them itself),
// filters by exception (ScanEngine), and pushes what changed to the SampleQueue. When the
// device stops answering, its tags turn Bad (BadTimeout or BadNoCommunication), the device
// is reported offline, and reconnects follow with capped exponential backoff and jitter.
// A value that has not been refreshed for 3 poll periods turns Uncertain (CheckStale).
// Thread-safe: Start() runs the loop on its own thread; CheckStale() may be called from
// another thread (the watchdog).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/mutex.h"
#include "drivers/driver.h"
#include "edge/command_gate.h"
#include "edge/scan_engine.h"
#include "queue/sample_queue.h"

namespace kiln::edge {

// The outcome of one write (docs/formats/commands.md): state is "succeeded", "failed",
// "rejected" or "expired".
struct CommandResult {
  std::string id;
  std::string device;
  std::string metric;
  std::string state;
  std::string reason;
  std::optional<double> read_back;
};
using CommandDone = std::function<void(CommandResult)>;

// Receives online/offline changes of devices (implemented by the uplink).
class DeviceStatusSink {
 public:
  virtual ~DeviceStatusSink() = default;
  virtual void OnDeviceStatus(size_t device_index, bool online) = 0;
};

struct DeviceRunnerOptions {
  std::string device_id;
  size_t device_index = 0;
  std::chrono::milliseconds poll{1000};
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30000};
  uint64_t seed = 1;  // for the backoff jitter
};

class DeviceRunner {
 public:
  DeviceRunner(DeviceRunnerOptions options, std::unique_ptr<drivers::Driver> driver,
               ScanEngine engine, queue::SampleQueue& queue, DeviceStatusSink& status,
               const Clock& clock, Logger log, MetricsRegistry& metrics);
  ~DeviceRunner();

  void Start();
  void Stop();

  // One poll: read, filter, push, report status. Returns how long to wait before the next
  // poll (the poll period, or the backoff after a failure). Used by the loop and by tests.
  std::chrono::milliseconds RunOnce();
  // Marks Good tags Uncertain when the last successful read is older than 3 poll periods.
  void CheckStale();

  // Writes need a gate (the device's rules); without one every write is rejected.
  // REQUIRES: before Start().
  void EnableWrites(std::unique_ptr<CommandGate> gate);
  // Queues a write of a command; the loop runs it between polls (it is woken for it): the
  // gate decides, then the driver writes and reads back. `done` is called on the loop thread.
  // Thread-safe.
  void SubmitWrite(std::string command_id, WriteRequest request, CommandDone done);
  // Runs the queued writes now (the loop does it; tests call it).
  void RunWrites();
  bool online() const;

 private:
  void Loop(std::stop_token stop);
  CommandResult Execute(const std::string& command_id, const WriteRequest& request);
  struct PendingWrite {
    std::string command_id;
    WriteRequest request;
    CommandDone done;
  };
  // Counts and queues what the scan engine passed. REQUIRES: mu_ held, so samples of one
  // device enter the queue in the order the engine produced them.
  void Push(const std::vector<contract::Sample>& samples) KILN_REQUIRES(mu_);

  const DeviceRunnerOptions options_;
  std::unique_ptr<drivers::Driver> driver_;
  queue::SampleQueue& queue_;
  DeviceStatusSink& status_;
  const Clock& clock_;
  Logger log_;

  mutable Mutex mu_;
  ScanEngine engine_ KILN_GUARDED_BY(mu_);
  bool online_ KILN_GUARDED_BY(mu_) = false;
  bool stale_ KILN_GUARDED_BY(mu_) = false;
  MonoTime last_good_ KILN_GUARDED_BY(mu_);

  Backoff backoff_;  // owned by the loop thread
  LogRateLimiter log_limiter_;

  Counter& polls_;
  Counter& poll_failures_;
  Counter& samples_;
  Counter& requests_;
  uint64_t requests_seen_ = 0;  // driver requests already counted, loop thread
  Gauge& online_gauge_;
  Counter& writes_total_;
  std::unique_ptr<CommandGate> gate_;  // loop thread (set before Start)
  // The last value read of each tag (not the last published: a deadband may hold that back),
  // for the gate's interlocks. Loop thread.
  std::map<contract::TagId, contract::Sample> last_read_;
  std::mutex write_mu_;
  std::condition_variable_any write_cv_;
  std::deque<PendingWrite> writes_;  // guarded by write_mu_

  std::jthread thread_;
};

}  // namespace kiln::edge
