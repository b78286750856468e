#include "drivers/opcua/opcua_driver.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>

#include "drivers/opcua/internal/status_codes.h"

namespace kiln::drivers::opcua {

using contract::Sample;
using contract::Value;
using contract::ValueType;

namespace {

// Notifications of messages republished after a gap: at most this many messages are asked for.
constexpr uint32_t kMaxRepublish = 100;

std::string StatusName(contract::Quality q) { return internal::UaStatusCodeName(q); }

// Sequence numbers wrap from 4294967295 to 1 (0 is never used, OPC 10000-4 §7.38): compare as
// serial numbers.
uint32_t NextSequence(uint32_t s) { return s == UINT32_MAX ? 1 : s + 1; }
bool SequenceAfter(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }

// The value of `v` as a tag of `type` publishes it, or the quality that says why it cannot:
// BadTypeMismatch for an array, a structure or text for a number; BadOutOfRange for a number
// beyond the tag type's range (never clamped into it). Integers convert exactly; a fraction
// rounds for an integer tag.
std::variant<Value, contract::Quality> ConvertValue(const Variant& v, ValueType type) {
  std::optional<Value> value = ToContractValue(v);
  if (!value) return contract::status::kBadTypeMismatch;
  if (value->type() == type || value->is_null()) return *value;
  if (type == ValueType::kString) return Value(value->ToString());
  const std::optional<double> d = value->AsDouble();
  if (!d || value->type() == ValueType::kString) return contract::status::kBadTypeMismatch;
  if (contract::IsIntegerType(type)) {
    if (std::optional<Value> exact = value->ToExactInteger(type)) return *exact;
    const auto [lo, hi] = contract::IntegerRange(type);
    const double r = std::nearbyint(*d);
    if (!(r >= lo && r < hi)) return contract::status::kBadOutOfRange;
  } else if (type == ValueType::kFloat && std::isfinite(*d) &&
             std::fabs(*d) > std::numeric_limits<float>::max()) {
    return contract::status::kBadOutOfRange;
  }
  return Value::FromDouble(*d, type);
}

// The tag type of an integer built-in type, or nullopt.
std::optional<ValueType> IntegerValueType(BuiltinType type) {
  switch (type) {
    case BuiltinType::kSByte:
      return ValueType::kInt8;
    case BuiltinType::kByte:
      return ValueType::kUInt8;
    case BuiltinType::kInt16:
      return ValueType::kInt16;
    case BuiltinType::kUInt16:
      return ValueType::kUInt16;
    case BuiltinType::kInt32:
      return ValueType::kInt32;
    case BuiltinType::kUInt32:
      return ValueType::kUInt32;
    case BuiltinType::kInt64:
      return ValueType::kInt64;
    case BuiltinType::kUInt64:
      return ValueType::kUInt64;
    default:
      return std::nullopt;
  }
}

// `value` as a Variant of the node's built-in type.
Result<Variant> ToVariant(const Value& value, BuiltinType type) {
  if (type == BuiltinType::kString) {
    if (value.type() != ValueType::kString) {
      return InvalidArgumentError("the node holds a String; write a string");
    }
    return FromContractValue(value);
  }
  std::optional<double> d = value.AsDouble();
  if (!d) {
    return InvalidArgumentError(fmt::format("a {} cannot be written to a {} node",
                                            contract::ValueTypeName(value.type()),
                                            BuiltinTypeName(type)));
  }
  if (std::optional<ValueType> integer = IntegerValueType(type)) {
    // Exactly (2^53 + 1 stays), and only what fits: no rounding, no clamping.
    std::optional<Value> exact = value.ToExactInteger(*integer);
    if (!exact) {
      return InvalidArgumentError(fmt::format("{} does not fit the node's type {}",
                                              value.ToString(), BuiltinTypeName(type)));
    }
    return FromContractValue(*exact);
  }
  switch (type) {
    case BuiltinType::kBoolean:
      if (*d != 0 && *d != 1) {
        return InvalidArgumentError(
            fmt::format("a Boolean node takes true/false or 1/0, not {}", *d));
      }
      return Variant::Scalar(*d != 0);
    case BuiltinType::kFloat:
      if (std::isfinite(*d) && std::fabs(*d) > std::numeric_limits<float>::max()) {
        return InvalidArgumentError(fmt::format("{} does not fit the node's type Float", *d));
      }
      return Variant::Scalar(static_cast<float>(*d));
    case BuiltinType::kDouble:
      return Variant::Scalar(*d);
    default:
      return FailedPreconditionError(
          fmt::format("a {} node cannot be written by Kiln", BuiltinTypeName(type)));
  }
}

}  // namespace

Result<std::unique_ptr<OpcUaDriver>> OpcUaDriver::Create(OpcUaDeviceConfig config,
                                                         OpcUaDriverOptions options,
                                                         const Clock& clock, Logger logger) {
  ClientOptions client_options;
  client_options.endpoint = config.endpoint;
  client_options.username = config.username;
  client_options.password = config.password;
  client_options.connect_timeout = config.timeout;
  client_options.request_timeout = config.timeout;
  client_options.session_name = "kiln " + options.device_id;
  // Poll-only devices are silent between polls: the session must outlive that silence.
  client_options.requested_session_timeout_ms =
      std::max(60000.0, 3.0 * static_cast<double>(config.poll.count()));
  KILN_ASSIGN_OR_RETURN(std::unique_ptr<Client> client,
                        Client::Create(client_options, clock, logger));
  if (options.outstanding_publishes == 0) options.outstanding_publishes = 1;
  if (options.max_nodes_per_request == 0) options.max_nodes_per_request = 1;
  return std::unique_ptr<OpcUaDriver>(new OpcUaDriver(std::move(config), std::move(options),
                                                      std::move(client), clock, std::move(logger)));
}

OpcUaDriver::OpcUaDriver(OpcUaDeviceConfig config, OpcUaDriverOptions options,
                         std::unique_ptr<Client> client, const Clock& clock, Logger logger)
    : config_(std::move(config)),
      options_(std::move(options)),
      client_(std::move(client)),
      clock_(clock),
      log_(std::move(logger)),
      log_limiter_(clock, std::chrono::seconds(60), 5),
      seen_types_(config_.tags.size(), BuiltinType::kNull) {
  for (size_t i = 0; i < config_.tags.size(); ++i) {
    (config_.tags[i].mode == TagMode::kSubscribe ? subscribed_ : polled_).push_back(i);
  }
  std::optional<double> fastest;
  for (size_t i : subscribed_) {
    const double ms = static_cast<double>(config_.tags[i].sampling.count());
    fastest = std::min(fastest.value_or(ms), ms);
  }
  publishing_interval_ms_ = config_.publishing.count() > 0
                                ? static_cast<double>(config_.publishing.count())
                                : std::max(fastest.value_or(1000.0), 10.0);
  publish_target_ = options_.outstanding_publishes;
  batch_ = options_.max_nodes_per_request;
}

OpcUaDriver::~OpcUaDriver() { Disconnect(); }

uint64_t OpcUaDriver::requests_sent() const { return client_->requests_sent(); }

void OpcUaDriver::Disconnect() {
  // A connection still open ends with CloseSession, which deletes the subscription. A broken
  // one leaves the session and its subscription at the server until they time out: the next
  // Connect() tries to transfer the subscription.
  if (client_->connected()) subscription_id_.reset();
  client_->Close().IgnoreError();
  acks_.clear();
  deferred_error_.reset();  // about the connection just closed
}

Sample OpcUaDriver::BadSample(size_t index, contract::Quality status) {
  DataValue bad;
  bad.status = status;
  return ToSample(index, bad);
}

Sample OpcUaDriver::ToSample(size_t index, const DataValue& dv) {
  const OpcUaTag& tag = config_.tags[index];
  Sample s;
  s.tag = tag.id;
  s.quality = dv.quality();
  if (dv.source_timestamp && !dv.source_timestamp->is_min()) {
    s.source_time = dv.source_timestamp->ToTimestamp();
  } else if (dv.server_timestamp && !dv.server_timestamp->is_min()) {
    s.source_time = dv.server_timestamp->ToTimestamp();
  } else {
    s.source_time = clock_.Now();
  }
  if (dv.value && !dv.value->is_null()) {
    if (!dv.value->is_array) seen_types_[index] = dv.value->type;
    // OPC 10000-4 §7.7.1: the value of a Bad DataValue is not usable; it goes out as null, as
    // for every driver. Uncertain values keep theirs.
    if (s.quality.IsBad()) return s;
    std::variant<Value, contract::Quality> v = ConvertValue(*dv.value, tag.type);
    if (Value* value = std::get_if<Value>(&v)) {
      s.value = std::move(*value);
    } else {
      s.quality = std::get<contract::Quality>(v);
      KILN_LOG_RATE_LIMITED(log_, log_limiter_, LogLevel::kWarning, tag.name,
                            "device {}: tag {} ({}): a {}{} value cannot be published as {}: {}",
                            options_.device_id, tag.name, tag.node_id.ToString(),
                            BuiltinTypeName(dv.value->type), dv.value->is_array ? " array" : "",
                            contract::ValueTypeName(tag.type), StatusName(s.quality));
    }
  }
  return s;
}

bool OpcUaDriver::ShrinkBatch(const Status& failure) {
  if (batch_ <= 1 || !client_->connected() ||
      !failure.message().starts_with("BadTooManyOperations")) {
    return false;
  }
  const size_t before = batch_;
  batch_ = std::max<size_t>(1, batch_ / 2);
  log_.Warn("device {}: the server takes fewer than {} nodes per request ({}); sending {}",
            options_.device_id, before, failure.message(), batch_);
  return true;
}

Status OpcUaDriver::ReadTags(const std::vector<size_t>& indexes, std::vector<Sample>& out) {
  size_t start = 0;
  while (start < indexes.size()) {
    const size_t end = std::min(indexes.size(), start + batch_);
    std::vector<NodeId> nodes;
    nodes.reserve(end - start);
    for (size_t k = start; k < end; ++k) nodes.push_back(config_.tags[indexes[k]].node_id);
    Result<std::vector<DataValue>> values = client_->Read(nodes);
    if (!values.ok()) {
      if (ShrinkBatch(values.status())) continue;  // the same nodes, in smaller requests
      return values.status();
    }
    for (size_t k = start; k < end; ++k) out.push_back(ToSample(indexes[k], (*values)[k - start]));
    start = end;
  }
  return Status();
}

Status OpcUaDriver::Connect(std::vector<Sample>& out) {
  KILN_RETURN_IF_ERROR(client_->Connect());
  acks_.clear();
  publish_target_ = options_.outstanding_publishes;
  no_subscription_answers_ = 0;
  bool transferred = false;
  if (!subscribed_.empty()) {
    KILN_ASSIGN_OR_RETURN(transferred, TransferSubscription(out));
  }
  if (!transferred) {
    // Every tag read once: each has a value (or its node's Bad status) at once.
    std::vector<size_t> all(config_.tags.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    KILN_RETURN_IF_ERROR(ReadTags(all, out));
    next_poll_ = clock_.Monotonic() + config_.poll;
    if (!subscribed_.empty()) KILN_RETURN_IF_ERROR(CreateSubscription(out));
    last_publish_ = clock_.Monotonic();
    return Status();
  }
  // Transferred: the values the server queued during the outage come with the next Publish
  // responses, then each item's current value (the transfer asked for initial values). A Read
  // now would put the current values before the queued older ones; only polled tags are read.
  // Tags the subscription could not monitor get no updates: their refusal stands.
  for (const auto& [index, status] : unmonitored_) {
    out.push_back(BadSample(index, status));
  }
  KILN_RETURN_IF_ERROR(ReadTags(polled_, out));
  next_poll_ = clock_.Monotonic() + config_.poll;
  last_publish_ = clock_.Monotonic();
  // Take the queued values and the current ones before the device is reported online, so its
  // DBIRTH carries them: wait for Publish responses up to a few publishing intervals.
  const auto wait = std::chrono::milliseconds(static_cast<int64_t>(
      std::clamp(3 * revised_publishing_ms_, 200.0, static_cast<double>(config_.timeout.count()))));
  return PumpPublish(clock_.Monotonic() + wait, out, /*until_data=*/true);
}

Result<bool> OpcUaDriver::TransferSubscription(std::vector<Sample>& out) {
  if (!subscription_id_) return false;
  const uint32_t id = *subscription_id_;
  Result<std::vector<TransferResult>> results = client_->TransferSubscriptions({id}, true);
  if (!results.ok()) {
    if (!client_->connected()) return results.status();
    log_.Info("device {}: subscription {} not transferred ({}); creating a new one",
              options_.device_id, id, results.status().message());
    subscription_id_.reset();
    return false;
  }
  const TransferResult& r = (*results)[0];
  if (r.status_code.IsBad()) {
    log_.Info("device {}: subscription {} not transferred ({}); creating a new one",
              options_.device_id, id, StatusName(r.status_code));
    subscription_id_.reset();
    return false;
  }
  ++transferred_;
  log_.Info("device {}: subscription {} transferred to the new session", options_.device_id, id);
  // The messages the server still holds: those we took are acknowledged (the acks went with
  // the old session), the others republished, oldest first.
  std::vector<uint32_t> missed;
  for (uint32_t seq : r.available_sequence_numbers) {
    if (!last_sequence_ || SequenceAfter(seq, *last_sequence_)) {
      missed.push_back(seq);
    } else {
      acks_.push_back({id, seq});
    }
  }
  std::sort(missed.begin(), missed.end(),
            [&](uint32_t a, uint32_t b) { return SequenceAfter(b, a); });
  if (missed.size() > kMaxRepublish) {
    log_.Warn("device {}: {} notifications of subscription {} lost; republishing the last {}",
              options_.device_id, missed.size() - kMaxRepublish, id, kMaxRepublish);
    missed.erase(missed.begin(), missed.end() - kMaxRepublish);
  }
  for (uint32_t seq : missed) {
    Result<NotificationMessage> message = client_->Republish(id, seq);
    if (!message.ok()) {
      if (!client_->connected()) return message.status();
      continue;
    }
    ++republished_;
    TakeNotifications(*message, out);
    acks_.push_back({id, seq});
    last_sequence_ = seq;
  }
  return true;
}

Status OpcUaDriver::CreateSubscription(std::vector<Sample>& out) {
  // A keep-alive every options_.keep_alive at `interval_ms`, and a lifetime long enough for a
  // short outage to end in a transfer: a minute, at least 3 keep-alives.
  auto params_for = [&](double interval_ms) {
    SubscriptionParameters params;
    params.publishing_interval_ms = interval_ms;
    params.max_keep_alive_count = static_cast<uint32_t>(std::clamp(
        std::ceil(static_cast<double>(options_.keep_alive.count()) / interval_ms), 1.0, 1000.0));
    params.lifetime_count = static_cast<uint32_t>(
        std::clamp(std::ceil(60000.0 / interval_ms), 3.0 * params.max_keep_alive_count, 1e6));
    return params;
  };
  KILN_ASSIGN_OR_RETURN(CreateSubscriptionResponse sub,
                        client_->CreateSubscription(params_for(publishing_interval_ms_)));
  if (sub.revised_publishing_interval > 1.5 * publishing_interval_ms_ &&
      std::isfinite(sub.revised_publishing_interval)) {
    // The keep-alive count was meant for the interval asked for: at the server's slower one
    // the keep-alive (and so the detection of a silent link) would be that much later. Make
    // the subscription again, asking for the granted interval (no items exist yet).
    client_->DeleteSubscriptions({sub.subscription_id}).IgnoreError();
    if (!client_->connected()) return UnavailableError("the connection closed");
    const double granted = std::min(sub.revised_publishing_interval, 86400000.0);
    KILN_ASSIGN_OR_RETURN(sub, client_->CreateSubscription(params_for(granted)));
  }
  // Kept (for Publish and a later transfer) only once every item exists: a transfer of a
  // subscription whose items were never all created would leave tags without updates.
  subscription_id_.reset();
  last_sequence_.reset();
  // From the server: bounded before it becomes a duration (a day at most).
  const double revised = sub.revised_publishing_interval > 0
                             ? std::min(sub.revised_publishing_interval, 86400000.0)
                             : publishing_interval_ms_;
  const uint32_t keep_alives = std::max<uint32_t>(sub.revised_max_keep_alive_count, 1);
  revised_publishing_ms_ = revised;
  keep_alive_timeout_ =
      std::chrono::milliseconds(static_cast<int64_t>(2 * revised * keep_alives)) + config_.timeout;
  log_.Info("device {}: subscription {} (publishing every {} ms, keep-alive every {})",
            options_.device_id, sub.subscription_id, revised, keep_alives);

  auto make_item = [&](size_t index, bool with_filter) -> Result<MonitoredItemCreateRequest> {
    const OpcUaTag& tag = config_.tags[index];
    MonitoredItemCreateRequest item;
    item.item_to_monitor.node_id = tag.node_id;
    item.item_to_monitor.attribute_id = kAttributeValue;
    item.requested_parameters.client_handle = static_cast<uint32_t>(index);
    item.requested_parameters.sampling_interval = static_cast<double>(tag.sampling.count());
    item.requested_parameters.queue_size = tag.queue_size;
    item.requested_parameters.discard_oldest = true;
    if (with_filter) {
      DataChangeFilter filter;
      filter.trigger = DataChangeTrigger::kStatusValue;
      filter.deadband_type = DeadbandType::kAbsolute;
      filter.deadband_value = tag.deadband;
      KILN_ASSIGN_OR_RETURN(item.requested_parameters.filter, ToExtensionObject(filter));
    }
    return item;
  };
  // Creates the items of `indexes` in batches; returns the refused ones with their status.
  auto create = [&](const std::vector<size_t>& indexes,
                    bool filters) -> Result<std::vector<std::pair<size_t, contract::Quality>>> {
    std::vector<std::pair<size_t, contract::Quality>> refused;
    size_t start = 0;
    while (start < indexes.size()) {
      const size_t end = std::min(indexes.size(), start + batch_);
      std::vector<MonitoredItemCreateRequest> items;
      items.reserve(end - start);
      for (size_t k = start; k < end; ++k) {
        const size_t index = indexes[k];
        KILN_ASSIGN_OR_RETURN(MonitoredItemCreateRequest item,
                              make_item(index, filters && config_.tags[index].deadband > 0));
        items.push_back(std::move(item));
      }
      Result<std::vector<MonitoredItemCreateResult>> results =
          client_->CreateMonitoredItems(sub.subscription_id, std::move(items));
      if (!results.ok()) {
        if (ShrinkBatch(results.status())) continue;
        return results.status();
      }
      for (size_t k = start; k < end; ++k) {
        const contract::Quality status = (*results)[k - start].status_code;
        if (status.IsBad()) refused.emplace_back(indexes[k], status);
      }
      start = end;
    }
    return refused;
  };
  KILN_ASSIGN_OR_RETURN(auto refused, create(subscribed_, true));
  // A server may refuse the deadband (a Boolean or String node, BadFilterNotAllowed): such
  // items are monitored without it; the edge still applies the deadband.
  std::vector<size_t> retry;
  for (const auto& [index, status] : refused) {
    if (config_.tags[index].deadband > 0) {
      log_.Warn(
          "device {}: tag {} ({}): the server refused the deadband ({}); monitoring every "
          "change",
          options_.device_id, config_.tags[index].name, config_.tags[index].node_id.ToString(),
          StatusName(status));
      retry.push_back(index);
    }
  }
  if (!retry.empty()) {
    KILN_ASSIGN_OR_RETURN(auto again, create(retry, false));
    std::erase_if(refused, [&](const auto& r) { return config_.tags[r.first].deadband > 0; });
    refused.insert(refused.end(), again.begin(), again.end());
  }
  unmonitored_.clear();
  for (const auto& [index, status] : refused) {
    // No notifications will come for it: its status is the tag's quality (the initial Read
    // usually said the same, e.g. BadNodeIdUnknown).
    log_.Warn("device {}: tag {} ({}) cannot be monitored: {}", options_.device_id,
              config_.tags[index].name, config_.tags[index].node_id.ToString(), StatusName(status));
    unmonitored_.emplace_back(index, status);
    out.push_back(BadSample(index, status));
  }
  subscription_id_ = sub.subscription_id;
  no_subscription_answers_ = 0;
  return Status();
}

void OpcUaDriver::TakeNotifications(const NotificationMessage& message, std::vector<Sample>& out) {
  for (const ExtensionObject& data : message.notification_data) {
    Result<Notification> n = DecodeNotification(data);
    if (!n.ok()) {
      KILN_LOG_RATE_LIMITED(log_, log_limiter_, LogLevel::kWarning, "notification",
                            "device {}: undecodable notification: {}", options_.device_id,
                            n.status().message());
      continue;
    }
    if (const auto* change = std::get_if<DataChangeNotification>(&*n)) {
      for (const MonitoredItemNotification& item : change->monitored_items) {
        if (item.client_handle >= config_.tags.size()) continue;  // not one of ours
        out.push_back(ToSample(item.client_handle, item.value));
      }
    } else if (const auto* status = std::get_if<StatusChangeNotification>(&*n)) {
      // The server ended the subscription (e.g. BadTimeout): create it again.
      log_.Warn("device {}: subscription {} status {}", options_.device_id,
                subscription_id_.value_or(0), StatusName(status->status));
      if (status->status.IsBad()) subscription_id_.reset();
    }
  }
}

Status OpcUaDriver::TakeMessage(uint32_t subscription_id, const NotificationMessage& message,
                                std::vector<Sample>& out) {
  const uint32_t seq = message.sequence_number;
  if (last_sequence_ && SequenceAfter(seq, NextSequence(*last_sequence_))) {
    // Messages lost between the server and us: ask for them while the server keeps them (the
    // last kMaxRepublish at most).
    uint32_t first = NextSequence(*last_sequence_);
    const uint32_t gap = seq - first - (seq < first ? 1 : 0);  // 0 is skipped on wrapping
    if (gap > kMaxRepublish) {
      KILN_LOG_RATE_LIMITED(log_, log_limiter_, LogLevel::kWarning, "republish",
                            "device {}: {} notifications lost; republishing the last {}",
                            options_.device_id, gap - kMaxRepublish, kMaxRepublish);
      for (uint32_t skip = gap - kMaxRepublish; skip > 0; --skip) first = NextSequence(first);
    }
    for (uint32_t s = first; s != seq; s = NextSequence(s)) {
      Result<NotificationMessage> missed = client_->Republish(subscription_id, s);
      if (!missed.ok()) {
        if (!client_->connected()) return missed.status();
        KILN_LOG_RATE_LIMITED(log_, log_limiter_, LogLevel::kWarning, "republish",
                              "device {}: notification {} lost: {}", options_.device_id, s,
                              missed.status().message());
        continue;
      }
      ++republished_;
      TakeNotifications(*missed, out);
      acks_.push_back({subscription_id, s});
    }
  }
  TakeNotifications(message, out);
  acks_.push_back({subscription_id, seq});
  if (!last_sequence_ || SequenceAfter(seq, *last_sequence_)) last_sequence_ = seq;
  return Status();
}

Status OpcUaDriver::PumpPublish(MonoTime deadline, std::vector<Sample>& out, bool until_data) {
  while (true) {
    while (client_->outstanding_publishes() < publish_target_) {
      KILN_RETURN_IF_ERROR(client_->SendPublish(std::exchange(acks_, {})));
    }
    Result<std::optional<PublishResponse>> response = client_->ReceivePublish(deadline);
    if (!response.ok()) {
      if (!client_->connected()) return response.status();
      const std::string message(response.status().message());
      if (message.starts_with("BadTooManyPublishRequests")) {
        // The server holds fewer requests per session than we sent: keep that many.
        publish_target_ = std::max<size_t>(1, client_->outstanding_publishes());
        continue;
      }
      if (message.starts_with("BadNoSubscription") ||
          message.starts_with("BadSubscriptionIdInvalid")) {
        // Requests sent before a new subscription existed are answered so too: only when
        // more such answers came than requests were in flight is the subscription gone.
        if (++no_subscription_answers_ <= publish_target_) continue;
        log_.Warn("device {}: {}; subscribing again", options_.device_id, message);
        subscription_id_.reset();
        return CreateSubscription(out);
      }
      if (message.starts_with("BadTimeout")) continue;  // the request expired at the server
      return response.status();
    }
    if (!response->has_value()) break;
    const PublishResponse& r = **response;
    if (!subscription_id_ || r.subscription_id != *subscription_id_) continue;  // a stale one
    last_publish_ = clock_.Monotonic();
    no_subscription_answers_ = 0;
    const bool data = !r.notification_message.notification_data.empty();
    if (data) KILN_RETURN_IF_ERROR(TakeMessage(r.subscription_id, r.notification_message, out));
    if (!subscription_id_) return CreateSubscription(out);
    // Take what is already here, without waiting again (unless waiting for data).
    if (!until_data || data) deadline = clock_.Monotonic();
  }
  if (clock_.Monotonic() - last_publish_ > keep_alive_timeout_) {
    // The link or the server stopped answering: drop the connection without a goodbye, so
    // the session and its subscription stay at the server for a transfer.
    client_->Abort();
    return DeadlineExceededError(fmt::format(
        "no Publish response (data or keep-alive) from subscription {} for {} ms",
        subscription_id_.value_or(0),
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Monotonic() - last_publish_)
            .count()));
  }
  return Status();
}

Result<std::vector<Sample>> OpcUaDriver::ReadAll() {
  if (deferred_error_) return *std::exchange(deferred_error_, std::nullopt);
  std::vector<Sample> out;
  Status status = Take(out);
  if (status.ok()) return out;
  if (out.empty()) return status;
  // Samples taken before the failure are not lost (their messages may be acknowledged
  // already): they go out now, the failure with the next call.
  deferred_error_ = std::move(status);
  return out;
}

Status OpcUaDriver::Take(std::vector<Sample>& out) {
  const bool fresh = !client_->connected();
  if (fresh) {
    Status connected = Connect(out);
    if (!connected.ok()) {
      out.clear();  // a connect fails as a whole: no values from a half-made connection
      Disconnect();
      return connected;
    }
  }
  const MonoTime now = clock_.Monotonic();
  if (!polled_.empty() && now >= next_poll_) {
    KILN_RETURN_IF_ERROR(ReadTags(polled_, out));
    next_poll_ += config_.poll;
    if (next_poll_ <= now) next_poll_ = now + config_.poll;
  }
  if (!subscribed_.empty()) {
    if (!subscription_id_) KILN_RETURN_IF_ERROR(CreateSubscription(out));
    MonoTime deadline = fresh || !out.empty() ? now : now + options_.wait;
    if (!polled_.empty()) deadline = std::min(deadline, std::max(now, next_poll_));
    KILN_RETURN_IF_ERROR(PumpPublish(deadline, out));
  }
  return Status();
}

Result<BuiltinType> OpcUaDriver::WriteType(size_t index) {
  if (seen_types_[index] != BuiltinType::kNull) return seen_types_[index];
  const NodeId node = config_.tags[index].node_id;
  KILN_ASSIGN_OR_RETURN(std::vector<DataValue> values, client_->Read({&node, 1}));
  const DataValue& dv = values[0];
  if (dv.quality().IsBad() && (!dv.value || dv.value->is_null())) {
    return FailedPreconditionError(
        fmt::format("{}: cannot learn the node's type", StatusName(dv.quality())));
  }
  if (!dv.value || dv.value->is_null() || dv.value->is_array) {
    return FailedPreconditionError("the node holds no scalar value to learn its type from");
  }
  seen_types_[index] = dv.value->type;
  return dv.value->type;
}

Result<Value> OpcUaDriver::WriteAndReadBack(contract::TagId id, const Value& value) {
  auto it = std::find_if(config_.tags.begin(), config_.tags.end(),
                         [&](const OpcUaTag& t) { return t.id == id; });
  if (it == config_.tags.end()) return NotFoundError(fmt::format("no tag with id {}", id));
  const size_t index = static_cast<size_t>(it - config_.tags.begin());
  if (!client_->connected()) return UnavailableError("not connected");
  KILN_ASSIGN_OR_RETURN(BuiltinType type, WriteType(index));
  KILN_ASSIGN_OR_RETURN(Variant variant, ToVariant(value, type));
  KILN_ASSIGN_OR_RETURN(contract::Quality result, client_->Write(it->node_id, variant));
  if (result.IsBad()) {
    return Status(StatusCode::kAborted,
                  fmt::format("{}: the server refused the write", StatusName(result)));
  }
  KILN_ASSIGN_OR_RETURN(std::vector<DataValue> back, client_->Read({&it->node_id, 1}));
  const Sample s = ToSample(index, back[0]);
  if (s.quality.IsBad() || s.value.is_null()) {
    return Status(StatusCode::kAborted,
                  fmt::format("{}: written, but the read-back failed", StatusName(s.quality)));
  }
  return s.value;
}

}  // namespace kiln::drivers::opcua
