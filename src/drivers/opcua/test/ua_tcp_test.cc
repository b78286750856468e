#include "drivers/opcua/ua_tcp.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "drivers/opcua/chunk_security.h"
#include "drivers/opcua/test/opcua_test_util.h"
#include "testing/status_matchers.h"

namespace kiln::drivers::opcua {
namespace {

using ::kiln::drivers::opcua::testing::Bytes;
using ::kiln::drivers::opcua::testing::Hex;
using ::kiln::testing::IsOk;
using ::kiln::testing::IsOkAndHolds;
using ::kiln::testing::StatusIs;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::Optional;
using ::testing::SizeIs;

// PROTOCOLS.md A2.7, captured against node-opcua.
constexpr std::string_view kGoldenHello =
    "48 45 4c 46 44 00 00 00 | 00 00 00 00 | 00 00 01 00 | 00 00 01 00 | 00 00 00 00 | "
    "00 00 00 00 | 24 00 00 00 \"opc.tcp://127.0.0.1:4840/UA/TestPeer\"";
constexpr std::string_view kGoldenAcknowledge =
    "41 43 4b 46 1c 00 00 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 00 01 00 01 00 00";

TEST(UaTcpTest, GoldenHelloDecodesAndEncodesByteForByte) {
  const std::vector<uint8_t> golden = Bytes(kGoldenHello);
  Result<HelloMessage> hello = DecodeHello(golden);
  ASSERT_THAT(hello, IsOk());
  EXPECT_EQ(hello->protocol_version, 0u);
  EXPECT_EQ(hello->receive_buffer_size, 65536u);
  EXPECT_EQ(hello->send_buffer_size, 65536u);
  EXPECT_EQ(hello->max_message_size, 0u);
  EXPECT_EQ(hello->max_chunk_count, 0u);
  EXPECT_EQ(hello->endpoint_url, "opc.tcp://127.0.0.1:4840/UA/TestPeer");
  Result<std::vector<uint8_t>> again = EncodeHello(*hello);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(Hex(*again), Hex(golden));
}

TEST(UaTcpTest, GoldenAcknowledgeDecodesAndEncodesByteForByte) {
  const std::vector<uint8_t> golden = Bytes(kGoldenAcknowledge);
  Result<AcknowledgeMessage> ack = DecodeAcknowledge(golden);
  ASSERT_THAT(ack, IsOk());
  EXPECT_EQ(ack->protocol_version, 0u);
  EXPECT_EQ(ack->receive_buffer_size, 65536u);
  EXPECT_EQ(ack->send_buffer_size, 65536u);
  EXPECT_EQ(ack->max_message_size, 16777216u);
  EXPECT_EQ(ack->max_chunk_count, 256u);
  Result<std::vector<uint8_t>> again = EncodeAcknowledge(*ack);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(Hex(*again), Hex(golden));
}

TEST(UaTcpTest, ErrorAndReverseHelloRoundTrip) {
  const ErrorMessage error{contract::Quality(0x80830000), "BadTcpEndpointUrlInvalid"};
  Result<std::vector<uint8_t>> bytes = EncodeError(error);
  ASSERT_THAT(bytes, IsOk());
  EXPECT_EQ(Hex(std::vector<uint8_t>(bytes->begin(), bytes->begin() + 12)),
            "45 52 52 46 28 00 00 00 00 00 83 80");
  EXPECT_THAT(DecodeError(*bytes), IsOkAndHolds(Eq(error)));

  const ReverseHelloMessage rhe{"urn:server", "opc.tcp://plc:4840"};
  Result<std::vector<uint8_t>> rbytes = EncodeReverseHello(rhe);
  ASSERT_THAT(rbytes, IsOk());
  EXPECT_THAT(DecodeReverseHello(*rbytes), IsOkAndHolds(Eq(rhe)));
}

TEST(UaTcpTest, ErrorReasonBeyond4096BytesIsIgnored) {
  const ErrorMessage error{contract::status::kBadTimeout, std::string(5000, 'x')};
  Result<std::vector<uint8_t>> bytes = EncodeError(error);
  ASSERT_THAT(bytes, IsOk());
  Result<ErrorMessage> decoded = DecodeError(*bytes);
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(decoded->error, contract::status::kBadTimeout);
  EXPECT_EQ(decoded->reason, std::nullopt);
}

TEST(UaTcpTest, MessageHeaderErrors) {
  EXPECT_THAT(DecodeMessageHeader(Bytes("48 45 4c")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("truncated message header")));
  EXPECT_THAT(DecodeMessageHeader(Bytes("\"XYZF\" 08 00 00 00")),
              StatusIs(StatusCode::kInvalidArgument, Eq("offset 0: unknown message type 'XYZ'")));
  EXPECT_THAT(DecodeMessageHeader(Bytes("\"MSGX\" 08 00 00 00")),
              StatusIs(StatusCode::kInvalidArgument, Eq("offset 3: unknown chunk type 'X'")));
  EXPECT_THAT(DecodeMessageHeader(Bytes("\"HELC\" 08 00 00 00")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("a HEL message must be 'F'")));
  EXPECT_THAT(DecodeMessageHeader(Bytes("\"OPNA\" 08 00 00 00")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("must be 'F'")));
  EXPECT_THAT(DecodeMessageHeader(Bytes("\"MSGF\" 07 00 00 00")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("smaller than the header")));
  EXPECT_THAT(DecodeMessageHeader(Bytes("\"MSGC\" 10 00 00 00")),
              IsOkAndHolds(Eq(MessageHeader{MessageType::kMessage, ChunkType::kIntermediate, 16})));
}

TEST(UaTcpTest, NextMessageSizeFramesTheStream) {
  EXPECT_THAT(NextMessageSize(Bytes("41 43 4b"), 65536), IsOkAndHolds(Eq(0u)));
  const std::vector<uint8_t> ack = Bytes(kGoldenAcknowledge);
  EXPECT_THAT(NextMessageSize(std::span(ack).first(8), 65536), IsOkAndHolds(Eq(28u)));
  EXPECT_THAT(NextMessageSize(Bytes("\"MSGF\" 01 00 01 00"), 65536),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("BadTcpMessageTooLarge: offset 4: MSG chunk of 65537 bytes")));
}

TEST(UaTcpTest, DecodersCheckTypeAndSize) {
  std::vector<uint8_t> ack = Bytes(kGoldenAcknowledge);
  EXPECT_THAT(DecodeHello(ack),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("expected a HEL message")));
  ack.push_back(0);
  EXPECT_THAT(DecodeAcknowledge(ack),
              StatusIs(StatusCode::kInvalidArgument,
                       Eq("offset 4: MessageSize 28 but the message has 29 bytes")));
  HelloMessage hello;
  hello.endpoint_url = std::string(4096, 'u');
  EXPECT_THAT(EncodeHello(hello).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("BadTcpEndpointUrlInvalid")));
}

