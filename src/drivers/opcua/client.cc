#include "drivers/opcua/client.h"

#include <algorithm>
#include <array>
#include <string>
#include <utility>

#include "core/host_port.h"
#include "drivers/opcua/internal/status_codes.h"
#include "drivers/opcua/internal/tcp_socket.h"

namespace kiln::drivers::opcua {
namespace {

constexpr std::string_view kScheme = "opc.tcp://";
constexpr size_t kReceiveBlock = 65536;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool IsOneOf(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::chrono::milliseconds Remaining(MonoTime deadline, MonoTime now) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
}

}  // namespace

Result<EndpointUrl> ParseEndpointUrl(std::string_view url) {
  if (!StartsWith(url, kScheme)) {
    return InvalidArgumentError("endpoint '" + std::string(url) +
                                "' does not start with opc.tcp://");
  }
  std::string_view rest = url.substr(kScheme.size());
  EndpointUrl out;
  // The authority ends at the first '/' that is not inside an IPv6 literal.
  size_t slash = std::string_view::npos;
  const size_t bracket = rest.find(']');
  slash = rest.find('/', bracket == std::string_view::npos ? 0 : bracket);
  if (slash != std::string_view::npos) {
    out.path = std::string(rest.substr(slash));
    rest = rest.substr(0, slash);
  }
  if (rest.empty()) {
    return InvalidArgumentError("endpoint '" + std::string(url) + "' has no host");
  }
  HostPortOptions options;
  options.default_port = 4840;
  Result<HostPort> hp = ParseHostPort(rest, options);
  if (!hp.ok()) return hp.status().WithContext("endpoint '" + std::string(url) + "'");
  out.host = hp->host;
  out.port = hp->port;
  return out;
}

Status ServiceResultToStatus(contract::Quality result, std::string_view what) {
  const std::string name = internal::UaStatusCodeName(result);
  std::string message = name + ": " + std::string(what);
  if (name == "BadTimeout") return DeadlineExceededError(std::move(message));
  if (IsOneOf(name, {"BadSessionIdInvalid", "BadSessionClosed", "BadSessionNotActivated",
                     "BadSecureChannelIdInvalid", "BadSecureChannelClosed",
                     "BadSecureChannelTokenUnknown", "BadCommunicationError", "BadConnectionClosed",
                     "BadServerHalted", "BadShutdown", "BadServerNotConnected", "BadNotConnected",
                     "BadNoCommunication", "BadTcpInternalError", "BadTcpServerTooBusy"})) {
    return UnavailableError(std::move(message));
  }
  if (IsOneOf(name,
              {"BadUserAccessDenied", "BadIdentityTokenInvalid", "BadIdentityTokenRejected",
               "BadSecurityPolicyRejected", "BadSecurityChecksFailed", "BadCertificateInvalid"})) {
    return PermissionDeniedError(std::move(message));
  }
  if (StartsWith(name, "BadTooMany") ||
      IsOneOf(name, {"BadResourceUnavailable", "BadOutOfMemory", "BadMaxConnectionsReached"})) {
    return ResourceExhaustedError(std::move(message));
  }
  if (IsOneOf(name, {"BadServiceUnsupported", "BadNotImplemented", "BadNotSupported"})) {
    return UnimplementedError(std::move(message));
  }
  return FailedPreconditionError(std::move(message));
}

Result<std::unique_ptr<Client>> Client::Create(const ClientOptions& options, const Clock& clock,
                                               Logger logger) {
  KILN_ASSIGN_OR_RETURN(EndpointUrl url, ParseEndpointUrl(options.endpoint));
  if (options.endpoint.size() >= kMaxEndpointUrlLength) {
    return InvalidArgumentError("endpoint URL of " + std::to_string(options.endpoint.size()) +
                                " bytes is too long");
  }
  if (options.password.has_value() && !options.username.has_value()) {
    return InvalidArgumentError("a password needs a user name");
  }
  if (options.receive_buffer_size < kMinBufferSize || options.send_buffer_size < kMinBufferSize) {
    return InvalidArgumentError("buffer sizes must be at least 8192 bytes");
  }
  return std::unique_ptr<Client>(new Client(options, std::move(url), clock, std::move(logger)));
}

Client::Client(const ClientOptions& options, EndpointUrl url, const Clock& clock, Logger logger)
    : options_(options),
      url_(std::move(url)),
      clock_(clock),
      logger_(std::move(logger)),
      socket_(std::make_unique<internal::TcpSocket>()) {
  ResetState();
}

Client::~Client() { Close().IgnoreError(); }

bool Client::connected() const { return session_active_ && socket_->is_open(); }

void Client::ResetState() {
  socket_->Close();
  session_active_ = false;
  limits_ = ConnectionLimits();
  limits_.receive_chunk_size = options_.receive_buffer_size;
  writer_.reset();
  assembler_.reset();
  received_.clear();
  chunk_.clear();
  channel_id_ = 0;
  token_id_ = 0;
  renew_at_ = MonoTime::max();
  session_id_ = NodeId();
  authentication_token_ = NodeId();
  outstanding_publish_.clear();
  publish_responses_.clear();
}

Status Client::Fail(std::string_view context, const Status& why) {
  const StatusCode code = why.code() == StatusCode::kDeadlineExceeded
                              ? StatusCode::kDeadlineExceeded
                              : StatusCode::kUnavailable;
  Status status(code, std::string(context) + ": " + why.message());
  logger_.Warn("{}: closing the connection: {}", options_.endpoint, status.message());
  ResetState();
  return status;
}

RequestHeader Client::MakeRequestHeader(std::chrono::milliseconds timeout) {
  RequestHeader h;
  h.authentication_token = authentication_token_;
  h.timestamp = DateTime::FromTimestamp(clock_.Now());
  h.request_handle = next_request_handle_++;
  if (next_request_handle_ == 0) next_request_handle_ = 1;
  h.timeout_hint = static_cast<uint32_t>(std::clamp<int64_t>(timeout.count(), 0, UINT32_MAX));
  return h;
}

Status Client::ReceiveChunk(MonoTime deadline) {
  std::array<uint8_t, kReceiveBlock> block;
  for (;;) {
    KILN_ASSIGN_OR_RETURN(size_t size, NextMessageSize(received_, limits_.receive_chunk_size));
    if (size > 0 && received_.size() >= size) {
      chunk_.assign(received_.begin(), received_.begin() + static_cast<ptrdiff_t>(size));
      received_.erase(received_.begin(), received_.begin() + static_cast<ptrdiff_t>(size));
      return Status();
    }
    const std::chrono::milliseconds left = Remaining(deadline, clock_.Monotonic());
    if (left.count() <= 0) return DeadlineExceededError("no response in time");
    KILN_ASSIGN_OR_RETURN(size_t n, socket_->Receive(block, left));
    received_.insert(received_.end(), block.begin(), block.begin() + static_cast<ptrdiff_t>(n));
  }
}

Result<AssembledMessage> Client::ReceiveAnyMessage(MonoTime deadline) {
  for (;;) {
    KILN_RETURN_IF_ERROR(ReceiveChunk(deadline));
    KILN_ASSIGN_OR_RETURN(MessageHeader header, DecodeMessageHeader(chunk_));
    if (header.type == MessageType::kError) {
      KILN_ASSIGN_OR_RETURN(ErrorMessage error, DecodeError(chunk_));
      return UnavailableError("the server sent ERR " + internal::UaStatusCodeName(error.error) +
                              ": " + error.reason.value_or(""));
    }
    if (header.type != MessageType::kOpenSecureChannel && header.type != MessageType::kMessage &&
        header.type != MessageType::kCloseSecureChannel) {
      return InvalidArgumentError("unexpected " + std::string(MessageTypeCode(header.type)) +
                                  " message on a secure channel");
    }
    KILN_ASSIGN_OR_RETURN(ChunkHeader chunk_header,
                          DecodeChunkHeader(chunk_, options_.decode_limits));
    if (channel_id_ != 0 && chunk_header.secure_channel_id != channel_id_) {
      return InvalidArgumentError("BadSecureChannelIdInvalid: chunk for channel " +
                                  std::to_string(chunk_header.secure_channel_id) + ", ours is " +
                                  std::to_string(channel_id_));
    }
    KILN_ASSIGN_OR_RETURN(DecodedChunk decoded, OpenChunk(chunk_, chunk_header, security_));
    KILN_ASSIGN_OR_RETURN(std::optional<AssembledMessage> message, assembler_->Add(decoded));
    if (message.has_value()) return std::move(*message);
  }
}

bool Client::KeepPublishResponse(AssembledMessage& message) {
  auto publish =
      std::find(outstanding_publish_.begin(), outstanding_publish_.end(), message.request_id);
  if (publish == outstanding_publish_.end()) return false;
  outstanding_publish_.erase(publish);
  publish_responses_.push_back(std::move(message));
  return true;
}

Result<AssembledMessage> Client::ReceiveMessage(uint32_t request_id, MonoTime deadline) {
  for (;;) {
    KILN_ASSIGN_OR_RETURN(AssembledMessage message, ReceiveAnyMessage(deadline));
    if (message.request_id == request_id) return message;
    if (KeepPublishResponse(message)) continue;
    logger_.Debug("{}: discarding a response to request {} (waiting for {})", options_.endpoint,
                  message.request_id, request_id);
  }
}

template <typename Request>
Result<uint32_t> Client::SendRequest(MessageType type, Request& request,
                                     std::chrono::milliseconds timeout) {
  if (!socket_->is_open() || writer_ == nullptr) return UnavailableError("not connected");
  const uint32_t request_id = next_request_id_++;
  if (next_request_id_ == 0) next_request_id_ = 1;
  request.request_header = MakeRequestHeader(timeout);
  KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> body, EncodeServiceMessage(request));
  // A message beyond the server's limits is refused before any byte is sent; the connection
  // stays usable.
  KILN_ASSIGN_OR_RETURN(
      std::vector<std::vector<uint8_t>> chunks,
      writer_->WriteMessage(type, channel_id_, token_id_, request_id, body, security_));
  const std::chrono::milliseconds send_timeout =
      timeout.count() > 0 ? timeout : options_.request_timeout;
  for (const std::vector<uint8_t>& chunk : chunks) {
    Status sent = socket_->SendAll(chunk, send_timeout);
    if (!sent.ok()) return Fail(Request::kName, sent);
  }
  ++requests_sent_;
  return request_id;
}

