#include "server/server.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>

#include "contract/sparkplug/state.h"
#include "contract/sparkplug/topic.h"
#include "core/backoff.h"
#include "core/metrics.h"
#include "historian/historian.h"
#include "http/server.h"
#include "mqtt/client.h"
#include "server/api.h"
#include "server/commands.h"
#include "server/ingest.h"
#include "server/live.h"
#include "server/registry.h"

namespace kiln::server {

namespace {
constexpr auto kStopTimeout = std::chrono::seconds(3);
}  // namespace

struct Server::Impl {
  ServerConfig config;
  const Clock& clock;
  Logger log;
  std::string state_topic;
  std::unique_ptr<historian::Historian> historian;
  std::unique_ptr<Registry> registry;
  LiveHub live;
  MetricsRegistry metrics;
  std::unique_ptr<Ingest> ingest;
  std::unique_ptr<CommandService> commands;
  http::HttpServer http;
  // Command results from the MQTT thread, applied by the ticker thread, which also runs
  // CommandService::Tick every 100 ms.
  struct QueuedResult {
    std::string group, node, json;
  };
  static constexpr size_t kMaxQueuedResults = 10000;
  std::mutex results_mu;
  std::condition_variable_any results_cv;
  std::deque<QueuedResult> results;  // guarded by results_mu
  uint64_t results_dropped = 0;      // guarded by results_mu
  std::jthread ticker;

  // The MQTT session: events other than data messages go to the session thread.
  std::mutex mu;
  std::condition_variable_any cv;
  std::deque<mqtt::Event> events;
  std::mutex client_mu;
  mqtt::Connection* client = nullptr;  // guarded by client_mu; owned by the session thread
  bool born = false;                   // guarded by client_mu: the STATE birth is out
  // Rebirth requests made before the birth (guarded by client_mu): sent right after it, since
  // Sparkplug makes the birth the host's first publish.
  std::vector<std::pair<std::string, std::string>> held_rebirths;
  static constexpr size_t kMaxHeldRebirths = 1000;
  std::atomic<bool> connected{false};
  std::jthread session;
  Counter* connects = nullptr;

  Impl(const ServerConfig& cfg, LogSink& sink, const Clock& c)
      : config(cfg), clock(c), log(sink, "server", cfg.log_level) {
    sparkplug::Topic topic;
    topic.type = sparkplug::MessageType::kState;
    topic.host_id = config.host_id;
    state_topic = sparkplug::BuildTopic(topic);
  }

  void OnEvent(mqtt::Event e) {
    if (e.kind == mqtt::Event::Kind::kMessage && e.topic.starts_with("kiln/edge/")) {
      // kiln/edge/<group>/<node>/command-result
      const size_t g = 10;
      const size_t n = e.topic.find('/', g);
      const size_t r = n == std::string::npos ? n : e.topic.find('/', n + 1);
      if (r != std::string::npos && e.topic.compare(r, std::string::npos, "/command-result") == 0) {
        // Applied on the ticker thread: it commits with fsync, which must not stall MQTT.
        std::lock_guard lock(results_mu);
        if (results.size() < kMaxQueuedResults) {
          results.push_back(
              {e.topic.substr(g, n - g), e.topic.substr(n + 1, r - n - 1), std::move(e.payload)});
        } else {
          ++results_dropped;
        }
        results_cv.notify_all();
      }
      return;
    }
    if (e.kind == mqtt::Event::Kind::kMessage && e.topic != state_topic) {
      ingest->Enqueue(std::move(e.topic), std::move(e.payload));
      return;
    }
    {
      std::lock_guard lock(mu);
      events.push_back(std::move(e));
    }
    cv.notify_all();
  }

  // Publishes an NCMD or DCMD: QoS 0, not retained, as Sparkplug requires of commands.
  Status PublishCommand(const std::string& topic, const std::string& payload) {
    std::lock_guard lock(client_mu);
    // Sparkplug: the STATE birth is the host's first publish on every connection. A command
    // before it is not sent: writes stay pending; rebirth requests are held by the caller
    // (held_rebirths) and sent right after the birth.
    if (client == nullptr || !born) return UnavailableError("not connected and born yet");
    auto r = client->Publish(topic, payload, /*qos=*/0, /*retain=*/false);
    return r.ok() ? OkStatus() : r.status();
  }

