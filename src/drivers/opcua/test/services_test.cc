#include "drivers/opcua/services.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "drivers/opcua/chunk_security.h"
#include "drivers/opcua/test/opcua_test_util.h"
#include "drivers/opcua/ua_tcp.h"
#include "testing/status_matchers.h"

namespace kiln::drivers::opcua {
namespace {

using contract::Quality;
using ::kiln::drivers::opcua::testing::Bytes;
using ::kiln::drivers::opcua::testing::Hex;
using ::kiln::testing::IsOk;
using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// Encodes `message` as a service body, decodes it back and expects the same message; then
// checks that every truncation of the body is refused cleanly.
template <typename T>
void ExpectRoundTrip(const T& message) {
  SCOPED_TRACE(std::string(T::kName));
  Result<std::vector<uint8_t>> body = EncodeServiceMessage(message);
  ASSERT_THAT(body, IsOk());
  EXPECT_THAT(PeekEncodingId(*body), IsOkAndHolds(Eq(T::kBinaryEncodingId)));
  Result<T> back = DecodeServiceMessage<T>(*body);
  ASSERT_THAT(back, IsOk());
  EXPECT_TRUE(*back == message);
  for (size_t n = 0; n < body->size(); ++n) {
    std::vector<uint8_t> prefix(body->begin(), body->begin() + static_cast<ptrdiff_t>(n));
    ASSERT_THAT(DecodeServiceMessage<T>(prefix).status(), StatusIs(StatusCode::kInvalidArgument))
        << n;
  }
}

RequestHeader SessionHeader() {
  RequestHeader h;
  h.authentication_token = NodeId::Opaque(0, std::vector<uint8_t>(16, 0xA5));
  h.timestamp = DateTime{133500000000000000};
  h.request_handle = 42;
  h.timeout_hint = 10000;
  return h;
}

ResponseHeader GoodResponseHeader() {
  ResponseHeader h;
  h.timestamp = DateTime{133500000000000001};
  h.request_handle = 42;
  h.string_table = {UaString("a"), UaString()};
  return h;
}

DataValue SampleValue(double v) {
  DataValue dv;
  dv.value = Variant::Scalar(v);
  dv.source_timestamp = DateTime{133500000000000000};
  dv.server_timestamp = DateTime{133500000000000100};
  dv.source_picoseconds = 0;
  dv.server_picoseconds = 0;
  return dv;
}

ApplicationDescription ServerDescription() {
  ApplicationDescription d;
  d.application_uri = "urn:NodeOPCUA-Server";
  d.product_uri = "NodeOPCUA-Server";
  d.application_name = LocalizedText{"en", "Test Peer"};
  d.application_type = ApplicationType::kServer;
  d.discovery_urls = {UaString("opc.tcp://127.0.0.1:4840/UA/TestPeer")};
  return d;
}

EndpointDescription NoneEndpoint() {
  EndpointDescription e;
  e.endpoint_url = "opc.tcp://127.0.0.1:4840/UA/TestPeer";
  e.server = ServerDescription();
  e.server_certificate = std::vector<uint8_t>{0x30, 0x82, 0x01};
  e.security_mode = MessageSecurityMode::kNone;
  e.security_policy_uri = std::string(kSecurityPolicyNoneUri);
  e.user_identity_tokens = {
      UserTokenPolicy{"anonymous", UserTokenType::kAnonymous, {}, {}, {}},
      UserTokenPolicy{"username_basic256Sha256",
                      UserTokenType::kUserName,
                      {},
                      {},
                      "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"}};
  e.transport_profile_uri = "http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary";
  e.security_level = 0;
  return e;
}

// --- Goldens ---------------------------------------------------------------------------------

TEST(ServicesTest, GoldenReadValueId) {
  // PROTOCOLS.md A2.7: ns=1;s=Counter, attribute Value.
  const ReadValueId id{NodeId(1, "Counter"), kAttributeValue, {}, {}};
  const std::string golden =
      "03 01 00 07 00 00 00 43 6f 75 6e 74 65 72 0d 00 00 00 ff ff ff ff 00 00 ff ff ff ff";
  Result<std::vector<uint8_t>> bytes = EncodeToBytes(id);
  ASSERT_THAT(bytes, IsOk());
  EXPECT_EQ(Hex(*bytes), Hex(Bytes(golden)));
  EXPECT_THAT(DecodeAll<ReadValueId>(Bytes(golden)), IsOkAndHolds(Eq(id)));
}

TEST(ServicesTest, GoldenAnonymousIdentityToken) {
  const ExtensionObject token = MakeAnonymousIdentityToken("anonymous");
  const std::string golden = "01 00 41 01 01 0d 00 00 00 09 00 00 00 61 6e 6f 6e 79 6d 6f 75 73";
  Result<std::vector<uint8_t>> bytes = EncodeToBytes(token);
  ASSERT_THAT(bytes, IsOk());
  EXPECT_EQ(Hex(*bytes), Hex(Bytes(golden)));
  Result<ExtensionObject> decoded = DecodeAll<ExtensionObject>(Bytes(golden));
  ASSERT_THAT(decoded, IsOk());
  EXPECT_THAT(FromExtensionObject<AnonymousIdentityToken>(*decoded),
              IsOkAndHolds(Eq(AnonymousIdentityToken{"anonymous"})));
}

// The OPN request chunk of PROTOCOLS.md A2.7 up to the body's type id, completed with a
// RequestHeader and the OpenSecureChannelRequest fields (49 bytes, as MessageSize 0x84 says).
constexpr std::string_view kGoldenOpenSecureChannel =
    "4f 50 4e 46 84 00 00 00 | 00 00 00 00 | "
    "2f 00 00 00 \"http://opcfoundation.org/UA/SecurityPolicy#None\" | ff ff ff ff | ff ff ff ff | "
    "01 00 00 00 | 01 00 00 00 | 01 00 be 01 | "
    // RequestHeader: null token, timestamp, handle 1, diagnostics 0, null audit id,
    // timeout 10000 ms, no additional header.
    "00 00 | 00 e0 8f 5c 4f 3c da 01 | 01 00 00 00 | 00 00 00 00 | ff ff ff ff | 10 27 00 00 | "
    "00 00 00 | "
    // version 0, Issue, mode None, empty nonce, lifetime 3600000 ms.
    "00 00 00 00 | 00 00 00 00 | 01 00 00 00 | 00 00 00 00 | 80 ee 36 00";

TEST(ServicesTest, GoldenOpenSecureChannelRequestChunk) {
  std::vector<uint8_t> golden = Bytes(kGoldenOpenSecureChannel);
  ASSERT_EQ(golden.size(), 0x84u);
  NoChunkSecurity none;
  Result<ChunkHeader> header = DecodeChunkHeader(golden);
  ASSERT_THAT(header, IsOk());
  EXPECT_EQ(header->secure_channel_id, 0u);
  ASSERT_TRUE(header->asymmetric.has_value());
  EXPECT_EQ(header->asymmetric->security_policy_uri, std::string(kSecurityPolicyNoneUri));
  EXPECT_EQ(header->asymmetric->sender_certificate, std::nullopt);
  EXPECT_EQ(header->asymmetric->receiver_certificate_thumbprint, std::nullopt);
  std::vector<uint8_t> copy = golden;
  Result<DecodedChunk> chunk = OpenChunk(copy, *header, none);
  ASSERT_THAT(chunk, IsOk());
  EXPECT_EQ(chunk->sequence, (SequenceHeader{1, 1}));
  ChunkAssembler assembler(AssemblerLimits{});
  Result<std::optional<AssembledMessage>> message = assembler.Add(*chunk);
  ASSERT_THAT(message, IsOk());
  ASSERT_TRUE(message->has_value());
  Result<OpenSecureChannelRequest> request =
      DecodeServiceMessage<OpenSecureChannelRequest>((*message)->body);
  ASSERT_THAT(request, IsOk());
  EXPECT_EQ(request->request_header.request_handle, 1u);
  EXPECT_EQ(request->request_header.timeout_hint, 10000u);
  EXPECT_EQ(request->request_type, SecurityTokenRequestType::kIssue);
  EXPECT_EQ(request->security_mode, MessageSecurityMode::kNone);
  EXPECT_EQ(request->client_nonce, std::vector<uint8_t>{});
  EXPECT_EQ(request->requested_lifetime, 3600000u);

  // And back, byte for byte.
  Result<std::vector<uint8_t>> body = EncodeServiceMessage(*request);
  ASSERT_THAT(body, IsOk());
  ChunkWriter writer(ChunkWriterLimits{}, 1);
  Result<std::vector<std::vector<uint8_t>>> chunks =
      writer.WriteMessage(MessageType::kOpenSecureChannel, 0, 0, 1, *body, none);
  ASSERT_THAT(chunks, IsOk());
  ASSERT_THAT(*chunks, SizeIs(1));
  EXPECT_EQ(Hex((*chunks)[0]), Hex(golden));
}

// --- Round trips -----------------------------------------------------------------------------

TEST(ServicesTest, SecureChannelMessagesRoundTrip) {
  OpenSecureChannelRequest opn;
  opn.request_header = SessionHeader();
  opn.request_type = SecurityTokenRequestType::kRenew;
  opn.client_nonce = std::vector<uint8_t>{};
  opn.requested_lifetime = 600000;
  ExpectRoundTrip(opn);

  OpenSecureChannelResponse response;
  response.response_header = GoodResponseHeader();
  response.security_token = ChannelSecurityToken{5, 2, DateTime{133500000000000000}, 600000};
  response.server_nonce = std::vector<uint8_t>{};
  ExpectRoundTrip(response);

  ExpectRoundTrip(CloseSecureChannelRequest{SessionHeader()});
  ExpectRoundTrip(CloseSecureChannelResponse{GoodResponseHeader()});
}

TEST(ServicesTest, DiscoveryAndSessionMessagesRoundTrip) {
  GetEndpointsRequest get;
  get.request_header = SessionHeader();
  get.endpoint_url = "opc.tcp://127.0.0.1:4840";
  get.profile_uris = {
      UaString("http://opcfoundation.org/UA-Profile/Transport/uatcp-uasc-uabinary")};
  ExpectRoundTrip(get);
  GetEndpointsResponse endpoints;
  endpoints.response_header = GoodResponseHeader();
  endpoints.endpoints = {NoneEndpoint(), NoneEndpoint()};
  ExpectRoundTrip(endpoints);

  CreateSessionRequest create;
  create.request_header = SessionHeader();
  create.client_description.application_uri = "urn:kiln:edge";
  create.client_description.application_name = LocalizedText{std::nullopt, "kiln-edge"};
  create.endpoint_url = "opc.tcp://127.0.0.1:4840";
  create.session_name = "kiln";
  create.client_nonce = std::vector<uint8_t>(32, 7);
  create.requested_session_timeout = 60000;
  create.max_response_message_size = 16 << 20;
  ExpectRoundTrip(create);

  CreateSessionResponse session;
  session.response_header = GoodResponseHeader();
  session.session_id = NodeId(1, 123456);
  session.authentication_token = NodeId::Opaque(0, std::vector<uint8_t>(16, 0x3C));
  session.revised_session_timeout = 60000;
  session.server_nonce = std::vector<uint8_t>(32, 1);
  session.server_endpoints = {NoneEndpoint()};
  session.server_software_certificates = {SignedSoftwareCertificate{std::vector<uint8_t>{1}, {}}};
  session.server_signature = SignatureData{"http://www.w3.org/2000/09/xmldsig#rsa-sha1", {}};
  session.max_request_message_size = 16 << 20;
  ExpectRoundTrip(session);

  ActivateSessionRequest activate;
  activate.request_header = SessionHeader();
  activate.locale_ids = {UaString("en")};
  activate.user_identity_token = MakeAnonymousIdentityToken("anonymous");
  ExpectRoundTrip(activate);

  ActivateSessionResponse activated;
  activated.response_header = GoodResponseHeader();
  activated.server_nonce = std::vector<uint8_t>(32, 2);
  activated.results = {contract::status::kGood};
  ExpectRoundTrip(activated);

  ExpectRoundTrip(CloseSessionRequest{SessionHeader(), true});
  ExpectRoundTrip(CloseSessionResponse{GoodResponseHeader()});
}

TEST(ServicesTest, AttributeAndViewMessagesRoundTrip) {
  ReadRequest read;
  read.request_header = SessionHeader();
  read.timestamps_to_return = TimestampsToReturn::kBoth;
  read.nodes_to_read = {
      ReadValueId{NodeId(1, "Counter"), kAttributeValue, {}, {}},
      ReadValueId{NodeId(0, kNodeServerStatusCurrentTime), kAttributeValue, {}, {}},
      ReadValueId{NodeId(1, "Matrix"), kAttributeValue, "0:1", {0, "x"}}};
  ExpectRoundTrip(read);

  ReadResponse values;
  values.response_header = GoodResponseHeader();
  DataValue unknown;
  unknown.status = contract::status::kBadNodeIdUnknown;
  values.results = {SampleValue(21.5), unknown};
  DiagnosticInfo why;
  why.additional_info = "no such node";
  values.diagnostic_infos = {DiagnosticInfo(), why};
  ExpectRoundTrip(values);

  WriteRequest write;
  write.request_header = SessionHeader();
  DataValue setpoint;
  setpoint.value = Variant::Scalar(float{42.5f});
  write.nodes_to_write = {WriteValue{NodeId(1, "Setpoint"), kAttributeValue, {}, setpoint}};
  ExpectRoundTrip(write);
  ExpectRoundTrip(WriteResponse{GoodResponseHeader(), {contract::status::kBadNotWritable}, {}});

  BrowseRequest browse;
  browse.request_header = SessionHeader();
  browse.requested_max_references_per_node = 1000;
  BrowseDescription objects;
  objects.node_id = NodeId(0, kNodeObjectsFolder);
  browse.nodes_to_browse = {objects};
  ExpectRoundTrip(browse);

  ReferenceDescription ref;
  ref.reference_type_id = NodeId(0, kNodeOrganizes);
  ref.node_id = ExpandedNodeId(NodeId(1, "Counter"));
  ref.browse_name = QualifiedName{1, "Counter"};
  ref.display_name = LocalizedText{std::nullopt, "Counter"};
  ref.node_class = 2;
  ref.type_definition = ExpandedNodeId(NodeId(0, 63));
  BrowseResponse browsed;
  browsed.response_header = GoodResponseHeader();
  browsed.results = {BrowseResult{contract::status::kGood, std::vector<uint8_t>{1, 2}, {ref, ref}}};
  ExpectRoundTrip(browsed);

  BrowseNextRequest next;
  next.request_header = SessionHeader();
  next.continuation_points = {std::vector<uint8_t>{1, 2}, ByteString()};
  ExpectRoundTrip(next);
  BrowseNextResponse next_result;
  next_result.response_header = GoodResponseHeader();
  next_result.results = {BrowseResult{contract::status::kGood, {}, {ref}}};
  ExpectRoundTrip(next_result);
}

DataChangeNotification SampleDataChange(int items) {
  DataChangeNotification n;
  for (int i = 0; i < items; ++i) {
    n.monitored_items.push_back(
        MonitoredItemNotification{static_cast<uint32_t>(i), SampleValue(i)});
  }
  return n;
}

TEST(ServicesTest, SubscriptionMessagesRoundTrip) {
  CreateSubscriptionRequest create;
  create.request_header = SessionHeader();
  create.requested_publishing_interval = 100;
  create.requested_lifetime_count = 60;
  create.requested_max_keep_alive_count = 10;
  create.priority = 5;
  ExpectRoundTrip(create);
  ExpectRoundTrip(CreateSubscriptionResponse{GoodResponseHeader(), 7, 100, 60, 10});

  DataChangeFilter deadband{DataChangeTrigger::kStatusValue, DeadbandType::kAbsolute, 0.5};
  Result<ExtensionObject> filter = ToExtensionObject(deadband);
  ASSERT_THAT(filter, IsOk());
  Result<std::vector<uint8_t>> filter_bytes = EncodeToBytes(*filter);
  ASSERT_THAT(filter_bytes, IsOk());
  EXPECT_EQ(Hex(*filter_bytes),
            "01 00 d4 02 01 10 00 00 00 01 00 00 00 01 00 00 00 00 00 00 00 00 00 e0 3f");
  EXPECT_THAT(FromExtensionObject<DataChangeFilter>(*filter), IsOkAndHolds(Eq(deadband)));

  CreateMonitoredItemsRequest items;
  items.request_header = SessionHeader();
  items.subscription_id = 7;
  MonitoredItemCreateRequest item;
  item.item_to_monitor = ReadValueId{NodeId(1, "Counter"), kAttributeValue, {}, {}};
  item.requested_parameters.client_handle = 1;
  item.requested_parameters.sampling_interval = 100;
  item.requested_parameters.filter = *filter;
  item.requested_parameters.queue_size = 10;
  items.items_to_create = {item, item};
  ExpectRoundTrip(items);
  CreateMonitoredItemsResponse created;
  created.response_header = GoodResponseHeader();
  created.results = {MonitoredItemCreateResult{contract::status::kGood, 1, 100, 10, {}},
                     MonitoredItemCreateResult{contract::status::kBadNodeIdUnknown, 0, 0, 0, {}}};
  ExpectRoundTrip(created);

  ExpectRoundTrip(DeleteSubscriptionsRequest{SessionHeader(), {7, 8}});
  ExpectRoundTrip(DeleteSubscriptionsResponse{GoodResponseHeader(), {contract::status::kGood}, {}});

  PublishRequest publish;
  publish.request_header = SessionHeader();
  publish.subscription_acknowledgements = {SubscriptionAcknowledgement{7, 41},
                                           SubscriptionAcknowledgement{7, 42}};
  ExpectRoundTrip(publish);

  PublishResponse published;
  published.response_header = GoodResponseHeader();
  published.subscription_id = 7;
  published.available_sequence_numbers = {43};
  published.notification_message.sequence_number = 43;
  published.notification_message.publish_time = DateTime{133500000000000000};
  published.notification_message.notification_data = {*ToExtensionObject(SampleDataChange(3))};
  published.results = {contract::status::kGood, contract::status::kGood};
  ExpectRoundTrip(published);

  ExpectRoundTrip(RepublishRequest{SessionHeader(), 7, 43});
  ExpectRoundTrip(RepublishResponse{GoodResponseHeader(), published.notification_message});
  ExpectRoundTrip(TransferSubscriptionsRequest{SessionHeader(), {7}, true});
  ExpectRoundTrip(TransferSubscriptionsResponse{
      GoodResponseHeader(), {TransferResult{contract::status::kGood, {42, 43}}}, {}});
  ExpectRoundTrip(ServiceFault{ResponseHeader{{}, 1, contract::status::kBadTimeout, {}, {}, {}}});
}

// --- Publish notifications -------------------------------------------------------------------

TEST(ServicesTest, DecodesDataChangeAndStatusChangeNotifications) {
  PublishResponse response;
  response.subscription_id = 7;
  response.notification_message.sequence_number = 1;
  StatusChangeNotification expired{contract::status::kBadTimeout, {}};
  ExtensionObject event;
  event.type_id = NodeId(0, 916);  // EventNotificationList: left opaque
  event.encoding = ExtensionObject::Encoding::kByteString;
  event.body = {0, 0, 0, 0, 0, 0, 0, 0};
  response.notification_message.notification_data = {*ToExtensionObject(SampleDataChange(2)),
                                                     *ToExtensionObject(expired), event};
  Result<std::vector<uint8_t>> body = EncodeServiceMessage(response);
  ASSERT_THAT(body, IsOk());

  Result<PublishResponse> decoded = DecodeResponse<PublishResponse>(*body);
  ASSERT_THAT(decoded, IsOk());
  const auto& data = decoded->notification_message.notification_data;
  ASSERT_THAT(data, SizeIs(3));
  Result<Notification> first = DecodeNotification(data[0]);
  ASSERT_THAT(first, IsOk());
  ASSERT_TRUE(std::holds_alternative<DataChangeNotification>(*first));
  const auto& items = std::get<DataChangeNotification>(*first).monitored_items;
  ASSERT_THAT(items, SizeIs(2));
  EXPECT_EQ(items[1].client_handle, 1u);
  EXPECT_EQ(*items[1].value.value->get_if<double>(), 1.0);
  EXPECT_EQ(items[1].value.source_timestamp->ToTimestamp(),
            DateTime{133500000000000000}.ToTimestamp());

  Result<Notification> second = DecodeNotification(data[1]);
  ASSERT_THAT(second, IsOk());
  EXPECT_THAT(std::get<StatusChangeNotification>(*second), Eq(expired));
  Result<Notification> third = DecodeNotification(data[2]);
  ASSERT_THAT(third, IsOk());
  EXPECT_THAT(std::get<ExtensionObject>(*third), Eq(event));
}

TEST(ServicesTest, KeepAliveHasNoNotificationData) {
  PublishResponse keep_alive;
  keep_alive.subscription_id = 7;
  keep_alive.notification_message.sequence_number = 5;  // the next number, not consumed
  Result<std::vector<uint8_t>> body = EncodeServiceMessage(keep_alive);
  ASSERT_THAT(body, IsOk());
  Result<PublishResponse> decoded = DecodeResponse<PublishResponse>(*body);
  ASSERT_THAT(decoded, IsOk());
  EXPECT_TRUE(decoded->notification_message.notification_data.empty());
}

TEST(ServicesTest, MalformedNotificationBodyIsRefused) {
  ExtensionObject broken = *ToExtensionObject(SampleDataChange(1));
  broken.body.pop_back();
  EXPECT_THAT(DecodeNotification(broken).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("DataChangeNotification: offset 38: truncated Int32")));
  broken = *ToExtensionObject(SampleDataChange(1));
  broken.body.push_back(0);
  EXPECT_THAT(DecodeNotification(broken).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("1 trailing bytes")));
  broken.encoding = ExtensionObject::Encoding::kXml;
  EXPECT_THAT(DecodeNotification(broken).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not binary encoded")));
}

// --- Message framing -------------------------------------------------------------------------

TEST(ServicesTest, ServiceFaultDecodesAsAResponseWithABadResult) {
  ServiceFault fault;
  fault.response_header.request_handle = 9;
  fault.response_header.service_result = Quality(0x80250000);  // BadSessionIdInvalid
  Result<std::vector<uint8_t>> body = EncodeServiceMessage(fault);
  ASSERT_THAT(body, IsOk());
  EXPECT_EQ(Hex(std::vector<uint8_t>(body->begin(), body->begin() + 4)), "01 00 8d 01");
  Result<ReadResponse> read = DecodeResponse<ReadResponse>(*body);
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->response_header.service_result.code(), 0x80250000u);
  EXPECT_EQ(read->response_header.request_handle, 9u);
  EXPECT_TRUE(read->results.empty());

