#pragma once
// Ingest: the pipeline from the MQTT connection to storage. The MQTT network thread hands
// every spBv1.0 message to Enqueue; one ingest thread drains the queue in batches, runs the
// primary host state machine over them, and writes what it yields: values to the historian
// (one Append per batch), births and deaths to the registry, live events to the LiveHub,
// rebirth requests back to the broker. A full queue makes Enqueue wait up to 2 s
// (back-pressure on the broker connection); beyond that the message is dropped and counted
// (IngestStats::dropped), so that the MQTT keep-alive never starves. A historian write that
// fails with a retryable error (a full disk) is retried with backoff, never dropped.
//
// Values are stored under their metric path. Numeric Sparkplug types (and Boolean,
// DateTime) go to numeric series, String/Text/UUID to text series; DataSet, Template,
// Bytes and File values are not stored (counted). A birth that changes a metric between
// text and number is refused for that metric (counted in IngestStats::rejected, logged):
// its history keeps one kind. When a node or device dies, each of its metrics gets one more
// point at the death time (or just after its last value, if that is later): the last value
// with quality UncertainNoCommunicationLastUsableValue (or the last Bad quality), so that
// history and the latest value both show that the value is no longer being refreshed.
// Thread-safe: Enqueue from any thread.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "historian/historian.h"
#include "server/host.h"
#include "server/live.h"
#include "server/registry.h"

namespace kiln::server {

struct IngestStats {
  uint64_t queued = 0;        // messages waiting
  uint64_t dropped = 0;       // messages dropped: the queue stayed full
  uint64_t points = 0;        // values written to the historian (stale marks included)
  uint64_t unsupported = 0;   // values of types that are not stored
  uint64_t rejected = 0;      // values whose birth changed the metric between text and number
  uint64_t store_errors = 0;  // historian or registry writes that failed (retries included)
  uint64_t lost = 0;          // values not stored after a write failed for good
};

class Ingest final : private HostListener {
 public:
  // `publish` sends a command (QoS 0, not retained) to the broker; may fail silently.
  using PublishFn = std::function<void(const std::string& topic, const std::string& payload)>;

  Ingest(historian::Historian& historian, Registry& registry, LiveHub& live, const Clock& clock,
         Logger log, HostOptions host_options, PublishFn publish, size_t max_queue = 100000);
  ~Ingest();  // stops the thread after draining what is queued
  Ingest(const Ingest&) = delete;
  Ingest& operator=(const Ingest&) = delete;

  void Start();
  void Stop();
  // Queues one message (topic, payload). Waits while the queue is full.
  void Enqueue(std::string topic, std::string payload);
  // The broker connection was lost: what the nodes did meanwhile is unknown, so every
  // session starts over (queued behind the messages already received).
  void ResetSessions();
  // Waits until everything enqueued before the call is processed and stored (tests).
  void Sync();

  HostStats host_stats() const;
  IngestStats stats() const;
  // Adds the ingest and host counters to `metrics` (callbacks read them at scrape time).
  void ExportMetrics(MetricsRegistry& metrics);

 private:
  struct Message {
    enum class Kind { kData, kReset, kSync } kind = Kind::kData;
    std::string topic;
    std::string payload;
    uint64_t ticket = 0;
  };

  void Run(std::stop_token stop);
  void FlushPoints();
  // Appends batch_, retrying retryable errors until they pass or Stop. False: lost.
  bool AppendWithRetry();
  void PublishStatus(const NodeKey& node, std::string_view device, bool online, int64_t t_ms);

  // HostListener, on the ingest thread.
  void OnValue(MetricInfo& metric, const sparkplug::Metric& value, int64_t t_ms,
               contract::Quality quality) override;
  void OnBirth(const NodeKey& node, std::string_view device, uint64_t bdseq,
               std::span<MetricInfo* const> metrics, int64_t t_ms) override;
  void OnDeath(const NodeKey& node, std::string_view device, std::span<MetricInfo* const> metrics,
               int64_t t_ms) override;
  void PublishCommand(const std::string& topic, const std::string& payload) override;

  historian::Historian& historian_;
  Registry& registry_;
  LiveHub& live_;
  const Clock& clock_;
  Logger log_;
  PublishFn publish_;
  const size_t max_queue_;
  PrimaryHost host_;  // ingest thread only

  mutable std::mutex mu_;
  std::condition_variable_any cv_;        // the ingest thread waits for messages
  std::condition_variable_any space_cv_;  // producers wait for room, Sync for progress
  std::deque<Message> queue_;
  bool running_ = false;  // the thread runs (Start .. Stop)
  uint64_t next_ticket_ = 0;
  uint64_t done_ticket_ = 0;
  HostStats host_stats_;  // copied from host_ after each batch
  IngestStats stats_;

  // Ingest thread only.
  std::stop_token stop_;
  std::vector<historian::PointWrite> batch_;
  std::vector<LiveEvent> events_;
  LogRateLimiter limiter_;
  std::jthread thread_;
};

}  // namespace kiln::server
