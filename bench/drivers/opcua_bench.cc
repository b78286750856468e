// Benchmarks of the OPC UA codec: decoding Publish responses with N data-change notifications
// (the hot path of a subscription; items/s = notifications/s), from the message body alone
// and from the MSG chunks on the wire, and encoding a Read request.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/check.h"
#include "drivers/opcua/chunk_security.h"
#include "drivers/opcua/services.h"
#include "drivers/opcua/ua_tcp.h"

namespace kiln::drivers::opcua {
namespace {

// A DataValue as node-opcua sends a Good Double: mask 0x3D (value, both timestamps, both
// picoseconds).
DataValue GoodDouble(double v, int64_t ticks) {
  DataValue dv;
  dv.value = Variant::Scalar(v);
  dv.source_timestamp = DateTime{ticks};
  dv.source_picoseconds = 0;
  dv.server_timestamp = DateTime{ticks + 10};
  dv.server_picoseconds = 0;
  return dv;
}

std::vector<uint8_t> PublishBody(int64_t items) {
  DataChangeNotification change;
  change.monitored_items.reserve(static_cast<size_t>(items));
  for (int64_t i = 0; i < items; ++i) {
    change.monitored_items.push_back(MonitoredItemNotification{
        static_cast<uint32_t>(i),
        GoodDouble(20.0 + 0.01 * static_cast<double>(i), 133500000000000000 + i)});
  }
  PublishResponse response;
  response.response_header.timestamp = DateTime{133500000000000000};
  response.subscription_id = 1;
  response.available_sequence_numbers = {42};
  response.notification_message.sequence_number = 42;
  response.notification_message.publish_time = DateTime{133500000000000000};
  Result<ExtensionObject> data = ToExtensionObject(change);
  KILN_CHECK(data.ok()) << data.status();
  response.notification_message.notification_data = {std::move(*data)};
  Result<std::vector<uint8_t>> body = EncodeServiceMessage(response);
  KILN_CHECK(body.ok()) << body.status();
  return std::move(*body);
}

// Decodes a Publish response body and its notifications; returns the notification count.
size_t DecodePublish(std::span<const uint8_t> body) {
  Result<PublishResponse> response = DecodeResponse<PublishResponse>(body);
  KILN_CHECK(response.ok()) << response.status();
  size_t n = 0;
  for (const ExtensionObject& data : response->notification_message.notification_data) {
    Result<Notification> notification = DecodeNotification(data);
    KILN_CHECK(notification.ok()) << notification.status();
    if (const auto* change = std::get_if<DataChangeNotification>(&*notification)) {
      n += change->monitored_items.size();
      benchmark::DoNotOptimize(change->monitored_items.data());
    }
  }
  return n;
}

void BM_DecodePublishResponse(benchmark::State& state) {
  const std::vector<uint8_t> body = PublishBody(state.range(0));
  for (auto _ : state) {
    const size_t n = DecodePublish(body);
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_DecodePublishResponse)->RangeMultiplier(10)->Range(1, 10000)->ArgName("items");

// From the chunks on the wire: chunk headers, SecurityPolicy None, assembly (64 KiB chunks,
// as node-opcua negotiates), then the body as above.
void BM_DecodePublishChunks(benchmark::State& state) {
  const std::vector<uint8_t> body = PublishBody(state.range(0));
  const NoChunkSecurity none;
  ChunkWriter writer(ChunkWriterLimits{});
  Result<std::vector<std::vector<uint8_t>>> chunks =
      writer.WriteMessage(MessageType::kMessage, 1, 1, 7, body, none);
  KILN_CHECK(chunks.ok()) << chunks.status();
  ChunkAssembler assembler(AssemblerLimits{});
  std::vector<std::vector<uint8_t>> received = *chunks;
  uint32_t sequence = 1;
  for (auto _ : state) {
    size_t n = 0;
    for (std::vector<uint8_t>& chunk : received) {
      // Renumber so that every round continues the sequence.
      for (int i = 0; i < 4; ++i) chunk[16 + i] = static_cast<uint8_t>(sequence >> (8 * i));
      sequence = NextSequenceNumber(sequence);
      Result<ChunkHeader> header = DecodeChunkHeader(chunk);
      KILN_CHECK(header.ok()) << header.status();
      Result<DecodedChunk> decoded = OpenChunk(chunk, *header, none);
      KILN_CHECK(decoded.ok()) << decoded.status();
      Result<std::optional<AssembledMessage>> message = assembler.Add(*decoded);
      KILN_CHECK(message.ok()) << message.status();
      if (message->has_value()) n += DecodePublish((*message)->body);
    }
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
  state.counters["chunks"] = static_cast<double>(received.size());
}
BENCHMARK(BM_DecodePublishChunks)->RangeMultiplier(10)->Range(100, 10000)->ArgName("items");

void BM_EncodeReadRequest(benchmark::State& state) {
  ReadRequest request;
  request.request_header.authentication_token = NodeId::Opaque(0, std::vector<uint8_t>(16, 1));
  for (int64_t i = 0; i < state.range(0); ++i) {
    request.nodes_to_read.push_back(
        ReadValueId{NodeId(2, "Tag" + std::to_string(i)), kAttributeValue, {}, {}});
  }
  for (auto _ : state) {
    Result<std::vector<uint8_t>> body = EncodeServiceMessage(request);
    benchmark::DoNotOptimize(body);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_EncodeReadRequest)->Arg(1000)->ArgName("nodes");

}  // namespace
}  // namespace kiln::drivers::opcua

BENCHMARK_MAIN();
