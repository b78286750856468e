#pragma once
// Client: Kiln's OPC UA client connection over UA TCP with SecurityPolicy None, built on the
// sans-IO layer of docs/formats/opcua.md. One TCP connection, one secure channel and one
// session: Connect() runs HEL/ACK, OpenSecureChannel (Issue), CreateSession and
// ActivateSession (anonymous, or user name and password in clear when the endpoint's token
// policy allows it); each request renews the channel token first once 75 % of its lifetime
// has passed; Close() ends the session and the channel. Service calls block, one at a time,
// each bounded by a timeout; Publish requests may stay in flight meanwhile (see SendPublish).
//
// Error policy: a malformed message, an ERR message, a socket error or a request that timed
// out closes the connection and returns Unavailable (DeadlineExceeded for a timeout) with the
// reason; the caller reconnects with Connect(). A request beyond the server's negotiated limits
// is InvalidArgument "BadRequestTooLarge: ..." and sends nothing; an abort chunk from the
// server fails only its request (as a Bad service result). A ServiceFault or a Bad service result
// keeps the connection and returns an error whose message starts with the StatusCode's name
// ("BadNodeIdUnknown: ReadRequest failed"). Per-node results (a DataValue's status, a Write
// result) are data, not errors. No call throws.
//
// Single-threaded: owned by one device thread, like the Modbus driver.
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "contract/quality.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/status.h"
#include "drivers/opcua/chunk_security.h"
#include "drivers/opcua/services.h"
#include "drivers/opcua/types.h"
#include "drivers/opcua/ua_tcp.h"

namespace kiln::drivers::opcua {

namespace internal {
class TcpSocket;
}  // namespace internal

struct ClientOptions {
  std::string endpoint;  // "opc.tcp://host:port[/path]"; port 4840 when omitted
  // User name and password; unset: anonymous. The password travels in clear, so the endpoint's
  // UserName token policy must have SecurityPolicy None.
  std::optional<std::string> username;
  std::optional<std::string> password;

  std::chrono::milliseconds connect_timeout{5000};  // TCP connect and each handshake step
  std::chrono::milliseconds request_timeout{5000};  // each service call (Publish: its own)
  uint32_t requested_channel_lifetime_ms = 3600000;
  double requested_session_timeout_ms = 60000;
  std::string application_uri = "urn:kiln:edge";
  std::string application_name = "Kiln edge";
  std::string session_name = "kiln";

  uint32_t receive_buffer_size = 65536;   // our largest chunk (Hello)
  uint32_t send_buffer_size = 65536;      // largest chunk we offer to send (Hello)
  uint32_t max_message_size = 16u << 20;  // largest response body we accept
  uint32_t max_chunk_count = 0;           // chunks per response; 0 = no limit
  DecodeLimits decode_limits;
};

// The parts of an "opc.tcp://host:port/path" endpoint URL.
struct EndpointUrl {
  std::string host;
  uint16_t port = 4840;
  std::string path;  // "" or "/path..."
};
// Errors: InvalidArgument unless `url` is opc.tcp://host[:port][/path].
Result<EndpointUrl> ParseEndpointUrl(std::string_view url);

// The Status for a Bad service result: the code follows the StatusCode (BadTimeout ->
// DeadlineExceeded, session and channel errors -> Unavailable, BadUserAccessDenied ->
// PermissionDenied, BadTooMany... -> ResourceExhausted, others FailedPrecondition) and the
// message is "<StatusCode name>: <what>".
Status ServiceResultToStatus(contract::Quality result, std::string_view what);

struct SubscriptionParameters {
  double publishing_interval_ms = 1000;
  uint32_t lifetime_count = 60;  // at least 3 x keep-alive count
  uint32_t max_keep_alive_count = 10;
  uint32_t max_notifications_per_publish = 0;  // 0 = no limit
  uint8_t priority = 0;
};

class Client {
 public:
  // Checks the options (the endpoint URL) and returns a closed client.
  // Errors: InvalidArgument for a malformed endpoint, a password without a user name.
  static Result<std::unique_ptr<Client>> Create(const ClientOptions& options, const Clock& clock,
                                                Logger logger);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects, opens the secure channel and activates a session; closes a previous connection
  // first. Errors: Unavailable or DeadlineExceeded when the server cannot be reached or breaks
  // the protocol (with the reason, e.g. "ERR BadTcpEndpointUrlInvalid: ..."); the mapped
  // ServiceResultToStatus code when it refuses a service (a rejected identity token is
  // PermissionDenied); FailedPrecondition when the server offers no usable token policy;
  // Unimplemented when the password would have to be encrypted.
  Status Connect();
  // Closes the session and the secure channel, then the socket. Idempotent. Returns the
  // first error of the goodbye (the socket is closed regardless).
  Status Close();
  // Drops the connection without a goodbye (for a link that stopped answering: CloseSession
  // would only wait for its timeout). The session and its subscriptions stay at the server
  // until they time out, so a new session can transfer them.
  void Abort();
  bool connected() const;

