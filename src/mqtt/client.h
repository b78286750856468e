#pragma once
// MqttClient: one MQTT 3.1.1 connection over libmosquitto (the only place that includes it).
// Each instance is one connection attempt with its own Will: to reconnect, destroy it and
// create a new one, so nothing unacknowledged from an old connection is ever re-sent and
// every CONNECT can carry a fresh Will (Sparkplug's bdSeq).
//
// Thread-safe: Publish/Subscribe may be called from any thread. Events are delivered on
// libmosquitto's network thread to the handler given at creation; keep the handler short
// (hand events to your own loop).
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace kiln::mqtt {

struct BrokerAddress {
  std::string host;
  uint16_t port = 1883;
  bool tls = false;
};

// Parses "mqtt://host[:port]" (default 1883) or "mqtts://host[:port]" (default 8883).
// Errors: InvalidArgument naming what is wrong.
Result<BrokerAddress> ParseBrokerUrl(std::string_view url);

struct ClientOptions {
  BrokerAddress broker;
  std::string client_id;
  int keepalive_s = 30;
  std::string username;  // empty: none
  std::string password;
  std::string ca_file;    // TLS: CA bundle that signs the broker's certificate
  std::string cert_file;  // TLS client certificate (mTLS), optional
  std::string key_file;
  int max_inflight = 1000;  // QoS 1/2 messages in flight
};

struct WillMessage {
  std::string topic;
  std::string payload;
  int qos = 1;
  bool retain = false;
};

struct Event {
  enum class Kind { kConnected, kConnectFailed, kDisconnected, kMessage, kPublished, kSubscribed };
  Kind kind;
  int code = 0;         // CONNACK / disconnect reason, 0 = clean; kSubscribed: 0 = granted,
                        // else the broker's refusal (0x80, or an MQTT 5 reason code)
  std::string detail;   // human-readable reason
  std::string topic;    // kMessage
  std::string payload;  // kMessage
  int message_id = 0;   // kPublished: id returned by Publish; kSubscribed: by Subscribe
};

using EventHandler = std::function<void(Event)>;

// One MQTT connection as the rest of Kiln uses it; MqttClient is the real one, tests supply
// fakes (see ConnectFn).
class Connection {
 public:
  virtual ~Connection() = default;
  // Returns the message id (reported by a kPublished event once written, or acknowledged
  // for QoS > 0). Errors: Unavailable when not connected, ResourceExhausted when the client
  // cannot queue more.
  virtual Result<int> Publish(std::string_view topic, std::string_view payload, int qos,
                              bool retain) = 0;
  // Sends SUBSCRIBE; a kSubscribed event with the returned message id follows the SUBACK.
  virtual Result<int> Subscribe(std::string_view topic_filter, int qos) = 0;
  // Sends DISCONNECT (the broker discards the Will). Destroying a Connection without it
  // drops the link as if it were lost (the broker publishes the Will).
  virtual Status Disconnect() = 0;
};

// Opens a connection: MqttClient::Connect, or a fake in tests.
using ConnectFn = std::function<Result<std::unique_ptr<Connection>>(
    const ClientOptions& options, const std::optional<WillMessage>& will, EventHandler handler)>;

// The ConnectFn that opens real MqttClients.
ConnectFn RealConnect();

class MqttClient final : public Connection {
 public:
  // Creates the client and starts connecting in the background (non-blocking). A
  // kConnected or kConnectFailed event follows. Errors: InvalidArgument for bad options
  // (e.g. unreadable TLS files), Unavailable when the connection cannot even be started.
  static Result<std::unique_ptr<MqttClient>> Connect(const ClientOptions& options,
                                                     const std::optional<WillMessage>& will,
                                                     EventHandler handler);
  // Stops the network thread without a DISCONNECT if Disconnect() was not called (as if
  // the connection were lost: the broker publishes the Will).
  ~MqttClient() override;
  MqttClient(const MqttClient&) = delete;
  MqttClient& operator=(const MqttClient&) = delete;

  Result<int> Publish(std::string_view topic, std::string_view payload, int qos,
                      bool retain) override;
  Result<int> Subscribe(std::string_view topic_filter, int qos) override;
  // Sends DISCONNECT and stops the network thread once it has gone out.
  Status Disconnect() override;

 private:
  struct Impl;
  explicit MqttClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::mqtt
