// OpcUaDriver against FakeUaServer with a scripted address space (UaSim): the initial Read, the
// subscription and its Publish pump, sequence gaps, reconnects with transfer, keep-alive
// supervision, poll-mode tags and writes. Time is a FakeClock; the server holds every
// PublishRequest until a test answers it, so what a ReadAll() sees is decided before the call.
#include "drivers/opcua/opcua_driver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "contract/quality.h"
#include "contract/sample.h"
#include "contract/value.h"
#include "core/clock.h"
#include "core/log.h"
#include "drivers/opcua/internal/status_codes.h"
#include "drivers/opcua/services.h"
#include "drivers/opcua/test/fake_ua_server.h"
#include "testing/status_matchers.h"

namespace kiln::drivers::opcua {
namespace {

using contract::Quality;
using contract::Sample;
using contract::TagId;
using contract::Value;
using contract::ValueType;
using ::kiln::drivers::opcua::testing::Answer;
using ::kiln::drivers::opcua::testing::Encode;
using ::kiln::drivers::opcua::testing::FakeUaServer;
using ::kiln::drivers::opcua::testing::Reply;
using ::kiln::testing::IsOk;
using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

namespace status = contract::status;

constexpr uint32_t kFirstSubscriptionId = 5;
constexpr double kRevisedPublishingMs = 100;
constexpr uint32_t kRevisedKeepAliveCount = 10;
constexpr std::chrono::milliseconds kTimeout{2000};
// The wait of a ReadAll() in tests where some calls get an answer already sent and others must
// wait for nothing: long enough for the first, short enough for the second.
constexpr std::chrono::milliseconds kShortWait{100};
// Two keep-alive periods plus the timeout (opcua_driver.h).
constexpr std::chrono::milliseconds kKeepAliveTimeout{
    2 * static_cast<int64_t>(kRevisedPublishingMs) * kRevisedKeepAliveCount + kTimeout.count()};

Quality Code(std::string_view name) { return internal::UaStatusCodeFromName(name).value(); }

NodeId Node(std::string name) { return NodeId(2, std::move(name)); }

const Timestamp kSourceTime = FromEpochMillis(1690000000123);
const Timestamp kServerTime = FromEpochMillis(1690000000456);

DataValue Dv(Variant v, std::optional<Timestamp> source = kSourceTime,
             std::optional<Timestamp> server = kServerTime,
             std::optional<Quality> quality = std::nullopt) {
  DataValue d;
  d.value = std::move(v);
  d.status = quality;
  if (source) d.source_timestamp = DateTime::FromTimestamp(*source);
  if (server) d.server_timestamp = DateTime::FromTimestamp(*server);
  return d;
}

Sample MakeSample(TagId tag, Value value, Quality quality, Timestamp time) {
  Sample s;
  s.tag = tag;
  s.value = std::move(value);
  s.quality = quality;
  s.source_time = time;
  return s;
}

// A small OPC UA server behind FakeUaServer's handler: variables with values, writes checked
// against the variable's built-in type, subscriptions numbered from 5 (revised to 100 ms and a
// keep-alive count of 10), PublishRequests held for the test to answer, Republish from the
// messages the test keeps, TransferSubscriptions answered as the test says. Records what it was
// asked. Thread-safe: the handler runs on the server thread.
class UaSim {
 public:
  void Set(const NodeId& node, DataValue value) {
    std::lock_guard lock(mu_);
    values_[node] = std::move(value);
  }
  // The result of every Write to `node` (the value is not changed when it is Bad).
  void SetWriteResult(const NodeId& node, Quality result) {
    std::lock_guard lock(mu_);
    write_results_[node] = result;
  }
  // A NotificationMessage Republish can return.
  void Keep(NotificationMessage message) {
    std::lock_guard lock(mu_);
    kept_[message.sequence_number] = std::move(message);
  }
  // Refuses Reads and CreateMonitoredItems of more than `n` nodes with BadTooManyOperations,
  // as a server with MaxNodesPerRead / MaxMonitoredItemsPerCall = n does.
  void SetMaxNodesPerCall(size_t n) {
    std::lock_guard lock(mu_);
    max_nodes_per_call_ = n;
  }
  // Refuses a monitored item of `node` that has a filter (BadFilterNotAllowed, as servers do for
  // a deadband on a Boolean or String node).
  void RefuseFilterOn(const NodeId& node) {
    std::lock_guard lock(mu_);
    refuse_filter_.push_back(node);
  }
  void SetTransferResult(TransferResult result) {
    std::lock_guard lock(mu_);
    transfer_result_ = std::move(result);
  }
  // Closes the connection instead of answering the next request of `encoding_id`.
  void CloseOnNext(uint32_t encoding_id) {
    std::lock_guard lock(mu_);
    close_on_ = encoding_id;
  }
  // The answer to the PublishRequests after the first `held`, instead of holding them.
  void SetPublishOverflow(int held, Quality result) {
    std::lock_guard lock(mu_);
    publish_limit_ = held;
    publish_overflow_ = result;
  }

  uint32_t subscription_id() const {
    std::lock_guard lock(mu_);
    return next_subscription_id_ - 1;
  }
  // The client handle of the monitored item last created for `node`.
  uint32_t HandleOf(const NodeId& node) const {
    std::lock_guard lock(mu_);
    auto it = handles_.find(node);
    EXPECT_NE(it, handles_.end()) << node.ToString() << " is not monitored";
    return it == handles_.end() ? 0xFFFFFFFF : it->second;
  }
  std::vector<std::vector<NodeId>> reads() const {
    std::lock_guard lock(mu_);
    return reads_;
  }
  std::vector<WriteValue> writes() const {
    std::lock_guard lock(mu_);
    return writes_;
  }
  std::vector<CreateSubscriptionRequest> subscriptions() const {
    std::lock_guard lock(mu_);
    return subscriptions_;
  }
  std::vector<CreateMonitoredItemsRequest> monitored() const {
    std::lock_guard lock(mu_);
    return monitored_;
  }
  std::vector<TransferSubscriptionsRequest> transfers() const {
    std::lock_guard lock(mu_);
    return transfers_;
  }
  std::vector<RepublishRequest> republishes() const {
    std::lock_guard lock(mu_);
    return republishes_;
  }
  // The acknowledgements of each PublishRequest received, in order.
  std::vector<std::vector<SubscriptionAcknowledgement>> acks() const {
    std::lock_guard lock(mu_);
    return acks_;
  }
  int publishes() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(acks_.size());
  }
  // Waits until `n` PublishRequests were received (or 10 s passed).
  bool WaitForPublishes(size_t n) const {
    std::unique_lock lock(mu_);
    return published_.wait_for(lock, std::chrono::seconds(10), [&] { return acks_.size() >= n; });
  }

