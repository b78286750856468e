#pragma once
// Uplink: the Sparkplug publisher loop. It owns the MQTT connection (a new client, and so a
// new Will with the next bdSeq, for every connection attempt), subscribes to commands,
// publishes births, then takes samples from the SampleQueue and publishes them as DDATA
// through the EdgeNode: live samples as they come, and the backlog (everything not
// acknowledged when the session began) as is_historical, rate-limited, in between.
//
// Delivery: data goes out at QoS 0 as Sparkplug requires. After each round the uplink
// publishes a QoS 1 *barrier* on kiln/edge/<group>/<node>/barrier (outside spBv1.0/); the
// broker handles one connection's packets in order, so its PUBACK means the broker has every
// message published before it, and the samples in them are acknowledged to the queue. At most
// kMaxBarriers rounds are unacknowledged at a time; births wait until none is. Anything
// unacknowledged when a connection ends is replayed as history in the next session
// (at-least-once). See docs/ARCHITECTURE.md, "Store and forward".
//
// Device status changes and MQTT events are handed to its loop. Thread-safe entry points:
// OnDeviceStatus, Start, Stop. Everything else runs on its thread.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/mutex.h"
#include "edge/device_runner.h"
#include "edge/edge_node.h"
#include "mqtt/client.h"
#include "queue/sample_queue.h"

namespace kiln::edge {

struct UplinkOptions {
  mqtt::ClientOptions mqtt;
  std::chrono::milliseconds reconnect_initial{500};
  std::chrono::milliseconds reconnect_max{30000};
  size_t max_batch = 5000;  // samples taken from the queue per publish round and lane
  // Backlog samples replayed per second at most (live data always goes first).
  double replay_rate = 1000000;
  // Called with the bdSeq of every new session before it connects (to persist it).
  std::function<void(uint64_t)> on_new_session;
  uint64_t seed = 1;
  // How connections are opened; tests pass a fake broker.
  mqtt::ConnectFn connect = mqtt::RealConnect();
  // Sparkplug primary host application to follow (empty: none). With one, births wait for
  // its STATE online=true on every connection, and an offline STATE (not older than the
  // last one seen) makes the node publish NDEATH, disconnect and start over.
  std::string primary_host_id;
  // Receives the writes of DCMDs for the node's devices (called on the uplink thread; hand
  // them to the device's runner). Unset: every write is answered rejected.
  std::function<void(EdgeNode::WriteCommand)> on_write;
};

class Uplink final : public DeviceStatusSink {
 public:
  Uplink(UplinkOptions options, EdgeNode& node, queue::SampleQueue& queue, const Clock& clock,
         Logger log, MetricsRegistry& metrics);
  ~Uplink() override;

  void Start();
  // Publishes NDEATH, disconnects cleanly and stops the loop.
  void Stop();
  void OnDeviceStatus(size_t device_index, bool online) override;
  // Queues the result of a write for kiln/edge/<group>/<node>/command-result (QoS 1, JSON of
  // docs/formats/commands.md); sent once connected. Thread-safe.
  void PublishCommandResult(const CommandResult& result);
  bool connected() const;

