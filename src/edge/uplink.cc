#include "edge/uplink.h"

#include <algorithm>
#include <limits>

#include "contract/sparkplug/state.h"

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
      published_samples_(
          metrics.GetCounter("kiln_edge_published_samples_total", "Samples published in DDATA")),
      connects_(metrics.GetCounter("kiln_edge_mqtt_connects_total", "MQTT sessions established")),
      bad_commands_(metrics.GetCounter("kiln_edge_bad_commands_total",
                                       "Commands that were malformed or unsupported")),
      history_dropped_(metrics.GetCounter(
          "kiln_edge_history_dropped_total",
          "Queued samples not replayed because their device was offline at reconnect")),
      connected_gauge_(metrics.GetGauge("kiln_edge_mqtt_connected", "1 while connected")) {
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
    // libmosquitto reports every QoS 0 packet written: only the NDEATH at shutdown waits
    // for one, so those neither queue nor interrupt the loop.
    const bool published = e.kind == mqtt::Event::Kind::kPublished;
    {
      MutexLock lock(mu_);
      if (published && !await_published_) return;
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
  {
    MutexLock lock(mu_);
    connected_ = false;
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
      host_online_ = false;  // every connection waits for a STATE of its own
      std::vector<std::string> topics = node_.CommandTopics();
      if (!state_topic_.empty()) topics.push_back(state_topic_);
      for (const auto& topic : topics) {
        Status s = client_->Subscribe(topic, 1);
        if (!s.ok()) {
          Lost(s.ToString());
          return;
        }
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
      }
      break;
    }
    case mqtt::Event::Kind::kPublished:
      break;
  }
}

void Uplink::PublishBirths(std::vector<DeviceEvent>& devices) {
  node_.PrepareBirths();
  for (const auto& d : devices) node_.SetDeviceOnline(d.device, d.online, out_);
  devices.clear();
  // Everything not yet acknowledged was queued before these births: the births must show
  // its latest values, and it is sent afterwards as history with its original timestamps.
  queue_.Rewind();
  uint64_t end_id = 0;
  while (true) {  // in batches: bounded memory and short holds of the queue's lock
    const queue::SampleBatch backlog = queue_.Read(options_.max_batch, clock_.Monotonic());
    if (backlog.samples.empty()) {
      if (end_id == 0) end_id = backlog.first_id;
      break;
    }
    node_.Data(backlog.samples, out_);  // state only while births are pending
    end_id = backlog.first_id + backlog.samples.size();
  }
  replay_until_ = end_id;
  queue_.Rewind();
  node_.Births(out_);
  if (Publish(out_)) births_due_ = false;
}

void Uplink::PublishBatch(const queue::SampleBatch& batch) {
  std::span<const contract::Sample> samples(batch.samples);
  const size_t historical = static_cast<size_t>(std::min<uint64_t>(
      samples.size(), replay_until_ > batch.first_id ? replay_until_ - batch.first_id : 0));
  node_.Data(samples.first(historical), out_, /*historical=*/true);
  node_.Data(samples.subspan(historical), out_);
  SyncNodeStats();
  if (Publish(out_)) {
    queue_.Ack(batch.first_id + batch.samples.size() - 1);
    published_samples_.Increment(batch.samples.size());
  }
}

void Uplink::SyncNodeStats() {
  const EdgeNodeStats& now = node_.stats();
  bad_commands_.Increment(now.bad_commands - seen_stats_.bad_commands);
  history_dropped_.Increment(now.history_dropped - seen_stats_.history_dropped);
  seen_stats_ = now;
}

void Uplink::Loop(std::stop_token stop) {
  next_connect_ = clock_.Monotonic();
  while (!stop.stop_requested()) {
    if (!client_ && clock_.Monotonic() >= next_connect_) Connect();

    std::deque<ClientEvent> events;
    std::vector<DeviceEvent> devices;
    {
      MutexLock lock(mu_);
      events.swap(mqtt_events_);
      devices.swap(device_events_);
    }
    for (auto& ce : events) {
      if (ce.generation == generation_ && client_) HandleEvent(ce.event);
    }
    const bool host_ready = state_topic_.empty() || host_online_;
    if (session_up_ && births_due_ && host_ready) PublishBirths(devices);

    if (session_up_ && !births_due_) {
      queue::SampleBatch batch = queue_.Read(options_.max_batch, clock_.Monotonic() + kIdleWait);
      bool interrupted = false;
      {
        MutexLock lock(mu_);
        interrupted = std::any_of(mqtt_events_.begin(), mqtt_events_.end(), [](const auto& ce) {
          return ce.event.kind != mqtt::Event::Kind::kPublished;
        });
        if (interrupted) {
          // A command (e.g. a rebirth request) arrived while waiting: it goes first, and so
          // do the device changes taken with this batch.
          device_events_.insert(device_events_.begin(), devices.begin(), devices.end());
        }
      }
      if (interrupted) {
        queue_.Rewind();
        continue;
      }
      if (!batch.samples.empty()) PublishBatch(batch);
    } else if (devices.empty()) {
      const MonoTime until =
          client_ ? clock_.Monotonic() + kIdleWait : std::max(next_connect_, clock_.Monotonic());
      MutexLock lock(mu_);
      cv_.WaitUntil(lock, until, [&]() KILN_REQUIRES(mu_) {
        return stopping_ || !mqtt_events_.empty() || !device_events_.empty();
      });
    }

    // Device status after the samples taken above, which were queued before it: a host sees
    // a device's Bad values before its DDEATH, and a DBIRTH holds the values read before it.
    for (const auto& d : devices) node_.SetDeviceOnline(d.device, d.online, out_);
    if (session_up_ && !births_due_) {
      Publish(out_);
    } else {
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
  if (births_due_) return;  // nothing published yet on this connection: keep waiting
  log_.Warn("primary host {} went offline: NDEATH, disconnect, start over",
            options_.primary_host_id);
  Leave();
  next_connect_ = clock_.Monotonic();
}

void Uplink::Leave() {
  if (session_up_) {
    Message death = node_.Death();
    bool acked = false;
    {
      MutexLock lock(mu_);
      await_published_ = true;  // before publishing: its PUBACK may come back at once
    }
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
    {
      MutexLock lock(mu_);
      await_published_ = false;
    }
    if (acked) {
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