  std::optional<Reply> Handle(uint32_t id, std::span<const uint8_t> body) {
    std::lock_guard lock(mu_);
    if (close_on_ == id) {
      close_on_.reset();
      return Reply::Close();
    }
    switch (id) {
      case ReadRequest::kBinaryEncodingId: {
        ReadRequest request = DecodeServiceMessage<ReadRequest>(body).value();
        if (request.nodes_to_read.size() > max_nodes_per_call_) {
          return Reply::Body(Fault(request.request_header, Quality(0x80100000)));
        }
        ReadResponse response;
        response.response_header = Answer(request.request_header);
        std::vector<NodeId> nodes;
        for (const ReadValueId& r : request.nodes_to_read) {
          nodes.push_back(r.node_id);
          auto it = values_.find(r.node_id);
          DataValue missing;
          missing.status = status::kBadNodeIdUnknown;
          response.results.push_back(it != values_.end() ? it->second : missing);
        }
        reads_.push_back(std::move(nodes));
        return Reply::Body(Encode(response));
      }
      case WriteRequest::kBinaryEncodingId: {
        WriteRequest request = DecodeServiceMessage<WriteRequest>(body).value();
        WriteResponse response;
        response.response_header = Answer(request.request_header);
        for (const WriteValue& w : request.nodes_to_write) {
          writes_.push_back(w);
          response.results.push_back(WriteOne(w));
        }
        return Reply::Body(Encode(response));
      }
      case CreateSubscriptionRequest::kBinaryEncodingId: {
        CreateSubscriptionRequest request =
            DecodeServiceMessage<CreateSubscriptionRequest>(body).value();
        subscriptions_.push_back(request);
        CreateSubscriptionResponse response;
        response.response_header = Answer(request.request_header);
        response.subscription_id = next_subscription_id_++;
        response.revised_publishing_interval = kRevisedPublishingMs;
        response.revised_lifetime_count = request.requested_lifetime_count;
        response.revised_max_keep_alive_count = kRevisedKeepAliveCount;
        return Reply::Body(Encode(response));
      }
      case CreateMonitoredItemsRequest::kBinaryEncodingId: {
        CreateMonitoredItemsRequest request =
            DecodeServiceMessage<CreateMonitoredItemsRequest>(body).value();
        if (request.items_to_create.size() > max_nodes_per_call_) {
          return Reply::Body(Fault(request.request_header, Quality(0x80100000)));
        }
        monitored_.push_back(request);
        CreateMonitoredItemsResponse response;
        response.response_header = Answer(request.request_header);
        for (const MonitoredItemCreateRequest& item : request.items_to_create) {
          MonitoredItemCreateResult result;
          const bool filter_refused =
              !item.requested_parameters.filter.is_empty() &&
              std::find(refuse_filter_.begin(), refuse_filter_.end(),
                        item.item_to_monitor.node_id) != refuse_filter_.end();
          if (values_.count(item.item_to_monitor.node_id) == 0) {
            result.status_code = status::kBadNodeIdUnknown;
          } else if (filter_refused) {
            result.status_code = Quality(0x80450000);  // BadFilterNotAllowed
          } else {
            handles_[item.item_to_monitor.node_id] = item.requested_parameters.client_handle;
            result.monitored_item_id = ++next_item_id_;
          }
          response.results.push_back(result);
        }
        return Reply::Body(Encode(response));
      }
      case PublishRequest::kBinaryEncodingId: {
        PublishRequest request = DecodeServiceMessage<PublishRequest>(body).value();
        acks_.push_back(request.subscription_acknowledgements);
        published_.notify_all();
        if (publish_limit_ >= 0 && ++publish_count_ > publish_limit_) {
          return Reply::Body(Fault(request.request_header, publish_overflow_));
        }
        return Reply::Hold();
      }
      case RepublishRequest::kBinaryEncodingId: {
        RepublishRequest request = DecodeServiceMessage<RepublishRequest>(body).value();
        republishes_.push_back(request);
        auto it = kept_.find(request.retransmit_sequence_number);
        if (it == kept_.end()) {
          return Reply::Body(Fault(request.request_header, Quality(0x807B0000)));
        }
        RepublishResponse response;
        response.response_header = Answer(request.request_header);
        response.notification_message = it->second;
        return Reply::Body(Encode(response));
      }
      case TransferSubscriptionsRequest::kBinaryEncodingId: {
        TransferSubscriptionsRequest request =
            DecodeServiceMessage<TransferSubscriptionsRequest>(body).value();
        transfers_.push_back(request);
        TransferSubscriptionsResponse response;
        response.response_header = Answer(request.request_header);
        response.results.assign(request.subscription_ids.size(), transfer_result_);
        return Reply::Body(Encode(response));
      }
      default:
        return std::nullopt;
    }
  }

 private:
  static std::vector<uint8_t> Fault(const RequestHeader& request, Quality result) {
    ServiceFault fault;
    fault.response_header = Answer(request, result);
    return Encode(fault);
  }

  Quality WriteOne(const WriteValue& w) {
    auto it = values_.find(w.node_id);
    if (it == values_.end()) return status::kBadNodeIdUnknown;
    if (auto r = write_results_.find(w.node_id); r != write_results_.end() && r->second.IsBad()) {
      return r->second;
    }
    const std::optional<Variant>& written = w.value.value;
    if (!written || !it->second.value || written->type != it->second.value->type) {
      return status::kBadTypeMismatch;
    }
    it->second.value = written;
    it->second.status.reset();
    return status::kGood;
  }

  mutable std::mutex mu_;
  mutable std::condition_variable published_;
  std::map<NodeId, DataValue> values_;
  std::map<NodeId, Quality> write_results_;
  std::map<uint32_t, NotificationMessage> kept_;
  std::map<NodeId, uint32_t> handles_;
  TransferResult transfer_result_{Code("BadSubscriptionIdInvalid"), {}};
  std::optional<uint32_t> close_on_;
  size_t max_nodes_per_call_ = SIZE_MAX;
  std::vector<NodeId> refuse_filter_;
  int publish_limit_ = -1;
  int publish_count_ = 0;
  Quality publish_overflow_;
  uint32_t next_subscription_id_ = kFirstSubscriptionId;
  uint32_t next_item_id_ = 0;
  std::vector<std::vector<NodeId>> reads_;
  std::vector<WriteValue> writes_;
  std::vector<CreateSubscriptionRequest> subscriptions_;
  std::vector<CreateMonitoredItemsRequest> monitored_;
  std::vector<TransferSubscriptionsRequest> transfers_;
  std::vector<RepublishRequest> republishes_;
  std::vector<std::vector<SubscriptionAcknowledgement>> acks_;
};

NotificationMessage DataMessage(uint32_t sequence, std::vector<MonitoredItemNotification> items) {
  NotificationMessage m;
  m.sequence_number = sequence;
  m.publish_time = DateTime::FromTimestamp(kServerTime);
  DataChangeNotification change;
  change.monitored_items = std::move(items);
  m.notification_data = {ToExtensionObject(change).value()};
  return m;
}

NotificationMessage KeepAlive(uint32_t next_sequence) {
  NotificationMessage m;
  m.sequence_number = next_sequence;
  m.publish_time = DateTime::FromTimestamp(kServerTime);
  return m;
}

const NodeId kTemperature = Node("Temperature");
const NodeId kPressure = Node("Pressure");
const NodeId kLevel = Node("Level");
const NodeId kBroken = Node("Broken");
const NodeId kMissing = Node("Missing");
const NodeId kSetpoint = Node("Setpoint");  // Int32

OpcUaTag Tag(TagId id, const NodeId& node, ValueType type = ValueType::kDouble,
             TagMode mode = TagMode::kSubscribe) {
  OpcUaTag t;
  t.id = id;
  t.name = std::get<std::string>(node.identifier);
  t.node_id = node;
  t.type = type;
  t.mode = mode;
  return t;
}

class OpcUaDriverTest : public ::testing::Test {
 protected:
  OpcUaDriverTest() : server_(ServerOptions(sim_)) {
    sim_.Set(kTemperature, Dv(Variant::Scalar(21.5)));
    sim_.Set(kPressure, Dv(Variant::Scalar(1.5), std::nullopt));
    sim_.Set(kLevel, Dv(Variant::Scalar(3.0), std::nullopt, std::nullopt));
    sim_.Set(kBroken,
             Dv(Variant::Scalar(0.0), kSourceTime, kServerTime, status::kBadSensorFailure));
    sim_.Set(kSetpoint, Dv(Variant::Scalar(int32_t{5})));
  }

