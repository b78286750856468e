#pragma once
// DeviceRunner: the loop of one field device. It polls the driver every poll period,
// filters by exception (ScanEngine), and pushes what changed to the SampleQueue. When the
// device stops answering, its tags turn Bad (BadTimeout or BadNoCommunication), the device
// is reported offline, and reconnects follow with capped exponential backoff and jitter.
// A value that has not been refreshed for 3 poll periods turns Uncertain (CheckStale).
// Thread-safe: Start() runs the loop on its own thread; CheckStale() may be called from
// another thread (the watchdog).
#include <chrono>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/mutex.h"
#include "drivers/driver.h"
#include "edge/scan_engine.h"
#include "queue/sample_queue.h"

namespace kiln::edge {

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
  bool online() const;

 private:
  void Loop(std::stop_token stop);
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

  std::jthread thread_;
};

}  // namespace kiln::edge
