#include "drivers/opcua/client.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "drivers/opcua/chunk_security.h"
#include "drivers/opcua/encoding.h"
#include "drivers/opcua/internal/status_codes.h"
#include "drivers/opcua/services.h"
#include "drivers/opcua/test/fake_ua_server.h"
#include "drivers/opcua/ua_tcp.h"
#include "testing/status_matchers.h"

namespace kiln::drivers::opcua {
namespace {

using contract::Quality;
using ::kiln::drivers::opcua::testing::Answer;
using ::kiln::drivers::opcua::testing::Encode;
using ::kiln::drivers::opcua::testing::FakeUaServer;
using ::kiln::drivers::opcua::testing::kActivateId;
using ::kiln::drivers::opcua::testing::kCloseChannelId;
using ::kiln::drivers::opcua::testing::kCloseSessionId;
using ::kiln::drivers::opcua::testing::kCreateSessionId;
using ::kiln::drivers::opcua::testing::kOpenId;
using ::kiln::drivers::opcua::testing::kReadId;
using ::kiln::drivers::opcua::testing::kWriteId;
using ::kiln::drivers::opcua::testing::Reply;
using ::kiln::testing::IsOk;
using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::SizeIs;

std::vector<uint8_t> ErrBytes(Quality code, std::string reason) {
  ErrorMessage error;
  error.error = code;
  error.reason = std::move(reason);
  return EncodeError(error).value();
}

class ClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<Client> MakeClient(const FakeUaServer& server,
                                     std::function<void(ClientOptions&)> edit = nullptr) {
    ClientOptions options;
    options.endpoint = server.endpoint();
    options.connect_timeout = std::chrono::milliseconds(2000);
    options.request_timeout = std::chrono::milliseconds(2000);
    if (edit) edit(options);
    Result<std::unique_ptr<Client>> client =
        Client::Create(options, clock_, Logger(sink_, "opcua"));
    EXPECT_THAT(client.status(), IsOk());
    return client.ok() ? std::move(*client) : nullptr;
  }

  SystemClock clock_;
  NullSink sink_;
};

const NodeId kTemperature(2, std::string("Temperature"));
const NodeId kBroken(2, std::string("Broken"));
const NodeId kMissing(2, std::string("Missing"));

TEST(EndpointUrlTest, ParsesHostPortAndPath) {
  Result<EndpointUrl> url = ParseEndpointUrl("opc.tcp://plc.local:4841/UA/Server");
  ASSERT_THAT(url.status(), IsOk());
  EXPECT_EQ(url->host, "plc.local");
  EXPECT_EQ(url->port, 4841);
  EXPECT_EQ(url->path, "/UA/Server");

  url = ParseEndpointUrl("opc.tcp://10.0.0.5");
  ASSERT_THAT(url.status(), IsOk());
  EXPECT_EQ(url->host, "10.0.0.5");
  EXPECT_EQ(url->port, 4840);
  EXPECT_EQ(url->path, "");

  url = ParseEndpointUrl("opc.tcp://[::1]:4850/x");
  ASSERT_THAT(url.status(), IsOk());
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 4850);
  EXPECT_EQ(url->path, "/x");
}

