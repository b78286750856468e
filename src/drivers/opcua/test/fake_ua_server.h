#pragma once
// FakeUaServer: an in-process OPC UA server on a loopback port for the client and driver tests,
// built from the same sans-IO layer (moved here from client_test.cc so several tests can use it).
// Test-only: uses GoogleTest assertions.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "contract/quality.h"
#include "drivers/opcua/chunk_security.h"
#include "drivers/opcua/encoding.h"
#include "drivers/opcua/internal/status_codes.h"
#include "drivers/opcua/services.h"
#include "drivers/opcua/ua_tcp.h"
#include "testing/status_matchers.h"

namespace kiln::drivers::opcua::testing {

inline constexpr uint32_t kOpenId = OpenSecureChannelRequest::kBinaryEncodingId;
inline constexpr uint32_t kCloseChannelId = CloseSecureChannelRequest::kBinaryEncodingId;
inline constexpr uint32_t kCreateSessionId = CreateSessionRequest::kBinaryEncodingId;
inline constexpr uint32_t kActivateId = ActivateSessionRequest::kBinaryEncodingId;
inline constexpr uint32_t kCloseSessionId = CloseSessionRequest::kBinaryEncodingId;
inline constexpr uint32_t kReadId = ReadRequest::kBinaryEncodingId;
inline constexpr uint32_t kWriteId = WriteRequest::kBinaryEncodingId;

template <typename T>
inline std::vector<uint8_t> Encode(const T& message) {
  Result<std::vector<uint8_t>> body = EncodeServiceMessage(message);
  EXPECT_THAT(body.status(), ::kiln::testing::IsOk());
  return body.ok() ? *body : std::vector<uint8_t>();
}

inline ResponseHeader Answer(const RequestHeader& request,
                             contract::Quality result = contract::status::kGood) {
  ResponseHeader h;
  h.request_handle = request.request_handle;
  h.service_result = result;
  return h;
}

// What the fake server does with one request.
struct Reply {
  // kStale: `bytes` as the answer to another request id first, then as the answer. kAbort: an
  // abort chunk with BadRequestTooLarge. kHold: no answer now; the request is kept for
  // FakeUaServer::AnswerHeld (as a server holds a PublishRequest until it has data).
  enum class Kind { kBody, kRaw, kSilence, kClose, kStale, kAbort, kHold };
  Kind kind = Kind::kBody;
  std::vector<uint8_t> bytes;  // a service body (kBody) or bytes sent as they are (kRaw)