template <typename Response>
Result<Response> Client::DecodeAnswer(MessageType type, std::string_view what,
                                      const AssembledMessage& message) {
  if (message.abort.has_value()) {
    return ServiceResultToStatus(
        message.abort->error,
        std::string(what) + " aborted by the server: " + message.abort->reason.value_or(""));
  }
  if (message.type != type) {
    return Fail(
        what, InvalidArgumentError("answered with a " + std::string(MessageTypeCode(message.type)) +
                                   " message"));
  }
  Result<Response> response = DecodeResponse<Response>(message.body, options_.decode_limits);
  if (!response.ok()) return Fail(what, response.status());
  const contract::Quality result = response->response_header.service_result;
  if (result.IsBad()) {
    Status status = ServiceResultToStatus(result, std::string(what) + " failed");
    if (status.code() == StatusCode::kUnavailable) {
      logger_.Warn("{}: closing the connection: {}", options_.endpoint, status.message());
      ResetState();
    }
    return status;
  }
  return response;
}

template <typename Request, typename Response>
Result<Response> Client::Exchange(MessageType type, Request request,
                                  std::chrono::milliseconds timeout) {
  const MonoTime deadline = clock_.Monotonic() + timeout;
  KILN_ASSIGN_OR_RETURN(uint32_t request_id, SendRequest(type, request, timeout));
  Result<AssembledMessage> message = ReceiveMessage(request_id, deadline);
  if (!message.ok()) return Fail(Request::kName, message.status());
  return DecodeAnswer<Response>(type, Request::kName, *message);
}