TEST(EndpointUrlTest, RefusesOtherSchemesAndBadPorts) {
  EXPECT_THAT(ParseEndpointUrl("http://x:4840").status(), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseEndpointUrl("opc.tcp://").status(), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseEndpointUrl("opc.tcp://h:99999").status(),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST(ServiceResultToStatusTest, MapsCodesAndKeepsTheName) {
  EXPECT_THAT(ServiceResultToStatus(contract::status::kBadTimeout, "ReadRequest failed"),
              StatusIs(StatusCode::kDeadlineExceeded, HasSubstr("BadTimeout: ReadRequest")));
  EXPECT_THAT(
      ServiceResultToStatus(internal::UaStatusCodeFromName("BadSessionIdInvalid").value(), "x"),
      StatusIs(StatusCode::kUnavailable, HasSubstr("BadSessionIdInvalid")));
  EXPECT_THAT(
      ServiceResultToStatus(internal::UaStatusCodeFromName("BadUserAccessDenied").value(), "x"),
      StatusIs(StatusCode::kPermissionDenied));
  EXPECT_THAT(
      ServiceResultToStatus(internal::UaStatusCodeFromName("BadTooManyOperations").value(), "x"),
      StatusIs(StatusCode::kResourceExhausted));
  EXPECT_THAT(ServiceResultToStatus(contract::status::kBadNotSupported, "x"),
              StatusIs(StatusCode::kUnimplemented));
  EXPECT_THAT(ServiceResultToStatus(contract::status::kBadNodeIdUnknown, "x"),
              StatusIs(StatusCode::kFailedPrecondition, HasSubstr("BadNodeIdUnknown")));
}

TEST(ClientCreateTest, RefusesBadOptions) {
  SystemClock clock;
  NullSink sink;
  ClientOptions options;
  options.endpoint = "tcp://x";
  EXPECT_THAT(Client::Create(options, clock, Logger(sink, "t")).status(),
              StatusIs(StatusCode::kInvalidArgument));
  options.endpoint = "opc.tcp://x";
  options.password = "secret";
  EXPECT_THAT(Client::Create(options, clock, Logger(sink, "t")).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("user name")));
}

TEST_F(ClientTest, ConnectsReadsWritesAndCloses) {
  FakeUaServer server({});
  std::unique_ptr<Client> client = MakeClient(server);
  ASSERT_THAT(client->Connect(), IsOk());
  EXPECT_TRUE(client->connected());
  EXPECT_EQ(client->secure_channel_id(), 8u);
  EXPECT_EQ(client->token_id(), 1u);
  EXPECT_EQ(client->session_id(), NodeId(1, 4242));

  const std::vector<NodeId> nodes = {kTemperature, kBroken, kMissing};
  Result<std::vector<DataValue>> values = client->Read(nodes);
  ASSERT_THAT(values.status(), IsOk());
  ASSERT_THAT(*values, SizeIs(3));
  EXPECT_EQ((*values)[0], FakeUaServer::FixedValue(kTemperature));
  EXPECT_EQ((*values)[1].quality(), contract::status::kBadSensorFailure);
  EXPECT_EQ((*values)[2].quality(), contract::status::kBadNodeIdUnknown);

  EXPECT_THAT(client->Write(kTemperature, Variant::Scalar(42.0)),
              IsOkAndHolds(contract::status::kGood));
  EXPECT_THAT(client->Write(kTemperature, Variant::Scalar(int32_t{42})),
              IsOkAndHolds(contract::status::kBadTypeMismatch));
  ASSERT_THAT(server.writes(), SizeIs(2));
  EXPECT_EQ(server.writes()[0].nodes_to_write[0].node_id, kTemperature);
  EXPECT_EQ(server.writes()[0].nodes_to_write[0].value.value, Variant::Scalar(42.0));

  EXPECT_THAT(client->Close(), IsOk());
  EXPECT_FALSE(client->connected());
  EXPECT_THAT(client->Close(), IsOk());  // idempotent

  // The handshake as the server saw it.
  ASSERT_TRUE(server.hello().has_value());
  EXPECT_EQ(server.hello()->endpoint_url, server.endpoint());
  ASSERT_THAT(server.opens(), SizeIs(1));
  EXPECT_EQ(server.opens()[0].request_type, SecurityTokenRequestType::kIssue);
  EXPECT_EQ(server.opens()[0].security_mode, MessageSecurityMode::kNone);
  EXPECT_EQ(server.opens()[0].requested_lifetime, 3600000u);
  ASSERT_TRUE(server.activate().has_value());
  Result<AnonymousIdentityToken> token =
      FromExtensionObject<AnonymousIdentityToken>(server.activate()->user_identity_token);
  ASSERT_THAT(token.status(), IsOk());
  EXPECT_EQ(token->policy_id, UaString("anon-policy"));
  // The server records CLO on its own thread; wait for it.
  ASSERT_TRUE(server.WaitForRequests(8));
  EXPECT_THAT(server.requests(), ElementsAre(kOpenId, kCreateSessionId, kActivateId, kReadId,
                                             kWriteId, kWriteId, kCloseSessionId, kCloseChannelId));
}

TEST_F(ClientTest, CallsFailUnavailableWhenNotConnected) {
  FakeUaServer server({});
  std::unique_ptr<Client> client = MakeClient(server);
  EXPECT_THAT(client->Read(std::vector<NodeId>{kTemperature}).status(),
              StatusIs(StatusCode::kUnavailable, HasSubstr("not connected")));
  EXPECT_THAT(client->Write(kTemperature, Variant::Scalar(1.0)).status(),
              StatusIs(StatusCode::kUnavailable));
}

TEST_F(ClientTest, ConnectFailsUnavailableWhenNothingListens) {
  ClientOptions options;
  {
    FakeUaServer server({});
    options.endpoint = server.endpoint();
  }  // the port is closed now
  options.connect_timeout = std::chrono::milliseconds(1000);
  std::unique_ptr<Client> client = Client::Create(options, clock_, Logger(sink_, "opcua")).value();
  EXPECT_THAT(client->Connect(), StatusIs(StatusCode::kUnavailable));
  EXPECT_FALSE(client->connected());
}

TEST_F(ClientTest, ServiceFaultIsAnErrorNamingTheStatusCodeAndKeepsTheConnection) {
  FakeUaServer::Options options;
  bool fault_once = true;
  options.handler = [&fault_once](uint32_t id,
                                  std::span<const uint8_t> body) -> std::optional<Reply> {
    if (id != kReadId || !fault_once) return std::nullopt;
    fault_once = false;
    ReadRequest request = DecodeServiceMessage<ReadRequest>(body).value();
    ServiceFault fault;
    fault.response_header = Answer(request.request_header,
                                   internal::UaStatusCodeFromName("BadTooManyOperations").value());
    return Reply::Body(Encode(fault));
  };
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = MakeClient(server);
  ASSERT_THAT(client->Connect(), IsOk());
  EXPECT_THAT(client->Read(std::vector<NodeId>{kTemperature}).status(),
              StatusIs(StatusCode::kResourceExhausted,
                       HasSubstr("BadTooManyOperations: ReadRequest failed")));
  EXPECT_TRUE(client->connected());
  EXPECT_THAT(client->Read(std::vector<NodeId>{kTemperature}).status(), IsOk());
}

TEST_F(ClientTest, UnsupportedServiceIsUnimplemented) {
  FakeUaServer server({});
  std::unique_ptr<Client> client = MakeClient(server);
  ASSERT_THAT(client->Connect(), IsOk());
  EXPECT_THAT(client->Browse(NodeId(0, kNodeObjectsFolder)).status(),
              StatusIs(StatusCode::kUnimplemented, HasSubstr("BadNotSupported: BrowseRequest")));
  EXPECT_TRUE(client->connected());
}

// Each misbehaviour of the server answering a Read closes the connection with Unavailable
// naming the reason.
struct Misbehaviour {
  std::string name;
  std::function<Reply(std::span<const uint8_t> body)> reply;
  std::string reason;
};

class ClientMisbehaviourTest : public ClientTest,
                               public ::testing::WithParamInterface<Misbehaviour> {};

TEST_P(ClientMisbehaviourTest, ClosesTheConnectionWithUnavailable) {
  FakeUaServer::Options options;
  const Misbehaviour& m = GetParam();
  options.handler = [&m](uint32_t id, std::span<const uint8_t> body) -> std::optional<Reply> {
    if (id != kReadId) return std::nullopt;
    return m.reply(body);
  };
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = MakeClient(server);
  ASSERT_THAT(client->Connect(), IsOk());
  EXPECT_THAT(client->Read(std::vector<NodeId>{kTemperature}).status(),
              StatusIs(StatusCode::kUnavailable, HasSubstr(m.reason)));
  EXPECT_FALSE(client->connected());
  // The client can connect again afterwards.
  ASSERT_THAT(client->Connect(), IsOk());
  EXPECT_EQ(server.connections(), 2);
}

std::vector<uint8_t> TruncatedReadResponse(std::span<const uint8_t> body) {
  ReadRequest request = DecodeServiceMessage<ReadRequest>(body).value();
  ReadResponse response;
  response.response_header = Answer(request.request_header);
  response.results = {FakeUaServer::FixedValue(kTemperature)};
  std::vector<uint8_t> bytes = Encode(response);
  bytes.resize(bytes.size() - 5);
  return bytes;
}

INSTANTIATE_TEST_SUITE_P(
    Server, ClientMisbehaviourTest,
    ::testing::Values(
        Misbehaviour{"Garbage",
                     [](std::span<const uint8_t>) {
                       const std::string junk = "this is not OPC UA at all";
                       return Reply::Raw(std::vector<uint8_t>(junk.begin(), junk.end()));
                     },
                     "ReadRequest: "},
        Misbehaviour{"ErrMessage",
                     [](std::span<const uint8_t>) {
                       return Reply::Raw(ErrBytes(
                           internal::UaStatusCodeFromName("BadTcpInternalError").value(), "boom"));
                     },
                     "ERR BadTcpInternalError: boom"},
        Misbehaviour{"ChunkTooLarge",
                     [](std::span<const uint8_t>) {
                       // A MSG header claiming 16 MiB, beyond our 64 KiB receive buffer.
                       return Reply::Raw({'M', 'S', 'G', 'F', 0x00, 0x00, 0x00, 0x01});
                     },
                     "BadTcpMessageTooLarge"},
        Misbehaviour{
            "TruncatedBody",
            [](std::span<const uint8_t> body) { return Reply::Body(TruncatedReadResponse(body)); },
            "ReadRequest: "},
        Misbehaviour{"WrongResponseType",
                     [](std::span<const uint8_t>) {
                       WriteResponse response;
                       return Reply::Body(Encode(response));
                     },
                     "expected ReadResponse"},
        Misbehaviour{"WrongResultCount",
                     [](std::span<const uint8_t> body) {
                       ReadRequest request = DecodeServiceMessage<ReadRequest>(body).value();
                       ReadResponse response;
                       response.response_header = Answer(request.request_header);
                       return Reply::Body(Encode(response));
                     },
                     "0 values for 1 nodes"},
        Misbehaviour{"SessionInvalid",
                     [](std::span<const uint8_t> body) {
                       ReadRequest request = DecodeServiceMessage<ReadRequest>(body).value();
                       ServiceFault fault;
                       fault.response_header =
                           Answer(request.request_header,
                                  internal::UaStatusCodeFromName("BadSessionIdInvalid").value());
                       return Reply::Body(Encode(fault));
                     },
                     "BadSessionIdInvalid"},
        Misbehaviour{"ConnectionClosed", [](std::span<const uint8_t>) { return Reply::Close(); },
                     "closed the connection"}),
    [](const ::testing::TestParamInfo<Misbehaviour>& p) { return p.param.name; });

TEST_F(ClientTest, AbortChunkFailsTheRequestAndKeepsTheConnection) {
  FakeUaServer::Options options;
  bool abort_once = true;
  options.handler = [&abort_once](uint32_t id, std::span<const uint8_t>) -> std::optional<Reply> {
    if (id != kReadId || !abort_once) return std::nullopt;
    abort_once = false;
    return Reply::Abort();
  };
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = MakeClient(server);
  ASSERT_THAT(client->Connect(), IsOk());
  EXPECT_THAT(
      client->Read(std::vector<NodeId>{kTemperature}).status(),
      StatusIs(StatusCode::kFailedPrecondition,
               HasSubstr("BadRequestTooLarge: ReadRequest aborted by the server: too big")));
  EXPECT_TRUE(client->connected());
  EXPECT_THAT(client->Read(std::vector<NodeId>{kTemperature}).status(), IsOk());
}

TEST_F(ClientTest, DiscardsResponsesToOtherRequests) {
  FakeUaServer::Options options;
  options.handler = [](uint32_t id, std::span<const uint8_t> body) -> std::optional<Reply> {
    if (id != kReadId) return std::nullopt;
    ReadRequest request = DecodeServiceMessage<ReadRequest>(body).value();
    ReadResponse response;
    response.response_header = Answer(request.request_header);
    response.results = {FakeUaServer::FixedValue(kTemperature)};
    return Reply::Stale(Encode(response));
  };
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = MakeClient(server);
  ASSERT_THAT(client->Connect(), IsOk());
  EXPECT_THAT(client->Read(std::vector<NodeId>{kTemperature}),
              IsOkAndHolds(ElementsAre(FakeUaServer::FixedValue(kTemperature))));
  EXPECT_TRUE(client->connected());
}

TEST_F(ClientTest, RequestBeyondTheServersLimitIsRefusedBeforeSending) {
  FakeUaServer::Options options;
  options.max_message_size = 8192;
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = MakeClient(server);
  ASSERT_THAT(client->Connect(), IsOk());
  const Variant big = Variant::Scalar(UaString(std::string(10000, 'x')));
  EXPECT_THAT(client->Write(kTemperature, big).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("BadRequestTooLarge")));
  EXPECT_TRUE(client->connected());
  EXPECT_THAT(client->Read(std::vector<NodeId>{kTemperature}).status(), IsOk());
  EXPECT_THAT(server.writes(), SizeIs(0));
}

