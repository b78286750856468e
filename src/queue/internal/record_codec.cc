#include "queue/internal/record_codec.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <string>

#include "core/coding.h"
#include "core/crc32c.h"

namespace kiln::queue::internal {
namespace {

using contract::Quality;
using contract::Sample;
using contract::Value;
using contract::ValueType;

constexpr uint8_t kTypeMask = 0x0F;
constexpr uint8_t kQualityFollows = 0x10;
constexpr uint8_t kMaxType = static_cast<uint8_t>(ValueType::kString);

int64_t TimeNs(const Sample& s) { return s.source_time.time_since_epoch().count(); }

// Sets `out` to the zigzag varint `raw` as a T; false when it does not fit.
template <typename T>
bool SetSigned(uint64_t raw, Value& out) {
  const int64_t v = UnZigZag(raw);
  if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) return false;
  out = Value(static_cast<T>(v));
  return true;
}

// Sets `out` to the varint `raw` as a T; false when it does not fit.
template <typename T>
bool SetUnsigned(uint64_t raw, Value& out) {
  if (raw > std::numeric_limits<T>::max()) return false;
  out = Value(static_cast<T>(raw));
  return true;
}

}  // namespace

// Tag, time, type, quality, then the widest fixed value (a varint) or a double.
constexpr size_t kMaxFixedEncodedSize = 5 + kMaxVarint64 + 1 + 4 + kMaxVarint64;

size_t MaxEncodedSize(const Sample& s) {
  if (const std::string* str = s.value.get_if<std::string>()) {
    return kMaxFixedEncodedSize + str->size();  // its length varint and bytes
  }
  return kMaxFixedEncodedSize;
}

namespace {

// EncodeSample, inlined into RecordEncoder::Encode: called out of line, the previous time
// went through memory (its address is taken), a store-to-load chain of ~5 cycles per sample.
[[gnu::always_inline]] inline uint8_t* EncodeOne(const Sample& s, int64_t& prev_time, uint8_t* p) {
  // Every field is loaded before the first store: a store through uint8_t* may alias anything,
  // so a load after it is a reload from memory (this function is the journal's hot loop).
  const uint32_t tag = s.tag;
  const int64_t t = TimeNs(s);
  const uint32_t q = s.quality.code();
  const Value::Storage& v = s.value.storage();
  const auto type = static_cast<ValueType>(v.index());
  // Wrapping difference: any two times have a representable delta modulo 2^64.
  const uint64_t delta =
      ZigZag(static_cast<int64_t>(static_cast<uint64_t>(t) - static_cast<uint64_t>(prev_time)));
  prev_time = t;
  // The common head: a tag below 2^14, a delta below 2^7 (samples of one poll share their
  // time), Good: 3 or 4 bytes written at once.
  if (tag < (1u << 14) && delta < 0x80 && q == 0) {
    const uint8_t type_byte = static_cast<uint8_t>(type);
    const bool short_tag = tag < 0x80;
    const uint32_t head =
        short_tag ? tag | (static_cast<uint32_t>(delta) << 8) | (uint32_t{type_byte} << 16)
                  : (tag & 0x7F) | 0x80 | ((tag >> 7) << 8) | (static_cast<uint32_t>(delta) << 16) |
                        (uint32_t{type_byte} << 24);
    const int head_bytes = short_tag ? 3 : 4;
    if (type == ValueType::kFloat) {
      // The most common sample of all (an analog value read as a 32-bit float): head and
      // value in one 8-byte store.
      const uint64_t value = std::bit_cast<uint32_t>(*std::get_if<float>(&v));
      Put64(p, head | (value << (8 * head_bytes)));
      return p + head_bytes + 4;
    }
    Put32(p, head);
    p += head_bytes;
  } else {
    p = PutVarint(p, tag);
    p = PutVarint(p, delta);
    *p++ = static_cast<uint8_t>(static_cast<uint8_t>(type) | (q != 0 ? kQualityFollows : 0));
    if (q != 0) {
      Put32(p, q);
      p += 4;
    }
  }
  switch (type) {
    case ValueType::kNull:
      return p;
    case ValueType::kBool:
      *p = *std::get_if<bool>(&v) ? 1 : 0;
      return p + 1;
    case ValueType::kInt8:
      return PutVarint(p, ZigZag(*std::get_if<int8_t>(&v)));
    case ValueType::kInt16:
      return PutVarint(p, ZigZag(*std::get_if<int16_t>(&v)));
    case ValueType::kInt32:
      return PutVarint(p, ZigZag(*std::get_if<int32_t>(&v)));
    case ValueType::kInt64:
      return PutVarint(p, ZigZag(*std::get_if<int64_t>(&v)));
    case ValueType::kUInt8:
      return PutVarint(p, *std::get_if<uint8_t>(&v));
    case ValueType::kUInt16:
      return PutVarint(p, *std::get_if<uint16_t>(&v));
    case ValueType::kUInt32:
      return PutVarint(p, *std::get_if<uint32_t>(&v));
    case ValueType::kUInt64:
      return PutVarint(p, *std::get_if<uint64_t>(&v));
    case ValueType::kFloat:
      Put32(p, std::bit_cast<uint32_t>(*std::get_if<float>(&v)));
      return p + 4;
    case ValueType::kDouble:
      Put64(p, std::bit_cast<uint64_t>(*std::get_if<double>(&v)));
      return p + 8;
    case ValueType::kString: {
      const std::string& str = *std::get_if<std::string>(&v);
      uint8_t* end = PutVarint(p, str.size());
      if (!str.empty()) std::memcpy(end, str.data(), str.size());
      return end + str.size();
    }
  }
  return p;
}

}  // namespace