  // Waits for the next session event until `deadline`; nullopt on timeout or stop.
  std::optional<mqtt::Event> NextEvent(std::stop_token stop, MonoTime deadline) {
    std::unique_lock lock(mu);
    const auto wait = std::max(std::chrono::nanoseconds(0), deadline - clock.Monotonic());
    if (!cv.wait_for(lock, stop, wait, [&] { return !events.empty(); })) return std::nullopt;
    mqtt::Event e = std::move(events.front());
    events.pop_front();
    return e;
  }

  void RunSession(std::stop_token stop);
  // One connection, from CONNECT to its loss or to Stop.
  void RunConnection(std::stop_token stop);
};

void Server::Impl::RunSession(std::stop_token stop) {
  Backoff backoff(std::chrono::milliseconds(500), std::chrono::seconds(30),
                  static_cast<uint64_t>(clock.Now().time_since_epoch().count()));
  while (!stop.stop_requested()) {
    const bool was_up = connected.load();
    RunConnection(stop);
    if (stop.stop_requested()) break;
    if (connected.exchange(false) || was_up) backoff.Reset();
    // What the nodes published while we were away is unknown: sessions start over.
    ingest->ResetSessions();
    const auto wait = backoff.Next();
    log.Info("reconnecting in {} ms", wait.count());
    std::unique_lock lock(mu);
    cv.wait_for(lock, stop, wait, [] { return false; });
  }
}

void Server::Impl::RunConnection(std::stop_token stop) {
  {
    std::lock_guard lock(mu);
    events.clear();
  }
  // Sparkplug: the Will and the birth carry the same timestamp, the time of this CONNECT.
  const uint64_t t = static_cast<uint64_t>(ToEpochMillis(clock.Now()));
  const mqtt::WillMessage will{state_topic, sparkplug::BuildHostState({false, t}), 1, true};
  auto made = mqtt::MqttClient::Connect(config.mqtt, will,
                                        [this](mqtt::Event e) { OnEvent(std::move(e)); });
  if (!made.ok()) {
    log.Warn("MQTT {}: {}", config.mqtt_url, made.status().ToString());
    return;
  }
  std::unique_ptr<mqtt::MqttClient> owned = std::move(*made);
  {
    std::lock_guard lock(client_mu);
    client = owned.get();
  }
  auto drop_client = [&] {
    {
      std::lock_guard lock(client_mu);
      client = nullptr;
      born = false;
    }
    owned.reset();
  };
  std::vector<std::pair<int, std::string>> pending_subacks;  // message id, filter
  bool published_birth = false;
  auto publish_birth = [&] {
    std::lock_guard lock(client_mu);
    auto r = owned->Publish(state_topic, sparkplug::BuildHostState({true, t}), 1, true);
    if (!r.ok()) {
      log.Warn("STATE birth: {}", r.status().ToString());
      return false;
    }
    born = true;
    for (const auto& [topic, payload] : held_rebirths) {
      auto sent = owned->Publish(topic, payload, /*qos=*/0, /*retain=*/false);
      if (!sent.ok()) log.Warn("publish {}: {}", topic, sent.status().ToString());
    }
    held_rebirths.clear();
    return true;
  };
  const MonoTime far = clock.Monotonic() + std::chrono::hours(24 * 365);
  while (!stop.stop_requested()) {
    auto e = NextEvent(stop, far);
    if (!e) continue;
    switch (e->kind) {
      case mqtt::Event::Kind::kConnected: {
        connected = true;
        connects->Increment();
        log.Info("connected to {} as {} (host {})", config.mqtt_url, config.mqtt.client_id,
                 config.host_id);
        // Sparkplug: subscribe to our own STATE and the namespace, then the birth.
        std::vector<std::string> filters = {state_topic,
                                            std::string(CommandService::kResultFilter)};
        if (config.groups.empty()) {
          filters.push_back(std::string(sparkplug::kNamespace) + "/#");
        } else {
          for (const auto& g : config.groups) {
            filters.push_back(fmt::format("{}/{}/#", sparkplug::kNamespace, g));
          }
        }
        for (size_t i = 0; i < filters.size(); ++i) {
          auto mid = owned->Subscribe(filters[i], i < 2 ? 1 : 0);
          if (!mid.ok()) {
            log.Warn("subscribe {}: {}", filters[i], mid.status().ToString());
            drop_client();
            return;
          }
          pending_subacks.emplace_back(*mid, filters[i]);
        }
        break;
      }
      case mqtt::Event::Kind::kSubscribed: {
        auto it = std::find_if(pending_subacks.begin(), pending_subacks.end(),
                               [&](const auto& p) { return p.first == e->message_id; });
        if (it == pending_subacks.end()) break;
        if (e->code != 0) {
          // Blind, the host must not say it is online: edges following it would publish to
          // nobody instead of buffering. Start over (with backoff) until the ACL allows it.
          log.Error(
              "the broker refused the subscription to {} (SUBACK 0x{:02x}): check its ACL for "
              "client {}; reconnecting",
              it->second, e->code, config.mqtt.client_id);
          connected = false;
          drop_client();
          return;
        }
        pending_subacks.erase(it);
        if (pending_subacks.empty() && !published_birth) {
          published_birth = true;
          if (!publish_birth()) {
            // Edges that follow this host would wait forever: start over.
            drop_client();
            return;
          }
        }
        break;
      }
      case mqtt::Event::Kind::kMessage: {
        auto state = sparkplug::ParseHostState(e->payload);
        if (!state.ok()) {
          log.Warn("{}: malformed STATE: {}", state_topic, state.status().ToString());
        } else if (!state->online && published_birth) {
          // Sparkplug: a foreign offline STATE of ours is answered with our birth again.
          log.Info("{} says offline (timestamp {}): publishing the birth again", state_topic,
                   state->timestamp);
          if (!publish_birth()) {
            drop_client();
            return;
          }
        } else if (state->online && state->timestamp != t && published_birth) {
          // (Before our birth it may be the retained STATE of this host's previous run.)
          log.Warn(
              "{}: an online STATE with timestamp {} that this host did not send: is "
              "another host using host_id '{}'?",
              state_topic, state->timestamp, config.host_id);
        }
        break;
      }
      case mqtt::Event::Kind::kConnectFailed:
      case mqtt::Event::Kind::kDisconnected:
        log.Warn("MQTT {}: {}", config.mqtt_url, e->detail);
        drop_client();
        return;
      case mqtt::Event::Kind::kPublished:
        break;
    }
  }
  // Stop: the death STATE with the current time, then DISCONNECT.
  if (published_birth) {
    const uint64_t now = static_cast<uint64_t>(ToEpochMillis(clock.Now()));
    auto mid = owned->Publish(state_topic, sparkplug::BuildHostState({false, now}), 1, true);
    const MonoTime deadline = clock.Monotonic() + kStopTimeout;
    while (mid.ok()) {
      auto e = NextEvent(std::stop_token(), deadline);
      if (!e || (e->kind == mqtt::Event::Kind::kPublished && e->message_id == *mid)) break;
      if (e->kind == mqtt::Event::Kind::kDisconnected) break;
    }
    owned->Disconnect().IgnoreError();
  }
  drop_client();
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

Result<std::unique_ptr<Server>> Server::Create(const ServerConfig& config, LogSink& sink,
                                               const Clock& clock) {
  auto impl = std::make_unique<Impl>(config, sink, clock);
  std::error_code ec;
  std::filesystem::create_directories(config.storage_path, ec);
  if (ec) {
    return UnavailableError(
        fmt::format("[storage] path {}: {}", config.storage_path, ec.message()));
  }
  historian::HistorianOptions ho;
  ho.dir = std::filesystem::path(config.storage_path) / "historian";
  ho.retention = config.retention;
  ho.wal_sync = config.wal_sync;
  ho.wal_sync_interval = config.wal_sync_interval;
  ho.log = &sink;
  KILN_ASSIGN_OR_RETURN(impl->historian, historian::Historian::Open(ho));
  KILN_ASSIGN_OR_RETURN(impl->registry,
                        Registry::Open(std::filesystem::path(config.storage_path) / "registry.db"));
  Impl* raw = impl.get();
  impl->ingest = std::make_unique<Ingest>(
      *impl->historian, *impl->registry, impl->live, clock, impl->log.Child("ingest"), config.host,
      [raw](const std::string& topic, const std::string& payload) {
        // A rebirth request: held until the STATE birth when there is none yet.
        {
          std::lock_guard lock(raw->client_mu);
          if (!raw->born) {
            if (raw->held_rebirths.size() < Impl::kMaxHeldRebirths) {
              raw->held_rebirths.emplace_back(topic, payload);
            }
            return;
          }
        }
        Status s = raw->PublishCommand(topic, payload);
        if (!s.ok()) raw->log.Info("{} not sent: {}", topic, s.ToString());
      });
  KILN_ASSIGN_OR_RETURN(
      impl->commands,
      CommandService::Open(std::filesystem::path(config.storage_path) / "commands.db",
                           *impl->registry, clock, impl->log.Child("commands"),
                           [raw](const std::string& topic, const std::string& payload) {
                             return raw->PublishCommand(topic, payload);
                           }));
  impl->connects =
      &impl->metrics.GetCounter("kiln_server_mqtt_connects_total", "MQTT connections established");
  impl->ingest->ExportMetrics(impl->metrics);
  ExportHistorianMetrics(*impl->historian, impl->metrics);
  impl->metrics.AddCounterCallback("kiln_server_command_results_dropped_total",
                                   "command results dropped: more than 10000 waiting to be applied",
                                   {}, [raw] {
                                     std::lock_guard lock(raw->results_mu);
                                     return static_cast<double>(raw->results_dropped);
                                   });
  impl->metrics.AddGaugeCallback("kiln_server_mqtt_connected", "1 while connected to the broker",
                                 {}, [raw] { return raw->connected.load() ? 1.0 : 0.0; });
  impl->metrics.AddCounterCallback("kiln_server_stream_dropped_total",
                                   "live events lost by slow /api/v1/stream clients", {},
                                   [raw] { return static_cast<double>(raw->live.dropped()); });
  ApiContext api{*impl->historian,
                 *impl->registry,
                 impl->live,
                 impl->metrics,
                 clock,
                 config.host_id,
                 [raw] { return raw->connected.load(); },
                 impl->commands.get()};
  RegisterApi(impl->http, api);
  KILN_RETURN_IF_ERROR(impl->http.Start(config.http_listen));
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void Server::Start() {
  impl_->ingest->Start();
  impl_->ticker = std::jthread([impl = impl_.get()](std::stop_token stop) {
    while (!stop.stop_requested()) {
      std::deque<Impl::QueuedResult> results;
      {
        std::unique_lock lock(impl->results_mu);
        impl->results_cv.wait_for(lock, stop, std::chrono::milliseconds(100),
                                  [&] { return !impl->results.empty(); });
        results.swap(impl->results);
      }
      for (const auto& r : results) impl->commands->OnResult(r.group, r.node, r.json);
      impl->commands->Tick();
    }
  });
  impl_->session =
      std::jthread([impl = impl_.get()](std::stop_token stop) { impl->RunSession(stop); });
  impl_->log.Info("kiln-server host {}: REST and dashboard on http://{}:{}/", impl_->config.host_id,
                  impl_->config.http_listen.substr(0, impl_->config.http_listen.rfind(':')),
                  impl_->http.port());
}

void Server::Stop() {
  if (!impl_) return;
  if (impl_->session.joinable()) {
    impl_->session.request_stop();
    impl_->cv.notify_all();
    impl_->session.join();
  }
  impl_->http.Stop();
  if (impl_->ticker.joinable()) {
    impl_->ticker.request_stop();
    impl_->ticker.join();
  }
  impl_->ingest->Stop();
  Status s = impl_->historian->Flush();
  if (!s.ok()) impl_->log.Error("historian flush: {}", s.ToString());
}

uint16_t Server::http_port() const { return impl_->http.port(); }

}  // namespace kiln::server