TEST_F(ClientTest, SilenceTimesOutAndClosesTheConnection) {
  FakeUaServer::Options options;
  options.handler = [](uint32_t id, std::span<const uint8_t>) -> std::optional<Reply> {
    if (id != kReadId) return std::nullopt;
    return Reply::Silence();
  };
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = MakeClient(
      server, [](ClientOptions& o) { o.request_timeout = std::chrono::milliseconds(100); });
  ASSERT_THAT(client->Connect(), IsOk());
  EXPECT_THAT(client->Read(std::vector<NodeId>{kTemperature}).status(),
              StatusIs(StatusCode::kDeadlineExceeded, HasSubstr("ReadRequest")));
  EXPECT_FALSE(client->connected());
}

TEST_F(ClientTest, ErrInsteadOfAcknowledgeFailsConnect) {
  FakeUaServer::Options options;
  options.hello_reply = ErrBytes(internal::UaStatusCodeFromName("BadTcpEndpointUrlInvalid").value(),
                                 "no such endpoint");
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = MakeClient(server);
  EXPECT_THAT(client->Connect(),
              StatusIs(StatusCode::kUnavailable,
                       HasSubstr("ERR BadTcpEndpointUrlInvalid: no such endpoint")));
  EXPECT_FALSE(client->connected());
}

