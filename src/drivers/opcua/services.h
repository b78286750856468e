#pragma once
// The service messages a minimal OPC UA client needs (OPC 10000-4 §5, structure layouts from
// the binary schema; field order in PROTOCOLS.md A2.4, cross-checked against node-opcua's
// generated schemas) and their UA Binary codecs. Sans-IO value types; thread-compatible.
//
// Each structure lists its fields once, in wire order, in a static Fields() visitor; the
// generic StructCodec encodes and decodes any type that has one. Each message carries the
// numeric NodeId (ns=0) of its DefaultBinary encoding: the body of a MSG/OPN/CLO message is
// that NodeId followed by the structure (EncodeServiceMessage / DecodeServiceMessage).
//
// Conventions: enumerations travel as UInt32 (Int32 on the wire: same bytes) and unknown
// values are kept as they are; null arrays decode as empty vectors and empty vectors encode as
// count 0 (Kiln never needs to tell them apart); strings keep null vs empty (UaString).
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "contract/quality.h"
#include "core/status.h"
#include "drivers/opcua/encoding.h"
#include "drivers/opcua/types.h"

namespace kiln::drivers::opcua {

// --- Generic codecs for arrays, enumerations and structures ----------------------------------

template <typename T>
struct Codec<std::vector<T>> {
  static constexpr size_t kMinSize = 4;
  static void Encode(Writer& w, const std::vector<T>& v) { w.WriteArray(v); }
  static std::vector<T> Decode(Reader& r) { return r.ReadArray<T>(); }
};

template <typename E>
requires std::is_enum_v<E> &&(sizeof(E) == 4) struct Codec<E> {
  static constexpr size_t kMinSize = 4;
  static void Encode(Writer& w, E v) { w.WriteUInt32(static_cast<uint32_t>(v)); }
  static E Decode(Reader& r) { return static_cast<E>(r.ReadUInt32()); }
};

struct FieldProbe {
  template <typename F>
  void operator()(const F&) const {}
};
// A structure: T::Fields(self, visit) calls visit(field) for each field in wire order.
template <typename T>
concept UaStructure = requires(const T& t, FieldProbe probe) {
  T::Fields(t, probe);
};

template <typename T>
requires UaStructure<T>
struct Codec<T> {
  static void Encode(Writer& w, const T& v) {
    T::Fields(v, [&w](const auto& field) { w.Write(field); });
  }
  static T Decode(Reader& r) {
    T v;
    T::Fields(v, [&r](auto& field) {
      if (r.ok()) field = r.template Read<std::remove_cvref_t<decltype(field)>>();
    });
    return v;
  }
};

// --- Enumerations (OPC 10000-4 §7) -----------------------------------------------------------

enum class SecurityTokenRequestType : uint32_t { kIssue = 0, kRenew = 1 };
enum class MessageSecurityMode : uint32_t {
  kInvalid = 0,
  kNone = 1,
  kSign = 2,
  kSignAndEncrypt = 3
};
enum class ApplicationType : uint32_t {
  kServer = 0,
  kClient = 1,
  kClientAndServer = 2,
  kDiscoveryServer = 3
};
enum class UserTokenType : uint32_t {
  kAnonymous = 0,
  kUserName = 1,
  kCertificate = 2,
  kIssuedToken = 3
};
enum class TimestampsToReturn : uint32_t { kSource = 0, kServer = 1, kBoth = 2, kNeither = 3 };
enum class BrowseDirection : uint32_t { kForward = 0, kInverse = 1, kBoth = 2 };
enum class MonitoringMode : uint32_t { kDisabled = 0, kSampling = 1, kReporting = 2 };
enum class DataChangeTrigger : uint32_t {
  kStatus = 0,
  kStatusValue = 1,
  kStatusValueTimestamp = 2
};
enum class DeadbandType : uint32_t { kNone = 0, kAbsolute = 1, kPercent = 2 };

// Attribute ids (OPC 10000-6 Annex A.1).
inline constexpr uint32_t kAttributeNodeId = 1;
inline constexpr uint32_t kAttributeNodeClass = 2;
inline constexpr uint32_t kAttributeBrowseName = 3;
inline constexpr uint32_t kAttributeDisplayName = 4;
inline constexpr uint32_t kAttributeDescription = 5;
inline constexpr uint32_t kAttributeValue = 13;
inline constexpr uint32_t kAttributeDataType = 14;
inline constexpr uint32_t kAttributeValueRank = 15;
inline constexpr uint32_t kAttributeAccessLevel = 17;
inline constexpr uint32_t kAttributeUserAccessLevel = 18;
inline constexpr uint32_t kAttributeMinimumSamplingInterval = 19;

// Well-known nodes (ns=0) and reference types, PROTOCOLS.md A2.3.
inline constexpr uint32_t kNodeRootFolder = 84;
inline constexpr uint32_t kNodeObjectsFolder = 85;
inline constexpr uint32_t kNodeServer = 2253;
inline constexpr uint32_t kNodeServerNamespaceArray = 2255;
inline constexpr uint32_t kNodeServerStatusCurrentTime = 2258;
inline constexpr uint32_t kNodeServerStatusState = 2259;
inline constexpr uint32_t kNodeHierarchicalReferences = 33;
inline constexpr uint32_t kNodeOrganizes = 35;
inline constexpr uint32_t kNodeHasTypeDefinition = 40;
inline constexpr uint32_t kNodeHasProperty = 46;
inline constexpr uint32_t kNodeHasComponent = 47;

// --- Common structures -----------------------------------------------------------------------

struct RequestHeader {
  NodeId authentication_token;  // from CreateSessionResponse; copy it verbatim
  DateTime timestamp;
  uint32_t request_handle = 0;
  uint32_t return_diagnostics = 0;
  UaString audit_entry_id;
  uint32_t timeout_hint = 0;  // ms; 0 = none
  ExtensionObject additional_header;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.authentication_token), v(s.timestamp), v(s.request_handle), v(s.return_diagnostics),
        v(s.audit_entry_id), v(s.timeout_hint), v(s.additional_header);
  }
  friend bool operator==(const RequestHeader&, const RequestHeader&) = default;
};