  static FakeUaServer::Options ServerOptions(UaSim& sim) {
    FakeUaServer::Options options;
    options.handler = [&sim](uint32_t id, std::span<const uint8_t> body) {
      return sim.Handle(id, body);
    };
    return options;
  }

  // `wait` is the longest a ReadAll() waits for notifications: long where an answer is already
  // on its way (it returns as soon as one came), short where none can come.
  std::unique_ptr<OpcUaDriver> MakeDriver(
      std::vector<OpcUaTag> tags, std::chrono::milliseconds wait = std::chrono::seconds(5),
      std::chrono::milliseconds poll = std::chrono::seconds(1)) {
    OpcUaDeviceConfig config;
    config.endpoint = server_.endpoint();
    config.timeout = kTimeout;
    config.poll = poll;
    config.tags = std::move(tags);
    OpcUaDriverOptions options;
    options.device_id = "plc";
    options.wait = wait;
    Result<std::unique_ptr<OpcUaDriver>> driver =
        OpcUaDriver::Create(std::move(config), options, clock_, Logger(sink_, "opcua"));
    EXPECT_THAT(driver.status(), IsOk());
    return driver.ok() ? std::move(*driver) : nullptr;
  }

  // Answers the oldest held PublishRequest with `message` (of `subscription`, default: the
  // current one).
  void Publish(NotificationMessage message, std::optional<uint32_t> subscription = std::nullopt) {
    ASSERT_TRUE(server_.WaitForHeld(1));
    const uint32_t id = subscription.value_or(sim_.subscription_id());
    ASSERT_TRUE(server_.AnswerHeld(0, [&](const FakeUaServer::HeldRequest& held) {
      PublishRequest request = DecodeServiceMessage<PublishRequest>(held.body).value();
      PublishResponse response;
      response.response_header = Answer(request.request_header);
      response.subscription_id = id;
      response.notification_message = message;
      response.results.assign(request.subscription_acknowledgements.size(), status::kGood);
      return Encode(response);
    }));
  }

  MonitoredItemNotification Item(const NodeId& node, DataValue value) {
    return {sim_.HandleOf(node), std::move(value)};
  }

  // Connects with a first ReadAll() and waits until the server holds the Publish pipeline.
  void Start(OpcUaDriver& driver, size_t expected_samples) {
    Result<std::vector<Sample>> first = driver.ReadAll();
    ASSERT_THAT(first.status(), IsOk());
    ASSERT_THAT(*first, SizeIs(expected_samples));
    ASSERT_TRUE(server_.WaitForHeld(3));
  }

  FakeClock clock_;
  NullSink sink_;
  UaSim sim_;  // outlives the server thread
  FakeUaServer server_;
};

TEST_F(OpcUaDriverTest, InitialReadGivesOneSamplePerTagWithStatusAndTimestamps) {
  std::unique_ptr<OpcUaDriver> driver =
      MakeDriver({Tag(10, kTemperature), Tag(11, kPressure), Tag(12, kLevel), Tag(13, kBroken)});
  ASSERT_NE(driver, nullptr);
  EXPECT_TRUE(driver->pushes_changes());
  Result<std::vector<Sample>> samples = driver->ReadAll();
  ASSERT_THAT(samples.status(), IsOk());
  EXPECT_THAT(*samples,
              ElementsAre(MakeSample(10, Value(21.5), status::kGood, kSourceTime),
                          MakeSample(11, Value(1.5), status::kGood, kServerTime),
                          MakeSample(12, Value(3.0), status::kGood, clock_.Now()),
                          MakeSample(13, Value(), status::kBadSensorFailure, kSourceTime)));
  // One Read of every tag, then the subscription with one monitored item per tag.
  EXPECT_THAT(sim_.reads(), ElementsAre(ElementsAre(kTemperature, kPressure, kLevel, kBroken)));
  ASSERT_THAT(sim_.subscriptions(), SizeIs(1));
  ASSERT_THAT(sim_.monitored(), SizeIs(1));
  EXPECT_EQ(sim_.monitored()[0].subscription_id, kFirstSubscriptionId);
  EXPECT_THAT(sim_.monitored()[0].items_to_create, SizeIs(4));
  EXPECT_EQ(driver->subscription_id(), kFirstSubscriptionId);
  // Three PublishRequests are kept at the server.
  ASSERT_TRUE(server_.WaitForHeld(3));
  EXPECT_EQ(sim_.publishes(), 3);
  EXPECT_EQ(driver->requests_sent(), 9u);  // OPN, session x2, Read, subscription x2, Publish x3
}

TEST_F(OpcUaDriverTest, StatusCodesPassThroughUnchanged) {
  sim_.Set(kLevel,
           Dv(Variant::Scalar(2.5), kSourceTime, kServerTime, status::kUncertainLastUsableValue));
  std::unique_ptr<OpcUaDriver> driver =
      MakeDriver({Tag(1, kLevel), Tag(2, kMissing, ValueType::kDouble, TagMode::kPoll)});
  ASSERT_NE(driver, nullptr);
  Result<std::vector<Sample>> samples = driver->ReadAll();
  ASSERT_THAT(samples.status(), IsOk());
  ASSERT_THAT(*samples, SizeIs(2));
  EXPECT_EQ((*samples)[0],
            MakeSample(1, Value(2.5), status::kUncertainLastUsableValue, kSourceTime));
  EXPECT_EQ((*samples)[1], MakeSample(2, Value(), status::kBadNodeIdUnknown, clock_.Now()));
}

TEST_F(OpcUaDriverTest, ConvertsValuesToTheTagTypeAndMarksTheRestBadTypeMismatch) {
  sim_.Set(Node("Count"), Dv(Variant::Scalar(int32_t{42})));
  sim_.Set(Node("Name"), Dv(Variant::Scalar(UaString("pump 3"))));
  sim_.Set(Node("Vector"), Dv(Variant::Array(BuiltinType::kDouble, {1.0, 2.0})));
  sim_.Set(Node("When"), Dv(Variant::Scalar(DateTime::FromTimestamp(kSourceTime))));
  sim_.Set(Node("BadName"),
           Dv(Variant::Scalar(UaString("x")), kSourceTime, kServerTime, status::kBadSensorFailure));
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({
      Tag(0, Node("Count")),                      // Int32 -> float64
      Tag(1, Node("Count"), ValueType::kString),  // Int32 -> string
      Tag(2, kTemperature, ValueType::kFloat),    // Double -> float32
      Tag(3, Node("Name"), ValueType::kString),   // as it is
      Tag(4, Node("Name")),                       // text for a number
      Tag(5, Node("Vector")),                     // an array
      Tag(6, Node("When")),                       // a DateTime
      Tag(7, Node("BadName")),                    // already Bad: keeps its own status
  });
  ASSERT_NE(driver, nullptr);
  Result<std::vector<Sample>> samples = driver->ReadAll();
  ASSERT_THAT(samples.status(), IsOk());
  ASSERT_THAT(*samples, SizeIs(8));
  const std::vector<Sample>& s = *samples;
  EXPECT_EQ(s[0].value, Value(42.0));
  EXPECT_EQ(s[0].quality, status::kGood);
  EXPECT_EQ(s[1].value, Value(std::string("42")));
  EXPECT_EQ(s[2].value, Value(21.5f));
  EXPECT_EQ(s[3].value, Value(std::string("pump 3")));
  EXPECT_EQ(s[3].quality, status::kGood);
  for (size_t i : {4, 5, 6}) {
    EXPECT_EQ(s[i].quality, status::kBadTypeMismatch) << i;
    EXPECT_TRUE(s[i].value.is_null()) << i;
    EXPECT_EQ(s[i].source_time, kSourceTime) << i;
  }
  EXPECT_EQ(s[7].quality, status::kBadSensorFailure);
  EXPECT_TRUE(s[7].value.is_null());  // the value of a Bad DataValue is not usable
}

// A value beyond the tag type's range is not clamped into it and published Good (70000 as int16
// 32767): it is BadOutOfRange.
TEST_F(OpcUaDriverTest, ValueOutOfTheTagTypesRangeIsNotPublishedGood) {
  sim_.Set(Node("Big"), Dv(Variant::Scalar(int32_t{70000})));
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(0, Node("Big"), ValueType::kInt16)});
  ASSERT_NE(driver, nullptr);
  Result<std::vector<Sample>> samples = driver->ReadAll();
  ASSERT_THAT(samples.status(), IsOk());
  ASSERT_THAT(*samples, SizeIs(1));
  EXPECT_EQ((*samples)[0].quality, status::kBadOutOfRange) << (*samples)[0].value.ToString();
  EXPECT_TRUE((*samples)[0].value.is_null());
}