uint8_t* EncodeSample(const Sample& s, int64_t& prev_time, uint8_t* p) {
  return EncodeOne(s, prev_time, p);
}

bool SampleDecoder::Head(uint32_t& tag, int64_t& time, uint8_t& type, uint32_t& quality) {
  uint64_t v;
  if ((p_ = GetVarint(p_, end_, v)) == nullptr || v > std::numeric_limits<uint32_t>::max()) {
    return false;
  }
  tag = static_cast<uint32_t>(v);
  if ((p_ = GetVarint(p_, end_, v)) == nullptr) return false;
  time =
      static_cast<int64_t>(static_cast<uint64_t>(prev_time_) + static_cast<uint64_t>(UnZigZag(v)));
  prev_time_ = time;
  if (p_ == end_) return false;
  const uint8_t b = *p_++;
  type = b & kTypeMask;
  if (type > kMaxType || (b & ~(kTypeMask | kQualityFollows)) != 0) return false;
  quality = 0;
  if (b & kQualityFollows) {
    if (end_ - p_ < 4) return false;
    quality = Get32(p_);
    p_ += 4;
  }
  return true;
}

bool SampleDecoder::Next(Sample& out) {
  if (p_ == nullptr || p_ == end_) return false;
  uint32_t tag;
  int64_t time;
  uint8_t type;
  uint32_t quality;
  if (!Head(tag, time, type, quality)) {
    p_ = nullptr;
    return false;
  }
  out.tag = tag;
  out.source_time = Timestamp(std::chrono::nanoseconds(time));
  out.quality = Quality(quality);
  uint64_t raw = 0;
  bool ok = true;
  switch (static_cast<ValueType>(type)) {
    case ValueType::kNull:
      out.value = Value();
      break;
    case ValueType::kBool:
      if (p_ == end_ || *p_ > 1) {
        ok = false;
      } else {
        out.value = Value(*p_++ == 1);
      }
      break;
    case ValueType::kFloat:
      if (end_ - p_ < 4) {
        ok = false;
      } else {
        out.value = Value(std::bit_cast<float>(Get32(p_)));
        p_ += 4;
      }
      break;
    case ValueType::kDouble:
      if (end_ - p_ < 8) {
        ok = false;
      } else {
        out.value = Value(std::bit_cast<double>(Get64(p_)));
        p_ += 8;
      }
      break;
    case ValueType::kString:
      if ((p_ = GetVarint(p_, end_, raw)) == nullptr || raw > static_cast<uint64_t>(end_ - p_)) {
        ok = false;
      } else {
        out.value = Value(std::string(reinterpret_cast<const char*>(p_), raw));
        p_ += raw;
      }
      break;
    default: {
      if ((p_ = GetVarint(p_, end_, raw)) == nullptr) {
        ok = false;
        break;
      }
      switch (static_cast<ValueType>(type)) {
        case ValueType::kInt8:
          ok = SetSigned<int8_t>(raw, out.value);
          break;
        case ValueType::kInt16:
          ok = SetSigned<int16_t>(raw, out.value);
          break;
        case ValueType::kInt32:
          ok = SetSigned<int32_t>(raw, out.value);
          break;
        case ValueType::kInt64:
          out.value = Value(UnZigZag(raw));
          break;
        case ValueType::kUInt8:
          ok = SetUnsigned<uint8_t>(raw, out.value);
          break;
        case ValueType::kUInt16:
          ok = SetUnsigned<uint16_t>(raw, out.value);
          break;
        case ValueType::kUInt32:
          ok = SetUnsigned<uint32_t>(raw, out.value);
          break;
        default:
          out.value = Value(raw);
          break;
      }
    }
  }
  if (!ok) p_ = nullptr;
  return ok;
}

bool SampleDecoder::Skip() {
  if (p_ == nullptr || p_ == end_) return false;
  uint32_t tag;
  int64_t time;
  uint8_t type;
  uint32_t quality;
  if (!Head(tag, time, type, quality)) {
    p_ = nullptr;
    return false;
  }
  uint64_t raw;
  size_t n = 0;
  switch (static_cast<ValueType>(type)) {
    case ValueType::kNull:
      break;
    case ValueType::kBool:
      n = 1;
      break;
    case ValueType::kFloat:
      n = 4;
      break;
    case ValueType::kDouble:
      n = 8;
      break;
    case ValueType::kString:
      if ((p_ = GetVarint(p_, end_, raw)) == nullptr) return false;
      if (raw > static_cast<uint64_t>(end_ - p_)) {
        p_ = nullptr;
        return false;
      }
      n = raw;
      break;
    default:
      if ((p_ = GetVarint(p_, end_, raw)) == nullptr) return false;
      break;
  }
  if (static_cast<size_t>(end_ - p_) < n) {
    p_ = nullptr;
    return false;
  }
  p_ += n;
  return true;
}