struct ResponseHeader {
  DateTime timestamp;
  uint32_t request_handle = 0;
  contract::Quality service_result;
  DiagnosticInfo service_diagnostics;
  std::vector<UaString> string_table;
  ExtensionObject additional_header;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.timestamp), v(s.request_handle), v(s.service_result), v(s.service_diagnostics),
        v(s.string_table), v(s.additional_header);
  }
  friend bool operator==(const ResponseHeader&, const ResponseHeader&) = default;
};

// ServiceFault (i=397) may replace any response; it has only a ResponseHeader whose
// service_result says why (always Bad).
struct ServiceFault {
  static constexpr uint32_t kBinaryEncodingId = 397;
  static constexpr std::string_view kName = "ServiceFault";
  ResponseHeader response_header;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header);
  }
  friend bool operator==(const ServiceFault&, const ServiceFault&) = default;
};

// --- Secure channel (OPC 10000-4 §5.5) -------------------------------------------------------

struct OpenSecureChannelRequest {
  static constexpr uint32_t kBinaryEncodingId = 446;
  static constexpr std::string_view kName = "OpenSecureChannelRequest";
  RequestHeader request_header;
  uint32_t client_protocol_version = 0;
  SecurityTokenRequestType request_type = SecurityTokenRequestType::kIssue;
  MessageSecurityMode security_mode = MessageSecurityMode::kNone;
  ByteString client_nonce;          // empty or null with SecurityPolicy None
  uint32_t requested_lifetime = 0;  // ms

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.client_protocol_version), v(s.request_type), v(s.security_mode),
        v(s.client_nonce), v(s.requested_lifetime);
  }
  friend bool operator==(const OpenSecureChannelRequest&,
                         const OpenSecureChannelRequest&) = default;
};

struct ChannelSecurityToken {
  uint32_t channel_id = 0;
  uint32_t token_id = 0;
  DateTime created_at;
  uint32_t revised_lifetime = 0;  // ms; renew at ~75 %

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.channel_id), v(s.token_id), v(s.created_at), v(s.revised_lifetime);
  }
  friend bool operator==(const ChannelSecurityToken&, const ChannelSecurityToken&) = default;
};

struct OpenSecureChannelResponse {
  static constexpr uint32_t kBinaryEncodingId = 449;
  static constexpr std::string_view kName = "OpenSecureChannelResponse";
  ResponseHeader response_header;
  uint32_t server_protocol_version = 0;
  ChannelSecurityToken security_token;
  ByteString server_nonce;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header), v(s.server_protocol_version), v(s.security_token), v(s.server_nonce);
  }
  friend bool operator==(const OpenSecureChannelResponse&,
                         const OpenSecureChannelResponse&) = default;
};

// Sent in a CLO chunk; the server answers by closing the connection.
struct CloseSecureChannelRequest {
  static constexpr uint32_t kBinaryEncodingId = 452;
  static constexpr std::string_view kName = "CloseSecureChannelRequest";
  RequestHeader request_header;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header);
  }
  friend bool operator==(const CloseSecureChannelRequest&,
                         const CloseSecureChannelRequest&) = default;
};

struct CloseSecureChannelResponse {
  static constexpr uint32_t kBinaryEncodingId = 455;
  static constexpr std::string_view kName = "CloseSecureChannelResponse";
  ResponseHeader response_header;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header);
  }
  friend bool operator==(const CloseSecureChannelResponse&,
                         const CloseSecureChannelResponse&) = default;
};

// --- Discovery (OPC 10000-4 §5.4) ------------------------------------------------------------

struct ApplicationDescription {
  UaString application_uri;
  UaString product_uri;
  LocalizedText application_name;
  ApplicationType application_type = ApplicationType::kClient;
  UaString gateway_server_uri;
  UaString discovery_profile_uri;
  std::vector<UaString> discovery_urls;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.application_uri), v(s.product_uri), v(s.application_name), v(s.application_type),
        v(s.gateway_server_uri), v(s.discovery_profile_uri), v(s.discovery_urls);
  }
  friend bool operator==(const ApplicationDescription&, const ApplicationDescription&) = default;
};

