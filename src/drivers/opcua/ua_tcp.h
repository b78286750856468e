#pragma once
// UA TCP (OPC 10000-6 §7.1) and the chunk layer of UA Secure Conversation (§6.7), sans-IO:
// the 8-byte message header and stream framing, Hello/Acknowledge/Error/ReverseHello, limit
// negotiation, the headers of OPN/MSG/CLO chunks, a ChunkWriter that splits a message body
// into chunks and a ChunkAssembler that joins received C...F chunks into a body while keeping
// the negotiated limits. Cryptography is behind ChunkSecurity (drivers/opcua/chunk_security.h).
// The free functions are thread-safe; ChunkWriter and ChunkAssembler are single-threaded
// (owned by the connection's loop).
//
// Errors: malformed or over-limit input from the peer is InvalidArgument, with the OPC UA
// StatusCode the specification names for the case (BadTcpMessageTooLarge, ...) and the offset
// in the message; the connection should be closed. Messages we are asked to send that exceed
// the peer's limits are InvalidArgument "BadRequestTooLarge: ...".
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "contract/quality.h"
#include "core/status.h"
#include "drivers/opcua/chunk_security.h"
#include "drivers/opcua/encoding.h"
#include "drivers/opcua/types.h"

namespace kiln::drivers::opcua {

enum class MessageType : uint8_t {
  kHello,               // HEL
  kAcknowledge,         // ACK
  kError,               // ERR
  kReverseHello,        // RHE
  kOpenSecureChannel,   // OPN
  kMessage,             // MSG
  kCloseSecureChannel,  // CLO
};
std::string_view MessageTypeCode(MessageType type);  // "HEL"

enum class ChunkType : uint8_t { kFinal = 'F', kIntermediate = 'C', kAbort = 'A' };

inline constexpr size_t kMessageHeaderSize = 8;
inline constexpr uint32_t kUaTcpProtocolVersion = 0;
inline constexpr uint32_t kMinBufferSize = 8192;       // §6.7.1: UASC needs 8192-byte chunks
inline constexpr size_t kMaxEndpointUrlLength = 4096;  // bytes, §7.1.2.3
inline constexpr size_t kMaxErrorReasonLength = 4096;  // bytes, §7.1.2.5
inline constexpr size_t kMaxSecurityPolicyUriLength = 255;

struct MessageHeader {
  MessageType type = MessageType::kMessage;
  ChunkType chunk_type = ChunkType::kFinal;
  uint32_t message_size = 0;  // of the whole chunk, header included
  friend bool operator==(const MessageHeader&, const MessageHeader&) = default;
};

// Parses the header at the start of `data`. Errors: InvalidArgument for fewer than 8 bytes, an
// unknown type, a chunk type other than F/C/A (only F for all but MSG), or a MessageSize
// below 8.
Result<MessageHeader> DecodeMessageHeader(std::span<const uint8_t> data);
void EncodeMessageHeader(Writer& w, const MessageHeader& header);

// Stream framing: given the bytes received so far (starting at a message boundary), returns
// the size of the first message, or 0 while fewer than 8 bytes are there. The caller waits
// until that many bytes are buffered. Errors: as DecodeMessageHeader, and InvalidArgument
// "BadTcpMessageTooLarge" when the size exceeds `max_chunk_size`.
Result<size_t> NextMessageSize(std::span<const uint8_t> received, uint32_t max_chunk_size);

// --- UA Connection Protocol messages (§7.1.2) --------------------------------------------------

struct HelloMessage {
  uint32_t protocol_version = kUaTcpProtocolVersion;
  uint32_t receive_buffer_size = 65536;
  uint32_t send_buffer_size = 65536;
  uint32_t max_message_size = 0;  // of a response body; 0 = no limit
  uint32_t max_chunk_count = 0;   // 0 = no limit
  std::string endpoint_url;       // < 4096 bytes
  friend bool operator==(const HelloMessage&, const HelloMessage&) = default;
};

struct AcknowledgeMessage {
  uint32_t protocol_version = kUaTcpProtocolVersion;
  uint32_t receive_buffer_size = 65536;
  uint32_t send_buffer_size = 65536;
  uint32_t max_message_size = 0;  // of a request body; 0 = no limit
  uint32_t max_chunk_count = 0;
  friend bool operator==(const AcknowledgeMessage&, const AcknowledgeMessage&) = default;
};

// ERR: the server's last word before it closes the connection; also the body of an abort
// chunk.
struct ErrorMessage {
  contract::Quality error;
  UaString reason;  // a reason longer than 4096 bytes is dropped, as §7.1.2.5 asks
  friend bool operator==(const ErrorMessage&, const ErrorMessage&) = default;
};

struct ReverseHelloMessage {
  UaString server_uri;
  UaString endpoint_url;
  friend bool operator==(const ReverseHelloMessage&, const ReverseHelloMessage&) = default;
};

// Whole messages, header included. Encoders fail with InvalidArgument on an endpoint URL of
// 4096 bytes or more; decoders on a wrong type, a size that is not the span's, a malformed
// body or trailing bytes.
Result<std::vector<uint8_t>> EncodeHello(const HelloMessage& hello);
Result<HelloMessage> DecodeHello(std::span<const uint8_t> message);
Result<std::vector<uint8_t>> EncodeAcknowledge(const AcknowledgeMessage& ack);
Result<AcknowledgeMessage> DecodeAcknowledge(std::span<const uint8_t> message);
Result<std::vector<uint8_t>> EncodeError(const ErrorMessage& error);
Result<ErrorMessage> DecodeError(std::span<const uint8_t> message);
Result<std::vector<uint8_t>> EncodeReverseHello(const ReverseHelloMessage& rhe);
Result<ReverseHelloMessage> DecodeReverseHello(std::span<const uint8_t> message);

// The limits both sides keep after HEL/ACK. Sizes in bytes; 0 means no limit for message
// size and chunk count.
struct ConnectionLimits {
  uint32_t receive_chunk_size = 65536;  // largest chunk we accept
  uint32_t send_chunk_size = 65536;     // largest chunk we send
  uint32_t receive_message_size = 0;    // largest body we accept (our MaxMessageSize)
  uint32_t receive_chunk_count = 0;     // most chunks of a message we accept
  uint32_t send_message_size = 0;       // largest body the server accepts
  uint32_t send_chunk_count = 0;        // most chunks of a message the server accepts
  friend bool operator==(const ConnectionLimits&, const ConnectionLimits&) = default;
};

// Checks the server's Acknowledge against our Hello (§7.1.2.4) and returns the limits.
// Buffer sizes larger than our Hello allowed are clamped to it (a lenient reading of a server
// bug). Errors: InvalidArgument if the server's buffer sizes are below 8192 bytes.
Result<ConnectionLimits> NegotiateLimits(const HelloMessage& hello, const AcknowledgeMessage& ack);

// --- Secure conversation chunks (§6.7.2) ------------------------------------------------------

struct SequenceHeader {
  uint32_t sequence_number = 0;
  uint32_t request_id = 0;
  friend bool operator==(const SequenceHeader&, const SequenceHeader&) = default;
};

template <>
struct Codec<AsymmetricSecurityHeader> : FixedCodec<AsymmetricSecurityHeader, 12> {
  static void Encode(Writer& w, const AsymmetricSecurityHeader& v);
  static AsymmetricSecurityHeader Decode(Reader& r);
};
template <>
struct Codec<SymmetricSecurityHeader> : FixedCodec<SymmetricSecurityHeader, 4> {
  static void Encode(Writer& w, const SymmetricSecurityHeader& v) { w.WriteUInt32(v.token_id); }
  static SymmetricSecurityHeader Decode(Reader& r) { return {r.ReadUInt32()}; }
};
template <>
struct Codec<SequenceHeader> : FixedCodec<SequenceHeader, 8> {
  static void Encode(Writer& w, const SequenceHeader& v) {
    w.WriteUInt32(v.sequence_number);
    w.WriteUInt32(v.request_id);
  }
  static SequenceHeader Decode(Reader& r) {
    SequenceHeader h;
    h.sequence_number = r.ReadUInt32();
    h.request_id = r.ReadUInt32();
    return h;
  }
};

// The plaintext headers of an OPN, MSG or CLO chunk.
struct ChunkHeader {
  MessageHeader message;
  uint32_t secure_channel_id = 0;
  std::optional<AsymmetricSecurityHeader> asymmetric;  // OPN only
  SymmetricSecurityHeader symmetric;                   // MSG and CLO only
  size_t size = 0;  // bytes of all of the above: where the sequence header starts