 private:
  struct DeviceEvent {
    size_t device;
    bool online;
  };
  struct ClientEvent {
    uint64_t generation;  // which client produced it; stale ones are ignored
    mqtt::Event event;
  };
  void Loop(std::stop_token stop);
  void Connect();
  void HandleEvent(mqtt::Event& event);
  // Folds `taken` and every other live sample and pending status change into the node's
  // state, starts a delivery pass of the queue (what was not acknowledged becomes the backlog)
  // and publishes the births.
  void PublishBirths(std::vector<DeviceEvent>& devices, const queue::SampleBatch& taken);
  // Publishes live samples, or backlog samples as history; their ids join the next barrier.
  void PublishSamples(const queue::SampleBatch& batch, bool historical);
  // How long a live read may wait: less while backlog replay is due.
  MonoTime ReadDeadline(bool delivering) const;
  // One rate-limited round of backlog replay.
  void ReplayBacklog();
  // Publishes the barrier that acknowledges everything published since the last one.
  void PublishBarrier();
  // At most once a second (or now, with `force`): the node metric of samples the queue
  // dropped, sent when it changed, and the replay rate gauge.
  void ReportStoreStats(bool force);
  bool window_full() const { return barriers_.size() >= kMaxBarriers; }
  // Publishes and clears `messages`; false (and the session is lost) on failure.
  bool Publish(std::vector<Message>& messages);
  // Ends the connection and the node's session: the state both Lost() and Leave() leave.
  void Teardown();
  void Lost(const std::string& why);
  // Publishes NDEATH (QoS 1, waits for its PUBACK), then DISCONNECT; without the PUBACK it
  // drops the link so the broker publishes the Will. Ends the session.
  void Leave();
  void HandleState(const mqtt::Event& event);
  // Adds what the node counted since the last call to the metrics.
  void SyncNodeStats();
  // Publishes the queued command results while connected.
  void PublishResults();
  void Shutdown();

  UplinkOptions options_;
  EdgeNode& node_;
  queue::SampleQueue& queue_;
  const Clock& clock_;
  Logger log_;

  mutable Mutex mu_;
  CondVar cv_;
  std::deque<ClientEvent> mqtt_events_ KILN_GUARDED_BY(mu_);
  bool stopping_ KILN_GUARDED_BY(mu_) = false;
  std::vector<DeviceEvent> device_events_ KILN_GUARDED_BY(mu_);
  std::deque<std::string> results_ KILN_GUARDED_BY(mu_);  // command results to publish
  bool connected_ KILN_GUARDED_BY(mu_) = false;

  static constexpr size_t kMaxBarriers = 4;
  static constexpr size_t kMaxResults = 1000;

  // Loop-thread state.
  std::unique_ptr<mqtt::Connection> client_;
  uint64_t generation_ = 0;
  bool session_up_ = false;    // CONNACK received
  bool births_due_ = false;    // births to publish before any data (new session, rebirth)
  bool published_ = false;     // births went out on this connection (a rebirth may be due)
  std::string barrier_topic_;  // kiln/edge/<group>/<node>/barrier
  std::string result_topic_;   // kiln/edge/<group>/<node>/command-result
  std::string state_topic_;    // spBv1.0/STATE/<primary host>, empty without one
  // SUBSCRIBEs of this connection awaiting their SUBACK: message id, topic. Loop thread.
  std::vector<std::pair<int, std::string>> subscriptions_;
  // Ids published since the last barrier, and those of each barrier awaiting its PUBACK.
  std::vector<queue::IdRange> unbarriered_;
  std::map<int, std::vector<queue::IdRange>> barriers_;
  bool backlog_done_ = true;  // the backlog cursor reached the boundary
  bool held_ = false;         // samples were left unacknowledged for want of a DBIRTH
  bool redeliver_ = false;    // a held device is born: restart the backlog once none in flight
  double replay_tokens_ = 0;
  MonoTime replay_refilled_;
  MonoTime drops_checked_;
  uint64_t replayed_since_ = 0;  // for the replay rate gauge
  MonoTime replay_rate_since_;
  bool host_online_ = false;  // the primary host's STATE on this connection said online
  std::optional<uint64_t> last_state_ts_;  // newest STATE timestamp seen (any connection)
  Backoff backoff_;
  MonoTime next_connect_;
  std::vector<Message> out_;
  LogRateLimiter log_limiter_;

  Counter& published_messages_;
  Counter& published_samples_;
  Counter& connects_;
  Counter& replayed_samples_;
  Counter& bad_commands_;
  EdgeNodeStats seen_stats_;  // node stats already added to the counters
  Gauge& connected_gauge_;
  Gauge& replay_rate_gauge_;

  std::jthread thread_;
};

}  // namespace kiln::edge