struct UserTokenPolicy {
  UaString policy_id;
  UserTokenType token_type = UserTokenType::kAnonymous;
  UaString issued_token_type;
  UaString issuer_endpoint_url;
  UaString security_policy_uri;  // null/empty: the channel's policy protects the token

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.policy_id), v(s.token_type), v(s.issued_token_type), v(s.issuer_endpoint_url),
        v(s.security_policy_uri);
  }
  friend bool operator==(const UserTokenPolicy&, const UserTokenPolicy&) = default;
};

struct EndpointDescription {
  UaString endpoint_url;
  ApplicationDescription server;
  ByteString server_certificate;
  MessageSecurityMode security_mode = MessageSecurityMode::kNone;
  UaString security_policy_uri;
  std::vector<UserTokenPolicy> user_identity_tokens;
  UaString transport_profile_uri;
  uint8_t security_level = 0;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.endpoint_url), v(s.server), v(s.server_certificate), v(s.security_mode),
        v(s.security_policy_uri), v(s.user_identity_tokens), v(s.transport_profile_uri),
        v(s.security_level);
  }
  friend bool operator==(const EndpointDescription&, const EndpointDescription&) = default;
};

struct GetEndpointsRequest {
  static constexpr uint32_t kBinaryEncodingId = 428;
  static constexpr std::string_view kName = "GetEndpointsRequest";
  RequestHeader request_header;
  UaString endpoint_url;
  std::vector<UaString> locale_ids;
  std::vector<UaString> profile_uris;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.endpoint_url), v(s.locale_ids), v(s.profile_uris);
  }
  friend bool operator==(const GetEndpointsRequest&, const GetEndpointsRequest&) = default;
};

struct GetEndpointsResponse {
  static constexpr uint32_t kBinaryEncodingId = 431;
  static constexpr std::string_view kName = "GetEndpointsResponse";
  ResponseHeader response_header;
  std::vector<EndpointDescription> endpoints;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header), v(s.endpoints);
  }
  friend bool operator==(const GetEndpointsResponse&, const GetEndpointsResponse&) = default;
};

// --- Session (OPC 10000-4 §5.6) --------------------------------------------------------------

struct SignedSoftwareCertificate {
  ByteString certificate_data;
  ByteString signature;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.certificate_data), v(s.signature);
  }
  friend bool operator==(const SignedSoftwareCertificate&,
                         const SignedSoftwareCertificate&) = default;
};

struct SignatureData {
  UaString algorithm;
  ByteString signature;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.algorithm), v(s.signature);
  }
  friend bool operator==(const SignatureData&, const SignatureData&) = default;
};

struct CreateSessionRequest {
  static constexpr uint32_t kBinaryEncodingId = 461;
  static constexpr std::string_view kName = "CreateSessionRequest";
  RequestHeader request_header;
  ApplicationDescription client_description;
  UaString server_uri;
  UaString endpoint_url;
  UaString session_name;
  ByteString client_nonce;
  ByteString client_certificate;
  double requested_session_timeout = 0;  // ms
  uint32_t max_response_message_size = 0;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.client_description), v(s.server_uri), v(s.endpoint_url),
        v(s.session_name), v(s.client_nonce), v(s.client_certificate),
        v(s.requested_session_timeout), v(s.max_response_message_size);
  }
  friend bool operator==(const CreateSessionRequest&, const CreateSessionRequest&) = default;
};

struct CreateSessionResponse {
  static constexpr uint32_t kBinaryEncodingId = 464;
  static constexpr std::string_view kName = "CreateSessionResponse";
  ResponseHeader response_header;
  NodeId session_id;
  NodeId authentication_token;  // opaque: send it back verbatim in every RequestHeader
  double revised_session_timeout = 0;
  ByteString server_nonce;
  ByteString server_certificate;
  std::vector<EndpointDescription> server_endpoints;
  std::vector<SignedSoftwareCertificate> server_software_certificates;
  SignatureData server_signature;
  uint32_t max_request_message_size = 0;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header), v(s.session_id), v(s.authentication_token), v(s.revised_session_timeout),
        v(s.server_nonce), v(s.server_certificate), v(s.server_endpoints),
        v(s.server_software_certificates), v(s.server_signature), v(s.max_request_message_size);
  }
  friend bool operator==(const CreateSessionResponse&, const CreateSessionResponse&) = default;
};

// The body of ActivateSession's userIdentityToken for anonymous access (i=321).
struct AnonymousIdentityToken {
  static constexpr uint32_t kBinaryEncodingId = 321;
  static constexpr std::string_view kName = "AnonymousIdentityToken";
  UaString policy_id;  // of the endpoint's UserTokenPolicy with token type Anonymous

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.policy_id);
  }
  friend bool operator==(const AnonymousIdentityToken&, const AnonymousIdentityToken&) = default;
};