TEST_F(OpcUaDriverTest, IntegersConvertExactlyBetweenIntegerTypes) {
  const uint64_t odd = (uint64_t{1} << 53) + 1;  // no double holds it
  sim_.Set(Node("Odd"), Dv(Variant::Scalar(odd)));
  sim_.Set(Node("Huge"), Dv(Variant::Scalar(uint64_t{1} << 63)));  // beyond int64
  std::unique_ptr<OpcUaDriver> driver =
      MakeDriver({Tag(0, Node("Odd"), ValueType::kInt64), Tag(1, Node("Huge"), ValueType::kInt64)});
  ASSERT_NE(driver, nullptr);
  Result<std::vector<Sample>> samples = driver->ReadAll();
  ASSERT_THAT(samples.status(), IsOk());
  ASSERT_THAT(*samples, SizeIs(2));
  EXPECT_EQ((*samples)[0].value, Value(static_cast<int64_t>(odd)));
  EXPECT_TRUE((*samples)[0].quality.IsGood());
  EXPECT_EQ((*samples)[1].quality, status::kBadOutOfRange);
}

TEST_F(OpcUaDriverTest, DataChangeNotificationsBecomeSamplesAndAreAcknowledged) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature), Tag(11, kPressure)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 2));

  const Timestamp t1 = FromEpochMillis(1690000001000);
  const Timestamp t2 = FromEpochMillis(1690000002000);
  Publish(DataMessage(1, {Item(kTemperature, Dv(Variant::Scalar(22.0), t1)),
                          Item(kPressure, Dv(Variant::Scalar(1.6), std::nullopt, t1)),
                          Item(kTemperature, Dv(Variant::Scalar(22.5), t2, std::nullopt,
                                                status::kUncertainLastUsableValue))}));
  Result<std::vector<Sample>> samples = driver->ReadAll();
  ASSERT_THAT(samples.status(), IsOk());
  EXPECT_THAT(*samples,
              ElementsAre(MakeSample(10, Value(22.0), status::kGood, t1),
                          MakeSample(11, Value(1.6), status::kGood, t1),
                          MakeSample(10, Value(22.5), status::kUncertainLastUsableValue, t2)));

  // The pipeline is refilled with a request acknowledging message 1.
  ASSERT_TRUE(server_.WaitForHeld(3));
  EXPECT_EQ(sim_.publishes(), 4);
  EXPECT_THAT(sim_.acks().back(), ElementsAre(SubscriptionAcknowledgement{5, 1}));
  EXPECT_THAT(sim_.republishes(), IsEmpty());
}

TEST_F(OpcUaDriverTest, KeepAliveGivesNoSamplesAndNoAcknowledgement) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  Publish(KeepAlive(1));
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(IsEmpty()));
  ASSERT_TRUE(server_.WaitForHeld(3));
  EXPECT_THAT(sim_.acks().back(), IsEmpty());

  // The keep-alive's sequence number is the next message's: no gap when it comes.
  Publish(DataMessage(1, {Item(kTemperature, Dv(Variant::Scalar(1.0)))}));
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(SizeIs(1)));
  EXPECT_THAT(sim_.republishes(), IsEmpty());
}

TEST_F(OpcUaDriverTest, SequenceGapIsFilledWithRepublish) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  auto message = [&](uint32_t seq) {
    return DataMessage(seq, {Item(kTemperature, Dv(Variant::Scalar(static_cast<double>(seq))))});
  };
  Publish(message(1));
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(SizeIs(1)));

  // 2 and 3 were lost on the way; the server still has them.
  sim_.Keep(message(2));
  sim_.Keep(message(3));
  Publish(message(4));
  Result<std::vector<Sample>> samples = driver->ReadAll();
  ASSERT_THAT(samples.status(), IsOk());
  std::vector<Value> values;
  for (const Sample& s : *samples) values.push_back(s.value);
  EXPECT_THAT(values, ElementsAre(Value(2.0), Value(3.0), Value(4.0)));
  ASSERT_THAT(sim_.republishes(), SizeIs(2));
  EXPECT_EQ(sim_.republishes()[0].subscription_id, kFirstSubscriptionId);
  EXPECT_EQ(sim_.republishes()[0].retransmit_sequence_number, 2u);
  EXPECT_EQ(sim_.republishes()[1].retransmit_sequence_number, 3u);
  EXPECT_EQ(driver->notifications_republished(), 2u);
  ASSERT_TRUE(server_.WaitForHeld(3));
  EXPECT_THAT(sim_.acks().back(),
              ElementsAre(SubscriptionAcknowledgement{5, 2}, SubscriptionAcknowledgement{5, 3},
                          SubscriptionAcknowledgement{5, 4}));
}

TEST_F(OpcUaDriverTest, MessageTheServerNoLongerHasIsSkipped) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  auto message = [&](uint32_t seq) {
    return DataMessage(seq, {Item(kTemperature, Dv(Variant::Scalar(static_cast<double>(seq))))});
  };
  Publish(message(1));
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(SizeIs(1)));
  sim_.Keep(message(3));  // 2 is gone
  Publish(message(4));
  Result<std::vector<Sample>> samples = driver->ReadAll();
  ASSERT_THAT(samples.status(), IsOk());
  ASSERT_THAT(*samples, SizeIs(2));
  EXPECT_EQ((*samples)[0].value, Value(3.0));
  EXPECT_EQ((*samples)[1].value, Value(4.0));
  EXPECT_THAT(sim_.republishes(), SizeIs(2));
  EXPECT_EQ(driver->notifications_republished(), 1u);
}