  // Reads the Value attribute (or `attribute_id`) of `nodes`: one DataValue per node, in
  // order. Errors: as a service call (see the class comment); Unavailable if not connected.
  Result<std::vector<DataValue>> Read(std::span<const NodeId> nodes,
                                      uint32_t attribute_id = kAttributeValue,
                                      TimestampsToReturn timestamps = TimestampsToReturn::kBoth);
  // Writes `value` to the Value attribute of `node`; returns the server's result for it
  // (e.g. BadTypeMismatch, BadNotWritable) as data.
  Result<contract::Quality> Write(const NodeId& node, const Variant& value);
  // Browses the forward hierarchical references of `node`, at most `max_references` (0 = the
  // server's choice) at a time; a non-null continuation point means BrowseNext has more.
  Result<BrowseResult> Browse(const NodeId& node, uint32_t max_references = 0);
  // Continues a Browse, or with `release` frees the continuation point.
  Result<BrowseResult> BrowseNext(const ByteString& continuation_point, bool release = false);

  // Creates a subscription. Errors: as a service call.
  Result<CreateSubscriptionResponse> CreateSubscription(const SubscriptionParameters& params);
  // Creates monitored items in `subscription_id`; one result per item, in order.
  Result<std::vector<MonitoredItemCreateResult>> CreateMonitoredItems(
      uint32_t subscription_id, std::vector<MonitoredItemCreateRequest> items,
      TimestampsToReturn timestamps = TimestampsToReturn::kBoth);
  // Deletes subscriptions; one result per id.
  Result<std::vector<contract::Quality>> DeleteSubscriptions(std::vector<uint32_t> ids);
  // Transfers subscriptions of a lost session to this one (after a reconnect); one result per
  // id (BadSubscriptionIdInvalid when the server no longer has it, e.g. after a restart). With
  // `send_initial_values` the server sends every item's current value again.
  Result<std::vector<TransferResult>> TransferSubscriptions(std::vector<uint32_t> ids,
                                                            bool send_initial_values);
  // Asks for a NotificationMessage again (one missed in a sequence gap). Errors: as a service
  // call; BadMessageNotAvailable when the server no longer has it.
  Result<NotificationMessage> Republish(uint32_t subscription_id, uint32_t sequence_number);

  // The Publish pipeline. A PublishRequest stays at the server until it has notifications or a
  // keep-alive to send, so a subscriber keeps a few outstanding and sends a new one for each
  // response; responses that arrive while another call waits are kept for ReceivePublish.
  //
  // Sends a PublishRequest carrying `acknowledgements` (one per NotificationMessage processed)
  // without waiting; the server may hold it as long as it likes (timeout hint 0).
  // Errors: as a service call (Unavailable when not connected or the send failed).
  Status SendPublish(std::vector<SubscriptionAcknowledgement> acknowledgements);
  // The next response to an outstanding PublishRequest, waiting until `deadline`; nullopt when
  // none came by then (the connection stays open). A response may be a keep-alive (empty
  // notification_data); decode notifications with DecodeNotification. A Bad service result
  // (BadNoSubscription, BadTooManyPublishRequests, BadTimeout...) is an error and uses up the
  // request; session and channel errors close the connection.
  Result<std::optional<PublishResponse>> ReceivePublish(MonoTime deadline);
  // PublishRequests sent and not yet answered (answers kept for ReceivePublish not counted).
  size_t outstanding_publishes() const { return outstanding_publish_.size(); }
  // One Publish round trip: SendPublish, then ReceivePublish until `timeout`, which is fatal
  // (DeadlineExceeded, the connection is closed) when no response came.
  Result<PublishResponse> Publish(std::vector<SubscriptionAcknowledgement> acknowledgements,
                                  std::chrono::milliseconds timeout);