template <typename Request, typename Response>
Result<Response> Client::Call(Request request, std::chrono::milliseconds timeout) {
  if (!connected()) return UnavailableError(std::string(Request::kName) + ": not connected");
  KILN_RETURN_IF_ERROR(RenewIfDue());
  return Exchange<Request, Response>(MessageType::kMessage, std::move(request), timeout);
}

Status Client::Handshake() {
  HelloMessage hello;
  hello.receive_buffer_size = options_.receive_buffer_size;
  hello.send_buffer_size = options_.send_buffer_size;
  hello.max_message_size = options_.max_message_size;
  hello.max_chunk_count = options_.max_chunk_count;
  hello.endpoint_url = options_.endpoint;
  KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, EncodeHello(hello));
  const MonoTime deadline = clock_.Monotonic() + options_.connect_timeout;
  Status sent = socket_->SendAll(bytes, options_.connect_timeout);
  if (!sent.ok()) return Fail("Hello", sent);
  Status received = ReceiveChunk(deadline);
  if (!received.ok()) return Fail("Hello", received);
  Result<MessageHeader> header = DecodeMessageHeader(chunk_);
  if (!header.ok()) return Fail("Hello", header.status());
  if (header->type == MessageType::kError) {
    Result<ErrorMessage> error = DecodeError(chunk_);
    if (!error.ok()) return Fail("Hello", error.status());
    return Fail("Hello",
                UnavailableError("the server sent ERR " + internal::UaStatusCodeName(error->error) +
                                 ": " + error->reason.value_or("")));
  }
  Result<AcknowledgeMessage> ack = DecodeAcknowledge(chunk_);
  if (!ack.ok()) return Fail("Hello", ack.status());
  Result<ConnectionLimits> limits = NegotiateLimits(hello, *ack);
  if (!limits.ok()) return Fail("Hello", limits.status());
  limits_ = *limits;
  writer_ = std::make_unique<ChunkWriter>(ChunkWriterLimits::From(limits_));
  assembler_ =
      std::make_unique<ChunkAssembler>(AssemblerLimits::From(limits_), options_.decode_limits);
  return Status();
}

