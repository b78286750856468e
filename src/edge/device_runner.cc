#include "edge/device_runner.h"

#include <fmt/format.h>

#include <algorithm>

namespace kiln::edge {

using contract::Sample;

DeviceRunner::DeviceRunner(DeviceRunnerOptions options, std::unique_ptr<drivers::Driver> driver,
                           ScanEngine engine, queue::SampleQueue& queue, DeviceStatusSink& status,
                           const Clock& clock, Logger log, MetricsRegistry& metrics)
    : options_(std::move(options)),
      driver_(std::move(driver)),
      queue_(queue),
      status_(status),
      clock_(clock),
      log_(std::move(log)),
      engine_(std::move(engine)),
      backoff_(options_.backoff_initial, options_.backoff_max, options_.seed),
      log_limiter_(clock, std::chrono::seconds(60), 1),
      polls_(metrics.GetCounter("kiln_edge_device_polls_total", "Polls of a device",
                                {{"device", options_.device_id}})),
      poll_failures_(metrics.GetCounter("kiln_edge_device_poll_failures_total",
                                        "Polls that found the device unreachable",
                                        {{"device", options_.device_id}})),
      samples_(metrics.GetCounter("kiln_edge_samples_total",
                                  "Samples passed by report-by-exception",
                                  {{"device", options_.device_id}})),
      requests_(metrics.GetCounter("kiln_edge_device_requests_total",
                                   "Requests sent to the device (e.g. Modbus reads)",
                                   {{"device", options_.device_id}})),
      online_gauge_(metrics.GetGauge("kiln_edge_device_online", "1 when the device answers",
                                     {{"device", options_.device_id}})),
      writes_total_(metrics.GetCounter("kiln_edge_device_writes_total",
                                       "Command writes sent to the device (after the gate)",
                                       {{"device", options_.device_id}})) {}

DeviceRunner::~DeviceRunner() { Stop(); }

void DeviceRunner::Start() {
  if (thread_.joinable()) return;
  thread_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
}

void DeviceRunner::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

bool DeviceRunner::online() const {
  MutexLock lock(mu_);
  return online_;
}

std::chrono::milliseconds DeviceRunner::RunOnce() {
  polls_.Increment();
  auto result = driver_->ReadAll();
  const uint64_t requests = driver_->requests_sent();
  requests_.Increment(requests - requests_seen_);
  requests_seen_ = requests;
  const MonoTime now = clock_.Monotonic();
  std::vector<Sample> out;
  bool went_online = false;
  bool went_offline = false;
  std::chrono::milliseconds wait = options_.poll;
  if (result.ok()) {
    backoff_.Reset();
    // A driver whose device pushes changes waits for them itself: call it again at once.
    if (driver_->pushes_changes()) wait = std::chrono::milliseconds(0);
    for (const Sample& s : *result) last_read_[s.tag] = s;
    MutexLock lock(mu_);
    for (const Sample& s : *result) {
      if (engine_.Filter(s, now)) out.push_back(s);
    }
    Push(out);  // under mu_, so a stale mark can never overtake these values
    last_good_ = now;
    stale_ = false;
    went_online = !online_;
    online_ = true;
  } else {
    wait = backoff_.Next();
    poll_failures_.Increment();
    driver_->Disconnect();
    const auto quality = result.status().code() == StatusCode::kDeadlineExceeded
                             ? contract::status::kBadTimeout
                             : contract::status::kBadNoCommunication;
    KILN_LOG_RATE_LIMITED(log_, log_limiter_, LogLevel::kWarning, options_.device_id,
                          "device {} unreachable (attempt {}): {}", options_.device_id,
                          backoff_.failures(), result.status().ToString());
    MutexLock lock(mu_);
    out = engine_.MarkAll(quality, clock_.Now(), now);
    Push(out);
    went_offline = online_;
    online_ = false;
  }

  // Status after the samples, so the publisher sees the Bad values before the DDEATH.
  if (went_online) {
    log_.Info("device {} online", options_.device_id);
    online_gauge_.Set(1);
    status_.OnDeviceStatus(options_.device_index, true);
  }
  if (went_offline) {
    log_.Warn("device {} offline: {}", options_.device_id, result.status().ToString());
    online_gauge_.Set(0);
    status_.OnDeviceStatus(options_.device_index, false);
  }
  return wait;
}

void DeviceRunner::CheckStale() {
  const MonoTime now = clock_.Monotonic();
  MutexLock lock(mu_);
  if (!online_ || stale_ || now - last_good_ <= 3 * options_.poll) return;
  stale_ = true;
  Push(engine_.MarkStale(contract::status::kUncertainLastUsableValue, clock_.Now(), now));
}

void DeviceRunner::Push(const std::vector<Sample>& samples) {
  if (samples.empty()) return;
  samples_.Increment(samples.size());
  Status s = queue_.Push(samples);
  if (!s.ok()) {
    // The journal's writer thread reports a failed write with a later Push, so the samples
    // lost are not necessarily these: the store logs and counts those itself.
    KILN_LOG_RATE_LIMITED(log_, log_limiter_, LogLevel::kError, "queue",
                          "device {}: storing samples failed: {}", options_.device_id,
                          s.ToString());
  }
}

void DeviceRunner::EnableWrites(std::unique_ptr<CommandGate> gate) { gate_ = std::move(gate); }

void DeviceRunner::SubmitWrite(std::string command_id, WriteRequest request, CommandDone done) {
  {
    std::lock_guard lock(write_mu_);
    writes_.push_back({std::move(command_id), std::move(request), std::move(done)});
  }
  write_cv_.notify_all();
}

void DeviceRunner::RunWrites() {
  std::deque<PendingWrite> writes;
  {
    std::lock_guard lock(write_mu_);
    writes.swap(writes_);
  }
  for (PendingWrite& w : writes) w.done(Execute(w.command_id, w.request));
}

CommandResult DeviceRunner::Execute(const std::string& command_id, const WriteRequest& request) {
  CommandResult r{command_id, options_.device_id, request.tag, "rejected", {}, std::nullopt};
  if (!gate_) {
    r.reason = fmt::format("device {} takes no writes", options_.device_id);
    return r;
  }
  const GateDecision d = gate_->Check(request, [&](contract::TagId id) -> std::optional<Sample> {
    auto it = last_read_.find(id);
    if (it == last_read_.end()) return std::nullopt;
    return it->second;
  });
  if (!d.allowed()) {
    r.state = std::string(GateStateName(d.state));
    r.reason = d.reason;
  } else if (!online()) {
    r.state = "failed";
    r.reason = fmt::format("device {} is offline", options_.device_id);
  } else {
    gate_->RecordWrite(request.tag, clock_.Monotonic());
    writes_total_.Increment();
    auto written = driver_->WriteAndReadBack(*d.tag, d.value);
    if (written.ok()) {
      r.state = "succeeded";
      r.read_back = written->AsDouble();
      // The new value goes out at once, through the same filter as a poll.
      Sample s{*d.tag, *written, contract::status::kGood, clock_.Now()};
      last_read_[s.tag] = s;
      const MonoTime now = clock_.Monotonic();
      MutexLock lock(mu_);
      if (engine_.Filter(s, now)) Push({s});
    } else {
      r.state = "failed";
      r.reason = written.status().message();
    }
  }
  log_.Info("write {}{}/{} = {}: {}{}{}", command_id.empty() ? "" : command_id + " ",
            options_.device_id, request.tag, request.value.ToString(), r.state,
            r.reason.empty() ? "" : ": ", r.reason);
  return r;
}

void DeviceRunner::Loop(std::stop_token stop) {
  // Fixed-rate polling: the next poll is due one period after the previous one started.
  // Writes run as soon as they are queued, between polls.
  MonoTime next = clock_.Monotonic();
  while (true) {
    const MonoTime started = clock_.Monotonic();
    const auto wait = RunOnce();
    next = backoff_.failures() == 0 ? std::max(next + wait, started) : clock_.Monotonic() + wait;
    while (true) {
      RunWrites();
      std::unique_lock lock(write_mu_);
      if (write_cv_.wait_until(lock, stop, next, [&] { return !writes_.empty(); })) continue;
      if (stop.stop_requested()) {
        lock.unlock();
        RunWrites();  // every queued write gets its answer
        driver_->Disconnect();
        return;
      }
      break;  // time for the next poll
    }
  }
}

}  // namespace kiln::edge