TEST_F(OpcUaDriverTest, LostConnectionFailsUnavailableAndTheReconnectTransfersTheSubscription) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  auto message = [&](uint32_t seq) {
    return DataMessage(seq, {Item(kTemperature, Dv(Variant::Scalar(static_cast<double>(seq))))});
  };
  Publish(message(1));
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(SizeIs(1)));

  ASSERT_TRUE(server_.DropConnection());
  EXPECT_THAT(driver->ReadAll().status(), StatusIs(StatusCode::kUnavailable));
  driver->Disconnect();  // as the device loop does after a failed ReadAll()

  // The server kept the subscription, with messages 1 to 3 (1 was already taken).
  sim_.SetTransferResult({status::kGood, {1, 2, 3}});
  sim_.Keep(message(1));
  sim_.Keep(message(2));
  sim_.Keep(message(3));
  Result<std::vector<Sample>> samples = driver->ReadAll();
  ASSERT_THAT(samples.status(), IsOk());
  std::vector<Value> values;
  for (const Sample& s : *samples) values.push_back(s.value);
  // The republished messages 2 and 3; no Read after a transfer (it would put the current
  // value before the values the server queued meanwhile, which come with the next Publish).
  EXPECT_THAT(values, ElementsAre(Value(2.0), Value(3.0)));
  EXPECT_THAT(sim_.reads(), SizeIs(1));  // only the first connection's
  EXPECT_EQ(server_.connections(), 2);
  ASSERT_THAT(sim_.transfers(), SizeIs(1));
  EXPECT_THAT(sim_.transfers()[0].subscription_ids, ElementsAre(kFirstSubscriptionId));
  EXPECT_TRUE(sim_.transfers()[0].send_initial_values);
  EXPECT_THAT(sim_.subscriptions(), SizeIs(1));  // not created again
  EXPECT_EQ(driver->subscription_id(), kFirstSubscriptionId);
  EXPECT_EQ(driver->subscriptions_transferred(), 1u);
  EXPECT_EQ(driver->notifications_republished(), 2u);

  // The new session's pipeline acknowledges message 1 (taken, but its acknowledgement went
  // with the old session) and the republished 2 and 3, then takes message 4.
  ASSERT_TRUE(server_.WaitForHeld(3));
  EXPECT_THAT(sim_.acks()[sim_.acks().size() - 3],
              ElementsAre(SubscriptionAcknowledgement{5, 1}, SubscriptionAcknowledgement{5, 2},
                          SubscriptionAcknowledgement{5, 3}));
  Publish(message(4), kFirstSubscriptionId);
  Result<std::vector<Sample>> next = driver->ReadAll();
  ASSERT_THAT(next.status(), IsOk());
  ASSERT_THAT(*next, SizeIs(1));
  EXPECT_EQ((*next)[0].value, Value(4.0));
  EXPECT_EQ(driver->notifications_republished(), 2u);  // no gap
}

TEST_F(OpcUaDriverTest, ReconnectCreatesANewSubscriptionWhenTheServerLostTheOldOne) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  ASSERT_TRUE(server_.DropConnection());
  EXPECT_THAT(driver->ReadAll().status(), StatusIs(StatusCode::kUnavailable));
  driver->Disconnect();

  sim_.SetTransferResult({Code("BadSubscriptionIdInvalid"), {}});  // e.g. the server restarted
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(SizeIs(1)));
  ASSERT_THAT(sim_.transfers(), SizeIs(1));
  EXPECT_THAT(sim_.transfers()[0].subscription_ids, ElementsAre(kFirstSubscriptionId));
  ASSERT_THAT(sim_.subscriptions(), SizeIs(2));
  ASSERT_THAT(sim_.monitored(), SizeIs(2));
  EXPECT_EQ(sim_.monitored()[1].subscription_id, kFirstSubscriptionId + 1);
  EXPECT_EQ(driver->subscription_id(), kFirstSubscriptionId + 1);
  EXPECT_EQ(driver->subscriptions_transferred(), 0u);

  // Notifications of the new subscription are taken from sequence number 1 on, without a gap.
  Publish(DataMessage(1, {Item(kTemperature, Dv(Variant::Scalar(30.0)))}));
  EXPECT_THAT(driver->ReadAll(),
              IsOkAndHolds(ElementsAre(MakeSample(10, Value(30.0), status::kGood, kSourceTime))));
  EXPECT_THAT(sim_.republishes(), IsEmpty());
}

// The subscription's id is kept only once its monitored items exist: a connection lost in
// between must not leave an id that the reconnect transfers (the server keeps the lost session's
// subscription), or the tags would never be monitored.
TEST_F(OpcUaDriverTest, ConnectionLostBeforeTheItemsExistDoesNotTransferAnEmptySubscription) {
  sim_.CloseOnNext(CreateMonitoredItemsRequest::kBinaryEncodingId);
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature)});
  ASSERT_NE(driver, nullptr);
  EXPECT_THAT(driver->ReadAll().status(), StatusIs(StatusCode::kUnavailable));
  driver->Disconnect();
  ASSERT_THAT(sim_.subscriptions(), SizeIs(1));
  EXPECT_THAT(sim_.monitored(), IsEmpty());  // the connection closed instead

  sim_.SetTransferResult({status::kGood, {}});  // the server still has the subscription
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(SizeIs(1)));
  // Whether transferred or created again, the subscription the driver now uses monitors the tag.
  ASSERT_TRUE(driver->subscription_id().has_value());
  bool monitored = false;
  for (const CreateMonitoredItemsRequest& m : sim_.monitored()) {
    monitored = monitored || m.subscription_id == *driver->subscription_id();
  }
  EXPECT_TRUE(monitored) << "subscription " << *driver->subscription_id()
                         << " has no monitored items";
}

TEST_F(OpcUaDriverTest, NotificationsArrivingDuringAWriteAreKeptForTheNextReadAll) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature), Tag(11, kSetpoint)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 2));
  // On the wire before the Write's answer.
  Publish(DataMessage(1, {Item(kTemperature, Dv(Variant::Scalar(30.0)))}));
  EXPECT_THAT(driver->WriteAndReadBack(11, Value(8.0)), IsOkAndHolds(Value(8.0)));
  EXPECT_THAT(driver->ReadAll(),
              IsOkAndHolds(ElementsAre(MakeSample(10, Value(30.0), status::kGood, kSourceTime))));
}

TEST_F(OpcUaDriverTest, NotificationsOfAnotherSubscriptionAreIgnored) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  Publish(DataMessage(1, {Item(kTemperature, Dv(Variant::Scalar(30.0)))}), 99);
  Publish(DataMessage(1, {Item(kTemperature, Dv(Variant::Scalar(31.0)))}));
  Result<std::vector<Sample>> samples = driver->ReadAll();
  ASSERT_THAT(samples.status(), IsOk());
  ASSERT_THAT(*samples, SizeIs(1));
  EXPECT_EQ((*samples)[0].value, Value(31.0));
}

TEST_F(OpcUaDriverTest, NoSubscriptionAnswersBeyondTheRequestsInFlightCreateTheSubscriptionAgain) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  auto no_subscription = [](const FakeUaServer::HeldRequest& held) {
    PublishRequest request = DecodeServiceMessage<PublishRequest>(held.body).value();
    ServiceFault fault;
    fault.response_header = Answer(request.request_header, Code("BadNoSubscription"));
    return Encode(fault);
  };
  // The three requests in flight may all predate a subscription (a server answers them so
  // while a new one is being made): no new subscription for them.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(server_.AnswerHeld(0, no_subscription));
  EXPECT_THAT(driver->ReadAll().status(), IsOk());
  EXPECT_THAT(sim_.subscriptions(), SizeIs(1));
  EXPECT_EQ(driver->subscription_id(), kFirstSubscriptionId);
  // A fourth, to a request sent after them: the subscription is gone.
  ASSERT_TRUE(server_.WaitForHeld(3));
  ASSERT_TRUE(server_.AnswerHeld(0, no_subscription));
  EXPECT_THAT(driver->ReadAll().status(), IsOk());
  ASSERT_THAT(sim_.subscriptions(), SizeIs(2));
  ASSERT_THAT(sim_.monitored(), SizeIs(2));
  EXPECT_EQ(sim_.monitored()[1].subscription_id, kFirstSubscriptionId + 1);
  EXPECT_EQ(driver->subscription_id(), kFirstSubscriptionId + 1);
}

