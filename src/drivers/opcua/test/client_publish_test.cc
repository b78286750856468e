// The Publish pipeline of Client (SendPublish, ReceivePublish, outstanding_publishes, Publish) and
// the subscription transfer services (TransferSubscriptions, Republish) against FakeUaServer.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "drivers/opcua/client.h"
#include "drivers/opcua/internal/status_codes.h"
#include "drivers/opcua/services.h"
#include "drivers/opcua/test/fake_ua_server.h"
#include "testing/status_matchers.h"

namespace kiln::drivers::opcua {
namespace {

using contract::Quality;
using ::kiln::drivers::opcua::testing::Answer;
using ::kiln::drivers::opcua::testing::Encode;
using ::kiln::drivers::opcua::testing::FakeUaServer;
using ::kiln::drivers::opcua::testing::kReadId;
using ::kiln::drivers::opcua::testing::Reply;
using ::kiln::testing::IsOk;
using ::kiln::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::SizeIs;

constexpr uint32_t kPublishId = PublishRequest::kBinaryEncodingId;
constexpr uint32_t kSubscriptionId = 5;
const NodeId kTemperature(2, std::string("Temperature"));

Quality Code(std::string_view name) { return internal::UaStatusCodeFromName(name).value(); }

// A NotificationMessage `sequence` with one data change whose client handle and value are the
// sequence number (so the tests can tell messages apart after decoding).
NotificationMessage Message(uint32_t sequence) {
  NotificationMessage m;
  m.sequence_number = sequence;
  m.publish_time = DateTime{DateTime::kUnixEpochTicks + 17000000000000000};
  DataChangeNotification change;
  MonitoredItemNotification item;
  item.client_handle = sequence;
  item.value.value = Variant::Scalar(static_cast<double>(sequence));
  change.monitored_items = {item};
  m.notification_data = {ToExtensionObject(change).value()};
  return m;
}

// The PublishResponse to the held PublishRequest `held`, carrying Message(sequence).
std::vector<uint8_t> PublishAnswer(const FakeUaServer::HeldRequest& held, uint32_t sequence) {
  PublishRequest request = DecodeServiceMessage<PublishRequest>(held.body).value();
  PublishResponse response;
  response.response_header = Answer(request.request_header);
  response.subscription_id = kSubscriptionId;
  response.notification_message = Message(sequence);
  response.available_sequence_numbers = {sequence};
  response.results.assign(request.subscription_acknowledgements.size(), contract::status::kGood);
  return Encode(response);
}

std::vector<uint8_t> Fault(std::span<const uint8_t> request_body, Quality result) {
  Reader r(request_body);
  r.Read<NodeId>();
  ServiceFault fault;
  fault.response_header = Answer(r.Read<RequestHeader>(), result);
  return Encode(fault);
}

// A server that answers every PublishRequest with a ServiceFault of `code`.
FakeUaServer::Options FaultingPublishes(std::string_view code) {
  FakeUaServer::Options options;
  options.handler = [code](uint32_t id, std::span<const uint8_t> body) -> std::optional<Reply> {
    if (id != kPublishId) return std::nullopt;
    return Reply::Body(Fault(body, Code(code)));
  };
  return options;
}

// The sequence number of a response, or 0 when there is none.
uint32_t SequenceOf(const Result<std::optional<PublishResponse>>& response) {
  if (!response.ok() || !response->has_value()) return 0;
  return (*response)->notification_message.sequence_number;
}

std::optional<Reply> HoldPublishes(uint32_t id, std::span<const uint8_t>) {
  if (id == kPublishId) return Reply::Hold();
  return std::nullopt;
}

class ClientPublishTest : public ::testing::Test {
 protected:
  std::unique_ptr<Client> Connect(const FakeUaServer& server) {
    ClientOptions options;
    options.endpoint = server.endpoint();
    options.connect_timeout = std::chrono::milliseconds(5000);
    options.request_timeout = std::chrono::milliseconds(5000);
    Result<std::unique_ptr<Client>> client =
        Client::Create(options, clock_, Logger(sink_, "opcua"));
    EXPECT_THAT(client.status(), IsOk());
    if (!client.ok()) return nullptr;
    EXPECT_THAT((*client)->Connect(), IsOk());
    return std::move(*client);
  }