Status Client::OpenChannel(SecurityTokenRequestType type) {
  OpenSecureChannelRequest request;
  request.client_protocol_version = kUaTcpProtocolVersion;
  request.request_type = type;
  request.security_mode = MessageSecurityMode::kNone;
  request.client_nonce = std::vector<uint8_t>();
  request.requested_lifetime = options_.requested_channel_lifetime_ms;
  const MonoTime sent = clock_.Monotonic();
  KILN_ASSIGN_OR_RETURN(OpenSecureChannelResponse response,
                        (Exchange<OpenSecureChannelRequest, OpenSecureChannelResponse>(
                            MessageType::kOpenSecureChannel, request, options_.connect_timeout)));
  const ChannelSecurityToken& token = response.security_token;
  if (type == SecurityTokenRequestType::kRenew && token.channel_id != channel_id_) {
    return Fail(
        "OpenSecureChannel",
        InvalidArgumentError("renewal answered for channel " + std::to_string(token.channel_id) +
                             ", ours is " + std::to_string(channel_id_)));
  }
  if (token.channel_id == 0) {
    return Fail("OpenSecureChannel", InvalidArgumentError("the server assigned channel id 0"));
  }
  channel_id_ = token.channel_id;
  token_id_ = token.token_id;
  const uint32_t lifetime =
      token.revised_lifetime != 0 ? token.revised_lifetime : options_.requested_channel_lifetime_ms;
  renew_at_ = sent + std::chrono::milliseconds(uint64_t{lifetime} * 3 / 4);
  logger_.Debug("{}: secure channel {} token {} (lifetime {} ms)", options_.endpoint, channel_id_,
                token_id_, lifetime);
  return Status();
}

Status Client::RenewIfDue() {
  if (clock_.Monotonic() < renew_at_) return Status();
  logger_.Debug("{}: renewing the token of secure channel {}", options_.endpoint, channel_id_);
  return OpenChannel(SecurityTokenRequestType::kRenew);
}