TEST_F(ClientTest, SilentServerTimesOutConnect) {
  FakeUaServer::Options options;
  options.hello_reply = std::vector<uint8_t>();  // says nothing
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = MakeClient(
      server, [](ClientOptions& o) { o.connect_timeout = std::chrono::milliseconds(100); });
  EXPECT_THAT(client->Connect(), StatusIs(StatusCode::kDeadlineExceeded, HasSubstr("Hello")));
}

TEST_F(ClientTest, ResponsesSplitIntoManyChunksAreAssembled) {
  FakeUaServer::Options options;
  options.send_chunk_size = 8192;
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = MakeClient(server);
  ASSERT_THAT(client->Connect(), IsOk());
  const std::vector<NodeId> nodes(2000, kTemperature);  // ~40 KB of response
  Result<std::vector<DataValue>> values = client->Read(nodes);
  ASSERT_THAT(values.status(), IsOk());
  ASSERT_THAT(*values, SizeIs(2000));
  EXPECT_EQ(values->back(), FakeUaServer::FixedValue(kTemperature));
}

TEST_F(ClientTest, RenewsTheTokenAtThreeQuartersOfItsLifetime) {
  FakeClock clock;
  FakeUaServer::Options options;
  options.revised_lifetime_ms = 1000;
  FakeUaServer server(std::move(options));
  ClientOptions client_options;
  client_options.endpoint = server.endpoint();
  std::unique_ptr<Client> client =
      Client::Create(client_options, clock, Logger(sink_, "opcua")).value();
  ASSERT_THAT(client->Connect(), IsOk());
  const std::vector<NodeId> nodes = {kTemperature};

  clock.Advance(std::chrono::milliseconds(700));
  ASSERT_THAT(client->Read(nodes).status(), IsOk());
  EXPECT_THAT(server.opens(), SizeIs(1));
  EXPECT_EQ(client->token_id(), 1u);

  clock.Advance(std::chrono::milliseconds(100));  // 800 ms > 750 ms
  ASSERT_THAT(client->Read(nodes).status(), IsOk());
  ASSERT_THAT(server.opens(), SizeIs(2));
  EXPECT_EQ(server.opens()[1].request_type, SecurityTokenRequestType::kRenew);
  EXPECT_EQ(client->token_id(), 2u);
  EXPECT_EQ(client->secure_channel_id(), 8u);

  clock.Advance(std::chrono::milliseconds(700));  // 700 ms after the renewal: not yet
  ASSERT_THAT(client->Read(nodes).status(), IsOk());
  EXPECT_THAT(server.opens(), SizeIs(2));
  EXPECT_THAT(client->Close(), IsOk());
}