  SecurityScheme scheme() const {
    return asymmetric ? SecurityScheme::kAsymmetric : SecurityScheme::kSymmetric;
  }
};

// Parses the plaintext headers of one whole chunk (`chunk` spans exactly MessageSize bytes).
// The caller picks the ChunkSecurity for it (by scheme and token id) and calls OpenChunk.
// Errors: InvalidArgument for a message type other than OPN/MSG/CLO, a size that is not the
// span's, a malformed or over-long security header.
Result<ChunkHeader> DecodeChunkHeader(std::span<const uint8_t> chunk,
                                      const DecodeLimits& limits = DecodeLimits());

// One received chunk after security: its headers and a view of its body.
struct DecodedChunk {
  ChunkHeader header;
  SequenceHeader sequence;
  std::span<const uint8_t> body;  // into the caller's buffer
};

// Verifies and decrypts `chunk` in place with `security` and splits off the sequence header.
// For an OPN chunk also checks the peer's asymmetric header. Errors: those of
// ChunkSecurity, InvalidArgument if no sequence header fits.
Result<DecodedChunk> OpenChunk(std::span<uint8_t> chunk, const ChunkHeader& header,
                               const ChunkSecurity& security);

// A whole message joined from its chunks, or the abort of one.
struct AssembledMessage {
  MessageType type = MessageType::kMessage;
  uint32_t secure_channel_id = 0;
  uint32_t request_id = 0;
  std::optional<AsymmetricSecurityHeader> asymmetric;  // OPN
  uint32_t token_id = 0;                               // MSG and CLO: of the final chunk
  std::vector<uint8_t> body;                           // empty if aborted
  std::optional<ErrorMessage> abort;  // the sender aborted the message ('A'); report it as
                                      // the request's StatusCode, keep the channel open
};

struct AssemblerLimits {
  uint32_t max_message_size = 0;  // body bytes per message; 0 = no limit
  uint32_t max_chunk_count = 0;   // chunks per message; 0 = no limit
  // Messages being assembled at once (chunks of different requests may interleave).
  uint32_t max_pending_messages = 16;
  // Our side of ConnectionLimits.
  static AssemblerLimits From(const ConnectionLimits& limits);
};

// Joins received chunks into messages. Checks the sequence numbers (each chunk +1, wrapping
// only after 4294966271 to a number below 1024, §6.7.2.4), the limits, that a message's chunks
// agree on channel and type, and decodes abort chunks.
class ChunkAssembler {
 public:
  explicit ChunkAssembler(const AssemblerLimits& limits, DecodeLimits decode_limits = {})
      : limits_(limits), decode_limits_(decode_limits) {}