TEST_F(OpcUaDriverTest, BatchesShrinkUntilTheServerTakesThem) {
  sim_.SetMaxNodesPerCall(2);
  std::vector<OpcUaTag> tags;
  for (uint32_t i = 0; i < 5; ++i) tags.push_back(Tag(i, kTemperature));
  OpcUaDeviceConfig config;
  config.endpoint = server_.endpoint();
  config.timeout = kTimeout;
  config.tags = std::move(tags);
  OpcUaDriverOptions options;
  options.device_id = "plc";
  options.max_nodes_per_request = 4;  // refused: halved to 2
  auto driver = OpcUaDriver::Create(std::move(config), options, clock_, Logger(sink_, "opcua"));
  ASSERT_THAT(driver.status(), IsOk());
  Result<std::vector<Sample>> first = (*driver)->ReadAll();
  ASSERT_THAT(first.status(), IsOk());
  EXPECT_THAT(*first, SizeIs(5));  // every tag read, none lost to the refusals
  for (const std::vector<NodeId>& read : sim_.reads()) EXPECT_LE(read.size(), 2u);
  ASSERT_THAT(sim_.monitored(), SizeIs(3));  // 2 + 2 + 1 items
  for (const CreateMonitoredItemsRequest& m : sim_.monitored()) {
    EXPECT_LE(m.items_to_create.size(), 2u);
  }
}

TEST_F(OpcUaDriverTest, DisconnectEndsTheSessionAndTheNextReadAllSubscribesAfresh) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  driver->Disconnect();  // closes the session, which deletes its subscription
  EXPECT_EQ(driver->subscription_id(), std::nullopt);
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(SizeIs(1)));
  EXPECT_THAT(sim_.transfers(), IsEmpty());
  EXPECT_THAT(sim_.subscriptions(), SizeIs(2));
}

TEST_F(OpcUaDriverTest, NoPublishResponseForLongerThanTheKeepAliveTimeoutIsDeadlineExceeded) {
  // No answer can come: each ReadAll() returns at once.
  std::unique_ptr<OpcUaDriver> driver =
      MakeDriver({Tag(10, kTemperature)}, std::chrono::milliseconds(0));
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  clock_.Advance(kKeepAliveTimeout);
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(IsEmpty()));
  clock_.Advance(std::chrono::milliseconds(1));
  EXPECT_THAT(driver->ReadAll().status(),
              StatusIs(StatusCode::kDeadlineExceeded, HasSubstr("subscription 5")));
  // The silent link is dropped without a goodbye (CloseSession would only wait for its
  // timeout and delete the subscription): the reconnect transfers it.
  driver->Disconnect();
  EXPECT_EQ(driver->subscription_id(), kFirstSubscriptionId);
  sim_.SetTransferResult({status::kGood, {}});
  EXPECT_THAT(driver->ReadAll().status(), IsOk());
  ASSERT_THAT(sim_.transfers(), SizeIs(1));
  EXPECT_THAT(sim_.transfers()[0].subscription_ids, ElementsAre(kFirstSubscriptionId));
  EXPECT_THAT(sim_.subscriptions(), SizeIs(1));
}

TEST_F(OpcUaDriverTest, KeepAlivesPostponeTheKeepAliveTimeout) {
  // A ReadAll() without an answer waits this long for nothing.
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature)}, kShortWait);
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  clock_.Advance(kKeepAliveTimeout - std::chrono::milliseconds(500));
  Publish(KeepAlive(1));
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(IsEmpty()));
  clock_.Advance(kKeepAliveTimeout);  // since the keep-alive: not beyond
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(IsEmpty()));
  clock_.Advance(std::chrono::milliseconds(1));
  EXPECT_THAT(driver->ReadAll().status(), StatusIs(StatusCode::kDeadlineExceeded));
}

TEST_F(OpcUaDriverTest, TooManyPublishRequestsShrinksThePipeline) {
  sim_.SetPublishOverflow(2, Code("BadTooManyPublishRequests"));
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature)}, kShortWait);
  ASSERT_NE(driver, nullptr);
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(SizeIs(1)));
  // The server has answered the third request when it runs a task after it.
  ASSERT_TRUE(sim_.WaitForPublishes(3));
  ASSERT_TRUE(server_.RunOnConnection([](FakeUaServer::Connection&) { return true; }));
  uint64_t sent = driver->requests_sent();
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(IsEmpty()));  // takes the refusal
  EXPECT_EQ(driver->requests_sent(), sent);                 // and sends no other request

  sim_.SetPublishOverflow(-1, status::kGood);
  Publish(DataMessage(1, {Item(kTemperature, Dv(Variant::Scalar(1.0)))}));
  sent = driver->requests_sent();
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(SizeIs(1)));
  // Refilled to the two the server holds, not three.
  EXPECT_EQ(driver->requests_sent(), sent + 1);
  ASSERT_TRUE(sim_.WaitForPublishes(4));
  EXPECT_THAT(sim_.acks().back(), ElementsAre(SubscriptionAcknowledgement{5, 1}));
}

TEST_F(OpcUaDriverTest, SubscriptionEndedByTheServerIsCreatedAgain) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  NotificationMessage ended;
  ended.sequence_number = 1;
  ended.notification_data = {
      ToExtensionObject(StatusChangeNotification{status::kBadTimeout, {}}).value()};
  Publish(ended);
  EXPECT_THAT(driver->ReadAll().status(), IsOk());
  EXPECT_THAT(sim_.subscriptions(), SizeIs(2));
  EXPECT_EQ(driver->subscription_id(), kFirstSubscriptionId + 1);
}

TEST_F(OpcUaDriverTest, RequestsTheSubscriptionAndItsItemsFromTheTags) {
  OpcUaTag fast = Tag(10, kTemperature);
  fast.sampling = std::chrono::milliseconds(250);
  fast.queue_size = 5;
  fast.deadband = 0.5;
  OpcUaTag slow = Tag(11, kPressure);
  slow.sampling = std::chrono::milliseconds(500);
  OpcUaTag polled = Tag(12, kLevel, ValueType::kDouble, TagMode::kPoll);
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({polled, fast, slow});
  ASSERT_NE(driver, nullptr);
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(SizeIs(3)));

  ASSERT_THAT(sim_.subscriptions(), SizeIs(1));
  const CreateSubscriptionRequest sub = sim_.subscriptions()[0];
  EXPECT_EQ(sub.requested_publishing_interval, 250);  // the fastest sampling
  EXPECT_EQ(sub.requested_max_keep_alive_count, 8u);  // 2000 ms keep-alive / 250 ms
  EXPECT_GE(sub.requested_lifetime_count, 3 * sub.requested_max_keep_alive_count);
  EXPECT_TRUE(sub.publishing_enabled);

  ASSERT_THAT(sim_.monitored(), SizeIs(1));
  const std::vector<MonitoredItemCreateRequest> items = sim_.monitored()[0].items_to_create;
  ASSERT_THAT(items, SizeIs(2));  // not the poll tag
  EXPECT_EQ(items[0].item_to_monitor.node_id, kTemperature);
  EXPECT_EQ(items[0].item_to_monitor.attribute_id, kAttributeValue);
  EXPECT_EQ(items[0].monitoring_mode, MonitoringMode::kReporting);
  EXPECT_EQ(items[0].requested_parameters.sampling_interval, 250);
  EXPECT_EQ(items[0].requested_parameters.queue_size, 5u);
  Result<DataChangeFilter> filter =
      FromExtensionObject<DataChangeFilter>(items[0].requested_parameters.filter);
  ASSERT_THAT(filter.status(), IsOk());
  EXPECT_EQ(filter->deadband_type, DeadbandType::kAbsolute);
  EXPECT_EQ(filter->deadband_value, 0.5);
  EXPECT_EQ(items[1].item_to_monitor.node_id, kPressure);
  EXPECT_EQ(items[1].requested_parameters.sampling_interval, 500);
  EXPECT_TRUE(items[1].requested_parameters.filter.is_empty());
  EXPECT_NE(items[0].requested_parameters.client_handle,
            items[1].requested_parameters.client_handle);
}