ReferenceDescription Reference(uint32_t id, std::string name) {
  ReferenceDescription r;
  r.reference_type_id = NodeId(0, kNodeOrganizes);
  r.node_id = ExpandedNodeId(NodeId(2, id));
  r.browse_name.namespace_index = 2;
  r.browse_name.name = std::move(name);
  r.node_class = 2;
  return r;
}

TEST_F(ClientTest, BrowsesAndContinuesWithBrowseNext) {
  FakeUaServer::Options options;
  const std::vector<uint8_t> point = {1, 2, 3};
  options.handler = [&point](uint32_t id, std::span<const uint8_t> body) -> std::optional<Reply> {
    if (id == BrowseRequest::kBinaryEncodingId) {
      BrowseRequest request = DecodeServiceMessage<BrowseRequest>(body).value();
      BrowseResponse response;
      response.response_header = Answer(request.request_header);
      BrowseResult result;
      if (request.nodes_to_browse.size() == 1 && request.requested_max_references_per_node == 2 &&
          request.nodes_to_browse[0].node_id == NodeId(0, kNodeObjectsFolder)) {
        result.references = {Reference(1, "A"), Reference(2, "B")};
        result.continuation_point = point;
      } else {
        result.status_code = contract::status::kBadNodeIdUnknown;
      }
      response.results = {result};
      return Reply::Body(Encode(response));
    }
    if (id == BrowseNextRequest::kBinaryEncodingId) {
      BrowseNextRequest request = DecodeServiceMessage<BrowseNextRequest>(body).value();
      BrowseNextResponse response;
      response.response_header = Answer(request.request_header);
      BrowseResult result;
      if (request.continuation_points == std::vector<ByteString>{point}) {
        result.references = {Reference(3, "C")};
      } else {
        result.status_code = internal::UaStatusCodeFromName("BadContinuationPointInvalid")
                                 .value_or(contract::status::kBad);
      }
      response.results = {result};
      return Reply::Body(Encode(response));
    }
    return std::nullopt;
  };
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = MakeClient(server);
  ASSERT_THAT(client->Connect(), IsOk());
  Result<BrowseResult> first = client->Browse(NodeId(0, kNodeObjectsFolder), 2);
  ASSERT_THAT(first.status(), IsOk());
  EXPECT_THAT(first->references, ElementsAre(Reference(1, "A"), Reference(2, "B")));
  ASSERT_EQ(first->continuation_point, ByteString(point));
  Result<BrowseResult> next = client->BrowseNext(first->continuation_point);
  ASSERT_THAT(next.status(), IsOk());
  EXPECT_THAT(next->references, ElementsAre(Reference(3, "C")));
  EXPECT_FALSE(next->continuation_point.has_value());
}