uint64_t RecordEncoder::Encode(std::span<const Sample> samples) {
  size_ = 0;
  records_.clear();
  uint64_t too_large = 0;
  size_t frame_start = 0;
  size_t pos = kFrameHeaderBytes;
  uint32_t count = 0;
  int64_t base_time = 0, prev_time = 0, min_time = 0, max_time = 0;
  // The buffer and the limit live in locals: the member loads would be repeated after every
  // byte store (a uint8_t* may alias them).
  const size_t max_payload = max_payload_;
  uint8_t* data = bytes_.data();
  size_t capacity = bytes_.size();
  auto grow = [&](size_t n) {
    if (capacity >= n) return;
    bytes_.resize(std::max(n, capacity * 2));
    data = bytes_.data();
    capacity = bytes_.size();
  };
  grow(std::min<size_t>(samples.size() * 12 + 2 * kFrameHeaderBytes, size_t{1} << 20));
  const size_t n = samples.size();
  size_t i = 0;
  while (i < n) {
    // The common case, in a tight loop: fixed-size values appended to the open record while
    // the buffer has room for the largest one and the record's payload stays within bounds.
    if (count > 0) {
      const size_t room = capacity >= kMaxFixedEncodedSize + kFrameHeaderBytes
                              ? capacity - kMaxFixedEncodedSize - kFrameHeaderBytes
                              : 0;
      const size_t payload_end = frame_start + kFrameHeaderBytes + max_payload;
      size_t at = pos;
      int64_t prev = prev_time;
      while (i < n && at <= room) {
        const Sample& s = samples[i];
        if (s.value.type() == ValueType::kString) break;
        int64_t next = prev;
        const size_t end = static_cast<size_t>(EncodeOne(s, next, data + at) - data);
        if (end > payload_end) break;  // the general path below closes the record
        at = end;
        prev = next;
        min_time = std::min(min_time, next);
        max_time = std::max(max_time, next);
        ++count;
        ++i;
      }
      pos = at;
      prev_time = prev;
      if (i == n) break;
    }
    // The general path, one sample: the first of a record, a string, a buffer to grow, a
    // record to close.
    const Sample& s = samples[i++];
    const size_t need =
        s.value.type() == ValueType::kString ? MaxEncodedSize(s) : kMaxFixedEncodedSize;
    const int64_t t = TimeNs(s);
    if (count == 0) base_time = prev_time = t;
    grow(pos + need + kFrameHeaderBytes);
    int64_t next_prev = prev_time;
    size_t len = static_cast<size_t>(EncodeOne(s, next_prev, data + pos) - (data + pos));
    if (pos + len - frame_start - kFrameHeaderBytes > max_payload) {
      if (count > 0) {
        // Close this record and start the next one with this sample.
        Close(frame_start, pos, count, base_time, min_time, max_time);
        frame_start = pos;
        pos = frame_start + kFrameHeaderBytes;
        count = 0;
        base_time = prev_time = next_prev = t;
        grow(pos + need);
        len = static_cast<size_t>(EncodeOne(s, next_prev, data + pos) - (data + pos));
      }
      if (len > max_payload) {  // too large for any record on its own
        ++too_large;
        continue;
      }
    }
    pos += len;
    prev_time = next_prev;
    if (count++ == 0) {
      min_time = max_time = t;
    } else {
      min_time = std::min(min_time, t);
      max_time = std::max(max_time, t);
    }
  }
  if (count > 0) {
    Close(frame_start, pos, count, base_time, min_time, max_time);
    frame_start = pos;
  }
  size_ = frame_start;
  return too_large;
}

void RecordEncoder::Close(size_t frame_start, size_t payload_end, uint32_t count, int64_t base_time,
                          int64_t min_time, int64_t max_time) {
  FrameHeader f;
  f.payload_bytes = static_cast<uint32_t>(payload_end - frame_start - kFrameHeaderBytes);
  f.count = count;
  f.base_time = base_time;
  EncodeFrameHeader(f, bytes_.data() + frame_start);
  const uint32_t payload_crc =
      crc32c::Value(bytes_.data() + frame_start + kFrameHeaderBytes, f.payload_bytes);
  records_.push_back(EncodedRecord{frame_start, payload_end - frame_start, count, min_time,
                                   max_time, payload_crc});
}

void SealFrame(uint8_t* frame, uint32_t seq, uint64_t first_id, uint32_t payload_crc) {
  Put32(frame + 8, seq);
  Put64(frame + 16, first_id);
  // The frame's CRC covers [0, 4) and [8, 32 + payload_bytes) (FrameCrc): the header's part,
  // then the payload's, combined.
  const uint32_t head = crc32c::Extend(crc32c::Value(frame, 4), frame + 8, kFrameHeaderBytes - 8);
  Put32(frame + 4, crc32c::Combine(head, payload_crc, Get32(frame)));
}

}  // namespace kiln::queue::internal