// User name and password (i=324). With SecurityPolicy None the password travels in clear
// (UTF-8 bytes, encryption_algorithm null), which OPC 10000-4 §7.41.4 allows only when the
// token policy's SecurityPolicy is None; see MakeUserNameIdentityToken.
struct UserNameIdentityToken {
  static constexpr uint32_t kBinaryEncodingId = 324;
  static constexpr std::string_view kName = "UserNameIdentityToken";
  UaString policy_id;
  UaString user_name;
  ByteString password;
  UaString encryption_algorithm;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.policy_id), v(s.user_name), v(s.password), v(s.encryption_algorithm);
  }
  friend bool operator==(const UserNameIdentityToken&, const UserNameIdentityToken&) = default;
};

struct ActivateSessionRequest {
  static constexpr uint32_t kBinaryEncodingId = 467;
  static constexpr std::string_view kName = "ActivateSessionRequest";
  RequestHeader request_header;
  SignatureData client_signature;
  std::vector<SignedSoftwareCertificate> client_software_certificates;
  std::vector<UaString> locale_ids;
  ExtensionObject user_identity_token;
  SignatureData user_token_signature;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.client_signature), v(s.client_software_certificates), v(s.locale_ids),
        v(s.user_identity_token), v(s.user_token_signature);
  }
  friend bool operator==(const ActivateSessionRequest&, const ActivateSessionRequest&) = default;
};

struct ActivateSessionResponse {
  static constexpr uint32_t kBinaryEncodingId = 470;
  static constexpr std::string_view kName = "ActivateSessionResponse";
  ResponseHeader response_header;
  ByteString server_nonce;
  std::vector<contract::Quality> results;
  std::vector<DiagnosticInfo> diagnostic_infos;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header), v(s.server_nonce), v(s.results), v(s.diagnostic_infos);
  }
  friend bool operator==(const ActivateSessionResponse&, const ActivateSessionResponse&) = default;
};

struct CloseSessionRequest {
  static constexpr uint32_t kBinaryEncodingId = 473;
  static constexpr std::string_view kName = "CloseSessionRequest";
  RequestHeader request_header;
  bool delete_subscriptions = true;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.delete_subscriptions);
  }
  friend bool operator==(const CloseSessionRequest&, const CloseSessionRequest&) = default;
};

struct CloseSessionResponse {
  static constexpr uint32_t kBinaryEncodingId = 476;
  static constexpr std::string_view kName = "CloseSessionResponse";
  ResponseHeader response_header;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header);
  }
  friend bool operator==(const CloseSessionResponse&, const CloseSessionResponse&) = default;
};

// --- Attribute services: Read, Write (OPC 10000-4 §5.10) -------------------------------------

struct ReadValueId {
  NodeId node_id;
  uint32_t attribute_id = kAttributeValue;
  UaString index_range;
  QualifiedName data_encoding;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.node_id), v(s.attribute_id), v(s.index_range), v(s.data_encoding);
  }
  friend bool operator==(const ReadValueId&, const ReadValueId&) = default;
};

struct ReadRequest {
  static constexpr uint32_t kBinaryEncodingId = 631;
  static constexpr std::string_view kName = "ReadRequest";
  RequestHeader request_header;
  double max_age = 0;  // ms
  TimestampsToReturn timestamps_to_return = TimestampsToReturn::kBoth;
  std::vector<ReadValueId> nodes_to_read;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.max_age), v(s.timestamps_to_return), v(s.nodes_to_read);
  }
  friend bool operator==(const ReadRequest&, const ReadRequest&) = default;
};

struct ReadResponse {
  static constexpr uint32_t kBinaryEncodingId = 634;
  static constexpr std::string_view kName = "ReadResponse";
  ResponseHeader response_header;
  std::vector<DataValue> results;
  std::vector<DiagnosticInfo> diagnostic_infos;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header), v(s.results), v(s.diagnostic_infos);
  }
  friend bool operator==(const ReadResponse&, const ReadResponse&) = default;
};

struct WriteValue {
  NodeId node_id;
  uint32_t attribute_id = kAttributeValue;
  UaString index_range;
  DataValue value;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.node_id), v(s.attribute_id), v(s.index_range), v(s.value);
  }
  friend bool operator==(const WriteValue&, const WriteValue&) = default;
};

struct WriteRequest {
  static constexpr uint32_t kBinaryEncodingId = 673;
  static constexpr std::string_view kName = "WriteRequest";
  RequestHeader request_header;
  std::vector<WriteValue> nodes_to_write;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.nodes_to_write);
  }
  friend bool operator==(const WriteRequest&, const WriteRequest&) = default;
};

struct WriteResponse {
  static constexpr uint32_t kBinaryEncodingId = 676;
  static constexpr std::string_view kName = "WriteResponse";
  ResponseHeader response_header;
  std::vector<contract::Quality> results;
  std::vector<DiagnosticInfo> diagnostic_infos;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header), v(s.results), v(s.diagnostic_infos);
  }
  friend bool operator==(const WriteResponse&, const WriteResponse&) = default;
};

// --- View services: Browse, BrowseNext (OPC 10000-4 §5.8) ------------------------------------

struct ViewDescription {
  NodeId view_id;  // null: the whole address space
  DateTime timestamp;
  uint32_t view_version = 0;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.view_id), v(s.timestamp), v(s.view_version);
  }
  friend bool operator==(const ViewDescription&, const ViewDescription&) = default;
};

