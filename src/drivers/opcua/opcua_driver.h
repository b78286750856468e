#pragma once
// OpcUaDriver: the tags of one OPC UA server as a drivers::Driver (docs/ARCHITECTURE.md, "OPC UA
// driver"). Tags in mode "subscribe" are monitored items of one subscription; tags in mode
// "poll" are read every poll period. Each value's StatusCode becomes the sample's quality
// unchanged and its SourceTimestamp (else the ServerTimestamp, else the local clock) the
// sample's time.
//
// Connecting reads every tag once, so each has a value (or the node's Bad status, e.g.
// BadNodeIdUnknown) at once, and subscribes. Recovery: a lost connection, a protocol error or a
// subscription that stops answering (no data and no keep-alive for two keep-alive periods plus
// the timeout; the connection is then dropped without a goodbye) fails ReadAll(), so the device
// loop marks the tags Bad and reconnects with backoff; the reconnect first tries to transfer
// the subscription to the new session (and republishes the notifications the server still
// holds; the values it queued meanwhile and then the current ones follow, so nothing is read),
// else creates it again (a server restart; an anonymous session on SecurityPolicy None, which
// servers may refuse to transfer). Sequence gaps are filled with
// Republish while the server keeps the messages. Samples taken before a failure are returned;
// the failure comes with the next ReadAll().
//
// Writes read the node's built-in type (from the last value seen, or a Read) and write the
// value as that type, then read it back.
//
// Single-threaded: owned by one device thread.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "contract/sample.h"
#include "core/clock.h"
#include "core/log.h"
#include "drivers/driver.h"
#include "drivers/opcua/client.h"
#include "drivers/opcua/opcua_config.h"

namespace kiln::drivers::opcua {

struct OpcUaDriverOptions {
  std::string device_id;  // for messages
  size_t outstanding_publishes = 3;
  std::chrono::milliseconds wait{100};         // longest wait for notifications in one ReadAll()
  std::chrono::milliseconds keep_alive{2000};  // requested keep-alive period
  // Read and CreateMonitoredItems batches; halved while the server answers
  // BadTooManyOperations (its MaxNodesPerRead or MaxMonitoredItemsPerCall is lower).
  size_t max_nodes_per_request = 1000;
};

class OpcUaDriver final : public Driver {
 public:
  // Errors: InvalidArgument for an invalid endpoint or credentials (see Client::Create).
  static Result<std::unique_ptr<OpcUaDriver>> Create(OpcUaDeviceConfig config,
                                                     OpcUaDriverOptions options, const Clock& clock,
                                                     Logger logger);
  ~OpcUaDriver() override;

  Result<std::vector<contract::Sample>> ReadAll() override;
  Result<contract::Value> WriteAndReadBack(contract::TagId id,
                                           const contract::Value& value) override;
  bool pushes_changes() const override { return !subscribed_.empty(); }
  void Disconnect() override;
  uint64_t requests_sent() const override;

  // For tests and diagnostics.
  std::optional<uint32_t> subscription_id() const { return subscription_id_; }
  uint64_t subscriptions_transferred() const { return transferred_; }
  uint64_t notifications_republished() const { return republished_; }

 private:
  OpcUaDriver(OpcUaDeviceConfig config, OpcUaDriverOptions options, std::unique_ptr<Client> client,
              const Clock& clock, Logger logger);

  // ReadAll's work: what it took goes to `out` even when it fails.
  Status Take(std::vector<contract::Sample>& out);
  // Connects, transfers or creates the subscription and reads every tag, into `out`.
  Status Connect(std::vector<contract::Sample>& out);
  // After a refused batch: halves the batch when the refusal is BadTooManyOperations and the
  // connection is up; returns whether to retry.
  bool ShrinkBatch(const Status& failure);
  // Reads the tags of `indexes` into `out`, in batches.
  Status ReadTags(const std::vector<size_t>& indexes, std::vector<contract::Sample>& out);
  // Transfers the previous session's subscription; false when the server no longer has it.
  Result<bool> TransferSubscription(std::vector<contract::Sample>& out);
  Status CreateSubscription(std::vector<contract::Sample>& out);
  // Keeps the Publish pipeline full and takes what arrives until the deadline (with
  // `until_data`: until the first response with notifications, keep-alives do not end it).
  Status PumpPublish(MonoTime deadline, std::vector<contract::Sample>& out,
                     bool until_data = false);
  // Takes the notifications of one message (and republishes the messages before it that were
  // missed); queues its acknowledgement.
  Status TakeMessage(uint32_t subscription_id, const NotificationMessage& message,
                     std::vector<contract::Sample>& out);
  void TakeNotifications(const NotificationMessage& message, std::vector<contract::Sample>& out);
  contract::Sample ToSample(size_t index, const DataValue& value);
  // Tag `index` with no value and `status` (a refusal of the server), at the clock's time.
  contract::Sample BadSample(size_t index, contract::Quality status);
  // The built-in type to write tag `index` as: the last one seen, else read.
  Result<BuiltinType> WriteType(size_t index);

  const OpcUaDeviceConfig config_;
  const OpcUaDriverOptions options_;
  std::unique_ptr<Client> client_;
  const Clock& clock_;
  Logger log_;
  LogRateLimiter log_limiter_;

  std::vector<size_t> subscribed_;       // tag indexes in mode subscribe
  std::vector<size_t> polled_;           // tag indexes in mode poll
  std::vector<BuiltinType> seen_types_;  // per tag: the built-in type of its last value
  MonoTime next_poll_{};
  size_t batch_ = 0;  // nodes per Read or CreateMonitoredItems

  // The subscription, kept across connections so a reconnect can transfer it.
  std::optional<uint32_t> subscription_id_;
  double publishing_interval_ms_ = 0;  // asked for
  double revised_publishing_ms_ = 0;   // granted
  std::chrono::milliseconds keep_alive_timeout_{0};
  size_t publish_target_ = 0;  // Publish requests to keep outstanding
  // BadNoSubscription answers since the last good Publish response or new subscription.
  size_t no_subscription_answers_ = 0;
  std::optional<Status> deferred_error_;  // for the next ReadAll()
  // Subscribed tags the server refused to monitor, with its status: their quality after a
  // transfer too.
  std::vector<std::pair<size_t, contract::Quality>> unmonitored_;
  std::optional<uint32_t> last_sequence_;  // of the last data message taken
  std::vector<SubscriptionAcknowledgement> acks_;
  MonoTime last_publish_{};  // the last Publish response (data or keep-alive)
  uint64_t transferred_ = 0;
  uint64_t republished_ = 0;
};

}  // namespace kiln::drivers::opcua
