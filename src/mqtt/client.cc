#include "mqtt/client.h"

#include <fmt/format.h>
#include <mosquitto.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>

#include "core/host_port.h"

namespace kiln::mqtt {

namespace {

void InitLibraryOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

}  // namespace

Result<BrokerAddress> ParseBrokerUrl(std::string_view url) {
  BrokerAddress out;
  std::string_view rest;
  if (url.starts_with("mqtt://")) {
    rest = url.substr(7);
    out.port = 1883;
  } else if (url.starts_with("mqtts://")) {
    rest = url.substr(8);
    out.tls = true;
    out.port = 8883;
  } else {
    return InvalidArgumentError(
        fmt::format("'{}' is not an MQTT URL (mqtt://host:port or mqtts://host:port)", url));
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  auto hp = ParseHostPort(rest, {.default_port = out.port});
  if (!hp.ok()) return hp.status().WithContext(fmt::format("MQTT URL '{}'", url));
  out.host = std::move(hp->host);
  out.port = hp->port;
  return out;
}

struct MqttClient::Impl {
  mosquitto* mosq = nullptr;
  EventHandler handler;
  bool disconnected_cleanly = false;

  ~Impl() {
    if (mosq == nullptr) return;
    if (!disconnected_cleanly) {
      // Drop the socket without DISCONNECT so the broker treats it as a lost connection.
      mosquitto_loop_stop(mosq, true);
    } else {
      mosquitto_loop_stop(mosq, false);
    }
    mosquitto_destroy(mosq);
  }

  static void OnConnect(mosquitto*, void* self, int rc) {
    auto* impl = static_cast<Impl*>(self);
    if (rc == 0) {
      impl->handler(Event{Event::Kind::kConnected, 0, "connected", {}, {}, 0});
    } else {
      impl->handler(
          Event{Event::Kind::kConnectFailed, rc, mosquitto_connack_string(rc), {}, {}, 0});
    }
  }
  static void OnDisconnect(mosquitto*, void* self, int rc) {
    auto* impl = static_cast<Impl*>(self);
    impl->handler(Event{Event::Kind::kDisconnected,
                        rc,
                        rc == 0 ? "disconnected" : mosquitto_strerror(rc),
                        {},
                        {},
                        0});
  }
  static void OnMessage(mosquitto*, void* self, const mosquitto_message* m) {
    auto* impl = static_cast<Impl*>(self);
    Event e{Event::Kind::kMessage, 0, {}, m->topic ? m->topic : "", {}, m->mid};
    if (m->payload != nullptr && m->payloadlen > 0) {
      e.payload.assign(static_cast<const char*>(m->payload), static_cast<size_t>(m->payloadlen));
    }
    impl->handler(std::move(e));
  }
  static void OnSubscribe(mosquitto*, void* self, int mid, int qos_count, const int* granted) {
    auto* impl = static_cast<Impl*>(self);
    // A granted QoS of 0x80 (MQTT 3.1.1) or a reason code >= 0x80 (MQTT 5) is a refusal.
    int refused = 0;
    for (int i = 0; i < qos_count && granted != nullptr; ++i) {
      if (granted[i] >= 0x80 && refused == 0) refused = granted[i];
    }
    impl->handler(Event{Event::Kind::kSubscribed, refused, {}, {}, {}, mid});
  }
  static void OnPublish(mosquitto*, void* self, int mid) {
    auto* impl = static_cast<Impl*>(self);
    impl->handler(Event{Event::Kind::kPublished, 0, {}, {}, {}, mid});
  }
};

MqttClient::MqttClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MqttClient::~MqttClient() = default;

Result<std::unique_ptr<MqttClient>> MqttClient::Connect(const ClientOptions& options,
                                                        const std::optional<WillMessage>& will,
                                                        EventHandler handler) {
  InitLibraryOnce();
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  impl->mosq = mosquitto_new(options.client_id.c_str(), /*clean_session=*/true, impl.get());
  if (impl->mosq == nullptr) return UnavailableError("mosquitto_new failed (out of memory?)");
  mosquitto* mosq = impl->mosq;
  mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  // Births and commands are small and latency matters more than packet count: no Nagle.
  mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_max_inflight_messages_set(mosq, static_cast<unsigned>(options.max_inflight));
  mosquitto_connect_callback_set(mosq, &Impl::OnConnect);
  mosquitto_disconnect_callback_set(mosq, &Impl::OnDisconnect);
  mosquitto_message_callback_set(mosq, &Impl::OnMessage);
  mosquitto_publish_callback_set(mosq, &Impl::OnPublish);
  mosquitto_subscribe_callback_set(mosq, &Impl::OnSubscribe);
  if (!options.username.empty()) {
    int rc =
        mosquitto_username_pw_set(mosq, options.username.c_str(),
                                  options.password.empty() ? nullptr : options.password.c_str());
    if (rc != MOSQ_ERR_SUCCESS) return InvalidArgumentError(mosquitto_strerror(rc));
  }
  if (options.broker.tls) {
    int rc =
        mosquitto_tls_set(mosq, options.ca_file.empty() ? nullptr : options.ca_file.c_str(),
                          options.ca_file.empty() ? "/etc/ssl/certs" : nullptr,
                          options.cert_file.empty() ? nullptr : options.cert_file.c_str(),
                          options.key_file.empty() ? nullptr : options.key_file.c_str(), nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
      return InvalidArgumentError(fmt::format("TLS setup: {}", mosquitto_strerror(rc)));
    }
  }
  if (will) {
    int rc = mosquitto_will_set(mosq, will->topic.c_str(), static_cast<int>(will->payload.size()),
                                will->payload.data(), will->qos, will->retain);
    if (rc != MOSQ_ERR_SUCCESS) {
      return InvalidArgumentError(fmt::format("Will: {}", mosquitto_strerror(rc)));
    }
  }
  // Reconnecting is the owner's job (with a new client and a new Will).
  mosquitto_reconnect_delay_set(mosq, 3600, 3600, false);
  int rc = mosquitto_connect_async(mosq, options.broker.host.c_str(), options.broker.port,
                                   options.keepalive_s);
  if (rc != MOSQ_ERR_SUCCESS) {
    const std::string why = rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc);
    return UnavailableError(
        fmt::format("connect to {}:{}: {}", options.broker.host, options.broker.port, why));
  }
  rc = mosquitto_loop_start(mosq);
  if (rc != MOSQ_ERR_SUCCESS) {
    return UnavailableError(fmt::format("network thread: {}", mosquitto_strerror(rc)));
  }
  return std::unique_ptr<MqttClient>(new MqttClient(std::move(impl)));
}

ConnectFn RealConnect() {
  return [](const ClientOptions& options, const std::optional<WillMessage>& will,
            EventHandler handler) -> Result<std::unique_ptr<Connection>> {
    KILN_ASSIGN_OR_RETURN(auto client, MqttClient::Connect(options, will, std::move(handler)));
    return std::unique_ptr<Connection>(std::move(client));
  };
}

Result<int> MqttClient::Publish(std::string_view topic, std::string_view payload, int qos,
                                bool retain) {
  int mid = 0;
  const std::string t(topic);
  int rc = mosquitto_publish(impl_->mosq, &mid, t.c_str(), static_cast<int>(payload.size()),
                             payload.data(), qos, retain);
  if (rc == MOSQ_ERR_SUCCESS) return mid;
  if (rc == MOSQ_ERR_NOMEM || rc == MOSQ_ERR_OVERSIZE_PACKET) {
    return ResourceExhaustedError(fmt::format("publish {}: {}", topic, mosquitto_strerror(rc)));
  }
  return UnavailableError(fmt::format("publish {}: {}", topic, mosquitto_strerror(rc)));
}

Result<int> MqttClient::Subscribe(std::string_view topic_filter, int qos) {
  const std::string t(topic_filter);
  int mid = 0;
  int rc = mosquitto_subscribe(impl_->mosq, &mid, t.c_str(), qos);
  if (rc != MOSQ_ERR_SUCCESS) {
    return UnavailableError(fmt::format("subscribe {}: {}", topic_filter, mosquitto_strerror(rc)));
  }
  return mid;
}

Status MqttClient::Disconnect() {
  impl_->disconnected_cleanly = true;
  int rc = mosquitto_disconnect(impl_->mosq);
  if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN) {
    return UnavailableError(fmt::format("disconnect: {}", mosquitto_strerror(rc)));
  }
  return OkStatus();
}

}  // namespace kiln::mqtt