struct BrowseDescription {
  NodeId node_id;
  BrowseDirection browse_direction = BrowseDirection::kForward;
  NodeId reference_type_id = NodeId(0, kNodeHierarchicalReferences);
  bool include_subtypes = true;
  uint32_t node_class_mask = 0;  // 0 = all
  uint32_t result_mask = 0x3F;   // all fields

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.node_id), v(s.browse_direction), v(s.reference_type_id), v(s.include_subtypes),
        v(s.node_class_mask), v(s.result_mask);
  }
  friend bool operator==(const BrowseDescription&, const BrowseDescription&) = default;
};

struct ReferenceDescription {
  NodeId reference_type_id;
  bool is_forward = true;
  ExpandedNodeId node_id;
  QualifiedName browse_name;
  LocalizedText display_name;
  uint32_t node_class = 0;  // Object 1, Variable 2, Method 4, ...
  ExpandedNodeId type_definition;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.reference_type_id), v(s.is_forward), v(s.node_id), v(s.browse_name), v(s.display_name),
        v(s.node_class), v(s.type_definition);
  }
  friend bool operator==(const ReferenceDescription&, const ReferenceDescription&) = default;
};

struct BrowseResult {
  contract::Quality status_code;
  ByteString continuation_point;  // non-null: more references via BrowseNext
  std::vector<ReferenceDescription> references;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.status_code), v(s.continuation_point), v(s.references);
  }
  friend bool operator==(const BrowseResult&, const BrowseResult&) = default;
};

struct BrowseRequest {
  static constexpr uint32_t kBinaryEncodingId = 527;
  static constexpr std::string_view kName = "BrowseRequest";
  RequestHeader request_header;
  ViewDescription view;
  uint32_t requested_max_references_per_node = 0;  // 0 = server's choice
  std::vector<BrowseDescription> nodes_to_browse;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.view), v(s.requested_max_references_per_node), v(s.nodes_to_browse);
  }
  friend bool operator==(const BrowseRequest&, const BrowseRequest&) = default;
};

struct BrowseResponse {
  static constexpr uint32_t kBinaryEncodingId = 530;
  static constexpr std::string_view kName = "BrowseResponse";
  ResponseHeader response_header;
  std::vector<BrowseResult> results;
  std::vector<DiagnosticInfo> diagnostic_infos;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header), v(s.results), v(s.diagnostic_infos);
  }
  friend bool operator==(const BrowseResponse&, const BrowseResponse&) = default;
};

struct BrowseNextRequest {
  static constexpr uint32_t kBinaryEncodingId = 533;
  static constexpr std::string_view kName = "BrowseNextRequest";
  RequestHeader request_header;
  bool release_continuation_points = false;
  std::vector<ByteString> continuation_points;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.release_continuation_points), v(s.continuation_points);
  }
  friend bool operator==(const BrowseNextRequest&, const BrowseNextRequest&) = default;
};

struct BrowseNextResponse {
  static constexpr uint32_t kBinaryEncodingId = 536;
  static constexpr std::string_view kName = "BrowseNextResponse";
  ResponseHeader response_header;
  std::vector<BrowseResult> results;
  std::vector<DiagnosticInfo> diagnostic_infos;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header), v(s.results), v(s.diagnostic_infos);
  }
  friend bool operator==(const BrowseNextResponse&, const BrowseNextResponse&) = default;
};

// --- Subscriptions and monitored items (OPC 10000-4 §5.12, §5.13) ----------------------------

struct CreateSubscriptionRequest {
  static constexpr uint32_t kBinaryEncodingId = 787;
  static constexpr std::string_view kName = "CreateSubscriptionRequest";
  RequestHeader request_header;
  double requested_publishing_interval = 0;  // ms
  uint32_t requested_lifetime_count = 0;
  uint32_t requested_max_keep_alive_count = 0;
  uint32_t max_notifications_per_publish = 0;  // 0 = no limit
  bool publishing_enabled = true;
  uint8_t priority = 0;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.requested_publishing_interval), v(s.requested_lifetime_count),
        v(s.requested_max_keep_alive_count), v(s.max_notifications_per_publish),
        v(s.publishing_enabled), v(s.priority);
  }
  friend bool operator==(const CreateSubscriptionRequest&,
                         const CreateSubscriptionRequest&) = default;
};

struct CreateSubscriptionResponse {
  static constexpr uint32_t kBinaryEncodingId = 790;
  static constexpr std::string_view kName = "CreateSubscriptionResponse";
  ResponseHeader response_header;
  uint32_t subscription_id = 0;
  double revised_publishing_interval = 0;
  uint32_t revised_lifetime_count = 0;
  uint32_t revised_max_keep_alive_count = 0;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header), v(s.subscription_id), v(s.revised_publishing_interval),
        v(s.revised_lifetime_count), v(s.revised_max_keep_alive_count);
  }
  friend bool operator==(const CreateSubscriptionResponse&,
                         const CreateSubscriptionResponse&) = default;
};