  static Reply Body(std::vector<uint8_t> b) { return {Kind::kBody, std::move(b)}; }
  static Reply Raw(std::vector<uint8_t> b) { return {Kind::kRaw, std::move(b)}; }
  static Reply Silence() { return {Kind::kSilence, {}}; }
  static Reply Close() { return {Kind::kClose, {}}; }
  static Reply Stale(std::vector<uint8_t> b) { return {Kind::kStale, std::move(b)}; }
  static Reply Abort() { return {Kind::kAbort, {}}; }
  static Reply Hold() { return {Kind::kHold, {}}; }
};

// An in-process OPC UA server on a loopback port, built from the same sans-IO layer: answers
// HEL, OPN (Issue and Renew), CreateSession, ActivateSession, Read (fixed values), Write and
// CloseSession, and closes on CLO. A handler may replace the answer to any MSG request, or hold
// it for the test to answer later (AnswerHeld), in any order. Serves one connection after the
// other on its own thread; records what it received. The test thread can run tasks on the
// connection being served (RunOnConnection), e.g. to drop it.
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
    EXPECT_EQ(::pipe2(wake_, O_CLOEXEC | O_NONBLOCK), 0);
    thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
  }

  ~FakeUaServer() {
    thread_.request_stop();
    thread_.join();
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
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

  // A request answered with Reply::Hold(), not answered yet.
  struct HeldRequest {
    uint32_t request_id = 0;  // of the secure conversation: the answer must carry it
    uint32_t encoding_id = 0;
    std::vector<uint8_t> body;
  };

  // The connection being served (server thread only).
  struct Connection {
    int fd = -1;
    uint32_t channel_id = 0;
    uint32_t token_id = 0;
    NoChunkSecurity security;
    std::unique_ptr<ChunkWriter> writer;
    ChunkAssembler assembler{AssemblerLimits{}};
  };

  // The held requests of the current connection, oldest first.
  std::vector<HeldRequest> held() const {
    std::lock_guard lock(mu_);
    return held_;
  }
  // Waits until `n` requests are held (or 10 s passed).
  bool WaitForHeld(size_t n) const {
    std::unique_lock lock(mu_);
    return received_.wait_for(lock, std::chrono::seconds(10), [&] { return held_.size() >= n; });
  }

  // Runs `task` on the server thread with the connection being served and waits for it; the
  // connection is closed when `task` returns false. Returns false when no connection was
  // served within 10 s.
  bool RunOnConnection(std::function<bool(Connection&)> task) {
    auto t = std::make_shared<Task>();
    t->run = std::move(task);
    std::unique_lock lock(mu_);
    tasks_.push_back(t);
    Wake();
    if (!tasks_done_.wait_for(lock, std::chrono::seconds(10), [&] { return t->started; })) {
      tasks_.erase(std::find(tasks_.begin(), tasks_.end(), t));
      return false;
    }
    tasks_done_.wait(lock, [&] { return t->done; });
    return true;
  }

  // Answers the held request at `position` (0 = the oldest) with the service body `make`
  // returns for it; the request is no longer held. Returns false when there is no such request
  // or the answer could not be sent. Returns after the answer was sent.
  bool AnswerHeld(size_t position, std::function<std::vector<uint8_t>(const HeldRequest&)> make) {
    bool sent = false;
    const bool ran = RunOnConnection([&](Connection& c) {
      std::optional<HeldRequest> request;
      {
        std::lock_guard lock(mu_);
        if (position >= held_.size()) return true;
        request = std::move(held_[position]);
        held_.erase(held_.begin() + static_cast<ptrdiff_t>(position));
      }
      sent = SendMessage(c, MessageType::kMessage, request->request_id, make(*request));
      return sent;
    });
    return ran && sent;
  }

  // Closes the connection being served (as a lost network would); the held requests are
  // forgotten. Returns false when no connection was served.
  bool DropConnection() {
    return RunOnConnection([](Connection& c) {
      ::shutdown(c.fd, SHUT_RDWR);  // the client sees the end before this returns
      return false;
    });
  }

  // Sends `bytes` as they are.
  static bool SendRaw(int fd, std::span<const uint8_t> bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // The chunks of the message `body` as the answer to `request_id`, as bytes.
  static std::vector<uint8_t> Frame(Connection& c, MessageType type, uint32_t request_id,
                                    std::span<const uint8_t> body) {
    Result<std::vector<std::vector<uint8_t>>> chunks =
        c.writer->WriteMessage(type, c.channel_id, c.token_id, request_id, body, c.security);
    EXPECT_THAT(chunks.status(), ::kiln::testing::IsOk());
    std::vector<uint8_t> out;
    if (!chunks.ok()) return out;
    for (const std::vector<uint8_t>& chunk : *chunks) {
      out.insert(out.end(), chunk.begin(), chunk.end());
    }
    return out;
  }

  // Sends the message `body` as the answer to `request_id`; false when the send failed.
  static bool SendMessage(Connection& c, MessageType type, uint32_t request_id,
                          std::span<const uint8_t> body) {
    Result<std::vector<std::vector<uint8_t>>> chunks =
        c.writer->WriteMessage(type, c.channel_id, c.token_id, request_id, body, c.security);
    EXPECT_THAT(chunks.status(), ::kiln::testing::IsOk());
    if (!chunks.ok()) return false;
    for (const std::vector<uint8_t>& chunk : *chunks) {
      if (!SendRaw(c.fd, chunk)) return false;
    }
    return true;
  }

 private:
  static constexpr std::chrono::milliseconds kPoll{20};

  struct Task {
    std::function<bool(Connection&)> run;
    bool started = false;
    bool done = false;
  };

  // Requires mu_.
  void Wake() {
    const uint8_t byte = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_[1], &byte, 1);
  }

  // Runs the queued tasks; returns false when one closes the connection.
  bool RunTasks(Connection& c) {
    uint8_t drain[64];
    while (::read(wake_[0], drain, sizeof(drain)) > 0) {
    }
    bool open = true;
    for (;;) {
      std::shared_ptr<Task> t;
      {
        std::lock_guard lock(mu_);
        if (tasks_.empty()) break;
        t = tasks_.front();
        tasks_.pop_front();
        t->started = true;
      }
      tasks_done_.notify_all();
      if (open) open = t->run(c);
      {
        std::lock_guard lock(mu_);
        t->done = true;
      }
      tasks_done_.notify_all();
    }
    return open;
  }

  void Run(std::stop_token stop) {
    while (!stop.stop_requested()) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(kPoll.count())) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      // As the client does: no Nagle delay behind an unacknowledged small answer.
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      {
        std::lock_guard lock(mu_);
        ++connections_;
      }
      Serve(fd, stop);
      {
        std::lock_guard lock(mu_);
        held_.clear();
      }
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
      if (!RunTasks(c)) return;
      Result<size_t> size = NextMessageSize(rx, 1u << 24);
      if (!size.ok()) return;
      if (*size > 0 && rx.size() >= *size) {
        std::vector<uint8_t> message(rx.begin(), rx.begin() + static_cast<ptrdiff_t>(*size));
        rx.erase(rx.begin(), rx.begin() + static_cast<ptrdiff_t>(*size));
        if (!Handle(c, message)) return;
        continue;
      }
      pollfd p[2] = {{fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (::poll(p, 2, static_cast<int>(kPoll.count())) <= 0) continue;
      if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = ::recv(fd, block, sizeof(block), 0);
      if (n <= 0) return;
      rx.insert(rx.end(), block, block + n);
    }
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
      case Reply::Kind::kHold: {
        {
          std::lock_guard lock(mu_);
          held_.push_back({m.request_id, *id, m.body});
        }
        received_.notify_all();
        return true;
      }
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
  std::vector<HeldRequest> held_;
  std::deque<std::shared_ptr<Task>> tasks_;
  std::condition_variable tasks_done_;
  int wake_[2] = {-1, -1};
  std::jthread thread_;
};

}  // namespace kiln::drivers::opcua::testing