Status Client::CreateAndActivateSession() {
  CreateSessionRequest create;
  create.client_description.application_uri = options_.application_uri;
  create.client_description.product_uri = options_.application_uri;
  create.client_description.application_name.text = options_.application_name;
  create.client_description.application_type = ApplicationType::kClient;
  create.endpoint_url = options_.endpoint;
  create.session_name = options_.session_name;
  create.requested_session_timeout = options_.requested_session_timeout_ms;
  create.max_response_message_size = options_.max_message_size;
  KILN_ASSIGN_OR_RETURN(CreateSessionResponse session,
                        (Exchange<CreateSessionRequest, CreateSessionResponse>(
                            MessageType::kMessage, create, options_.connect_timeout)));
  session_id_ = session.session_id;
  authentication_token_ = session.authentication_token;

  // The token policies of the endpoints with SecurityPolicy None.
  std::vector<UserTokenPolicy> policies;
  for (const EndpointDescription& e : session.server_endpoints) {
    if (e.security_policy_uri.value_or("") != kSecurityPolicyNoneUri) continue;
    policies.insert(policies.end(), e.user_identity_tokens.begin(), e.user_identity_tokens.end());
  }
  ExtensionObject identity;
  if (options_.username.has_value()) {
    Status last = FailedPreconditionError(
        "the server offers no UserName token policy on a SecurityPolicy None endpoint");
    bool found = false;
    for (const UserTokenPolicy& p : policies) {
      if (p.token_type != UserTokenType::kUserName) continue;
      Result<ExtensionObject> token = MakeUserNameIdentityToken(
          p, kSecurityPolicyNoneUri, *options_.username, options_.password.value_or(""));
      if (token.ok()) {
        identity = std::move(*token);
        found = true;
        break;
      }
      last = token.status();
    }
    if (!found) return last;
  } else {
    auto it = std::find_if(policies.begin(), policies.end(), [](const UserTokenPolicy& p) {
      return p.token_type == UserTokenType::kAnonymous;
    });
    if (it == policies.end()) {
      return FailedPreconditionError(
          "the server offers no anonymous token policy on a SecurityPolicy None endpoint");
    }
    identity = MakeAnonymousIdentityToken(it->policy_id);
  }

  ActivateSessionRequest activate;
  activate.user_identity_token = std::move(identity);
  KILN_ASSIGN_OR_RETURN(ActivateSessionResponse activated,
                        (Exchange<ActivateSessionRequest, ActivateSessionResponse>(
                            MessageType::kMessage, std::move(activate), options_.connect_timeout)));
  (void)activated;
  session_active_ = true;
  return Status();
}

Status Client::Connect() {
  Close().IgnoreError();
  ResetState();
  Status status = socket_->Connect(url_.host, url_.port, options_.connect_timeout);
  if (status.ok()) status = Handshake();
  if (status.ok()) status = OpenChannel(SecurityTokenRequestType::kIssue);
  if (status.ok()) status = CreateAndActivateSession();
  if (!status.ok()) {
    ResetState();
    return status.WithContext("connect " + options_.endpoint);
  }
  logger_.Info("{}: connected (secure channel {}, session {})", options_.endpoint, channel_id_,
               session_id_.ToString());
  return Status();
}

void Client::Abort() {
  if (socket_->is_open()) {
    logger_.Info("{}: dropping the connection (the session stays for a transfer)",
                 options_.endpoint);
  }
  ResetState();
}

Status Client::Close() {
  if (!socket_->is_open()) {
    ResetState();
    return Status();
  }
  Status first;
  if (session_active_) {
    CloseSessionRequest request;
    request.delete_subscriptions = true;
    Result<CloseSessionResponse> closed = Exchange<CloseSessionRequest, CloseSessionResponse>(
        MessageType::kMessage, request, options_.request_timeout);
    if (!closed.ok()) first = closed.status();
    session_active_ = false;
  }
  if (socket_->is_open() && writer_ != nullptr && channel_id_ != 0) {
    CloseSecureChannelRequest request;
    request.request_header = MakeRequestHeader(options_.request_timeout);
    const uint32_t request_id = next_request_id_++;
    if (next_request_id_ == 0) next_request_id_ = 1;
    Result<std::vector<uint8_t>> body = EncodeServiceMessage(request);
    if (body.ok()) {
      Result<std::vector<std::vector<uint8_t>>> chunks = writer_->WriteMessage(
          MessageType::kCloseSecureChannel, channel_id_, token_id_, request_id, *body, security_);
      if (chunks.ok()) {
        for (const std::vector<uint8_t>& chunk : *chunks) {
          Status sent = socket_->SendAll(chunk, options_.request_timeout);
          if (!sent.ok() && first.ok()) first = sent;
          if (!sent.ok()) break;
        }
      } else if (first.ok()) {
        first = chunks.status();
      }
    }
  }
  ResetState();
  return first;
}

