#include "drivers/opcua/ua_tcp.h"

#include <algorithm>
#include <array>
#include <string>
#include <utility>

namespace kiln::drivers::opcua {
namespace {

struct TypeCode {
  MessageType type;
  std::string_view code;
};
constexpr std::array<TypeCode, 7> kTypeCodes = {{
    {MessageType::kHello, "HEL"},
    {MessageType::kAcknowledge, "ACK"},
    {MessageType::kError, "ERR"},
    {MessageType::kReverseHello, "RHE"},
    {MessageType::kOpenSecureChannel, "OPN"},
    {MessageType::kMessage, "MSG"},
    {MessageType::kCloseSecureChannel, "CLO"},
}};

constexpr uint32_t kLastSequenceNumberBeforeWrap = 4294966271u;  // UInt32.MaxValue - 1024

std::string Printable(std::span<const uint8_t> bytes) {
  std::string out;
  for (uint8_t b : bytes) {
    if (b >= 0x20 && b < 0x7F) {
      out.push_back(static_cast<char>(b));
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += "\\x";
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    }
  }
  return out;
}

bool IsSecureChannelType(MessageType t) {
  return t == MessageType::kOpenSecureChannel || t == MessageType::kMessage ||
         t == MessageType::kCloseSecureChannel;
}

// Writes a message header with a placeholder size; PatchSize fills it in.
void BeginMessage(Writer& w, MessageType type, ChunkType chunk_type) {
  EncodeMessageHeader(w, MessageHeader{type, chunk_type, 0});
}
Result<std::vector<uint8_t>> FinishMessage(Writer&& w) {
  const size_t size = w.size();
  w.PatchUInt32(4, static_cast<uint32_t>(size));
  return std::move(w).Finish();
}

// Checks the header of a whole UACP message of `expected` type and returns a reader over its
// body.
Result<Reader> OpenMessage(std::span<const uint8_t> message, MessageType expected,
                           const DecodeLimits& limits = DecodeLimits()) {
  KILN_ASSIGN_OR_RETURN(MessageHeader h, DecodeMessageHeader(message));
  if (h.type != expected) {
    return InvalidArgumentError("expected a " + std::string(MessageTypeCode(expected)) +
                                " message, got " + std::string(MessageTypeCode(h.type)));
  }
  if (h.message_size != message.size()) {
    return InvalidArgumentError("offset 4: MessageSize " + std::to_string(h.message_size) +
                                " but the message has " + std::to_string(message.size()) +
                                " bytes");
  }
  return Reader(message.subspan(kMessageHeaderSize), limits, kMessageHeaderSize);
}

ErrorMessage ReadErrorBody(Reader& r) {
  ErrorMessage e;
  e.error = r.Read<contract::Quality>();
  e.reason = r.Read<UaString>();
  if (e.reason && e.reason->size() > kMaxErrorReasonLength) e.reason.reset();
  return e;
}

}  // namespace

std::string_view MessageTypeCode(MessageType type) {
  for (const TypeCode& tc : kTypeCodes) {
    if (tc.type == type) return tc.code;
  }
  return "???";
}

void EncodeMessageHeader(Writer& w, const MessageHeader& header) {
  const std::string_view code = MessageTypeCode(header.type);
  for (char c : code) w.WriteUInt8(static_cast<uint8_t>(c));
  w.WriteUInt8(static_cast<uint8_t>(header.chunk_type));
  w.WriteUInt32(header.message_size);
}

Result<MessageHeader> DecodeMessageHeader(std::span<const uint8_t> data) {
  if (data.size() < kMessageHeaderSize) {
    return InvalidArgumentError("offset 0: truncated message header: need 8 bytes, " +
                                std::to_string(data.size()) + " left");
  }
  MessageHeader h;
  const std::string_view code(reinterpret_cast<const char*>(data.data()), 3);
  const auto it = std::find_if(kTypeCodes.begin(), kTypeCodes.end(),
                               [code](const TypeCode& tc) { return tc.code == code; });
  if (it == kTypeCodes.end()) {
    return InvalidArgumentError("offset 0: unknown message type '" + Printable(data.first(3)) +
                                "'");
  }
  h.type = it->type;
  const uint8_t chunk = data[3];
  if (chunk != 'F' && chunk != 'C' && chunk != 'A') {
    return InvalidArgumentError("offset 3: unknown chunk type '" + Printable(data.subspan(3, 1)) +
                                "'");
  }
  h.chunk_type = static_cast<ChunkType>(chunk);
  if (h.type != MessageType::kMessage && h.chunk_type != ChunkType::kFinal) {
    return InvalidArgumentError("offset 3: a " + std::string(code) + " message must be 'F', got '" +
                                Printable(data.subspan(3, 1)) + "'");
  }
  Reader r(data.subspan(4, 4), DecodeLimits(), 4);
  h.message_size = r.ReadUInt32();
  if (h.message_size < kMessageHeaderSize) {
    return InvalidArgumentError("offset 4: MessageSize " + std::to_string(h.message_size) +
                                " is smaller than the header");
  }
  return h;
}

Result<size_t> NextMessageSize(std::span<const uint8_t> received, uint32_t max_chunk_size) {
  if (received.size() < kMessageHeaderSize) return size_t{0};
  KILN_ASSIGN_OR_RETURN(MessageHeader h, DecodeMessageHeader(received));
  if (h.message_size > max_chunk_size) {
    return InvalidArgumentError(
        "BadTcpMessageTooLarge: offset 4: " + std::string(MessageTypeCode(h.type)) + " chunk of " +
        std::to_string(h.message_size) + " bytes exceeds the limit of " +
        std::to_string(max_chunk_size));
  }
  return size_t{h.message_size};
}

// --- UACP messages ---------------------------------------------------------------------------

Result<std::vector<uint8_t>> EncodeHello(const HelloMessage& hello) {
  if (hello.endpoint_url.size() >= kMaxEndpointUrlLength) {
    return InvalidArgumentError("BadTcpEndpointUrlInvalid: endpoint URL of " +
                                std::to_string(hello.endpoint_url.size()) +
                                " bytes; the limit is 4095");
  }
  Writer w;
  BeginMessage(w, MessageType::kHello, ChunkType::kFinal);
  w.WriteUInt32(hello.protocol_version);
  w.WriteUInt32(hello.receive_buffer_size);
  w.WriteUInt32(hello.send_buffer_size);
  w.WriteUInt32(hello.max_message_size);
  w.WriteUInt32(hello.max_chunk_count);
  w.Write(UaString(hello.endpoint_url));
  return FinishMessage(std::move(w));
}

Result<HelloMessage> DecodeHello(std::span<const uint8_t> message) {
  DecodeLimits limits;
  limits.max_string_length = kMaxEndpointUrlLength - 1;
  KILN_ASSIGN_OR_RETURN(Reader r, OpenMessage(message, MessageType::kHello, limits));
  HelloMessage h;
  h.protocol_version = r.ReadUInt32();
  h.receive_buffer_size = r.ReadUInt32();
  h.send_buffer_size = r.ReadUInt32();
  h.max_message_size = r.ReadUInt32();
  h.max_chunk_count = r.ReadUInt32();
  h.endpoint_url = r.Read<UaString>().value_or("");
  KILN_RETURN_IF_ERROR(r.Finish("HEL"));
  return h;
}

Result<std::vector<uint8_t>> EncodeAcknowledge(const AcknowledgeMessage& ack) {
  Writer w;
  BeginMessage(w, MessageType::kAcknowledge, ChunkType::kFinal);
  w.WriteUInt32(ack.protocol_version);
  w.WriteUInt32(ack.receive_buffer_size);
  w.WriteUInt32(ack.send_buffer_size);
  w.WriteUInt32(ack.max_message_size);
  w.WriteUInt32(ack.max_chunk_count);
  return FinishMessage(std::move(w));
}

Result<AcknowledgeMessage> DecodeAcknowledge(std::span<const uint8_t> message) {
  KILN_ASSIGN_OR_RETURN(Reader r, OpenMessage(message, MessageType::kAcknowledge));
  AcknowledgeMessage a;
  a.protocol_version = r.ReadUInt32();
  a.receive_buffer_size = r.ReadUInt32();
  a.send_buffer_size = r.ReadUInt32();
  a.max_message_size = r.ReadUInt32();
  a.max_chunk_count = r.ReadUInt32();
  KILN_RETURN_IF_ERROR(r.Finish("ACK"));
  return a;
}

Result<std::vector<uint8_t>> EncodeError(const ErrorMessage& error) {
  Writer w;
  BeginMessage(w, MessageType::kError, ChunkType::kFinal);
  w.Write(error.error);
  w.Write(error.reason);
  return FinishMessage(std::move(w));
}

Result<ErrorMessage> DecodeError(std::span<const uint8_t> message) {
  KILN_ASSIGN_OR_RETURN(Reader r, OpenMessage(message, MessageType::kError));
  ErrorMessage e = ReadErrorBody(r);
  KILN_RETURN_IF_ERROR(r.Finish("ERR"));
  return e;
}

Result<std::vector<uint8_t>> EncodeReverseHello(const ReverseHelloMessage& rhe) {
  Writer w;
  BeginMessage(w, MessageType::kReverseHello, ChunkType::kFinal);
  w.Write(rhe.server_uri);
  w.Write(rhe.endpoint_url);
  return FinishMessage(std::move(w));
}

Result<ReverseHelloMessage> DecodeReverseHello(std::span<const uint8_t> message) {
  DecodeLimits limits;
  limits.max_string_length = kMaxEndpointUrlLength - 1;
  KILN_ASSIGN_OR_RETURN(Reader r, OpenMessage(message, MessageType::kReverseHello, limits));
  ReverseHelloMessage m;
  m.server_uri = r.Read<UaString>();
  m.endpoint_url = r.Read<UaString>();
  KILN_RETURN_IF_ERROR(r.Finish("RHE"));
  return m;
}

Result<ConnectionLimits> NegotiateLimits(const HelloMessage& hello, const AcknowledgeMessage& ack) {
  if (ack.receive_buffer_size < kMinBufferSize || ack.send_buffer_size < kMinBufferSize) {
    return InvalidArgumentError("ACK buffer sizes " + std::to_string(ack.receive_buffer_size) +
                                "/" + std::to_string(ack.send_buffer_size) +
                                " are below the minimum of 8192 bytes");
  }
  ConnectionLimits l;
  l.send_chunk_size = std::min(ack.receive_buffer_size, hello.send_buffer_size);
  l.receive_chunk_size = std::min(ack.send_buffer_size, hello.receive_buffer_size);
  l.receive_message_size = hello.max_message_size;
  l.receive_chunk_count = hello.max_chunk_count;
  l.send_message_size = ack.max_message_size;
  l.send_chunk_count = ack.max_chunk_count;
  return l;
}

// --- Secure conversation chunks --------------------------------------------------------------

void Codec<AsymmetricSecurityHeader>::Encode(Writer& w, const AsymmetricSecurityHeader& v) {
  w.Write(v.security_policy_uri);
  w.Write(v.sender_certificate);
  w.Write(v.receiver_certificate_thumbprint);
}

AsymmetricSecurityHeader Codec<AsymmetricSecurityHeader>::Decode(Reader& r) {
  AsymmetricSecurityHeader h;
  h.security_policy_uri = r.Read<UaString>();
  if (h.security_policy_uri && h.security_policy_uri->size() > kMaxSecurityPolicyUriLength) {
    r.Fail("SecurityPolicyUri of " + std::to_string(h.security_policy_uri->size()) +
           " bytes; the limit is 255");
    return h;
  }
  h.sender_certificate = r.Read<ByteString>();
  h.receiver_certificate_thumbprint = r.Read<ByteString>();
  return h;
}

uint32_t NextSequenceNumber(uint32_t n) { return n == UINT32_MAX ? 1 : n + 1; }

bool IsNextSequenceNumber(uint32_t last, uint32_t next) {
  if (last != UINT32_MAX && next == last + 1) return true;
  return last > kLastSequenceNumberBeforeWrap && next < 1024;
}

Result<ChunkHeader> DecodeChunkHeader(std::span<const uint8_t> chunk, const DecodeLimits& limits) {
  KILN_ASSIGN_OR_RETURN(MessageHeader mh, DecodeMessageHeader(chunk));
  if (!IsSecureChannelType(mh.type)) {
    return InvalidArgumentError("offset 0: a " + std::string(MessageTypeCode(mh.type)) +
                                " message is not a secure channel chunk");
  }
  if (mh.message_size != chunk.size()) {
    return InvalidArgumentError("offset 4: MessageSize " + std::to_string(mh.message_size) +
                                " but the chunk has " + std::to_string(chunk.size()) + " bytes");
  }
  ChunkHeader h;
  h.message = mh;
  Reader r(chunk.subspan(kMessageHeaderSize), limits, kMessageHeaderSize);
  h.secure_channel_id = r.ReadUInt32();
  if (mh.type == MessageType::kOpenSecureChannel) {
    h.asymmetric = r.Read<AsymmetricSecurityHeader>();
  } else {
    h.symmetric = r.Read<SymmetricSecurityHeader>();
  }
  KILN_RETURN_IF_ERROR(r.status());
  h.size = r.offset();
  return h;
}

Result<DecodedChunk> OpenChunk(std::span<uint8_t> chunk, const ChunkHeader& header,
                               const ChunkSecurity& security) {
  if (header.asymmetric)
    KILN_RETURN_IF_ERROR(security.CheckPeerAsymmetricHeader(*header.asymmetric));
  KILN_ASSIGN_OR_RETURN(std::span<const uint8_t> plain,
                        security.Unprotect(header.scheme(), header.size, chunk));
  Reader r(plain, DecodeLimits(), header.size);
  DecodedChunk out;
  out.header = header;
  out.sequence = r.Read<SequenceHeader>();
  KILN_RETURN_IF_ERROR(r.status());
  out.body = plain.subspan(kSequenceHeaderSize);
  return out;
}

AssemblerLimits AssemblerLimits::From(const ConnectionLimits& limits) {
  AssemblerLimits a;
  a.max_message_size = limits.receive_message_size;
  a.max_chunk_count = limits.receive_chunk_count;
  return a;
}

void ChunkAssembler::Reset() {
  pending_.clear();
  last_sequence_number_.reset();
}

Result<std::optional<AssembledMessage>> ChunkAssembler::Add(const DecodedChunk& chunk) {
  const ChunkHeader& h = chunk.header;
  const uint32_t seq = chunk.sequence.sequence_number;
  const uint32_t request_id = chunk.sequence.request_id;
  if (last_sequence_number_ && !IsNextSequenceNumber(*last_sequence_number_, seq)) {
    return InvalidArgumentError("BadSequenceNumberInvalid: chunk sequence number " +
                                std::to_string(seq) + " after " +
                                std::to_string(*last_sequence_number_));
  }
  last_sequence_number_ = seq;
  const std::string context = std::string(MessageTypeCode(h.message.type)) + " request " +
                              std::to_string(request_id) + ": ";

  auto it = pending_.find(request_id);
  if (h.message.chunk_type == ChunkType::kAbort) {
    if (it != pending_.end()) pending_.erase(it);
    Reader r(chunk.body, decode_limits_, h.size + kSequenceHeaderSize);
    AssembledMessage m;
    m.type = h.message.type;
    m.secure_channel_id = h.secure_channel_id;
    m.request_id = request_id;
    m.token_id = h.symmetric.token_id;
    m.abort = ReadErrorBody(r);
    KILN_RETURN_IF_ERROR(r.Finish("abort chunk").WithContext(context + "abort chunk"));
    return std::optional<AssembledMessage>(std::move(m));
  }

  const bool is_final = h.message.chunk_type == ChunkType::kFinal;
  if (it == pending_.end()) {
    if (limits_.max_message_size != 0 && chunk.body.size() > limits_.max_message_size) {
      return InvalidArgumentError("BadTcpMessageTooLarge: " + context + "body exceeds " +
                                  std::to_string(limits_.max_message_size) + " bytes");
    }
    AssembledMessage m;
    m.type = h.message.type;
    m.secure_channel_id = h.secure_channel_id;
    m.request_id = request_id;
    m.asymmetric = h.asymmetric;
    m.token_id = h.symmetric.token_id;
    m.body.assign(chunk.body.begin(), chunk.body.end());
    if (is_final) return std::optional<AssembledMessage>(std::move(m));
    if (limits_.max_chunk_count == 1) {
      return InvalidArgumentError("BadTcpMessageTooLarge: " + context +
                                  "more than 1 chunk in a message");
    }
    if (pending_.size() >= limits_.max_pending_messages) {
      return InvalidArgumentError("BadTcpMessageTooLarge: " + context + "more than " +
                                  std::to_string(limits_.max_pending_messages) +
                                  " messages being received at once");
    }
    pending_.emplace(request_id, Partial{std::move(m), 1});
    return std::optional<AssembledMessage>();
  }

  Partial& p = it->second;
  if (p.message.type != h.message.type || p.message.secure_channel_id != h.secure_channel_id) {
    return InvalidArgumentError(
        context + "a chunk of secure channel " + std::to_string(h.secure_channel_id) +
        " continues a message of channel " + std::to_string(p.message.secure_channel_id));
  }
  ++p.chunks;
  if (limits_.max_chunk_count != 0 && p.chunks > limits_.max_chunk_count) {
    return InvalidArgumentError("BadTcpMessageTooLarge: " + context + "more than " +
                                std::to_string(limits_.max_chunk_count) + " chunks");
  }
  if (limits_.max_message_size != 0 &&
      p.message.body.size() + chunk.body.size() > limits_.max_message_size) {
    return InvalidArgumentError("BadTcpMessageTooLarge: " + context + "body exceeds " +
                                std::to_string(limits_.max_message_size) + " bytes");
  }
  p.message.body.insert(p.message.body.end(), chunk.body.begin(), chunk.body.end());
  if (!is_final) return std::optional<AssembledMessage>();
  AssembledMessage m = std::move(p.message);
  m.token_id = h.symmetric.token_id;
  pending_.erase(it);
  return std::optional<AssembledMessage>(std::move(m));
}

ChunkWriterLimits ChunkWriterLimits::From(const ConnectionLimits& limits) {
  ChunkWriterLimits w;
  w.max_chunk_size = limits.send_chunk_size;
  w.max_message_size = limits.send_message_size;
  w.max_chunk_count = limits.send_chunk_count;
  return w;
}

Result<std::vector<uint8_t>> ChunkWriter::WriteChunk(MessageType type, ChunkType chunk_type,
                                                     uint32_t secure_channel_id,
                                                     const std::vector<uint8_t>& security_header,
                                                     SecurityScheme scheme, SequenceHeader sequence,
                                                     std::span<const uint8_t> body,
                                                     const ChunkSecurity& security) {
  const size_t header_size = kMessageHeaderSize + 4 + security_header.size();
  std::vector<uint8_t> buf;
  buf.reserve(header_size + kSequenceHeaderSize + body.size());
  Writer w(std::move(buf));
  EncodeMessageHeader(w, MessageHeader{type, chunk_type, 0});
  w.WriteUInt32(secure_channel_id);
  w.WriteRaw(security_header);
  w.Write(sequence);
  w.WriteRaw(body);
  KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> chunk, std::move(w).Finish());
  KILN_RETURN_IF_ERROR(security.Protect(scheme, header_size, chunk));
  if (chunk.size() > limits_.max_chunk_size) {
    return InternalError("secured chunk of " + std::to_string(chunk.size()) +
                         " bytes exceeds the chunk size " + std::to_string(limits_.max_chunk_size));
  }
  return chunk;
}