  // Adds one chunk, in the order received. Returns the message its final (or abort) chunk
  // completes, else nullopt. Errors (the connection should be closed): InvalidArgument
  // "BadSequenceNumberInvalid: ..." for a sequence gap, "BadTcpMessageTooLarge: ..." beyond
  // max_message_size or max_chunk_count, or for too many interleaved messages, and for a
  // malformed abort body.
  Result<std::optional<AssembledMessage>> Add(const DecodedChunk& chunk);

  // Forgets partial messages and the sequence number (after a reconnect, §6.7.2.4 allows a
  // gap).
  void Reset();
  size_t pending_messages() const { return pending_.size(); }

 private:
  struct Partial {
    AssembledMessage message;
    uint32_t chunks = 0;
  };

  AssemblerLimits limits_;
  DecodeLimits decode_limits_;
  std::optional<uint32_t> last_sequence_number_;
  std::map<uint32_t, Partial> pending_;  // by request id
};

struct ChunkWriterLimits {
  uint32_t max_chunk_size = 65536;  // the peer's ReceiveBufferSize
  uint32_t max_message_size = 0;    // body bytes; 0 = no limit
  uint32_t max_chunk_count = 0;     // 0 = no limit
  static ChunkWriterLimits From(const ConnectionLimits& limits);
};

// Splits message bodies into secured chunks and numbers them (+1 per chunk, wrapping after
// 4294966271 to 1).
class ChunkWriter {
 public:
  explicit ChunkWriter(const ChunkWriterLimits& limits, uint32_t first_sequence_number = 1)
      : limits_(limits), next_sequence_number_(first_sequence_number) {}

  // The chunks of one message. `type` is OPN, MSG or CLO; OPN chunks carry the asymmetric
  // header of `security`, the others `token_id`. OPN and CLO messages must fit one chunk.
  // Errors: InvalidArgument "BadRequestTooLarge: ..." beyond the peer's limits (no sequence
  // number is used up then); those of ChunkSecurity::Protect.
  Result<std::vector<std::vector<uint8_t>>> WriteMessage(MessageType type,
                                                         uint32_t secure_channel_id,
                                                         uint32_t token_id, uint32_t request_id,
                                                         std::span<const uint8_t> body,
                                                         const ChunkSecurity& security);
  // A MSG abort chunk ('A') that tells the peer to discard the chunks of `request_id` sent so
  // far.
  Result<std::vector<uint8_t>> WriteAbort(uint32_t secure_channel_id, uint32_t token_id,
                                          uint32_t request_id, const ErrorMessage& error,
                                          const ChunkSecurity& security);

  uint32_t next_sequence_number() const { return next_sequence_number_; }

 private:
  Result<std::vector<uint8_t>> WriteChunk(MessageType type, ChunkType chunk_type,
                                          uint32_t secure_channel_id,
                                          const std::vector<uint8_t>& security_header,
                                          SecurityScheme scheme, SequenceHeader sequence,
                                          std::span<const uint8_t> body,
                                          const ChunkSecurity& security);

  ChunkWriterLimits limits_;
  uint32_t next_sequence_number_;
};

// The sequence number after `n` (§6.7.2.4).
uint32_t NextSequenceNumber(uint32_t n);
// Whether `next` may follow `last` on the wire.
bool IsNextSequenceNumber(uint32_t last, uint32_t next);

}  // namespace kiln::drivers::opcua