TEST_F(ClientTest, SubscribesAndPublishesWithAcknowledgements) {
  FakeUaServer::Options options;
  std::vector<SubscriptionAcknowledgement> acks_seen;  // server thread only until joined
  uint32_t sequence = 0;
  options.handler = [&](uint32_t id, std::span<const uint8_t> body) -> std::optional<Reply> {
    if (id == CreateSubscriptionRequest::kBinaryEncodingId) {
      CreateSubscriptionRequest request =
          DecodeServiceMessage<CreateSubscriptionRequest>(body).value();
      CreateSubscriptionResponse response;
      response.response_header = Answer(request.request_header);
      response.subscription_id = 5;
      response.revised_publishing_interval = request.requested_publishing_interval;
      response.revised_lifetime_count = request.requested_lifetime_count;
      response.revised_max_keep_alive_count = request.requested_max_keep_alive_count;
      return Reply::Body(Encode(response));
    }
    if (id == CreateMonitoredItemsRequest::kBinaryEncodingId) {
      CreateMonitoredItemsRequest request =
          DecodeServiceMessage<CreateMonitoredItemsRequest>(body).value();
      CreateMonitoredItemsResponse response;
      response.response_header = Answer(request.request_header);
      for (const MonitoredItemCreateRequest& item : request.items_to_create) {
        MonitoredItemCreateResult result;
        if (item.item_to_monitor.node_id != kTemperature || request.subscription_id != 5) {
          result.status_code = contract::status::kBadNodeIdUnknown;
        }
        result.monitored_item_id = 100 + item.requested_parameters.client_handle;
        result.revised_sampling_interval = item.requested_parameters.sampling_interval;
        result.revised_queue_size = item.requested_parameters.queue_size;
        response.results.push_back(result);
      }
      return Reply::Body(Encode(response));
    }
    if (id == PublishRequest::kBinaryEncodingId) {
      PublishRequest request = DecodeServiceMessage<PublishRequest>(body).value();
      PublishResponse response;
      response.response_header = Answer(request.request_header);
      acks_seen.insert(acks_seen.end(), request.subscription_acknowledgements.begin(),
                       request.subscription_acknowledgements.end());
      response.results.assign(request.subscription_acknowledgements.size(),
                              contract::status::kGood);
      response.subscription_id = 5;
      response.notification_message.sequence_number = ++sequence;
      DataChangeNotification change;
      MonitoredItemNotification item;
      item.client_handle = 1;
      item.value = FakeUaServer::FixedValue(kTemperature);
      change.monitored_items = {item};
      response.notification_message.notification_data = {ToExtensionObject(change).value()};
      response.available_sequence_numbers = {sequence};
      return Reply::Body(Encode(response));
    }
    return std::nullopt;
  };
  {
    FakeUaServer server(std::move(options));
    std::unique_ptr<Client> client = MakeClient(server);
    ASSERT_THAT(client->Connect(), IsOk());
    SubscriptionParameters params;
    params.publishing_interval_ms = 100;
    Result<CreateSubscriptionResponse> subscription = client->CreateSubscription(params);
    ASSERT_THAT(subscription.status(), IsOk());
    EXPECT_EQ(subscription->subscription_id, 5u);
    EXPECT_EQ(subscription->revised_publishing_interval, 100);

    MonitoredItemCreateRequest temperature;
    temperature.item_to_monitor.node_id = kTemperature;
    temperature.requested_parameters.client_handle = 1;
    temperature.requested_parameters.sampling_interval = 100;
    MonitoredItemCreateRequest missing = temperature;
    missing.item_to_monitor.node_id = kMissing;
    missing.requested_parameters.client_handle = 2;
    Result<std::vector<MonitoredItemCreateResult>> items =
        client->CreateMonitoredItems(5, {temperature, missing});
    ASSERT_THAT(items.status(), IsOk());
    ASSERT_THAT(*items, SizeIs(2));
    EXPECT_EQ((*items)[0].status_code, contract::status::kGood);
    EXPECT_EQ((*items)[0].monitored_item_id, 101u);
    EXPECT_EQ((*items)[1].status_code, contract::status::kBadNodeIdUnknown);

    Result<PublishResponse> first = client->Publish({}, std::chrono::milliseconds(2000));
    ASSERT_THAT(first.status(), IsOk());
    ASSERT_THAT(first->notification_message.notification_data, SizeIs(1));
    Result<Notification> notification =
        DecodeNotification(first->notification_message.notification_data[0]);
    ASSERT_THAT(notification.status(), IsOk());
    const auto* change = std::get_if<DataChangeNotification>(&*notification);
    ASSERT_NE(change, nullptr);
    ASSERT_THAT(change->monitored_items, SizeIs(1));
    EXPECT_EQ(change->monitored_items[0].value, FakeUaServer::FixedValue(kTemperature));

    Result<PublishResponse> second =
        client->Publish({{first->subscription_id, first->notification_message.sequence_number}},
                        std::chrono::milliseconds(2000));
    ASSERT_THAT(second.status(), IsOk());
    EXPECT_EQ(second->notification_message.sequence_number, 2u);
    EXPECT_THAT(second->results, ElementsAre(contract::status::kGood));
    EXPECT_THAT(client->Close(), IsOk());
  }  // joins the server thread
  ASSERT_THAT(acks_seen, SizeIs(1));
  EXPECT_EQ(acks_seen[0], (SubscriptionAcknowledgement{5, 1}));
}