  // A deadline far enough away for an answer that is already on its way.
  MonoTime Soon() const { return clock_.Monotonic() + std::chrono::seconds(5); }

  SystemClock clock_;
  NullSink sink_;
};

TEST_F(ClientPublishTest, OutstandingPublishesAnsweredOutOfOrder) {
  FakeUaServer::Options options;
  options.handler = HoldPublishes;
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = Connect(server);
  ASSERT_NE(client, nullptr);
  const uint64_t sent_before = client->requests_sent();

  ASSERT_THAT(client->SendPublish({}), IsOk());
  ASSERT_THAT(client->SendPublish({{kSubscriptionId, 1}}), IsOk());
  ASSERT_THAT(client->SendPublish({{kSubscriptionId, 2}, {kSubscriptionId, 3}}), IsOk());
  EXPECT_EQ(client->outstanding_publishes(), 3u);
  EXPECT_EQ(client->requests_sent(), sent_before + 3);

  // The server holds the three requests, each with its acknowledgements.
  ASSERT_TRUE(server.WaitForHeld(3));
  const std::vector<FakeUaServer::HeldRequest> held = server.held();
  ASSERT_THAT(held, SizeIs(3));
  std::vector<std::vector<SubscriptionAcknowledgement>> acks;
  for (const FakeUaServer::HeldRequest& h : held) {
    acks.push_back(DecodeServiceMessage<PublishRequest>(h.body)->subscription_acknowledgements);
  }
  EXPECT_THAT(acks, ElementsAre(IsEmpty(), ElementsAre(SubscriptionAcknowledgement{5, 1}),
                                ElementsAre(SubscriptionAcknowledgement{5, 2},
                                            SubscriptionAcknowledgement{5, 3})));

  // Answered newest first, then the oldest, then the middle one.
  ASSERT_TRUE(server.AnswerHeld(2, [](const auto& h) { return PublishAnswer(h, 30); }));
  ASSERT_TRUE(server.AnswerHeld(0, [](const auto& h) { return PublishAnswer(h, 10); }));
  ASSERT_TRUE(server.AnswerHeld(0, [](const auto& h) { return PublishAnswer(h, 20); }));

  Result<std::optional<PublishResponse>> first = client->ReceivePublish(Soon());
  ASSERT_THAT(first.status(), IsOk());
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ(SequenceOf(first), 30u);
  EXPECT_THAT((*first)->results, ElementsAre(contract::status::kGood, contract::status::kGood));
  EXPECT_EQ((*first)->notification_message, Message(30));
  EXPECT_EQ(client->outstanding_publishes(), 2u);

  Result<std::optional<PublishResponse>> second = client->ReceivePublish(Soon());
  EXPECT_EQ(SequenceOf(second), 10u);
  EXPECT_EQ(client->outstanding_publishes(), 1u);
  Result<std::optional<PublishResponse>> third = client->ReceivePublish(Soon());
  EXPECT_EQ(SequenceOf(third), 20u);
  EXPECT_EQ(client->outstanding_publishes(), 0u);

  // Nothing outstanding: nothing to wait for.
  Result<std::optional<PublishResponse>> none = client->ReceivePublish(Soon());
  ASSERT_THAT(none.status(), IsOk());
  EXPECT_FALSE(none->has_value());
  EXPECT_TRUE(client->connected());
}

TEST_F(ClientPublishTest, PublishResponseArrivingDuringAReadIsKeptForReceivePublish) {
  FakeUaServer::Options options;
  options.handler = HoldPublishes;
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = Connect(server);
  ASSERT_NE(client, nullptr);

  ASSERT_THAT(client->SendPublish({}), IsOk());
  ASSERT_TRUE(server.WaitForHeld(1));
  // The Publish answer is on the wire before the server even sees the Read.
  ASSERT_TRUE(server.AnswerHeld(0, [](const auto& h) { return PublishAnswer(h, 7); }));
  Result<std::vector<DataValue>> values = client->Read(std::vector<NodeId>{kTemperature});
  ASSERT_THAT(values.status(), IsOk());
  EXPECT_THAT(*values, ElementsAre(FakeUaServer::FixedValue(kTemperature)));
  EXPECT_EQ(client->outstanding_publishes(), 0u);  // answered, kept

  // Taken without waiting: the deadline has already passed.
  Result<std::optional<PublishResponse>> kept = client->ReceivePublish(clock_.Monotonic());
  ASSERT_THAT(kept.status(), IsOk());
  EXPECT_EQ(SequenceOf(kept), 7u);
  Result<std::optional<PublishResponse>> none = client->ReceivePublish(clock_.Monotonic());
  ASSERT_THAT(none.status(), IsOk());
  EXPECT_FALSE(none->has_value());
}

TEST_F(ClientPublishTest, ReceivePublishReturnsNothingAtTheDeadlineAndTheConnectionStaysUsable) {
  FakeUaServer::Options options;
  options.handler = HoldPublishes;
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = Connect(server);
  ASSERT_NE(client, nullptr);

  ASSERT_THAT(client->SendPublish({}), IsOk());
  ASSERT_TRUE(server.WaitForHeld(1));
  // The server holds the request: nothing can come before the deadline.
  Result<std::optional<PublishResponse>> nothing =
      client->ReceivePublish(clock_.Monotonic() + std::chrono::milliseconds(20));
  ASSERT_THAT(nothing.status(), IsOk());
  EXPECT_FALSE(nothing->has_value());
  EXPECT_TRUE(client->connected());
  EXPECT_EQ(client->outstanding_publishes(), 1u);

  EXPECT_THAT(client->Read(std::vector<NodeId>{kTemperature}).status(), IsOk());
  EXPECT_EQ(client->outstanding_publishes(), 1u);

  // The request is still outstanding and its answer is taken later.
  ASSERT_TRUE(server.AnswerHeld(0, [](const auto& h) { return PublishAnswer(h, 1); }));
  EXPECT_EQ(SequenceOf(client->ReceivePublish(Soon())), 1u);
}

TEST_F(ClientPublishTest, PartOfAResponseAtTheDeadlineStaysBuffered) {
  FakeUaServer::Options options;
  options.handler = HoldPublishes;
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = Connect(server);
  ASSERT_NE(client, nullptr);

  ASSERT_THAT(client->SendPublish({}), IsOk());
  ASSERT_TRUE(server.WaitForHeld(1));
  std::vector<uint8_t> rest;
  ASSERT_TRUE(server.RunOnConnection([&](FakeUaServer::Connection& c) {
    const FakeUaServer::HeldRequest held = server.held().at(0);
    std::vector<uint8_t> bytes =
        FakeUaServer::Frame(c, MessageType::kMessage, held.request_id, PublishAnswer(held, 4));
    const size_t half = bytes.size() / 2;
    rest.assign(bytes.begin() + static_cast<ptrdiff_t>(half), bytes.end());
    return FakeUaServer::SendRaw(c.fd, std::span(bytes).first(half));
  }));
  Result<std::optional<PublishResponse>> nothing =
      client->ReceivePublish(clock_.Monotonic() + std::chrono::milliseconds(20));
  ASSERT_THAT(nothing.status(), IsOk());
  EXPECT_FALSE(nothing->has_value());
  EXPECT_TRUE(client->connected());

  ASSERT_TRUE(server.RunOnConnection(
      [&](FakeUaServer::Connection& c) { return FakeUaServer::SendRaw(c.fd, rest); }));
  EXPECT_EQ(SequenceOf(client->ReceivePublish(Soon())), 4u);
  EXPECT_TRUE(client->connected());
}

TEST_F(ClientPublishTest, TooManyPublishRequestsIsAnErrorThatKeepsTheConnection) {
  FakeUaServer::Options options;
  int publishes = 0;  // server thread only
  options.handler = [&publishes](uint32_t id,
                                 std::span<const uint8_t> body) -> std::optional<Reply> {
    if (id != kPublishId) return std::nullopt;
    if (++publishes <= 2) return Reply::Hold();
    return Reply::Body(Fault(body, Code("BadTooManyPublishRequests")));
  };
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = Connect(server);
  ASSERT_NE(client, nullptr);

  for (int i = 0; i < 3; ++i) ASSERT_THAT(client->SendPublish({}), IsOk());
  EXPECT_THAT(client->ReceivePublish(Soon()).status(),
              StatusIs(StatusCode::kResourceExhausted,
                       HasSubstr("BadTooManyPublishRequests: PublishRequest failed")));
  EXPECT_TRUE(client->connected());
  EXPECT_EQ(client->outstanding_publishes(), 2u);  // the refused one is used up

  EXPECT_THAT(client->Read(std::vector<NodeId>{kTemperature}).status(), IsOk());
  ASSERT_TRUE(server.WaitForHeld(2));
  ASSERT_TRUE(server.AnswerHeld(0, [](const auto& h) { return PublishAnswer(h, 1); }));
  EXPECT_EQ(SequenceOf(client->ReceivePublish(Soon())), 1u);
  EXPECT_EQ(client->outstanding_publishes(), 1u);
}

TEST_F(ClientPublishTest, NoSubscriptionIsAnErrorThatKeepsTheConnection) {
  FakeUaServer server(FaultingPublishes("BadNoSubscription"));
  std::unique_ptr<Client> client = Connect(server);
  ASSERT_NE(client, nullptr);
  ASSERT_THAT(client->SendPublish({}), IsOk());
  EXPECT_THAT(client->ReceivePublish(Soon()).status(),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("BadNoSubscription")));
  EXPECT_TRUE(client->connected());
  EXPECT_EQ(client->outstanding_publishes(), 0u);
}

TEST_F(ClientPublishTest, SessionErrorInAPublishResponseClosesTheConnection) {
  FakeUaServer server(FaultingPublishes("BadSessionIdInvalid"));
  std::unique_ptr<Client> client = Connect(server);
  ASSERT_NE(client, nullptr);
  ASSERT_THAT(client->SendPublish({}), IsOk());
  ASSERT_THAT(client->SendPublish({}), IsOk());
  EXPECT_THAT(client->ReceivePublish(Soon()).status(),
              StatusIs(StatusCode::kUnavailable, HasSubstr("BadSessionIdInvalid")));
  EXPECT_FALSE(client->connected());
  EXPECT_EQ(client->outstanding_publishes(), 0u);
  EXPECT_THAT(client->SendPublish({}), StatusIs(StatusCode::kUnavailable));
}

TEST_F(ClientPublishTest, LostConnectionFailsReceivePublishAndForgetsTheRequests) {
  FakeUaServer::Options options;
  options.handler = HoldPublishes;
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = Connect(server);
  ASSERT_NE(client, nullptr);
  ASSERT_THAT(client->SendPublish({}), IsOk());
  ASSERT_THAT(client->SendPublish({}), IsOk());
  ASSERT_TRUE(server.WaitForHeld(2));
  ASSERT_TRUE(server.DropConnection());

  EXPECT_THAT(client->ReceivePublish(Soon()).status(), StatusIs(StatusCode::kUnavailable));
  EXPECT_FALSE(client->connected());
  EXPECT_EQ(client->outstanding_publishes(), 0u);
  EXPECT_THAT(client->ReceivePublish(Soon()).status(), StatusIs(StatusCode::kUnavailable));

  // A new connection starts with an empty pipeline.
  ASSERT_THAT(client->Connect(), IsOk());
  EXPECT_EQ(client->outstanding_publishes(), 0u);
  ASSERT_THAT(client->SendPublish({}), IsOk());
  EXPECT_EQ(client->outstanding_publishes(), 1u);
}

TEST_F(ClientPublishTest, ResponseToAnUnknownRequestIsDiscardedWhileWaitingForAPublish) {
  FakeUaServer::Options options;
  options.handler = HoldPublishes;
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = Connect(server);
  ASSERT_NE(client, nullptr);
  ASSERT_THAT(client->SendPublish({}), IsOk());
  ASSERT_TRUE(server.WaitForHeld(1));
  ASSERT_TRUE(server.RunOnConnection([&](FakeUaServer::Connection& c) {
    const FakeUaServer::HeldRequest held = server.held().at(0);
    return FakeUaServer::SendMessage(c, MessageType::kMessage, held.request_id + 1000,
                                     PublishAnswer(held, 99));
  }));
  ASSERT_TRUE(server.AnswerHeld(0, [](const auto& h) { return PublishAnswer(h, 2); }));
  EXPECT_EQ(SequenceOf(client->ReceivePublish(Soon())), 2u);
  EXPECT_TRUE(client->connected());
  EXPECT_EQ(client->outstanding_publishes(), 0u);
}

TEST_F(ClientPublishTest, PublishWithoutAnAnswerInTimeClosesTheConnection) {
  FakeUaServer::Options options;
  options.handler = HoldPublishes;
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = Connect(server);
  ASSERT_NE(client, nullptr);
  EXPECT_THAT(client->Publish({}, std::chrono::milliseconds(20)).status(),
              StatusIs(StatusCode::kDeadlineExceeded, HasSubstr("PublishRequest")));
  EXPECT_FALSE(client->connected());
}

TEST_F(ClientPublishTest, PipelineCallsFailUnavailableWhenNotConnected) {
  FakeUaServer server({});
  ClientOptions options;
  options.endpoint = server.endpoint();
  std::unique_ptr<Client> client = Client::Create(options, clock_, Logger(sink_, "opcua")).value();
  EXPECT_THAT(client->SendPublish({}), StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(client->ReceivePublish(Soon()).status(), StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(client->TransferSubscriptions({1}, true).status(),
              StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(client->Republish(1, 1).status(), StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(client->requests_sent(), 0u);
}

TEST_F(ClientPublishTest, TransferSubscriptionsRoundTrip) {
  FakeUaServer::Options options;
  std::optional<TransferSubscriptionsRequest> seen;  // server thread until joined
  options.handler = [&seen](uint32_t id, std::span<const uint8_t> body) -> std::optional<Reply> {
    if (id != TransferSubscriptionsRequest::kBinaryEncodingId) return std::nullopt;
    TransferSubscriptionsRequest request =
        DecodeServiceMessage<TransferSubscriptionsRequest>(body).value();
    seen = request;
    TransferSubscriptionsResponse response;
    response.response_header = Answer(request.request_header);
    for (uint32_t subscription : request.subscription_ids) {
      TransferResult r;
      if (subscription == kSubscriptionId) {
        r.available_sequence_numbers = {3, 4};
      } else {
        r.status_code = Code("BadSubscriptionIdInvalid");
      }
      response.results.push_back(r);
    }
    return Reply::Body(Encode(response));
  };
  Result<std::vector<TransferResult>> results = InternalError("not called");
  {
    FakeUaServer server(std::move(options));
    std::unique_ptr<Client> client = Connect(server);
    ASSERT_NE(client, nullptr);
    results = client->TransferSubscriptions({kSubscriptionId, 9}, true);
    EXPECT_TRUE(client->connected());
  }  // joins the server thread
  ASSERT_THAT(results.status(), IsOk());
  EXPECT_THAT(*results, ElementsAre(TransferResult{contract::status::kGood, {3, 4}},
                                    TransferResult{Code("BadSubscriptionIdInvalid"), {}}));
  ASSERT_TRUE(seen.has_value());
  EXPECT_THAT(seen->subscription_ids, ElementsAre(kSubscriptionId, 9u));
  EXPECT_TRUE(seen->send_initial_values);
}

TEST_F(ClientPublishTest, TransferSubscriptionsWithTheWrongResultCountClosesTheConnection) {
  FakeUaServer::Options options;
  options.handler = [](uint32_t id, std::span<const uint8_t> body) -> std::optional<Reply> {
    if (id != TransferSubscriptionsRequest::kBinaryEncodingId) return std::nullopt;
    TransferSubscriptionsRequest request =
        DecodeServiceMessage<TransferSubscriptionsRequest>(body).value();
    TransferSubscriptionsResponse response;
    response.response_header = Answer(request.request_header);
    response.results.resize(1);
    return Reply::Body(Encode(response));
  };
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = Connect(server);
  ASSERT_NE(client, nullptr);
  EXPECT_THAT(client->TransferSubscriptions({1, 2}, false).status(),
              StatusIs(StatusCode::kUnavailable, HasSubstr("1 results for 2 subscriptions")));
  EXPECT_FALSE(client->connected());
}

// Republish of a message the server keeps, and of one it no longer has.
class ClientRepublishTest : public ClientPublishTest {
 protected:
  static std::optional<Reply> Handle(uint32_t id, std::span<const uint8_t> body) {
    if (id != RepublishRequest::kBinaryEncodingId) return std::nullopt;
    RepublishRequest request = DecodeServiceMessage<RepublishRequest>(body).value();
    if (request.subscription_id != kSubscriptionId || request.retransmit_sequence_number != 3) {
      return Reply::Body(Fault(body, Quality(0x807B0000)));  // BadMessageNotAvailable
    }
    RepublishResponse response;
    response.response_header = Answer(request.request_header);
    response.notification_message = Message(3);
    return Reply::Body(Encode(response));
  }
};

TEST_F(ClientRepublishTest, ReturnsTheKeptMessage) {
  FakeUaServer::Options options;
  options.handler = Handle;
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = Connect(server);
  ASSERT_NE(client, nullptr);
  Result<NotificationMessage> message = client->Republish(kSubscriptionId, 3);
  ASSERT_THAT(message.status(), IsOk());
  EXPECT_EQ(*message, Message(3));
  Result<Notification> n = DecodeNotification(message->notification_data.at(0));
  ASSERT_THAT(n.status(), IsOk());
  ASSERT_TRUE(std::holds_alternative<DataChangeNotification>(*n));
  EXPECT_EQ(std::get<DataChangeNotification>(*n).monitored_items.at(0).client_handle, 3u);
}

TEST_F(ClientRepublishTest, MessageNoLongerAvailableIsAnErrorThatKeepsTheConnection) {
  FakeUaServer::Options options;
  options.handler = Handle;
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = Connect(server);
  ASSERT_NE(client, nullptr);
  EXPECT_THAT(client->Republish(kSubscriptionId, 4).status(),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("RepublishRequest failed")));
  EXPECT_TRUE(client->connected());
}

// BadMessageNotAvailable (0x807B0000), which Client::Republish documents, is named in the error
// (not "0x807B0000: RepublishRequest failed").
TEST_F(ClientRepublishTest, MessageNoLongerAvailableIsNamed) {
  FakeUaServer::Options options;
  options.handler = Handle;
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = Connect(server);
  ASSERT_NE(client, nullptr);
  EXPECT_THAT(client->Republish(kSubscriptionId, 4).status(),
              StatusIs(StatusCode::kFailedPrecondition,
                       HasSubstr("BadMessageNotAvailable: RepublishRequest failed")));
}

}  // namespace
}  // namespace kiln::drivers::opcua