Result<std::vector<DataValue>> Client::Read(std::span<const NodeId> nodes, uint32_t attribute_id,
                                            TimestampsToReturn timestamps) {
  ReadRequest request;
  request.timestamps_to_return = timestamps;
  request.nodes_to_read.reserve(nodes.size());
  for (const NodeId& node : nodes) {
    ReadValueId id;
    id.node_id = node;
    id.attribute_id = attribute_id;
    request.nodes_to_read.push_back(std::move(id));
  }
  KILN_ASSIGN_OR_RETURN(ReadResponse response, (Call<ReadRequest, ReadResponse>(
                                                   std::move(request), options_.request_timeout)));
  if (response.results.size() != nodes.size()) {
    return Fail(
        "ReadRequest",
        InvalidArgumentError("the server returned " + std::to_string(response.results.size()) +
                             " values for " + std::to_string(nodes.size()) + " nodes"));
  }
  return std::move(response.results);
}

Result<contract::Quality> Client::Write(const NodeId& node, const Variant& value) {
  WriteRequest request;
  WriteValue write;
  write.node_id = node;
  write.attribute_id = kAttributeValue;
  write.value.value = value;
  request.nodes_to_write.push_back(std::move(write));
  KILN_ASSIGN_OR_RETURN(WriteResponse response, (Call<WriteRequest, WriteResponse>(
                                                    std::move(request), options_.request_timeout)));
  if (response.results.size() != 1) {
    return Fail("WriteRequest", InvalidArgumentError("the server returned " +
                                                     std::to_string(response.results.size()) +
                                                     " results for 1 node"));
  }
  return response.results[0];
}

Result<BrowseResult> Client::Browse(const NodeId& node, uint32_t max_references) {
  BrowseRequest request;
  request.requested_max_references_per_node = max_references;
  BrowseDescription description;
  description.node_id = node;
  request.nodes_to_browse.push_back(std::move(description));
  KILN_ASSIGN_OR_RETURN(
      BrowseResponse response,
      (Call<BrowseRequest, BrowseResponse>(std::move(request), options_.request_timeout)));
  if (response.results.size() != 1) {
    return Fail("BrowseRequest", InvalidArgumentError("the server returned " +
                                                      std::to_string(response.results.size()) +
                                                      " results for 1 node"));
  }
  return std::move(response.results[0]);
}

Result<BrowseResult> Client::BrowseNext(const ByteString& continuation_point, bool release) {
  BrowseNextRequest request;
  request.release_continuation_points = release;
  request.continuation_points.push_back(continuation_point);
  KILN_ASSIGN_OR_RETURN(
      BrowseNextResponse response,
      (Call<BrowseNextRequest, BrowseNextResponse>(std::move(request), options_.request_timeout)));
  if (response.results.size() != 1) {
    return Fail("BrowseNextRequest", InvalidArgumentError("the server returned " +
                                                          std::to_string(response.results.size()) +
                                                          " results for 1 continuation point"));
  }
  return std::move(response.results[0]);
}

Result<CreateSubscriptionResponse> Client::CreateSubscription(
    const SubscriptionParameters& params) {
  CreateSubscriptionRequest request;
  request.requested_publishing_interval = params.publishing_interval_ms;
  request.requested_lifetime_count = params.lifetime_count;
  request.requested_max_keep_alive_count = params.max_keep_alive_count;
  request.max_notifications_per_publish = params.max_notifications_per_publish;
  request.publishing_enabled = true;
  request.priority = params.priority;
  return Call<CreateSubscriptionRequest, CreateSubscriptionResponse>(std::move(request),
                                                                     options_.request_timeout);
}

Result<std::vector<MonitoredItemCreateResult>> Client::CreateMonitoredItems(
    uint32_t subscription_id, std::vector<MonitoredItemCreateRequest> items,
    TimestampsToReturn timestamps) {
  CreateMonitoredItemsRequest request;
  request.subscription_id = subscription_id;
  request.timestamps_to_return = timestamps;
  const size_t count = items.size();
  request.items_to_create = std::move(items);
  KILN_ASSIGN_OR_RETURN(CreateMonitoredItemsResponse response,
                        (Call<CreateMonitoredItemsRequest, CreateMonitoredItemsResponse>(
                            std::move(request), options_.request_timeout)));
  if (response.results.size() != count) {
    return Fail(
        "CreateMonitoredItemsRequest",
        InvalidArgumentError("the server returned " + std::to_string(response.results.size()) +
                             " results for " + std::to_string(count) + " items"));
  }
  return std::move(response.results);
}