TEST(UaTcpTest, NegotiatesLimitsFromNodeOpcuasAcknowledge) {
  HelloMessage hello;
  hello.receive_buffer_size = 65536;
  hello.send_buffer_size = 65536;
  hello.max_message_size = 8 << 20;
  hello.max_chunk_count = 128;
  Result<ConnectionLimits> limits =
      NegotiateLimits(hello, *DecodeAcknowledge(Bytes(kGoldenAcknowledge)));
  ASSERT_THAT(limits, IsOk());
  EXPECT_EQ(limits->receive_chunk_size, 65536u);
  EXPECT_EQ(limits->send_chunk_size, 65536u);
  EXPECT_EQ(limits->receive_message_size, 8u << 20);
  EXPECT_EQ(limits->receive_chunk_count, 128u);
  EXPECT_EQ(limits->send_message_size, 16777216u);
  EXPECT_EQ(limits->send_chunk_count, 256u);
}

TEST(UaTcpTest, NegotiationClampsOversizedBuffersAndRefusesTinyOnes) {
  HelloMessage hello;
  hello.receive_buffer_size = 16384;
  hello.send_buffer_size = 8192;
  AcknowledgeMessage ack;
  ack.receive_buffer_size = 65536;  // more than we offered to send: clamp
  ack.send_buffer_size = 65536;
  Result<ConnectionLimits> limits = NegotiateLimits(hello, ack);
  ASSERT_THAT(limits, IsOk());
  EXPECT_EQ(limits->send_chunk_size, 8192u);
  EXPECT_EQ(limits->receive_chunk_size, 16384u);
  ack.send_buffer_size = 1024;
  EXPECT_THAT(NegotiateLimits(hello, ack).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("below the minimum of 8192")));
}

