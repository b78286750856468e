#pragma once
// Record codec of the journal: samples <-> the compact payload of a record, and the framing
// of records (docs/formats/journal.md, "Records"). Per sample:
//   varint tag | zigzag varint (time - previous time in the record; the first is relative
//   to the frame's base time) | type byte (ValueType in bits 0-3, 0x10: a quality u32
//   follows, i.e. the quality is not Good (0)) | [quality u32 LE] | value:
//   null: nothing; bool: 1 byte; int8..int64: zigzag varint; uint8..uint64: varint;
//   float: 4 bytes LE; double: 8 bytes LE; string: varint length + bytes.
// Private to kiln::queue. Not thread-safe (one encoder per thread).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "contract/sample.h"
#include "queue/internal/format.h"

namespace kiln::queue::internal {

// The most bytes EncodeSample can write for `s`.
size_t MaxEncodedSize(const contract::Sample& s);
// Writes `s` at `out` (MaxEncodedSize(s) bytes available) and returns the end.
// `prev_time` is the previous sample's time (or the base time) and becomes s's.
uint8_t* EncodeSample(const contract::Sample& s, int64_t& prev_time, uint8_t* out);

// Decodes the samples of one record payload in order.
class SampleDecoder {
 public:
  SampleDecoder(std::span<const uint8_t> payload, int64_t base_time)
      : p_(payload.data()), end_(payload.data() + payload.size()), prev_time_(base_time) {}
  // Decodes the next sample into `out`; false when the payload is malformed or used up.
  bool Next(contract::Sample& out);
  // Steps over the next sample without building it.
  bool Skip();
  bool AtEnd() const { return p_ == end_; }
  // The time of the last sample decoded or skipped (the base time before the first).
  int64_t last_time() const { return prev_time_; }

 private:
  // Reads tag, time and type; returns false when malformed.
  bool Head(uint32_t& tag, int64_t& time, uint8_t& type, uint32_t& quality);

  const uint8_t* p_;
  const uint8_t* end_;
  int64_t prev_time_;
};

// One record of an EncodedBatch: the frame at bytes()[offset, offset + size).
struct EncodedRecord {
  size_t offset = 0;
  size_t size = 0;  // frame bytes: header + payload
  uint32_t count = 0;
  int64_t min_time = 0;
  int64_t max_time = 0;
  uint32_t payload_crc = 0;  // CRC32C of the payload, for SealFrame
};

// Turns the samples of one Push into frames laid out back to back, each with a payload of at
// most `max_payload` bytes. The frames lack seq, first id and CRC until SealFrame; the CRC of
// each payload is computed here, so that sealing costs a few tens of nanoseconds.
class RecordEncoder {
 public:
  explicit RecordEncoder(size_t max_payload) : max_payload_(max_payload) {}
  // Replaces the previous batch. Samples too large for a record on their own are left out;
  // returns how many. The buffer is kept between batches (reuse one encoder per thread).
  uint64_t Encode(std::span<const contract::Sample> samples);
  std::span<uint8_t> bytes() { return {bytes_.data(), size_}; }
  size_t capacity() const { return bytes_.capacity(); }
  void set_max_payload(size_t max_payload) { max_payload_ = max_payload; }
  const std::vector<EncodedRecord>& records() const { return records_; }

 private:
  void Close(size_t frame_start, size_t payload_end, uint32_t count, int64_t base_time,
             int64_t min_time, int64_t max_time);

  size_t max_payload_;
  std::vector<uint8_t> bytes_;  // capacity kept; [0, size_) is the current batch
  size_t size_ = 0;
  std::vector<EncodedRecord> records_;
};

// Completes an encoded frame: stores seq and first id and computes the frame's CRC from its
// header and `payload_crc` (EncodedRecord::payload_crc).
void SealFrame(uint8_t* frame, uint32_t seq, uint64_t first_id, uint32_t payload_crc);

}  // namespace kiln::queue::internal