  fault.response_header.service_result = contract::status::kGood;
  EXPECT_THAT(DecodeResponse<ReadResponse>(*EncodeServiceMessage(fault)).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("non-Bad result")));
}

TEST(ServicesTest, WrongMessageTypeIsRefused) {
  Result<std::vector<uint8_t>> body = EncodeServiceMessage(CloseSessionResponse{});
  ASSERT_THAT(body, IsOk());
  EXPECT_THAT(DecodeResponse<ReadResponse>(*body).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       Eq("offset 0: expected ReadResponse (i=634), got i=476")));
  EXPECT_THAT(PeekEncodingId(Bytes("03 01 00 01 00 00 00 78")).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("is not a numeric ns=0 NodeId")));
  EXPECT_THAT(PeekEncodingId(Bytes("")).status(), StatusIs(StatusCode::kInvalidArgument));
}

TEST(ServicesTest, TrailingBytesAfterAMessageAreRefused) {
  Result<std::vector<uint8_t>> body = EncodeServiceMessage(CloseSessionResponse{});
  ASSERT_THAT(body, IsOk());
  body->push_back(0);
  EXPECT_THAT(DecodeServiceMessage<CloseSessionResponse>(*body).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("1 trailing bytes after CloseSessionResponse")));
}

// --- Identity tokens -------------------------------------------------------------------------

