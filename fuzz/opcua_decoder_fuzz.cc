// Fuzz target: the OPC UA decoders must accept or reject any bytes from the network without
// crashing. The first byte picks the decoder, the rest is its input:
//   0  a secure channel chunk (framing, chunk headers, SecurityPolicy None, assembly) and the
//      service response in its body
//   1  a DataValue   2  a Variant   3  a DiagnosticInfo
//   4  a UACP message (HEL, ACK, ERR, RHE)
//   5  a service message body (every response type, notifications of a PublishResponse)
// What the built-in type decoders accept must encode again, and that encoding must be stable
// (decode + encode gives the same bytes).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "drivers/opcua/chunk_security.h"
#include "drivers/opcua/encoding.h"
#include "drivers/opcua/services.h"
#include "drivers/opcua/types.h"
#include "drivers/opcua/ua_tcp.h"

namespace {

using namespace kiln::drivers::opcua;  // NOLINT: a fuzz driver

DecodeLimits FuzzLimits() {
  DecodeLimits limits;
  limits.max_string_length = 1 << 16;
  limits.max_byte_string_length = 1 << 16;
  limits.max_array_length = 1 << 16;
  limits.max_array_memory = 64 << 20;
  return limits;
}

// Decoded values re-encode, unless they hold a reserved Variant type id (26..31), which the
// decoder passes on but the encoder refuses. The re-encoding is a fixed point.
template <typename T>
void CheckBuiltin(std::span<const uint8_t> data) {
  kiln::Result<T> value = DecodeAll<T>(data, FuzzLimits());
  if (!value.ok()) return;
  kiln::Result<std::vector<uint8_t>> bytes = EncodeToBytes(*value);
  if (!bytes.ok()) {
    if (bytes.status().message().find("is reserved") == std::string::npos) __builtin_trap();
    return;
  }
  kiln::Result<T> again = DecodeAll<T>(*bytes, FuzzLimits());
  if (!again.ok()) __builtin_trap();
  kiln::Result<std::vector<uint8_t>> bytes_again = EncodeToBytes(*again);
  if (!bytes_again.ok() || *bytes_again != *bytes) __builtin_trap();
}

template <typename T>
void TryResponse(std::span<const uint8_t> body) {
  kiln::Result<T> r = DecodeResponse<T>(body, FuzzLimits());
  if (!r.ok()) return;
  if constexpr (std::is_same_v<T, PublishResponse> || std::is_same_v<T, RepublishResponse>) {
    for (const ExtensionObject& e : r->notification_message.notification_data) {
      DecodeNotification(e, FuzzLimits()).IgnoreError();
    }
  }
  // Encoding what was decoded must not crash; it may refuse a reserved Variant type id.
  EncodeServiceMessage(*r).IgnoreError();
}

void DecodeServiceBody(std::span<const uint8_t> body) {
  TryResponse<OpenSecureChannelResponse>(body);
  TryResponse<GetEndpointsResponse>(body);
  TryResponse<CreateSessionResponse>(body);
  TryResponse<ActivateSessionResponse>(body);
  TryResponse<CloseSessionResponse>(body);
  TryResponse<ReadResponse>(body);
  TryResponse<WriteResponse>(body);
  TryResponse<BrowseResponse>(body);
  TryResponse<BrowseNextResponse>(body);
  TryResponse<CreateSubscriptionResponse>(body);
  TryResponse<CreateMonitoredItemsResponse>(body);
  TryResponse<DeleteSubscriptionsResponse>(body);
  TryResponse<PublishResponse>(body);
  TryResponse<RepublishResponse>(body);
  TryResponse<TransferSubscriptionsResponse>(body);
}

void DecodeChunks(std::span<const uint8_t> data) {
  static const NoChunkSecurity kNone;
  ChunkAssembler assembler(AssemblerLimits{1 << 20, 64, 4}, FuzzLimits());
  std::vector<uint8_t> buffer(data.begin(), data.end());
  std::span<uint8_t> rest(buffer);
  // The input may hold several chunks back to back, as a TCP stream would.
  while (!rest.empty()) {
    kiln::Result<size_t> size = NextMessageSize(rest, 1 << 20);
    if (!size.ok() || *size == 0 || *size > rest.size()) return;
    std::span<uint8_t> chunk = rest.first(*size);
    rest = rest.subspan(*size);
    kiln::Result<ChunkHeader> header = DecodeChunkHeader(chunk, FuzzLimits());
    if (!header.ok()) {
      DecodeAcknowledge(chunk).IgnoreError();
      DecodeError(chunk).IgnoreError();
      continue;
    }
    kiln::Result<DecodedChunk> decoded = OpenChunk(chunk, *header, kNone);
    if (!decoded.ok()) continue;
    kiln::Result<std::optional<AssembledMessage>> message = assembler.Add(*decoded);
    if (!message.ok()) return;
    if (message->has_value() && !(*message)->abort) DecodeServiceBody((*message)->body);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::span<const uint8_t> input(data + 1, size - 1);
  switch (data[0] % 6) {
    case 0:
      DecodeChunks(input);
      break;
    case 1:
      CheckBuiltin<DataValue>(input);
      break;
    case 2:
      CheckBuiltin<Variant>(input);
      break;
    case 3:
      CheckBuiltin<DiagnosticInfo>(input);
      break;
    case 4:
      DecodeHello(input).IgnoreError();
      DecodeAcknowledge(input).IgnoreError();
      DecodeError(input).IgnoreError();
      DecodeReverseHello(input).IgnoreError();
      break;
    case 5:
      DecodeServiceBody(input);
      break;
  }
  return 0;
}