// A tag with sampling_ms = 0 (as fast as the server can) sets the publishing interval wherever it
// is in the tag list: {0, 500} and {500, 0} both request 10 ms.
TEST_F(OpcUaDriverTest, PublishingIntervalDoesNotDependOnTheOrderOfTheTags) {
  OpcUaTag fastest = Tag(1, kTemperature);
  fastest.sampling = std::chrono::milliseconds(0);
  OpcUaTag slow = Tag(2, kPressure);
  slow.sampling = std::chrono::milliseconds(500);
  {
    std::unique_ptr<OpcUaDriver> driver = MakeDriver({fastest, slow});
    ASSERT_NE(driver, nullptr);
    EXPECT_THAT(driver->ReadAll().status(), IsOk());
  }
  {
    std::unique_ptr<OpcUaDriver> driver = MakeDriver({slow, fastest});
    ASSERT_NE(driver, nullptr);
    EXPECT_THAT(driver->ReadAll().status(), IsOk());
  }
  // Each driver asked for 10 ms; the server granted 100 ms (kRevisedPublishingMs), so each
  // made its subscription again, asking for 100 ms with a keep-alive count for 100 ms.
  ASSERT_THAT(sim_.subscriptions(), SizeIs(4));
  EXPECT_EQ(sim_.subscriptions()[0].requested_publishing_interval, 10);
  EXPECT_EQ(sim_.subscriptions()[2].requested_publishing_interval, 10);
  for (size_t i : {1, 3}) {
    EXPECT_EQ(sim_.subscriptions()[i].requested_publishing_interval, kRevisedPublishingMs);
    EXPECT_EQ(sim_.subscriptions()[i].requested_max_keep_alive_count, 20u);  // 2 s
  }
}

TEST_F(OpcUaDriverTest, ARefusedDeadbandIsDroppedAndTheItemMonitoredWithoutIt) {
  sim_.RefuseFilterOn(kPressure);
  OpcUaTag pressure = Tag(11, kPressure);
  pressure.deadband = 0.5;
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature), pressure});
  ASSERT_NE(driver, nullptr);
  Result<std::vector<Sample>> samples = driver->ReadAll();
  ASSERT_THAT(samples.status(), IsOk());
  for (const Sample& s : *samples) EXPECT_TRUE(s.quality.IsGood()) << s.tag;  // not refused
  const std::vector<CreateMonitoredItemsRequest> monitored = sim_.monitored();
  ASSERT_THAT(monitored, SizeIs(2));
  ASSERT_THAT(monitored[1].items_to_create, SizeIs(1));  // only the refused one again
  const MonitoredItemCreateRequest& again = monitored[1].items_to_create[0];
  EXPECT_EQ(again.item_to_monitor.node_id, kPressure);
  EXPECT_TRUE(again.requested_parameters.filter.is_empty());
  // Its notifications come through.
  Publish(DataMessage(1, {Item(kPressure, Dv(Variant::Scalar(3.5)))}));
  EXPECT_THAT(driver->ReadAll(),
              IsOkAndHolds(ElementsAre(MakeSample(11, Value(3.5), status::kGood, kSourceTime))));
}

TEST_F(OpcUaDriverTest, SamplesTakenBeforeAFailureComeFirstTheFailureWithTheNextCall) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  // A notification, then the connection lost in the same turn of the pump.
  Publish(DataMessage(1, {Item(kTemperature, Dv(Variant::Scalar(30.0)))}));
  ASSERT_TRUE(server_.DropConnection());
  EXPECT_THAT(driver->ReadAll(),
              IsOkAndHolds(ElementsAre(MakeSample(10, Value(30.0), status::kGood, kSourceTime))));
  EXPECT_THAT(driver->ReadAll().status(), StatusIs(StatusCode::kUnavailable));
}

TEST_F(OpcUaDriverTest, ItemTheServerCannotMonitorGetsItsStatus) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(10, kTemperature), Tag(11, kMissing)});
  ASSERT_NE(driver, nullptr);
  Result<std::vector<Sample>> samples = driver->ReadAll();
  ASSERT_THAT(samples.status(), IsOk());
  ASSERT_GE(samples->size(), 2u);
  EXPECT_EQ((*samples)[0].tag, 10u);
  EXPECT_EQ((*samples)[1].tag, 11u);
  for (size_t i = 1; i < samples->size(); ++i) {
    EXPECT_EQ((*samples)[i].tag, 11u);
    EXPECT_EQ((*samples)[i].quality, status::kBadNodeIdUnknown);
  }
}

TEST_F(OpcUaDriverTest, PollModeTagsAreReadEveryPollPeriod) {
  std::unique_ptr<OpcUaDriver> driver =
      MakeDriver({Tag(1, kTemperature, ValueType::kDouble, TagMode::kPoll),
                  Tag(2, kPressure, ValueType::kDouble, TagMode::kPoll)},
                 std::chrono::seconds(5), std::chrono::milliseconds(1000));
  ASSERT_NE(driver, nullptr);
  EXPECT_FALSE(driver->pushes_changes());
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(SizeIs(2)));
  EXPECT_THAT(sim_.reads(), SizeIs(1));
  EXPECT_THAT(sim_.subscriptions(), IsEmpty());

  clock_.Advance(std::chrono::milliseconds(999));
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(sim_.reads(), SizeIs(1));

  sim_.Set(kTemperature, Dv(Variant::Scalar(23.0)));
  clock_.Advance(std::chrono::milliseconds(1));
  EXPECT_THAT(driver->ReadAll(),
              IsOkAndHolds(ElementsAre(MakeSample(1, Value(23.0), status::kGood, kSourceTime),
                                       MakeSample(2, Value(1.5), status::kGood, kServerTime))));
  ASSERT_THAT(sim_.reads(), SizeIs(2));
  EXPECT_THAT(sim_.reads()[1], ElementsAre(kTemperature, kPressure));

  clock_.Advance(std::chrono::milliseconds(1000));
  EXPECT_THAT(driver->ReadAll(), IsOkAndHolds(SizeIs(2)));
  EXPECT_THAT(sim_.reads(), SizeIs(3));
  EXPECT_THAT(sim_.publishes(), 0);
}

TEST_F(OpcUaDriverTest, PollModeTagsBesideASubscriptionAreReadAlone) {
  std::unique_ptr<OpcUaDriver> driver =
      MakeDriver({Tag(1, kTemperature), Tag(2, kPressure, ValueType::kDouble, TagMode::kPoll)},
                 std::chrono::seconds(5), std::chrono::milliseconds(500));
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 2));
  clock_.Advance(std::chrono::milliseconds(500));
  EXPECT_THAT(driver->ReadAll(),
              IsOkAndHolds(ElementsAre(MakeSample(2, Value(1.5), status::kGood, kServerTime))));
  ASSERT_THAT(sim_.reads(), SizeIs(2));
  EXPECT_THAT(sim_.reads()[1], ElementsAre(kPressure));
}