TEST(UaTcpTest, SequenceNumbersWrapAsTheSpecificationSays) {
  EXPECT_EQ(NextSequenceNumber(1), 2u);
  EXPECT_EQ(NextSequenceNumber(UINT32_MAX), 1u);
  EXPECT_TRUE(IsNextSequenceNumber(41, 42));
  EXPECT_FALSE(IsNextSequenceNumber(41, 43));
  EXPECT_FALSE(IsNextSequenceNumber(41, 41));
  EXPECT_TRUE(IsNextSequenceNumber(4294966272u, 3));  // wrap after UInt32.Max - 1024
  EXPECT_FALSE(IsNextSequenceNumber(4294966271u, 3));
  EXPECT_FALSE(IsNextSequenceNumber(UINT32_MAX, 1024));
  EXPECT_TRUE(IsNextSequenceNumber(UINT32_MAX, 0));
}

// --- Chunks ----------------------------------------------------------------------------------

class ChunkTest : public ::testing::Test {
 protected:
  Result<std::optional<AssembledMessage>> Feed(ChunkAssembler& assembler,
                                               std::vector<uint8_t> chunk) {
    KILN_ASSIGN_OR_RETURN(ChunkHeader h, DecodeChunkHeader(chunk));
    KILN_ASSIGN_OR_RETURN(DecodedChunk d, OpenChunk(chunk, h, none_));
    return assembler.Add(d);
  }

  static std::vector<uint8_t> Body(size_t n) {
    std::vector<uint8_t> body(n);
    for (size_t i = 0; i < n; ++i) body[i] = static_cast<uint8_t>(i * 7 + i / 251);
    return body;
  }

  NoChunkSecurity none_;
};

TEST_F(ChunkTest, SplitsALargeMessageAndJoinsItAgain) {
  ChunkWriterLimits wl;
  wl.max_chunk_size = 8192;
  ChunkWriter writer(wl, 10);
  const std::vector<uint8_t> body = Body(20000);
  Result<std::vector<std::vector<uint8_t>>> chunks =
      writer.WriteMessage(MessageType::kMessage, 7, 3, 99, body, none_);
  ASSERT_THAT(chunks, IsOk());
  // 8192 - 8 (header) - 4 (channel) - 4 (token) - 8 (sequence) = 8168 body bytes a chunk.
  ASSERT_THAT(*chunks, SizeIs(3));
  EXPECT_EQ(writer.next_sequence_number(), 13u);
  for (size_t i = 0; i < chunks->size(); ++i) {
    Result<ChunkHeader> h = DecodeChunkHeader((*chunks)[i]);
    ASSERT_THAT(h, IsOk());
    EXPECT_EQ(h->message.chunk_type, i == 2 ? ChunkType::kFinal : ChunkType::kIntermediate);
    EXPECT_LE((*chunks)[i].size(), 8192u);
    EXPECT_EQ(h->secure_channel_id, 7u);
    EXPECT_EQ(h->symmetric.token_id, 3u);
    EXPECT_EQ(h->size, 16u);
  }
  EXPECT_EQ((*chunks)[0].size(), 8192u);

  ChunkAssembler assembler(AssemblerLimits{});
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_THAT(Feed(assembler, (*chunks)[i]), IsOkAndHolds(Eq(std::nullopt)));
  }
  EXPECT_EQ(assembler.pending_messages(), 1u);
  Result<std::optional<AssembledMessage>> done = Feed(assembler, (*chunks)[2]);
  ASSERT_THAT(done, IsOk());
  ASSERT_TRUE(done->has_value());
  EXPECT_EQ((*done)->body, body);
  EXPECT_EQ((*done)->request_id, 99u);
  EXPECT_EQ((*done)->secure_channel_id, 7u);
  EXPECT_EQ((*done)->token_id, 3u);
  EXPECT_EQ((*done)->type, MessageType::kMessage);
  EXPECT_FALSE((*done)->abort.has_value());
  EXPECT_EQ(assembler.pending_messages(), 0u);
}

