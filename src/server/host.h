#pragma once
// PrimaryHost: the Sparkplug B 3.0 host application's view of the edge nodes, as a state
// machine without I/O. It is fed every message of the spBv1.0 namespace (topic, payload,
// arrival) and tells its listener what to store, which nodes and devices came and went, and
// which rebirth requests (NCMD "Node Control/Rebirth") to publish.
//
// What it does, following the specification (docs/ARCHITECTURE.md "Primary host"):
// - NBIRTH starts a node session: its bdSeq, and the name, alias, datatype and unit of every
//   metric. DBIRTH does the same for a device. Birth values are stored like data.
// - NDEATH ends the session only when its bdSeq matches the NBIRTH's (a Will left over from
//   an older connection is ignored). The node and its devices go offline at host time and
//   their metrics stale; DDEATH does so for one device at the DDEATH's own timestamp.
// - seq (0..255 over NBIRTH, DBIRTH, NDATA, DDATA, DDEATH) is checked. A gap starts the
//   reorder timer of the missing numbers; if they have not arrived when it expires, the gap is
//   real and a rebirth is requested. Messages after a gap are processed at once (their
//   aliases are known), so waiting costs no latency.
// - Data before a birth, or naming a metric the birth did not declare, cannot be resolved:
//   it is counted, dropped, and a rebirth is requested.
// - Rebirth requests are debounced per node, so a flapping link cannot start a storm.
// - Malformed topics and payloads are counted and logged (rate-limited), never fatal.
//
// Not thread-safe: one ingest thread owns it.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "contract/quality.h"
#include "contract/sparkplug/payload.h"
#include "core/clock.h"
#include "core/log.h"

namespace kiln::server {

// One metric as its birth declared it. Owned by PrimaryHost, address stable for its life;
// the same object is reused when a later birth declares the same path again.
struct MetricInfo {
  std::string path;    // "group/node/device/metric" or "group/node/metric"
  std::string device;  // empty for node metrics
  std::string name;
  sparkplug::DataType datatype = sparkplug::DataType::kUnknown;
  std::string unit;
  std::optional<uint64_t> alias;
  // Free for the listener (e.g. the historian series id); PrimaryHost never touches it.
  uint64_t user_data = UINT64_MAX;
};

struct NodeKey {
  std::string group;
  std::string node;
  std::string Name() const { return group + "/" + node; }
  friend auto operator<=>(const NodeKey&, const NodeKey&) = default;
};

class HostListener {
 public:
  virtual ~HostListener() = default;
  // A value of `metric` (from a birth or data message) to store. `t_ms` is the metric's
  // timestamp, else the payload's, else the arrival time.
  virtual void OnValue(MetricInfo& metric, const sparkplug::Metric& value, int64_t t_ms,
                       contract::Quality quality) = 0;
  // A node (device empty) or device session began; `metrics` are those its birth declared.
  virtual void OnBirth(const NodeKey& node, std::string_view device, uint64_t bdseq,
                       std::span<MetricInfo* const> metrics, int64_t t_ms) = 0;
  // A node (device empty: with all its devices) or a device went offline at `t_ms`; its
  // `metrics` are stale from then on.
  virtual void OnDeath(const NodeKey& node, std::string_view device,
                       std::span<MetricInfo* const> metrics, int64_t t_ms) = 0;
  // Publish a command to an edge node: QoS 0, not retained (the specification's rule for
  // NCMD).
  virtual void PublishCommand(const std::string& topic, const std::string& payload) = 0;
};

struct HostOptions {
  // How long a missing seq may be late before it counts as lost; 0: at once.
  std::chrono::milliseconds reorder_timeout{2000};
  // At most one rebirth request per node in this long.
  std::chrono::milliseconds rebirth_debounce{5000};
};

struct HostStats {
  uint64_t messages = 0;
  uint64_t malformed = 0;  // bad topic or undecodable payload
  uint64_t values = 0;
  uint64_t births = 0;              // NBIRTH + DBIRTH
  uint64_t deaths = 0;              // NDEATH (matching bdSeq) + DDEATH
  uint64_t stale_deaths = 0;        // NDEATH with another bdSeq, or for an offline node
  uint64_t seq_reorders = 0;        // messages that arrived with an unexpected seq
  uint64_t seq_gaps = 0;            // missing seqs that never arrived in time
  uint64_t data_before_birth = 0;   // messages dropped: no session, or an unknown device
  uint64_t unknown_metrics = 0;     // metrics not declared by the birth (dropped)
  uint64_t rebirth_requests = 0;    // NCMDs published
  uint64_t rebirths_debounced = 0;  // requests not sent because of the debounce
};

class PrimaryHost {
 public:
  PrimaryHost(HostListener& listener, const Clock& clock, Logger log, HostOptions options = {});
  ~PrimaryHost();
  PrimaryHost(const PrimaryHost&) = delete;
  PrimaryHost& operator=(const PrimaryHost&) = delete;

  // Processes one message received on the spBv1.0 namespace (STATE and commands are
  // ignored here). Never fails: bad input is counted and logged.
  void OnMessage(std::string_view topic, std::string_view payload);
  // Expires reorder timers. Call at least every reorder_timeout / 4.
  void Tick();
  // The earliest reorder deadline, if any (to sleep until it).
  std::optional<MonoTime> NextDeadline() const;
  // Ends every session (the host lost its broker connection: what happens meanwhile is
  // unknown): each open node is reported dead at host time (OnDeath, its values stale), and
  // its next message starts over with a rebirth request.
  void ResetSessions();

  const HostStats& stats() const { return stats_; }
  // Test hooks.
  bool IsOnlineForTest(const NodeKey& node, std::string_view device = {}) const;

 private:
  struct Device;
  struct Node;

  Node& NodeFor(const NodeKey& key);
  void HandleBirth(Node& node, const sparkplug::Payload& p, std::string_view device);
  void HandleNodeDeath(Node& node, const sparkplug::Payload& p);
  void HandleDeviceDeath(Node& node, const sparkplug::Payload& p, std::string_view device);
  void HandleData(Node& node, const sparkplug::Payload& p, std::string_view device);
  // Checks seq; returns false for a message that must not be processed (no seq at all).
  bool CheckSeq(Node& node, const sparkplug::Payload& p, std::string_view what);
  void RequestRebirth(Node& node, std::string_view why);
  MetricInfo& Define(Node& node, std::string_view device, const sparkplug::Metric& m);
  void Malformed(std::string_view source, std::string_view why);
  int64_t NowMs() const;

  HostListener& listener_;
  const Clock& clock_;
  Logger log_;
  HostOptions options_;
  LogRateLimiter limiter_;
  HostStats stats_;
  std::map<NodeKey, std::unique_ptr<Node>> nodes_;
  std::unordered_map<std::string, std::unique_ptr<MetricInfo>> metrics_;  // by path
  sparkplug::Decoder decoder_;
  sparkplug::Encoder encoder_;
};

// The metric path of a node metric (device empty) or a device metric.
std::string MetricPath(const NodeKey& node, std::string_view device, std::string_view name);

}  // namespace kiln::server