TEST_F(OpcUaDriverTest, WritesAsTheNodesBuiltinType) {
  std::unique_ptr<OpcUaDriver> driver =
      MakeDriver({Tag(1, kSetpoint), Tag(2, kSetpoint, ValueType::kInt32)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 2));

  // A float64 tag on an Int32 node: 7.0 is written as Int32 7 and read back as 7.0.
  EXPECT_THAT(driver->WriteAndReadBack(1, Value(7.0)), IsOkAndHolds(Value(7.0)));
  ASSERT_THAT(sim_.writes(), SizeIs(1));
  EXPECT_EQ(sim_.writes()[0].node_id, kSetpoint);
  EXPECT_EQ(sim_.writes()[0].attribute_id, kAttributeValue);
  EXPECT_EQ(sim_.writes()[0].value.value, Variant::Scalar(int32_t{7}));

  EXPECT_THAT(driver->WriteAndReadBack(2, Value(int32_t{-3})), IsOkAndHolds(Value(int32_t{-3})));
  ASSERT_THAT(sim_.writes(), SizeIs(2));
  EXPECT_EQ(sim_.writes()[1].value.value, Variant::Scalar(int32_t{-3}));
}

TEST_F(OpcUaDriverTest, WritesBooleanNodes) {
  sim_.Set(Node("Run"), Dv(Variant::Scalar(true)));
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(1, Node("Run"), ValueType::kBool)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  EXPECT_THAT(driver->WriteAndReadBack(1, Value(false)), IsOkAndHolds(Value(false)));
  EXPECT_THAT(driver->WriteAndReadBack(1, Value(1.0)), IsOkAndHolds(Value(true)));
  ASSERT_THAT(sim_.writes(), SizeIs(2));
  EXPECT_EQ(sim_.writes()[0].value.value, Variant::Scalar(false));
  EXPECT_EQ(sim_.writes()[1].value.value, Variant::Scalar(true));
}

// Like the Modbus driver for a coil, a Boolean node takes true, false, 1 and 0 only; 0.5 or 7 is
// InvalidArgument, not true.
TEST_F(OpcUaDriverTest, RefusesNumbersOtherThanZeroAndOneForABooleanNode) {
  sim_.Set(Node("Run"), Dv(Variant::Scalar(true)));
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(1, Node("Run"), ValueType::kBool)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  EXPECT_THAT(driver->WriteAndReadBack(1, Value(0.5)).status(),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(driver->WriteAndReadBack(1, Value(int32_t{7})).status(),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(sim_.writes(), IsEmpty());
}

TEST_F(OpcUaDriverTest, WritesLargeIntegersExactly) {
  sim_.Set(Node("Total"), Dv(Variant::Scalar(int64_t{0})));
  sim_.Set(Node("Big"), Dv(Variant::Scalar(uint64_t{0})));
  std::unique_ptr<OpcUaDriver> driver = MakeDriver(
      {Tag(1, Node("Total"), ValueType::kInt64), Tag(2, Node("Big"), ValueType::kUInt64)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 2));
  // 2^53 + 1 has no double: a detour through double would write 2^53.
  const int64_t odd = (int64_t{1} << 53) + 1;
  EXPECT_THAT(driver->WriteAndReadBack(1, Value(odd)), IsOkAndHolds(Value(odd)));
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  EXPECT_THAT(driver->WriteAndReadBack(2, Value(max)), IsOkAndHolds(Value(max)));
  // Beyond the node's type, by integer comparison.
  EXPECT_THAT(driver->WriteAndReadBack(1, Value(max)).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("Int64")));
  EXPECT_THAT(driver->WriteAndReadBack(2, Value(int64_t{-1})).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("UInt64")));
  ASSERT_THAT(sim_.writes(), SizeIs(2));
  EXPECT_EQ(*sim_.writes()[0].value.value->get_if<int64_t>(), odd);
  EXPECT_EQ(*sim_.writes()[1].value.value->get_if<uint64_t>(), max);
}

TEST_F(OpcUaDriverTest, RefusesAValueTheNodesTypeCannotHold) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(1, kSetpoint)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  EXPECT_THAT(driver->WriteAndReadBack(1, Value(7.5)).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("Int32")));
  EXPECT_THAT(driver->WriteAndReadBack(1, Value(3e9)).status(),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(driver->WriteAndReadBack(1, Value(std::string("7"))).status(),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(sim_.writes(), IsEmpty());
}

TEST_F(OpcUaDriverTest, BadWriteResultIsAborted) {
  sim_.SetWriteResult(kSetpoint, status::kBadNotWritable);
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(1, kSetpoint)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  EXPECT_THAT(driver->WriteAndReadBack(1, Value(7.0)).status(),
              StatusIs(StatusCode::kAborted, HasSubstr("BadNotWritable")));
  EXPECT_THAT(sim_.writes(), SizeIs(1));
}

TEST_F(OpcUaDriverTest, LearnsTheNodesTypeWithAReadWhenNoValueWasSeen) {
  DataValue waiting;
  waiting.status = status::kBadWaitingForInitialData;
  sim_.Set(kSetpoint, waiting);
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(1, kSetpoint)});
  ASSERT_NE(driver, nullptr);
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));

  // Still no value: the type cannot be learned.
  EXPECT_THAT(driver->WriteAndReadBack(1, Value(7.0)).status(),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("BadWaitingForInitialData")));
  sim_.Set(kSetpoint, Dv(Variant::Scalar(int32_t{5})));
  const size_t reads = sim_.reads().size();
  EXPECT_THAT(driver->WriteAndReadBack(1, Value(7.0)), IsOkAndHolds(Value(7.0)));
  ASSERT_THAT(sim_.writes(), SizeIs(1));
  EXPECT_EQ(sim_.writes()[0].value.value, Variant::Scalar(int32_t{7}));
  EXPECT_EQ(sim_.reads().size(), reads + 2);  // the type, then the read-back
}

TEST_F(OpcUaDriverTest, WriteToAnUnknownTagOrWhileDisconnectedFails) {
  std::unique_ptr<OpcUaDriver> driver = MakeDriver({Tag(1, kSetpoint)});
  ASSERT_NE(driver, nullptr);
  EXPECT_THAT(driver->WriteAndReadBack(1, Value(7.0)).status(), StatusIs(StatusCode::kUnavailable));
  ASSERT_NO_FATAL_FAILURE(Start(*driver, 1));
  EXPECT_THAT(driver->WriteAndReadBack(99, Value(7.0)).status(), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(sim_.writes(), IsEmpty());
}

TEST_F(OpcUaDriverTest, UnreachableServerFailsUnavailable) {
  OpcUaDeviceConfig config;
  {
    FakeUaServer gone({});
    config.endpoint = gone.endpoint();
  }  // nothing listens there now
  config.timeout = kTimeout;
  config.tags = {Tag(1, kTemperature)};
  std::unique_ptr<OpcUaDriver> driver =
      OpcUaDriver::Create(config, {}, clock_, Logger(sink_, "opcua")).value();
  EXPECT_THAT(driver->ReadAll().status(), StatusIs(StatusCode::kUnavailable));
}

TEST(OpcUaDriverCreateTest, RefusesAnInvalidEndpointOrCredentials) {
  FakeClock clock;
  NullSink sink;
  OpcUaDeviceConfig config;
  config.endpoint = "http://plc:4840";
  EXPECT_THAT(OpcUaDriver::Create(config, {}, clock, Logger(sink, "t")).status(),
              StatusIs(StatusCode::kInvalidArgument));
  config.endpoint = "opc.tcp://plc:4840";
  config.password = "secret";
  EXPECT_THAT(OpcUaDriver::Create(config, {}, clock, Logger(sink, "t")).status(),
              StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace kiln::drivers::opcua