TEST_F(ChunkTest, EmptyBodyIsOneChunk) {
  ChunkWriter writer(ChunkWriterLimits{});
  Result<std::vector<std::vector<uint8_t>>> chunks =
      writer.WriteMessage(MessageType::kCloseSecureChannel, 1, 1, 1, {}, none_);
  ASSERT_THAT(chunks, IsOk());
  ASSERT_THAT(*chunks, SizeIs(1));
  EXPECT_EQ(Hex((*chunks)[0]),
            "43 4c 4f 46 18 00 00 00 01 00 00 00 01 00 00 00 01 00 00 00 01 00 00 00");
}

TEST_F(ChunkTest, WriterKeepsThePeersLimits) {
  ChunkWriterLimits wl;
  wl.max_chunk_size = 8192;
  wl.max_message_size = 10000;
  wl.max_chunk_count = 1;
  ChunkWriter writer(wl, 5);
  EXPECT_THAT(writer.WriteMessage(MessageType::kMessage, 1, 1, 1, Body(10001), none_).status(),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("BadRequestTooLarge: a body of 10001 bytes exceeds the "
                                 "server's MaxMessageSize of 10000")));
  EXPECT_THAT(writer.WriteMessage(MessageType::kMessage, 1, 1, 1, Body(9000), none_).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("MaxChunkCount of 1")));
  EXPECT_THAT(
      writer.WriteMessage(MessageType::kOpenSecureChannel, 0, 0, 1, Body(9000), none_).status(),
      StatusIs(StatusCode::kInvalidArgument, HasSubstr("does not fit one chunk")));
  EXPECT_THAT(writer.WriteMessage(MessageType::kHello, 1, 1, 1, Body(1), none_).status(),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(writer.next_sequence_number(), 5u);  // nothing was used up
}

TEST_F(ChunkTest, AssemblerEnforcesMaxMessageSizeAndChunkCount) {
  ChunkWriterLimits wl;
  wl.max_chunk_size = 8192;
  ChunkWriter writer(wl);
  auto chunks = writer.WriteMessage(MessageType::kMessage, 1, 1, 5, Body(30000), none_);
  ASSERT_THAT(chunks, IsOk());
  ASSERT_THAT(*chunks, SizeIs(4));

  AssemblerLimits by_size;
  by_size.max_message_size = 20000;
  ChunkAssembler a(by_size);
  EXPECT_THAT(Feed(a, (*chunks)[0]), IsOk());
  EXPECT_THAT(Feed(a, (*chunks)[1]), IsOk());
  EXPECT_THAT(Feed(a, (*chunks)[2]),
              StatusIs(StatusCode::kInvalidArgument,
                       HasSubstr("BadTcpMessageTooLarge: MSG request 5: body exceeds 20000")));

  AssemblerLimits by_count;
  by_count.max_chunk_count = 2;
  ChunkAssembler b(by_count);
  EXPECT_THAT(Feed(b, (*chunks)[0]), IsOk());
  EXPECT_THAT(Feed(b, (*chunks)[1]), IsOk());
  EXPECT_THAT(Feed(b, (*chunks)[2]),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("more than 2 chunks")));

  AssemblerLimits single;
  single.max_message_size = 100;
  ChunkAssembler c(single);
  EXPECT_THAT(Feed(c, (*chunks)[0]),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("body exceeds 100 bytes")));
}

TEST_F(ChunkTest, AssemblerRefusesASequenceGap) {
  ChunkWriter writer(ChunkWriterLimits{}, 100);
  auto first = writer.WriteMessage(MessageType::kMessage, 1, 1, 1, Body(10), none_);
  auto second = writer.WriteMessage(MessageType::kMessage, 1, 1, 2, Body(10), none_);
  auto third = writer.WriteMessage(MessageType::kMessage, 1, 1, 3, Body(10), none_);
  ASSERT_THAT(third, IsOk());
  ChunkAssembler a(AssemblerLimits{});
  EXPECT_THAT(Feed(a, (*first)[0]), IsOk());
  EXPECT_THAT(Feed(a, (*third)[0]),
              StatusIs(StatusCode::kInvalidArgument,
                       Eq("BadSequenceNumberInvalid: chunk sequence number 102 after 100")));
  a.Reset();  // a reconnect may leave a gap
  EXPECT_THAT(Feed(a, (*third)[0]), IsOk());
}