// The filter of a monitored item (ExtensionObject i=724), e.g. an absolute deadband.
struct DataChangeFilter {
  static constexpr uint32_t kBinaryEncodingId = 724;
  static constexpr std::string_view kName = "DataChangeFilter";
  DataChangeTrigger trigger = DataChangeTrigger::kStatusValue;
  DeadbandType deadband_type = DeadbandType::kNone;
  double deadband_value = 0;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.trigger), v(s.deadband_type), v(s.deadband_value);
  }
  friend bool operator==(const DataChangeFilter&, const DataChangeFilter&) = default;
};

struct MonitoringParameters {
  uint32_t client_handle = 0;
  double sampling_interval = -1;  // ms; -1 = the subscription's publishing interval
  ExtensionObject filter;         // empty, or a DataChangeFilter
  uint32_t queue_size = 1;
  bool discard_oldest = true;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.client_handle), v(s.sampling_interval), v(s.filter), v(s.queue_size), v(s.discard_oldest);
  }
  friend bool operator==(const MonitoringParameters&, const MonitoringParameters&) = default;
};

struct MonitoredItemCreateRequest {
  ReadValueId item_to_monitor;
  MonitoringMode monitoring_mode = MonitoringMode::kReporting;
  MonitoringParameters requested_parameters;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.item_to_monitor), v(s.monitoring_mode), v(s.requested_parameters);
  }
  friend bool operator==(const MonitoredItemCreateRequest&,
                         const MonitoredItemCreateRequest&) = default;
};

struct MonitoredItemCreateResult {
  contract::Quality status_code;
  uint32_t monitored_item_id = 0;
  double revised_sampling_interval = 0;
  uint32_t revised_queue_size = 0;
  ExtensionObject filter_result;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.status_code), v(s.monitored_item_id), v(s.revised_sampling_interval),
        v(s.revised_queue_size), v(s.filter_result);
  }
  friend bool operator==(const MonitoredItemCreateResult&,
                         const MonitoredItemCreateResult&) = default;
};

struct CreateMonitoredItemsRequest {
  static constexpr uint32_t kBinaryEncodingId = 751;
  static constexpr std::string_view kName = "CreateMonitoredItemsRequest";
  RequestHeader request_header;
  uint32_t subscription_id = 0;
  TimestampsToReturn timestamps_to_return = TimestampsToReturn::kBoth;
  std::vector<MonitoredItemCreateRequest> items_to_create;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.subscription_id), v(s.timestamps_to_return), v(s.items_to_create);
  }
  friend bool operator==(const CreateMonitoredItemsRequest&,
                         const CreateMonitoredItemsRequest&) = default;
};

struct CreateMonitoredItemsResponse {
  static constexpr uint32_t kBinaryEncodingId = 754;
  static constexpr std::string_view kName = "CreateMonitoredItemsResponse";
  ResponseHeader response_header;
  std::vector<MonitoredItemCreateResult> results;
  std::vector<DiagnosticInfo> diagnostic_infos;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header), v(s.results), v(s.diagnostic_infos);
  }
  friend bool operator==(const CreateMonitoredItemsResponse&,
                         const CreateMonitoredItemsResponse&) = default;
};

struct DeleteSubscriptionsRequest {
  static constexpr uint32_t kBinaryEncodingId = 847;
  static constexpr std::string_view kName = "DeleteSubscriptionsRequest";
  RequestHeader request_header;
  std::vector<uint32_t> subscription_ids;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.subscription_ids);
  }
  friend bool operator==(const DeleteSubscriptionsRequest&,
                         const DeleteSubscriptionsRequest&) = default;
};

struct DeleteSubscriptionsResponse {
  static constexpr uint32_t kBinaryEncodingId = 850;
  static constexpr std::string_view kName = "DeleteSubscriptionsResponse";
  ResponseHeader response_header;
  std::vector<contract::Quality> results;
  std::vector<DiagnosticInfo> diagnostic_infos;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header), v(s.results), v(s.diagnostic_infos);
  }
  friend bool operator==(const DeleteSubscriptionsResponse&,
                         const DeleteSubscriptionsResponse&) = default;
};

struct SubscriptionAcknowledgement {
  uint32_t subscription_id = 0;
  uint32_t sequence_number = 0;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.subscription_id), v(s.sequence_number);
  }
  friend bool operator==(const SubscriptionAcknowledgement&,
                         const SubscriptionAcknowledgement&) = default;
};

struct PublishRequest {
  static constexpr uint32_t kBinaryEncodingId = 826;
  static constexpr std::string_view kName = "PublishRequest";
  RequestHeader request_header;
  std::vector<SubscriptionAcknowledgement> subscription_acknowledgements;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.subscription_acknowledgements);
  }
  friend bool operator==(const PublishRequest&, const PublishRequest&) = default;
};

// Notifications stay opaque ExtensionObjects here; DecodeNotification reads the known ones.
// An empty notification_data is a keep-alive.
struct NotificationMessage {
  uint32_t sequence_number = 0;
  DateTime publish_time;
  std::vector<ExtensionObject> notification_data;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.sequence_number), v(s.publish_time), v(s.notification_data);
  }
  friend bool operator==(const NotificationMessage&, const NotificationMessage&) = default;
};