Result<std::vector<contract::Quality>> Client::DeleteSubscriptions(std::vector<uint32_t> ids) {
  DeleteSubscriptionsRequest request;
  const size_t count = ids.size();
  request.subscription_ids = std::move(ids);
  KILN_ASSIGN_OR_RETURN(DeleteSubscriptionsResponse response,
                        (Call<DeleteSubscriptionsRequest, DeleteSubscriptionsResponse>(
                            std::move(request), options_.request_timeout)));
  if (response.results.size() != count) {
    return Fail(
        "DeleteSubscriptionsRequest",
        InvalidArgumentError("the server returned " + std::to_string(response.results.size()) +
                             " results for " + std::to_string(count) + " subscriptions"));
  }
  return std::move(response.results);
}

Result<std::vector<TransferResult>> Client::TransferSubscriptions(std::vector<uint32_t> ids,
                                                                  bool send_initial_values) {
  TransferSubscriptionsRequest request;
  const size_t count = ids.size();
  request.subscription_ids = std::move(ids);
  request.send_initial_values = send_initial_values;
  KILN_ASSIGN_OR_RETURN(TransferSubscriptionsResponse response,
                        (Call<TransferSubscriptionsRequest, TransferSubscriptionsResponse>(
                            std::move(request), options_.request_timeout)));
  if (response.results.size() != count) {
    return Fail(
        "TransferSubscriptionsRequest",
        InvalidArgumentError("the server returned " + std::to_string(response.results.size()) +
                             " results for " + std::to_string(count) + " subscriptions"));
  }
  return std::move(response.results);
}

Result<NotificationMessage> Client::Republish(uint32_t subscription_id, uint32_t sequence_number) {
  RepublishRequest request;
  request.subscription_id = subscription_id;
  request.retransmit_sequence_number = sequence_number;
  KILN_ASSIGN_OR_RETURN(
      RepublishResponse response,
      (Call<RepublishRequest, RepublishResponse>(std::move(request), options_.request_timeout)));
  return std::move(response.notification_message);
}

Status Client::SendPublish(std::vector<SubscriptionAcknowledgement> acknowledgements) {
  if (!connected()) return UnavailableError("PublishRequest: not connected");
  KILN_RETURN_IF_ERROR(RenewIfDue());
  PublishRequest request;
  request.subscription_acknowledgements = std::move(acknowledgements);
  // Timeout hint 0: no timeout; the server holds the request until it has something to send.
  KILN_ASSIGN_OR_RETURN(uint32_t request_id,
                        SendRequest(MessageType::kMessage, request, std::chrono::milliseconds(0)));
  outstanding_publish_.push_back(request_id);
  return Status();
}

Result<std::optional<PublishResponse>> Client::ReceivePublish(MonoTime deadline) {
  while (publish_responses_.empty()) {
    if (!socket_->is_open() || assembler_ == nullptr) {
      return UnavailableError("PublishRequest: not connected");
    }
    if (outstanding_publish_.empty()) return std::optional<PublishResponse>();
    Result<AssembledMessage> message = ReceiveAnyMessage(deadline);
    if (!message.ok()) {
      // Nothing in time is not a failure of the connection: partial chunks stay buffered.
      if (message.status().code() == StatusCode::kDeadlineExceeded) {
        return std::optional<PublishResponse>();
      }
      return Fail("PublishRequest", message.status());
    }
    if (!KeepPublishResponse(*message)) {
      logger_.Debug("{}: discarding a response to request {} (no call waits for it)",
                    options_.endpoint, message->request_id);
    }
  }
  AssembledMessage message = std::move(publish_responses_.front());
  publish_responses_.pop_front();
  KILN_ASSIGN_OR_RETURN(
      PublishResponse response,
      DecodeAnswer<PublishResponse>(MessageType::kMessage, PublishRequest::kName, message));
  return std::optional<PublishResponse>(std::move(response));
}

Result<PublishResponse> Client::Publish(std::vector<SubscriptionAcknowledgement> acknowledgements,
                                        std::chrono::milliseconds timeout) {
  const MonoTime deadline = clock_.Monotonic() + timeout;
  KILN_RETURN_IF_ERROR(SendPublish(std::move(acknowledgements)));
  KILN_ASSIGN_OR_RETURN(std::optional<PublishResponse> response, ReceivePublish(deadline));
  if (!response.has_value()) {
    return Fail("PublishRequest", DeadlineExceededError("no response in time"));
  }
  return std::move(*response);
}

}  // namespace kiln::drivers::opcua