TEST_F(ClientTest, UserNameTokenWhenThePolicyAllowsNone) {
  FakeUaServer::Options options;
  UserTokenPolicy user;
  user.policy_id = "user-none";
  user.token_type = UserTokenType::kUserName;
  user.security_policy_uri = std::string(kSecurityPolicyNoneUri);
  options.policies = {FakeUaServer::AnonymousPolicy(), user};
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = MakeClient(server, [](ClientOptions& o) {
    o.username = "operator";
    o.password = "secret";
  });
  ASSERT_THAT(client->Connect(), IsOk());
  ASSERT_TRUE(server.activate().has_value());
  Result<UserNameIdentityToken> token =
      FromExtensionObject<UserNameIdentityToken>(server.activate()->user_identity_token);
  ASSERT_THAT(token.status(), IsOk());
  EXPECT_EQ(token->policy_id, UaString("user-none"));
  EXPECT_EQ(token->user_name, UaString("operator"));
  EXPECT_EQ(token->password, ByteString(std::vector<uint8_t>{'s', 'e', 'c', 'r', 'e', 't'}));
}

TEST_F(ClientTest, UserNameTokenThatMustBeEncryptedIsUnimplemented) {
  FakeUaServer::Options options;
  UserTokenPolicy user;
  user.policy_id = "user-basic256";
  user.token_type = UserTokenType::kUserName;
  user.security_policy_uri = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256";
  options.policies = {user};
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = MakeClient(server, [](ClientOptions& o) {
    o.username = "operator";
    o.password = "secret";
  });
  EXPECT_THAT(client->Connect(), StatusIs(StatusCode::kUnimplemented, HasSubstr("encrypted")));
  EXPECT_FALSE(client->connected());
}

TEST_F(ClientTest, NoAnonymousPolicyFailsConnect) {
  FakeUaServer::Options options;
  options.policies = {};
  FakeUaServer server(std::move(options));
  std::unique_ptr<Client> client = MakeClient(server);
  EXPECT_THAT(client->Connect(), StatusIs(StatusCode::kFailedPrecondition, HasSubstr("anonymous")));
}

}  // namespace
}  // namespace kiln::drivers::opcua