struct PublishResponse {
  static constexpr uint32_t kBinaryEncodingId = 829;
  static constexpr std::string_view kName = "PublishResponse";
  ResponseHeader response_header;
  uint32_t subscription_id = 0;
  std::vector<uint32_t> available_sequence_numbers;
  bool more_notifications = false;
  NotificationMessage notification_message;
  std::vector<contract::Quality> results;  // of the acknowledgements
  std::vector<DiagnosticInfo> diagnostic_infos;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header), v(s.subscription_id), v(s.available_sequence_numbers),
        v(s.more_notifications), v(s.notification_message), v(s.results), v(s.diagnostic_infos);
  }
  friend bool operator==(const PublishResponse&, const PublishResponse&) = default;
};

struct MonitoredItemNotification {
  uint32_t client_handle = 0;
  DataValue value;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.client_handle), v(s.value);
  }
  friend bool operator==(const MonitoredItemNotification&,
                         const MonitoredItemNotification&) = default;
};

struct DataChangeNotification {
  static constexpr uint32_t kBinaryEncodingId = 811;
  static constexpr std::string_view kName = "DataChangeNotification";
  std::vector<MonitoredItemNotification> monitored_items;
  std::vector<DiagnosticInfo> diagnostic_infos;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.monitored_items), v(s.diagnostic_infos);
  }
  friend bool operator==(const DataChangeNotification&, const DataChangeNotification&) = default;
};

// The subscription's state changed, e.g. BadTimeout when it expired on the server.
struct StatusChangeNotification {
  static constexpr uint32_t kBinaryEncodingId = 820;
  static constexpr std::string_view kName = "StatusChangeNotification";
  contract::Quality status;
  DiagnosticInfo diagnostic_info;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.status), v(s.diagnostic_info);
  }
  friend bool operator==(const StatusChangeNotification&,
                         const StatusChangeNotification&) = default;
};

struct RepublishRequest {
  static constexpr uint32_t kBinaryEncodingId = 832;
  static constexpr std::string_view kName = "RepublishRequest";
  RequestHeader request_header;
  uint32_t subscription_id = 0;
  uint32_t retransmit_sequence_number = 0;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.subscription_id), v(s.retransmit_sequence_number);
  }
  friend bool operator==(const RepublishRequest&, const RepublishRequest&) = default;
};

struct RepublishResponse {
  static constexpr uint32_t kBinaryEncodingId = 835;
  static constexpr std::string_view kName = "RepublishResponse";
  ResponseHeader response_header;
  NotificationMessage notification_message;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header), v(s.notification_message);
  }
  friend bool operator==(const RepublishResponse&, const RepublishResponse&) = default;
};

struct TransferResult {
  contract::Quality status_code;
  std::vector<uint32_t> available_sequence_numbers;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.status_code), v(s.available_sequence_numbers);
  }
  friend bool operator==(const TransferResult&, const TransferResult&) = default;
};

struct TransferSubscriptionsRequest {
  static constexpr uint32_t kBinaryEncodingId = 841;
  static constexpr std::string_view kName = "TransferSubscriptionsRequest";
  RequestHeader request_header;
  std::vector<uint32_t> subscription_ids;
  bool send_initial_values = true;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.request_header), v(s.subscription_ids), v(s.send_initial_values);
  }
  friend bool operator==(const TransferSubscriptionsRequest&,
                         const TransferSubscriptionsRequest&) = default;
};

struct TransferSubscriptionsResponse {
  static constexpr uint32_t kBinaryEncodingId = 844;
  static constexpr std::string_view kName = "TransferSubscriptionsResponse";
  ResponseHeader response_header;
  std::vector<TransferResult> results;
  std::vector<DiagnosticInfo> diagnostic_infos;

  template <typename S, typename V>
  static void Fields(S& s, V&& v) {
    v(s.response_header), v(s.results), v(s.diagnostic_infos);
  }
  friend bool operator==(const TransferSubscriptionsResponse&,
                         const TransferSubscriptionsResponse&) = default;
};

// --- Message bodies --------------------------------------------------------------------------

// A type with a DefaultBinary encoding id: a service message or an ExtensionObject body.
template <typename T>
concept UaEncodable = UaStructure<T> && requires {
  { T::kBinaryEncodingId } -> std::convertible_to<uint32_t>;
  { T::kName } -> std::convertible_to<std::string_view>;
};

// The body of a MSG/OPN/CLO message: the NodeId of T's binary encoding, then T.
template <UaEncodable T>
Result<std::vector<uint8_t>> EncodeServiceMessage(const T& message) {
  Writer w;
  w.Write(NodeId(0, T::kBinaryEncodingId));
  w.Write(message);
  return std::move(w).Finish();
}

// The numeric encoding id (ns=0) at the start of a message body.
// Errors: InvalidArgument if the body does not start with a numeric ns=0 NodeId.
Result<uint32_t> PeekEncodingId(std::span<const uint8_t> body);