TEST(ServicesTest, UserNameTokenCarriesThePasswordInClearOnlyUnderNone) {
  UserTokenPolicy none_policy{"username", UserTokenType::kUserName, {}, {}, {}};
  Result<ExtensionObject> token =
      MakeUserNameIdentityToken(none_policy, kSecurityPolicyNoneUri, "operator", "s3cret");
  ASSERT_THAT(token, IsOk());
  EXPECT_EQ(token->type_id, NodeId(0, 324));
  Result<UserNameIdentityToken> decoded = FromExtensionObject<UserNameIdentityToken>(*token);
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(decoded->policy_id, "username");
  EXPECT_EQ(decoded->user_name, "operator");
  EXPECT_EQ(decoded->password, (std::vector<uint8_t>{'s', '3', 'c', 'r', 'e', 't'}));
  EXPECT_EQ(decoded->encryption_algorithm, std::nullopt);
  EXPECT_EQ(Hex(token->body),
            Hex(Bytes("08 00 00 00 \"username\" 08 00 00 00 \"operator\" 06 00 00 00 \"s3cret\" "
                      "ff ff ff ff")));

  // node-opcua's default: the token policy asks for Basic256Sha256 even on a None channel.
  const UserTokenPolicy encrypted = NoneEndpoint().user_identity_tokens[1];
  EXPECT_THAT(MakeUserNameIdentityToken(encrypted, kSecurityPolicyNoneUri, "u", "p").status(),
              StatusIs(StatusCode::kUnimplemented, HasSubstr("Basic256Sha256")));
  EXPECT_THAT(MakeUserNameIdentityToken(
                  none_policy, "http://opcfoundation.org/UA/SecurityPolicy#Basic256", "u", "p")
                  .status(),
              StatusIs(StatusCode::kUnimplemented));
  const UserTokenPolicy anonymous = NoneEndpoint().user_identity_tokens[0];
  EXPECT_THAT(MakeUserNameIdentityToken(anonymous, kSecurityPolicyNoneUri, "u", "p").status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not a UserName policy")));
}

}  // namespace
}  // namespace kiln::drivers::opcua
