#include "edge/uplink.h"

#include <algorithm>
#include <limits>

#include "contract/sparkplug/state.h"
#include "core/json.h"

namespace kiln::edge {

namespace {
constexpr auto kIdleWait = std::chrono::milliseconds(100);
constexpr auto kDeathAckWait = std::chrono::seconds(2);
}  // namespace

Uplink::Uplink(UplinkOptions options, EdgeNode& node, queue::SampleQueue& queue, const Clock& clock,
               Logger log, MetricsRegistry& metrics)
    : options_(std::move(options)),
      node_(node),
      queue_(queue),
      clock_(clock),
      log_(std::move(log)),
      backoff_(options_.reconnect_initial, options_.reconnect_max, options_.seed),
      log_limiter_(clock, std::chrono::seconds(30), 1),
      published_messages_(
          metrics.GetCounter("kiln_edge_mqtt_messages_total", "Sparkplug messages published")),
      published_samples_(metrics.GetCounter("kiln_edge_published_samples_total",
                                            "Samples published in DDATA, live and replayed")),
      connects_(metrics.GetCounter("kiln_edge_mqtt_connects_total", "MQTT sessions established")),
      replayed_samples_(metrics.GetCounter("kiln_edge_replayed_samples_total",
                                           "Backlog samples published as history")),
      bad_commands_(metrics.GetCounter("kiln_edge_bad_commands_total",
                                       "Commands that were malformed or unsupported")),
      connected_gauge_(metrics.GetGauge("kiln_edge_mqtt_connected", "1 while connected")),
      replay_rate_gauge_(metrics.GetGauge("kiln_edge_replay_rate",
                                          "Backlog samples replayed per second, lately")) {
  const EdgeNodeOptions& n = node_.options();
  barrier_topic_ = "kiln/edge/" + n.group_id + "/" + n.edge_node_id + "/barrier";
  result_topic_ = "kiln/edge/" + n.group_id + "/" + n.edge_node_id + "/command-result";
  if (!options_.primary_host_id.empty()) {
    state_topic_ = sparkplug::BuildTopic(
        {sparkplug::MessageType::kState, "", "", "", options_.primary_host_id});
  }
}

Uplink::~Uplink() { Stop(); }

void Uplink::Start() {
  if (thread_.joinable()) return;
  thread_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
}

void Uplink::Stop() {
  if (!thread_.joinable()) return;
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  thread_.request_stop();
  queue_.Wake();
  cv_.NotifyAll();
  thread_.join();
}

bool Uplink::connected() const {
  MutexLock lock(mu_);
  return connected_;
}

void Uplink::PublishCommandResult(const CommandResult& r) {
  std::string out;
  json::Writer w(out);
  w.BeginObject()
      .Key("id")
      .String(r.id)
      .Key("device")
      .String(r.device)
      .Key("metric")
      .String(r.metric)
      .Key("state")
      .String(r.state)
      .Key("reason")
      .String(r.reason);
  if (r.read_back) w.Key("read_back").Number(*r.read_back);
  w.Key("t").Int(ToEpochMillis(clock_.Now())).EndObject();
  {
    MutexLock lock(mu_);
    results_.push_back(std::move(out));
    // Bounded while disconnected: the oldest results go (their commands end "failed: no
    // result" on the platform).
    while (results_.size() > kMaxResults) results_.pop_front();
  }
  queue_.Wake();
  cv_.NotifyAll();
}

void Uplink::PublishResults() {
  std::deque<std::string> results;
  {
    MutexLock lock(mu_);
    results.swap(results_);
  }
  while (!results.empty()) {
    auto r = client_->Publish(result_topic_, results.front(), /*qos=*/1, /*retain=*/false);
    if (!r.ok()) {
      // Not connected (any more): keep them for the next connection.
      MutexLock lock(mu_);
      results_.insert(results_.begin(), results.begin(), results.end());
      while (results_.size() > kMaxResults) results_.pop_front();
      return;
    }
    results.pop_front();
  }
}

void Uplink::OnDeviceStatus(size_t device_index, bool online) {
  {
    MutexLock lock(mu_);
    device_events_.push_back(DeviceEvent{device_index, online});
  }
  queue_.Wake();
  cv_.NotifyAll();
}

void Uplink::Connect() {
  const uint64_t generation = ++generation_;
  Message death = node_.BeginSession();
  const mqtt::WillMessage will{death.topic, std::move(death.payload), death.qos, death.retain};
  if (options_.on_new_session) options_.on_new_session(node_.bd_seq());
  auto client = options_.connect(options_.mqtt, will, [this, generation](mqtt::Event e) {
    // kPublished comes for every packet written (QoS 0) or acknowledged (QoS 1): only barrier
    // and NDEATH acknowledgements matter, and they need not interrupt a waiting queue read.
    const bool published = e.kind == mqtt::Event::Kind::kPublished;
    {
      MutexLock lock(mu_);
      mqtt_events_.push_back(ClientEvent{generation, std::move(e)});
    }
    if (!published) queue_.Wake();
    cv_.NotifyAll();
  });
  if (!client.ok()) {
    Lost(client.status().ToString());
    return;
  }
  client_ = std::move(client).value();
  log_.Debug("connecting to {}:{} (bdSeq {})", options_.mqtt.broker.host, options_.mqtt.broker.port,
             node_.bd_seq());
}

void Uplink::Teardown() {
  client_.reset();  // joins the network thread: no more events from this client
  node_.EndSession(session_up_);
  session_up_ = false;
  births_due_ = false;
  // Whatever was not acknowledged stays in the queue and is replayed in the next session.
  unbarriered_.clear();
  barriers_.clear();
  backlog_done_ = true;
  held_ = false;
  redeliver_ = false;
  {
    MutexLock lock(mu_);
    connected_ = false;
    mqtt_events_.clear();
  }
  connected_gauge_.Set(0);
}

void Uplink::Lost(const std::string& why) {
  const bool was_up = session_up_;
  Teardown();
  const auto delay = backoff_.Next();
  next_connect_ = clock_.Monotonic() + delay;
  if (was_up) {
    log_.Warn("MQTT connection to {}:{} lost: {}; reconnecting", options_.mqtt.broker.host,
              options_.mqtt.broker.port, why);
  } else {
    KILN_LOG_RATE_LIMITED(log_, log_limiter_, LogLevel::kWarning, "connect",
                          "cannot connect to MQTT broker {}:{}: {}; retrying in {} ms",
                          options_.mqtt.broker.host, options_.mqtt.broker.port, why, delay.count());
  }
}

bool Uplink::Publish(std::vector<Message>& messages) {
  for (auto& m : messages) {
    if (!client_) break;
    auto r = client_->Publish(m.topic, m.payload, m.qos, m.retain);
    if (!r.ok()) {
      messages.clear();
      Lost(r.status().ToString());
      return false;
    }
    published_messages_.Increment();
  }
  messages.clear();
  return client_ != nullptr;
}

void Uplink::HandleEvent(mqtt::Event& e) {
  switch (e.kind) {
    case mqtt::Event::Kind::kConnected: {
      // The broker accepted the session (and holds its Will): the next one takes a new bdSeq.
      session_up_ = true;
      published_ = false;
      host_online_ = false;  // every connection waits for a STATE of its own
      std::vector<std::string> topics = node_.CommandTopics();
      if (!state_topic_.empty()) topics.push_back(state_topic_);
      subscriptions_.clear();
      for (const auto& topic : topics) {
        auto mid = client_->Subscribe(topic, 1);
        if (!mid.ok()) {
          Lost(mid.status().ToString());
          return;
        }
        subscriptions_.emplace_back(*mid, topic);
      }
      births_due_ = true;
      backoff_.Reset();
      {
        MutexLock lock(mu_);
        connected_ = true;
      }
      connected_gauge_.Set(1);
      connects_.Increment();
      log_.Info("connected to {}:{} as {} (bdSeq {})", options_.mqtt.broker.host,
                options_.mqtt.broker.port, options_.mqtt.client_id, node_.bd_seq());
      break;
    }
    case mqtt::Event::Kind::kConnectFailed:
      Lost("broker refused the connection: " + e.detail);
      break;
    case mqtt::Event::Kind::kDisconnected:
      Lost(e.detail);
      break;
    case mqtt::Event::Kind::kMessage: {
      if (!state_topic_.empty() && e.topic == state_topic_) {
        HandleState(e);
        break;
      }
      auto command = node_.OnMessage(e.topic, e.payload);
      SyncNodeStats();
      if (!command.ok()) {
        KILN_LOG_RATE_LIMITED(log_, log_limiter_, LogLevel::kWarning, e.topic,
                              "ignored command: {}", command.status().ToString());
      } else if (*command == EdgeNode::Command::kRebirth) {
        log_.Info("rebirth requested");
        births_due_ = true;
        node_.PrepareBirths();  // no data from here until the births
      } else if (*command == EdgeNode::Command::kWrite) {
        for (EdgeNode::WriteCommand& w : node_.TakeWrites()) {
          if (options_.on_write) {
            options_.on_write(std::move(w));
          } else {
            PublishCommandResult({w.command_id, w.device_id, w.request.tag, "rejected",
                                  "this node takes no writes", std::nullopt});
          }
        }
      }
      break;
    }
    case mqtt::Event::Kind::kPublished: {
      // A barrier's PUBACK: the broker has everything published before it.
      auto it = barriers_.find(e.message_id);
      if (it == barriers_.end()) break;
      queue_.Ack(it->second);
      barriers_.erase(it);
      break;
    }
    case mqtt::Event::Kind::kSubscribed: {
      // Births do not wait for SUBACKs (the broker handles one connection in order), but a
      // refusal must be said: what the topic carries will never arrive.
      auto it = std::find_if(subscriptions_.begin(), subscriptions_.end(),
                             [&](const auto& s) { return s.first == e.message_id; });
      if (it == subscriptions_.end()) break;
      if (e.code != 0) {
        log_.Error(
            "the broker refused the subscription to {} (SUBACK 0x{:02x}): {} will not "
            "arrive; check its ACL for client {}",
            it->second, e.code,
            it->second == state_topic_ ? "the primary host's STATE (births wait for it)"
                                       : "commands",
            options_.mqtt.client_id);
      }
      subscriptions_.erase(it);
      break;
    }
  }
}

void Uplink::PublishBirths(std::vector<DeviceEvent>& devices, const queue::SampleBatch& taken) {
  node_.PrepareBirths();
  // The births declare current values: fold in every live sample queued before the status
  // changes taken with them (those already taken first). They were not published, so they fall
  // below the new delivery boundary and are replayed as history right after the births.
  node_.Data(taken.samples, out_);  // state only while births are pending
  while (true) {
    const queue::SampleBatch live = queue_.ReadLive(options_.max_batch, MonoTime());
    if (live.empty()) break;
    node_.Data(live.samples, out_);  // state only while births are pending
  }
  for (const auto& d : devices) node_.SetDeviceOnline(d.device, d.online, out_);
  devices.clear();
  ReportStoreStats(/*force=*/true);
  out_.clear();  // state only: nothing is published before the births
  queue_.StartDelivery();
  backlog_done_ = false;
  held_ = false;
  redeliver_ = false;
  replay_tokens_ = 0;
  replay_refilled_ = clock_.Monotonic();
  node_.Births(out_);
  if (Publish(out_)) {
    births_due_ = false;
    published_ = true;
  }
}

void Uplink::PublishSamples(const queue::SampleBatch& batch, bool historical) {
  // Acknowledge only what is published (or can never be: tags no longer configured). Samples
  // of a device without a birth in this session (offline now, or whose DBIRTH is still to be
  // applied) wait in the queue and are replayed as history after its next DBIRTH.
  size_t i = 0;
  for (const queue::IdRange& r : batch.ids) {
    for (uint64_t id = r.first; id < r.end(); ++id, ++i) {
      const contract::TagId tag = batch.samples[i].tag;
      if (!node_.known_tag(tag) || node_.CanPublish(tag)) {
        queue::AppendId(unbarriered_, id);
      } else {
        held_ = true;
      }
    }
  }
  const uint64_t before = node_.stats().metrics;
  node_.Data(batch.samples, out_, historical);
  const uint64_t published = node_.stats().metrics - before;  // not those of offline devices
  SyncNodeStats();
  if (Publish(out_)) {
    published_samples_.Increment(published);
    if (historical) {
      replayed_samples_.Increment(published);
      replayed_since_ += published;
    }
  }
}

MonoTime Uplink::ReadDeadline(bool delivering) const {
  const MonoTime now = clock_.Monotonic();
  if (!client_) return std::max(now, std::min(next_connect_, now + kIdleWait));
  if (!delivering || backlog_done_ || window_full()) return now + kIdleWait;
  // Backlog to replay: wait only until a batch worth of replay tokens has accrued.
  const double wanted = std::min(static_cast<double>(options_.max_batch), options_.replay_rate);
  const double seconds = (wanted - replay_tokens_) / std::max(options_.replay_rate, 1.0) -
                         std::chrono::duration<double>(now - replay_refilled_).count();
  if (seconds <= 0) return now;
  return now + std::min<std::chrono::nanoseconds>(
                   kIdleWait, std::chrono::nanoseconds(static_cast<int64_t>(seconds * 1e9)));
}

void Uplink::ReplayBacklog() {
  if (backlog_done_ || !client_) return;
  const MonoTime now = clock_.Monotonic();
  const double elapsed = std::chrono::duration<double>(now - replay_refilled_).count();
  replay_refilled_ = now;
  // Up to one second of burst, and at least one batch per second at any configured rate.
  replay_tokens_ = std::min(replay_tokens_ + elapsed * options_.replay_rate,
                            std::max(options_.replay_rate, 1.0));
  if (replay_tokens_ < 1) return;
  const size_t max = std::min(options_.max_batch, static_cast<size_t>(replay_tokens_));
  const queue::SampleBatch batch = queue_.ReadBacklog(max);
  if (batch.empty()) {
    backlog_done_ = true;
    log_.Debug("backlog replayed");
    return;
  }
  replay_tokens_ -= static_cast<double>(batch.samples.size());
  PublishSamples(batch, /*historical=*/true);
}

void Uplink::PublishBarrier() {
  if (unbarriered_.empty() || !client_ || window_full()) return;
  auto mid = client_->Publish(barrier_topic_, "", 1, false);
  if (!mid.ok()) {
    Lost(mid.status().ToString());
    return;
  }
  barriers_[*mid] = std::move(unbarriered_);
  unbarriered_.clear();
}

void Uplink::ReportStoreStats(bool force) {
  const MonoTime now = clock_.Monotonic();
  if (!force && now - drops_checked_ < std::chrono::seconds(1)) return;
  drops_checked_ = now;
  node_.SetStoreDropped(queue_.stats().dropped, out_);
  const double seconds = std::chrono::duration<double>(now - replay_rate_since_).count();
  if (seconds >= 1) {
    replay_rate_gauge_.Set(static_cast<double>(replayed_since_) / seconds);
    replayed_since_ = 0;
    replay_rate_since_ = now;
  }
}

void Uplink::SyncNodeStats() {
  const EdgeNodeStats& now = node_.stats();
  bad_commands_.Increment(now.bad_commands - seen_stats_.bad_commands);
  seen_stats_ = now;
}

void Uplink::Loop(std::stop_token stop) {
  next_connect_ = clock_.Monotonic();
  replay_rate_since_ = next_connect_;
  while (!stop.stop_requested()) {
    if (!client_ && clock_.Monotonic() >= next_connect_) Connect();

    // Status changes first: every sample a device queued before its change is then in the
    // queue, and goes out (or into the state) before the change is applied.
    std::vector<DeviceEvent> devices;
    {
      MutexLock lock(mu_);
      devices.swap(device_events_);
    }
    const bool delivering = session_up_ && !births_due_;
    // While the barrier window is full, or births wait for acknowledgements, take no data.
    const bool take_live = !(session_up_ && (window_full() || (births_due_ && !barriers_.empty())));
    queue::SampleBatch live;
    if (take_live) {
      live = queue_.ReadLive(options_.max_batch, ReadDeadline(delivering));
    } else {
      MutexLock lock(mu_);
      cv_.WaitUntil(lock, clock_.Monotonic() + kIdleWait,
                    [&]() KILN_REQUIRES(mu_) { return stopping_ || !mqtt_events_.empty(); });
    }
    if (live.samples.size() == options_.max_batch || !take_live) {
      // More may be queued before these changes: apply them with a later batch.
      MutexLock lock(mu_);
      device_events_.insert(device_events_.begin(), devices.begin(), devices.end());
      devices.clear();
    }

    std::deque<ClientEvent> events;
    {
      MutexLock lock(mu_);
      events.swap(mqtt_events_);
    }
    for (auto& ce : events) {
      if (ce.generation == generation_ && client_) HandleEvent(ce.event);
    }

    if (session_up_ && client_) PublishResults();

    const bool host_ready = state_topic_.empty() || host_online_;
    if (session_up_ && births_due_ && host_ready && barriers_.empty() && unbarriered_.empty()) {
      // Samples read above are older than the births: fold them in and replay them as history.
      PublishBirths(devices, live);
      live = {};
    }

    if (session_up_ && !births_due_) {
      if (!live.empty()) PublishSamples(live, /*historical=*/false);
      // Device status after the samples taken with it: a host sees a device's Bad values
      // before its DDEATH, and a DBIRTH holds the values read before it.
      for (const auto& d : devices) {
        const bool was_online = node_.device_online(d.device);
        node_.SetDeviceOnline(d.device, d.online, out_);
        // Samples held back for want of a DBIRTH can go now; replay them once nothing is in
        // flight, so that nothing published is read again.
        if (d.online && !was_online && held_) {
          redeliver_ = true;
          held_ = false;
        }
      }
      if (redeliver_ && barriers_.empty() && unbarriered_.empty()) {
        // Everything unacknowledged, held samples included, becomes the backlog again.
        queue_.StartDelivery();
        backlog_done_ = false;
        redeliver_ = false;
      }
      ReportStoreStats(/*force=*/false);
      Publish(out_);
      if (!window_full()) ReplayBacklog();
      PublishBarrier();
    } else {
      // No session (or births pending): samples and changes only update the state, and stay
      // in the queue for the backlog of the next session.
      node_.Data(live.samples, out_);
      for (const auto& d : devices) node_.SetDeviceOnline(d.device, d.online, out_);
      if (session_up_ && births_due_ && !unbarriered_.empty()) PublishBarrier();
      out_.clear();
    }
  }
  Shutdown();
}

void Uplink::HandleState(const mqtt::Event& e) {
  auto state = sparkplug::ParseHostState(e.payload);
  if (!state.ok()) {
    KILN_LOG_RATE_LIMITED(log_, log_limiter_, LogLevel::kError, e.topic, "ignored {}: {}", e.topic,
                          state.status().ToString());
    return;
  }
  // A STATE older than the newest one seen is stale (a late retained or Will message).
  if (last_state_ts_ && state->timestamp < *last_state_ts_) return;
  last_state_ts_ = state->timestamp;
  if (state->online) {
    if (!host_online_) log_.Info("primary host {} is online", options_.primary_host_id);
    host_online_ = true;
    return;
  }
  host_online_ = false;
  if (!published_) return;  // nothing published yet on this connection: keep waiting
  log_.Warn("primary host {} went offline: NDEATH, disconnect, start over",
            options_.primary_host_id);
  Leave();
  next_connect_ = clock_.Monotonic();
}

void Uplink::Leave() {
  if (session_up_) {
    Message death = node_.Death();
    bool acked = false;
    auto mid = client_->Publish(death.topic, death.payload, 1, false);
    if (mid.ok()) {
      const MonoTime until = clock_.Monotonic() + kDeathAckWait;
      MutexLock lock(mu_);
      acked = cv_.WaitUntil(lock, until, [&]() KILN_REQUIRES(mu_) {
        return std::any_of(mqtt_events_.begin(), mqtt_events_.end(), [&](const auto& ce) {
          return ce.generation == generation_ && ce.event.kind == mqtt::Event::Kind::kPublished &&
                 ce.event.message_id == *mid;
        });
      });
    }
    if (acked) {
      // The NDEATH went out after every data message of the session: its PUBACK is a barrier.
      for (const auto& [barrier_mid, ids] : barriers_) queue_.Ack(ids);
      queue_.Ack(unbarriered_);
      barriers_.clear();
      unbarriered_.clear();
      client_->Disconnect().IgnoreError();
      log_.Info("published NDEATH (bdSeq {}) and disconnected", node_.bd_seq());
    } else {
      // No PUBACK: the link is gone or stuck. Drop it without DISCONNECT so the broker
      // publishes the Will, the same NDEATH, instead of waiting for a keep-alive.
      log_.Warn(
          "NDEATH not acknowledged within {} s; dropping the connection (the broker "
          "publishes the Will)",
          std::chrono::duration_cast<std::chrono::seconds>(kDeathAckWait).count());
    }
  }
  Teardown();
}

void Uplink::Shutdown() {
  if (client_) Leave();
}

}  // namespace kiln::edge