  // Service requests sent since the client was created (for the device's request counter).
  uint64_t requests_sent() const { return requests_sent_; }

  // The state after Connect(), for diagnostics and tests.
  uint32_t secure_channel_id() const { return channel_id_; }
  uint32_t token_id() const { return token_id_; }
  const NodeId& session_id() const { return session_id_; }
  const ConnectionLimits& limits() const { return limits_; }

 private:
  Client(const ClientOptions& options, EndpointUrl url, const Clock& clock, Logger logger);

  // One service call on the session: renews the token when due, then Exchange().
  template <typename Request, typename Response>
  Result<Response> Call(Request request, std::chrono::milliseconds timeout);
  // Sends `request` as one message of `type` (OPN or MSG) and waits for its response.
  template <typename Request, typename Response>
  Result<Response> Exchange(MessageType type, Request request, std::chrono::milliseconds timeout);

  Status Handshake();
  Status OpenChannel(SecurityTokenRequestType type);
  Status CreateAndActivateSession();
  Status RenewIfDue();
  Status SendMessage(MessageType type, uint32_t request_id, std::span<const uint8_t> body,
                     std::chrono::milliseconds timeout);
  // Receives chunks until the message of `request_id` is complete; returns its body. Publish
  // responses that come first are kept in publish_responses_; other strays are dropped.
  Result<AssembledMessage> ReceiveMessage(uint32_t request_id, MonoTime deadline);
  // Receives chunks until any message is complete.
  Result<AssembledMessage> ReceiveAnyMessage(MonoTime deadline);
  // When `message` answers an outstanding PublishRequest: moves it to publish_responses_ and
  // returns true.
  bool KeepPublishResponse(AssembledMessage& message);
  // Checks and decodes the response `message` to a request of `type`: an abort or a Bad service
  // result is an error; a message that breaks the protocol closes the connection.
  template <typename Response>
  Result<Response> DecodeAnswer(MessageType type, std::string_view what,
                                const AssembledMessage& message);
  // Sends `request` as one message of `type`; returns its request id.
  template <typename Request>
  Result<uint32_t> SendRequest(MessageType type, Request& request,
                               std::chrono::milliseconds timeout);
  // Receives one whole UA TCP message (a chunk, ACK or ERR) into `chunk_`.
  Status ReceiveChunk(MonoTime deadline);
  // Closes the socket and forgets the channel; returns `why` as the error for the caller
  // (Unavailable, or DeadlineExceeded for a timeout), with "<context>: " in front.
  Status Fail(std::string_view context, const Status& why);
  void ResetState();
  RequestHeader MakeRequestHeader(std::chrono::milliseconds timeout);

  const ClientOptions options_;
  const EndpointUrl url_;
  const Clock& clock_;
  Logger logger_;
  NoChunkSecurity security_;
  std::unique_ptr<internal::TcpSocket> socket_;

  // Per connection.
  bool session_active_ = false;
  ConnectionLimits limits_;
  std::unique_ptr<ChunkWriter> writer_;
  std::unique_ptr<ChunkAssembler> assembler_;
  std::vector<uint8_t> received_;  // bytes read but not yet framed
  std::vector<uint8_t> chunk_;     // the last framed message
  uint32_t channel_id_ = 0;
  uint32_t token_id_ = 0;
  MonoTime renew_at_{};
  uint32_t next_request_id_ = 1;
  uint32_t next_request_handle_ = 1;
  NodeId session_id_;
  NodeId authentication_token_;
  std::vector<uint32_t> outstanding_publish_;       // request ids, oldest first
  std::deque<AssembledMessage> publish_responses_;  // received, not yet taken
  uint64_t requests_sent_ = 0;
};

}  // namespace kiln::drivers::opcua
