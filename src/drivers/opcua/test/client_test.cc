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
#include "drivers/opcua/ua_tcp.h"
#include "testing/status_matchers.h"

namespace kiln::drivers::opcua {
namespace {

using contract::Quality;
using ::kiln::testing::IsOk;
using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr uint32_t kOpenId = OpenSecureChannelRequest::kBinaryEncodingId;
constexpr uint32_t kCloseChannelId = CloseSecureChannelRequest::kBinaryEncodingId;
constexpr uint32_t kCreateSessionId = CreateSessionRequest::kBinaryEncodingId;
constexpr uint32_t kActivateId = ActivateSessionRequest::kBinaryEncodingId;
constexpr uint32_t kCloseSessionId = CloseSessionRequest::kBinaryEncodingId;
constexpr uint32_t kReadId = ReadRequest::kBinaryEncodingId;
constexpr uint32_t kWriteId = WriteRequest::kBinaryEncodingId;

template <typename T>
std::vector<uint8_t> Encode(const T& message) {
  Result<std::vector<uint8_t>> body = EncodeServiceMessage(message);
  EXPECT_THAT(body.status(), IsOk());
  return body.ok() ? *body : std::vector<uint8_t>();
}

std::vector<uint8_t> ErrBytes(Quality code, std::string reason) {
  ErrorMessage error;
  error.error = code;
  error.reason = std::move(reason);
  return EncodeError(error).value();
}

ResponseHeader Answer(const RequestHeader& request, Quality result = contract::status::kGood) {
  ResponseHeader h;
  h.request_handle = request.request_handle;
  h.service_result = result;
  return h;
}

// What the fake server does with one request.
struct Reply {
  // kStale: `bytes` as the answer to another request id first, then as the answer. kAbort: an
  // abort chunk with BadRequestTooLarge.
  enum class Kind { kBody, kRaw, kSilence, kClose, kStale, kAbort };
  Kind kind = Kind::kBody;
  std::vector<uint8_t> bytes;  // a service body (kBody) or bytes sent as they are (kRaw)

  static Reply Body(std::vector<uint8_t> b) { return {Kind::kBody, std::move(b)}; }
  static Reply Raw(std::vector<uint8_t> b) { return {Kind::kRaw, std::move(b)}; }
  static Reply Silence() { return {Kind::kSilence, {}}; }
  static Reply Close() { return {Kind::kClose, {}}; }
  static Reply Stale(std::vector<uint8_t> b) { return {Kind::kStale, std::move(b)}; }
  static Reply Abort() { return {Kind::kAbort, {}}; }
};

// An in-process OPC UA server on a loopback port, built from the same sans-IO layer: answers
// HEL, OPN (Issue and Renew), CreateSession, ActivateSession, Read (fixed values), Write and
// CloseSession, and closes on CLO. A handler may replace the answer to any MSG request.
// Serves one connection after the other on its own thread; records what it received.
class FakeUaServer {
 public:
  // Returns nullopt for the default answer.
  using Handler =
      std::function<std::optional<Reply>(uint32_t encoding_id, std::span<const uint8_t> body)>;

  struct Options {
    uint32_t revised_lifetime_ms = 600000;
    uint32_t send_chunk_size = 65536;
    uint32_t max_message_size = 16u << 20;  // of a request body, in the ACK
    std::vector<UserTokenPolicy> policies = {AnonymousPolicy()};
    std::optional<std::vector<uint8_t>> hello_reply;  // sent instead of ACK
    Handler handler;
  };

  static UserTokenPolicy AnonymousPolicy() {
    UserTokenPolicy p;
    p.policy_id = "anon-policy";
    p.token_type = UserTokenType::kAnonymous;
    return p;
  }

  explicit FakeUaServer(Options options) : options_(std::move(options)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
  }

  ~FakeUaServer() {
    thread_.request_stop();
    thread_.join();
    ::close(listen_fd_);
  }

  std::string endpoint() const { return "opc.tcp://127.0.0.1:" + std::to_string(port_) + "/kiln"; }

  std::vector<uint32_t> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // Waits until `n` requests were received (or 10 s passed).
  bool WaitForRequests(size_t n) const {
    std::unique_lock lock(mu_);
    return received_.wait_for(lock, std::chrono::seconds(10),
                              [&] { return requests_.size() >= n; });
  }
  std::vector<OpenSecureChannelRequest> opens() const {
    std::lock_guard lock(mu_);
    return opens_;
  }
  std::vector<WriteRequest> writes() const {
    std::lock_guard lock(mu_);
    return writes_;
  }
  std::optional<ActivateSessionRequest> activate() const {
    std::lock_guard lock(mu_);
    return activate_;
  }
  std::optional<HelloMessage> hello() const {
    std::lock_guard lock(mu_);
    return hello_;
  }
  int connections() const {
    std::lock_guard lock(mu_);
    return connections_;
  }

 private:
  static constexpr std::chrono::milliseconds kPoll{20};