Result<std::vector<std::vector<uint8_t>>> ChunkWriter::WriteMessage(
    MessageType type, uint32_t secure_channel_id, uint32_t token_id, uint32_t request_id,
    std::span<const uint8_t> body, const ChunkSecurity& security) {
  if (!IsSecureChannelType(type)) {
    return InvalidArgumentError("a " + std::string(MessageTypeCode(type)) +
                                " message is not sent in chunks");
  }
  const bool asymmetric = type == MessageType::kOpenSecureChannel;
  const SecurityScheme scheme =
      asymmetric ? SecurityScheme::kAsymmetric : SecurityScheme::kSymmetric;
  Writer sw;
  if (asymmetric) {
    sw.Write(security.LocalAsymmetricHeader());
  } else {
    sw.Write(SymmetricSecurityHeader{token_id});
  }
  KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> security_header, std::move(sw).Finish());
  const size_t header_size = kMessageHeaderSize + 4 + security_header.size();
  const size_t max_body = security.MaxBodySize(scheme, limits_.max_chunk_size, header_size);
  if (max_body == 0) {
    return InvalidArgumentError("a chunk of " + std::to_string(limits_.max_chunk_size) +
                                " bytes leaves no room for a body");
  }
  if (limits_.max_message_size != 0 && body.size() > limits_.max_message_size) {
    return InvalidArgumentError("BadRequestTooLarge: a body of " + std::to_string(body.size()) +
                                " bytes exceeds the server's MaxMessageSize of " +
                                std::to_string(limits_.max_message_size));
  }
  const size_t chunks = std::max<size_t>(1, (body.size() + max_body - 1) / max_body);
  if (type != MessageType::kMessage && chunks > 1) {
    return InvalidArgumentError("BadRequestTooLarge: a " + std::string(MessageTypeCode(type)) +
                                " message of " + std::to_string(body.size()) +
                                " bytes does not fit one chunk");
  }
  if (limits_.max_chunk_count != 0 && chunks > limits_.max_chunk_count) {
    return InvalidArgumentError("BadRequestTooLarge: " + std::to_string(chunks) +
                                " chunks exceed the server's MaxChunkCount of " +
                                std::to_string(limits_.max_chunk_count));
  }
  std::vector<std::vector<uint8_t>> out;
  out.reserve(chunks);
  uint32_t seq = next_sequence_number_;
  for (size_t i = 0; i < chunks; ++i) {
    const size_t begin = i * max_body;
    const size_t n = std::min(max_body, body.size() - begin);
    const ChunkType ct = i + 1 == chunks ? ChunkType::kFinal : ChunkType::kIntermediate;
    KILN_ASSIGN_OR_RETURN(
        std::vector<uint8_t> chunk,
        WriteChunk(type, ct, secure_channel_id, security_header, scheme,
                   SequenceHeader{seq, request_id}, body.subspan(begin, n), security));
    out.push_back(std::move(chunk));
    seq = NextSequenceNumber(seq);
  }
  next_sequence_number_ = seq;
  return out;
}

Result<std::vector<uint8_t>> ChunkWriter::WriteAbort(uint32_t secure_channel_id, uint32_t token_id,
                                                     uint32_t request_id, const ErrorMessage& error,
                                                     const ChunkSecurity& security) {
  Writer bw;
  bw.Write(error.error);
  UaString reason = error.reason;
  if (reason && reason->size() > kMaxErrorReasonLength) reason->resize(kMaxErrorReasonLength);
  bw.Write(reason);
  KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> body, std::move(bw).Finish());
  Writer sw;
  sw.Write(SymmetricSecurityHeader{token_id});
  KILN_ASSIGN_OR_RETURN(std::vector<uint8_t> security_header, std::move(sw).Finish());
  KILN_ASSIGN_OR_RETURN(
      std::vector<uint8_t> chunk,
      WriteChunk(MessageType::kMessage, ChunkType::kAbort, secure_channel_id, security_header,
                 SecurityScheme::kSymmetric, SequenceHeader{next_sequence_number_, request_id},
                 body, security));
  next_sequence_number_ = NextSequenceNumber(next_sequence_number_);
  return chunk;
}

}  // namespace kiln::drivers::opcua
