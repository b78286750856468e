// Fuzz target: everything the journal reads back from disk (header blocks, record frames,
// sample payloads, acks.log) must be accepted or rejected without crashing, whatever the bytes
// (a disk can hand back anything); and a sample that decodes must survive encode + decode.
// A white-box target of kiln::queue: it uses the library's internal codec directly.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "queue/internal/format.h"
#include "queue/internal/record_codec.h"
#include "queue/internal/segment.h"

namespace {

using namespace kiln::queue::internal;

// Encodes `s` (with `prev` as the previous time) and returns the bytes.
std::vector<uint8_t> Encode(const kiln::contract::Sample& s, int64_t prev) {
  std::vector<uint8_t> out(MaxEncodedSize(s));
  out.resize(static_cast<size_t>(EncodeSample(s, prev, out.data()) - out.data()));
  return out;
}

void DecodePayload(std::span<const uint8_t> payload, int64_t base_time) {
  SampleDecoder decoder(payload, base_time);
  int64_t prev = base_time;
  kiln::contract::Sample s;
  while (decoder.Next(s)) {
    // Whatever decodes encodes again, and that encoding decodes to the same sample (the
    // input itself may be non-canonical, e.g. a padded varint).
    const std::vector<uint8_t> once = Encode(s, prev);
    SampleDecoder again(once, prev);
    kiln::contract::Sample s2;
    if (!again.Next(s2) || !again.AtEnd() || again.last_time() != decoder.last_time()) {
      __builtin_trap();
    }
    if (Encode(s2, prev) != once) __builtin_trap();
    prev = decoder.last_time();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  // As a sample payload.
  DecodePayload(in, 1'700'000'000'000'000'000);
  // As a header block.
  SegmentHeader h;
  (void)DecodeHeaderBlock(in, h);
  // As acks.log.
  (void)ParseAcks(in);
  // As the records of a segment, from the frame after the header block.
  auto memory = std::make_shared<std::vector<uint8_t>>(data, data + size);
  SegmentSource source{nullptr, memory};
  std::vector<uint8_t> buffer;
  RecordReader reader(source, /*seq=*/1, kHeaderBytes, /*first_id=*/1, kHeaderBytes + size, buffer);
  RecordView rec;
  for (int i = 0; i < 1000 && reader.Next(rec) == ReadOutcome::kRecord; ++i) {
    DecodePayload(rec.payload, rec.header.base_time);
  }
  return 0;
}