  void Run(std::stop_token stop) {
    while (!stop.stop_requested()) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(kPoll.count())) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      {
        std::lock_guard lock(mu_);
        ++connections_;
      }
      Serve(fd, stop);
      ::close(fd);
    }
  }

  void Serve(int fd, const std::stop_token& stop) {
    Connection c;
    c.fd = fd;
    c.channel_id = 7 + static_cast<uint32_t>(connections());
    std::vector<uint8_t> rx;
    uint8_t block[65536];
    while (!stop.stop_requested()) {
      Result<size_t> size = NextMessageSize(rx, 1u << 24);
      if (!size.ok()) return;
      if (*size > 0 && rx.size() >= *size) {
        std::vector<uint8_t> message(rx.begin(), rx.begin() + static_cast<ptrdiff_t>(*size));
        rx.erase(rx.begin(), rx.begin() + static_cast<ptrdiff_t>(*size));
        if (!Handle(c, message)) return;
        continue;
      }
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(kPoll.count())) <= 0) continue;
      const ssize_t n = ::recv(fd, block, sizeof(block), 0);
      if (n <= 0) return;
      rx.insert(rx.end(), block, block + n);
    }
  }

  struct Connection {
    int fd = -1;
    uint32_t channel_id = 0;
    uint32_t token_id = 0;
    NoChunkSecurity security;
    std::unique_ptr<ChunkWriter> writer;
    ChunkAssembler assembler{AssemblerLimits{}};
  };

  static bool SendRaw(int fd, std::span<const uint8_t> bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  static bool SendMessage(Connection& c, MessageType type, uint32_t request_id,
                          std::span<const uint8_t> body) {
    Result<std::vector<std::vector<uint8_t>>> chunks =
        c.writer->WriteMessage(type, c.channel_id, c.token_id, request_id, body, c.security);
    EXPECT_THAT(chunks.status(), IsOk());
    if (!chunks.ok()) return false;
    for (const std::vector<uint8_t>& chunk : *chunks) {
      if (!SendRaw(c.fd, chunk)) return false;
    }
    return true;
  }

  // Returns false to close the connection.
  bool Handle(Connection& c, std::vector<uint8_t>& message) {
    Result<MessageHeader> header = DecodeMessageHeader(message);
    if (!header.ok()) return false;
    if (header->type == MessageType::kHello) {
      Result<HelloMessage> hello = DecodeHello(message);
      if (!hello.ok()) return false;
      {
        std::lock_guard lock(mu_);
        hello_ = *hello;
      }
      if (options_.hello_reply.has_value()) return SendRaw(c.fd, *options_.hello_reply);
      AcknowledgeMessage ack;
      ack.receive_buffer_size = 65536;
      ack.send_buffer_size = options_.send_chunk_size;
      ack.max_message_size = options_.max_message_size;
      ack.max_chunk_count = 0;
      ChunkWriterLimits limits;
      limits.max_chunk_size = std::min(options_.send_chunk_size, hello->receive_buffer_size);
      c.writer = std::make_unique<ChunkWriter>(limits);
      return SendRaw(c.fd, EncodeAcknowledge(ack).value());
    }
    Result<ChunkHeader> chunk_header = DecodeChunkHeader(message);
    if (!chunk_header.ok()) return false;
    Result<DecodedChunk> decoded = OpenChunk(message, *chunk_header, c.security);
    if (!decoded.ok()) return false;
    Result<std::optional<AssembledMessage>> assembled = c.assembler.Add(*decoded);
    if (!assembled.ok()) return false;
    if (!assembled->has_value()) return true;
    const AssembledMessage& m = **assembled;
    Result<uint32_t> id = PeekEncodingId(m.body);
    if (!id.ok()) return false;
    {
      std::lock_guard lock(mu_);
      requests_.push_back(*id);
    }
    received_.notify_all();
    if (m.type == MessageType::kCloseSecureChannel) return false;
    if (m.type == MessageType::kOpenSecureChannel) {
      Result<OpenSecureChannelRequest> open =
          DecodeServiceMessage<OpenSecureChannelRequest>(m.body);
      if (!open.ok()) return false;
      {
        std::lock_guard lock(mu_);
        opens_.push_back(*open);
      }
      OpenSecureChannelResponse response;
      response.response_header = Answer(open->request_header);
      response.security_token.channel_id = c.channel_id;
      response.security_token.token_id = ++c.token_id;
      response.security_token.revised_lifetime = options_.revised_lifetime_ms;
      response.server_nonce = std::vector<uint8_t>();
      return SendMessage(c, MessageType::kOpenSecureChannel, m.request_id, Encode(response));
    }
    std::optional<Reply> reply;
    if (options_.handler) reply = options_.handler(*id, m.body);
    if (!reply.has_value()) reply = DefaultReply(*id, m.body);
    switch (reply->kind) {
      case Reply::Kind::kBody:
        return SendMessage(c, MessageType::kMessage, m.request_id, reply->bytes);
      case Reply::Kind::kRaw:
        return SendRaw(c.fd, reply->bytes);
      case Reply::Kind::kSilence:
        return true;
      case Reply::Kind::kClose:
        return false;
      case Reply::Kind::kStale:
        return SendMessage(c, MessageType::kMessage, m.request_id + 1000, reply->bytes) &&
               SendMessage(c, MessageType::kMessage, m.request_id, reply->bytes);
      case Reply::Kind::kAbort: {
        ErrorMessage error;
        error.error = internal::UaStatusCodeFromName("BadRequestTooLarge").value();
        error.reason = "too big";
        Result<std::vector<uint8_t>> chunk =
            c.writer->WriteAbort(c.channel_id, c.token_id, m.request_id, error, c.security);
        return chunk.ok() && SendRaw(c.fd, *chunk);
      }
    }
    return false;
  }

  Reply DefaultReply(uint32_t id, std::span<const uint8_t> body) {
    switch (id) {
      case kCreateSessionId: {
        CreateSessionRequest request = DecodeServiceMessage<CreateSessionRequest>(body).value();
        CreateSessionResponse response;
        response.response_header = Answer(request.request_header);
        response.session_id = NodeId(1, 4242);
        response.authentication_token = NodeId::Opaque(0, std::vector<uint8_t>(16, 0xAB));
        response.revised_session_timeout = request.requested_session_timeout;
        EndpointDescription none;
        none.endpoint_url = endpoint();
        none.security_mode = MessageSecurityMode::kNone;
        none.security_policy_uri = std::string(kSecurityPolicyNoneUri);
        none.user_identity_tokens = options_.policies;
        EndpointDescription secure;  // must be ignored: not SecurityPolicy None
        secure.security_mode = MessageSecurityMode::kSignAndEncrypt;
        secure.security_policy_uri = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256";
        UserTokenPolicy anon = AnonymousPolicy();
        anon.policy_id = "wrong-endpoint";
        secure.user_identity_tokens = {anon};
        response.server_endpoints = {secure, none};
        return Reply::Body(Encode(response));
      }
      case kActivateId: {
        ActivateSessionRequest request = DecodeServiceMessage<ActivateSessionRequest>(body).value();
        {
          std::lock_guard lock(mu_);
          activate_ = request;
        }
        ActivateSessionResponse response;
        response.response_header = Answer(request.request_header);
        if (request.request_header.authentication_token !=
            NodeId::Opaque(0, std::vector<uint8_t>(16, 0xAB))) {
          response.response_header.service_result =
              internal::UaStatusCodeFromName("BadSessionIdInvalid").value();
        }
        return Reply::Body(Encode(response));
      }
      case kCloseSessionId: {
        CloseSessionRequest request = DecodeServiceMessage<CloseSessionRequest>(body).value();
        CloseSessionResponse response;
        response.response_header = Answer(request.request_header);
        return Reply::Body(Encode(response));
      }
      case kReadId: {
        ReadRequest request = DecodeServiceMessage<ReadRequest>(body).value();
        ReadResponse response;
        response.response_header = Answer(request.request_header);
        for (const ReadValueId& node : request.nodes_to_read) {
          response.results.push_back(FixedValue(node.node_id));
        }
        return Reply::Body(Encode(response));
      }
      case kWriteId: {
        WriteRequest request = DecodeServiceMessage<WriteRequest>(body).value();
        {
          std::lock_guard lock(mu_);
          writes_.push_back(request);
        }
        WriteResponse response;
        response.response_header = Answer(request.request_header);
        for (const WriteValue& w : request.nodes_to_write) {
          response.results.push_back(w.value.value.has_value() &&
                                             w.value.value->type == BuiltinType::kDouble
                                         ? contract::status::kGood
                                         : contract::status::kBadTypeMismatch);
        }
        return Reply::Body(Encode(response));
      }
      default: {
        Reader r(body);
        r.Read<NodeId>();
        ServiceFault fault;
        fault.response_header = Answer(r.Read<RequestHeader>(), contract::status::kBadNotSupported);
        return Reply::Body(Encode(fault));
      }
    }
  }

 public:
  // ns=2;s=Temperature -> 21.5 Good; ns=2;s=Broken -> BadSensorFailure; others BadNodeIdUnknown.
  static DataValue FixedValue(const NodeId& node) {
    DataValue v;
    if (node == NodeId(2, std::string("Temperature"))) {
      v.value = Variant::Scalar(21.5);
      v.source_timestamp = DateTime{DateTime::kUnixEpochTicks + 17000000000000000};
    } else if (node == NodeId(2, std::string("Broken"))) {
      v.value = Variant::Scalar(0.0);
      v.status = contract::status::kBadSensorFailure;
    } else {
      v.status = contract::status::kBadNodeIdUnknown;
    }
    return v;
  }

 private:
  Options options_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  mutable std::condition_variable received_;
  std::vector<uint32_t> requests_;
  std::vector<OpenSecureChannelRequest> opens_;
  std::vector<WriteRequest> writes_;
  std::optional<ActivateSessionRequest> activate_;
  std::optional<HelloMessage> hello_;
  int connections_ = 0;
  std::jthread thread_;
};

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