// Decodes a message body that must hold a T. Errors: InvalidArgument naming the expected and
// the actual type, any decode error with its offset, trailing bytes.
template <UaEncodable T>
Result<T> DecodeServiceMessage(std::span<const uint8_t> body,
                               const DecodeLimits& limits = DecodeLimits()) {
  Reader r(body, limits);
  const NodeId type = r.Read<NodeId>();
  KILN_RETURN_IF_ERROR(r.status());
  if (type != NodeId(0, T::kBinaryEncodingId)) {
    return InvalidArgumentError("offset 0: expected " + std::string(T::kName) + " (i=" +
                                std::to_string(T::kBinaryEncodingId) + "), got " + type.ToString());
  }
  T message = r.Read<T>();
  KILN_RETURN_IF_ERROR(r.Finish(T::kName));
  return message;
}

// As DecodeServiceMessage for a response T (a struct whose first field is response_header),
// but a ServiceFault body decodes as a T whose response_header is the fault's and whose other
// fields are empty: callers check response_header.service_result either way.
// Errors: as DecodeServiceMessage; InvalidArgument for a ServiceFault whose result is not Bad.
template <UaEncodable T>
requires requires(T t) { t.response_header; }
Result<T> DecodeResponse(std::span<const uint8_t> body,
                         const DecodeLimits& limits = DecodeLimits()) {
  KILN_ASSIGN_OR_RETURN(uint32_t id, PeekEncodingId(body));
  if (id == ServiceFault::kBinaryEncodingId && T::kBinaryEncodingId != id) {
    KILN_ASSIGN_OR_RETURN(ServiceFault fault, DecodeServiceMessage<ServiceFault>(body, limits));
    if (!fault.response_header.service_result.IsBad()) {
      return InvalidArgumentError("ServiceFault in place of " + std::string(T::kName) +
                                  " with the non-Bad result " +
                                  fault.response_header.service_result.Name());
    }
    T response;
    response.response_header = std::move(fault.response_header);
    return response;
  }
  return DecodeServiceMessage<T>(body, limits);
}

// --- ExtensionObject bodies ------------------------------------------------------------------

// Wraps T as an ExtensionObject with a ByteString body.
template <UaEncodable T>
Result<ExtensionObject> ToExtensionObject(const T& value) {
  Writer w;
  w.Write(value);
  KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> body, std::move(w).Finish());
  ExtensionObject e;
  e.type_id = NodeId(0, T::kBinaryEncodingId);
  e.encoding = ExtensionObject::Encoding::kByteString;
  e.body = std::move(body);
  return e;
}

// Decodes the body of an ExtensionObject that must hold a T. Bodies are opaque when the
// enclosing message is decoded; this is a separate decode with its own depth and memory budget,
// so no recursion runs through ExtensionObjects. Errors: InvalidArgument for another type id,
// a non-ByteString encoding, a malformed body or trailing bytes.
template <UaEncodable T>
Result<T> FromExtensionObject(const ExtensionObject& e,
                              const DecodeLimits& limits = DecodeLimits()) {
  if (e.type_id != NodeId(0, T::kBinaryEncodingId)) {
    return InvalidArgumentError("expected an ExtensionObject holding " + std::string(T::kName) +
                                " (i=" + std::to_string(T::kBinaryEncodingId) + "), got " +
                                e.type_id.ToString());
  }
  if (e.encoding != ExtensionObject::Encoding::kByteString) {
    return InvalidArgumentError("ExtensionObject holding " + std::string(T::kName) +
                                " is not binary encoded");
  }
  Reader r(e.body, limits);
  T value = r.Read<T>();
  KILN_RETURN_IF_ERROR(r.Finish(T::kName).WithContext(T::kName));
  return value;
}

// One entry of NotificationMessage.notification_data: a data change, a status change, or any
// other notification (events) left as it came.
using Notification =
    std::variant<DataChangeNotification, StatusChangeNotification, ExtensionObject>;
// Errors: as FromExtensionObject for the known types.
Result<Notification> DecodeNotification(const ExtensionObject& data,
                                        const DecodeLimits& limits = DecodeLimits());

// --- Identity tokens -------------------------------------------------------------------------

// The userIdentityToken of ActivateSession for anonymous access with `policy_id`, the
// policyId of the endpoint's anonymous UserTokenPolicy.
ExtensionObject MakeAnonymousIdentityToken(const UaString& policy_id);

// The userIdentityToken for a user name and password under `policy` (a UserName policy of the
// endpoint) on a channel using `channel_security_policy_uri`. The password is sent in clear
// (UTF-8, no encryption algorithm), which is only allowed when the token's SecurityPolicy -
// the policy's own securityPolicyUri, or the channel's when that is empty - is None.
// Errors: InvalidArgument if `policy` is not a UserName policy; Unimplemented if the token
// must be encrypted (any other SecurityPolicy), naming it.
Result<ExtensionObject> MakeUserNameIdentityToken(const UserTokenPolicy& policy,
                                                  std::string_view channel_security_policy_uri,
                                                  std::string_view user_name,
                                                  std::string_view password);

}  // namespace kiln::drivers::opcua