TEST_F(ChunkTest, AbortDiscardsThePartialMessageAndReportsTheError) {
  ChunkWriterLimits wl;
  wl.max_chunk_size = 8192;
  ChunkWriter writer(wl);
  auto chunks = writer.WriteMessage(MessageType::kMessage, 1, 1, 9, Body(20000), none_);
  ASSERT_THAT(chunks, IsOk());
  ChunkAssembler a(AssemblerLimits{});
  EXPECT_THAT(Feed(a, (*chunks)[0]), IsOk());
  EXPECT_EQ(a.pending_messages(), 1u);
  ChunkWriter aborter(wl, 2);  // the abort follows the first chunk
  Result<std::vector<uint8_t>> abort = aborter.WriteAbort(
      1, 1, 9, ErrorMessage{contract::Quality(0x80B80000), "response too large"}, none_);
  ASSERT_THAT(abort, IsOk());
  EXPECT_EQ((*abort)[3], 'A');
  Result<std::optional<AssembledMessage>> m = Feed(a, *abort);
  ASSERT_THAT(m, IsOk());
  ASSERT_TRUE(m->has_value());
  EXPECT_EQ((*m)->request_id, 9u);
  EXPECT_TRUE((*m)->body.empty());
  ASSERT_TRUE((*m)->abort.has_value());
  EXPECT_EQ((*m)->abort->error.code(), 0x80B80000u);
  EXPECT_EQ((*m)->abort->reason, "response too large");
  EXPECT_EQ(a.pending_messages(), 0u);
}

TEST_F(ChunkTest, MalformedAbortBodyIsAnError) {
  // MSGA, channel 1, token 1, sequence 1, request 4, then 2 bytes instead of an error code.
  const std::vector<uint8_t> chunk =
      Bytes("\"MSGA\" 1a 00 00 00 01 00 00 00 01 00 00 00 01 00 00 00 04 00 00 00 00 80");
  ChunkAssembler a(AssemblerLimits{});
  EXPECT_THAT(Feed(a, chunk),
              StatusIs(StatusCode::kInvalidArgument,
                       Eq("MSG request 4: abort chunk: offset 24: truncated UInt32: need 4 "
                          "bytes, 2 left")));
}

TEST_F(ChunkTest, InterleavedMessagesAreJoinedByRequestId) {
  ChunkWriterLimits wl;
  wl.max_chunk_size = 8192;
  // Two 2-chunk messages on one channel, sent as 10/C(1), 11/C(2), 10/F(3), 11/F(4): number
  // them with writers that start at 1 and 2 and patch the final chunks' sequence numbers.
  ChunkWriter w10(wl, 1);
  auto m10 = w10.WriteMessage(MessageType::kMessage, 1, 1, 10, Body(9000), none_);
  ChunkWriter w11(wl, 2);
  auto m11 = w11.WriteMessage(MessageType::kMessage, 1, 1, 11, Body(9500), none_);
  ASSERT_THAT(m10, IsOk());
  ASSERT_THAT(m11, IsOk());
  auto patch = [](std::vector<uint8_t>& chunk, uint32_t seq_no) {
    for (int i = 0; i < 4; ++i) chunk[16 + i] = static_cast<uint8_t>(seq_no >> (8 * i));
  };
  patch((*m10)[1], 3);
  patch((*m11)[1], 4);
  ChunkAssembler a(AssemblerLimits{});
  EXPECT_THAT(Feed(a, (*m10)[0]), IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(Feed(a, (*m11)[0]), IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_EQ(a.pending_messages(), 2u);
  Result<std::optional<AssembledMessage>> done10 = Feed(a, (*m10)[1]);
  ASSERT_THAT(done10, IsOk());
  ASSERT_TRUE(done10->has_value());
  EXPECT_EQ((*done10)->body, Body(9000));
  Result<std::optional<AssembledMessage>> done11 = Feed(a, (*m11)[1]);
  ASSERT_THAT(done11, IsOk());
  ASSERT_TRUE(done11->has_value());
  EXPECT_EQ((*done11)->body, Body(9500));
}

TEST_F(ChunkTest, TooManyInterleavedMessagesAreRefused) {
  ChunkWriterLimits wl;
  wl.max_chunk_size = 8192;
  AssemblerLimits al;
  al.max_pending_messages = 2;
  ChunkAssembler a(al);
  for (uint32_t request = 1; request <= 3; ++request) {
    ChunkWriter writer(wl, request);
    auto chunks = writer.WriteMessage(MessageType::kMessage, 1, 1, request, Body(9000), none_);
    ASSERT_THAT(chunks, IsOk());
    Result<std::optional<AssembledMessage>> r = Feed(a, (*chunks)[0]);
    if (request <= 2) {
      EXPECT_THAT(r, IsOk());
    } else {
      EXPECT_THAT(r, StatusIs(StatusCode::kInvalidArgument,
                              HasSubstr("more than 2 messages being received at once")));
    }
  }
}

TEST_F(ChunkTest, ChunksOfOneMessageMustShareTheChannel) {
  ChunkWriterLimits wl;
  wl.max_chunk_size = 8192;
  ChunkWriter w1(wl, 1);
  auto m1 = w1.WriteMessage(MessageType::kMessage, 1, 1, 10, Body(9000), none_);
  ChunkWriter w2(wl, 1);
  auto m2 = w2.WriteMessage(MessageType::kMessage, 2, 1, 10, Body(9000), none_);
  ASSERT_THAT(m2, IsOk());
  ChunkAssembler a(AssemblerLimits{});
  EXPECT_THAT(Feed(a, (*m1)[0]), IsOk());
  EXPECT_THAT(Feed(a, (*m2)[1]), StatusIs(StatusCode::kInvalidArgument,
                                          HasSubstr("continues a message of channel 1")));
}

TEST_F(ChunkTest, ChunkHeaderErrors) {
  EXPECT_THAT(DecodeChunkHeader(Bytes(kGoldenAcknowledge)),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("not a secure channel chunk")));
  EXPECT_THAT(DecodeChunkHeader(Bytes("\"MSGF\" 0c 00 00 00 01 00 00 00 01")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("MessageSize 12 but the chunk")));
  EXPECT_THAT(DecodeChunkHeader(Bytes("\"MSGF\" 0e 00 00 00 01 00 00 00 01 00")),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("offset 12: truncated UInt32")));
  // A chunk without room for a sequence header.
  std::vector<uint8_t> short_chunk =
      Bytes("\"MSGF\" 14 00 00 00 01 00 00 00 01 00 00 00 01 00 00 00");
  Result<ChunkHeader> h = DecodeChunkHeader(short_chunk);
  ASSERT_THAT(h, IsOk());
  EXPECT_THAT(OpenChunk(short_chunk, *h, none_).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("offset 20: truncated UInt32")));
}

TEST_F(ChunkTest, OpenChunkChecksThePeersSecurityPolicy) {
  AsymmetricSecurityHeader other;
  other.security_policy_uri = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256";
  Writer w;
  EncodeMessageHeader(w, MessageHeader{MessageType::kOpenSecureChannel, ChunkType::kFinal, 0});
  w.WriteUInt32(0);
  w.Write(other);
  w.Write(SequenceHeader{1, 1});
  std::vector<uint8_t> chunk = w.bytes();
  ASSERT_THAT(none_.Protect(SecurityScheme::kAsymmetric, 8, chunk), IsOk());
  Result<ChunkHeader> h = DecodeChunkHeader(chunk);
  ASSERT_THAT(h, IsOk());
  ASSERT_TRUE(h->asymmetric.has_value());
  EXPECT_THAT(OpenChunk(chunk, *h, none_).status(),
              StatusIs(StatusCode::kPermissionDenied, HasSubstr("BadSecurityPolicyRejected")));
}

TEST_F(ChunkTest, SecurityPolicyUriIsBounded) {
  AsymmetricSecurityHeader h;
  h.security_policy_uri = std::string(256, 'p');
  Result<std::vector<uint8_t>> bytes = EncodeToBytes(h);
  ASSERT_THAT(bytes, IsOk());
  EXPECT_THAT(DecodeAll<AsymmetricSecurityHeader>(*bytes).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("the limit is 255")));
}

}  // namespace
}  // namespace kiln::drivers::opcua
