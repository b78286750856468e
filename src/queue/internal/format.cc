#include "queue/internal/format.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/coding.h"
#include "core/crc32c.h"
#include "fmt/format.h"

namespace kiln::queue::internal {
namespace {

constexpr uint32_t kFlagSealed = 1;
constexpr uint32_t kFlagCompressed = 2;
constexpr size_t kIndexEntryBytes = 24;

bool ParseDecimal(std::string_view s, uint64_t& v) {
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

void EncodeHeaderBlock(const SegmentHeader& h, std::span<uint8_t, kHeaderBytes> out) {
  std::fill(out.begin(), out.end(), uint8_t{0});
  uint8_t* p = out.data();
  std::memcpy(p, kSegmentMagic, 8);
  Put32(p + 8, h.version);
  Put32(p + 12, static_cast<uint32_t>(kHeaderBytes));
  Put64(p + 16, h.seq);
  Put64(p + 24, h.first_id);
  Put64(p + 32, h.tag_fingerprint);
  Put64(p + 40, h.segment_bytes);
  Put64(p + 48, static_cast<uint64_t>(h.created_ns));
  Put32(p + 60, crc32c::Value(p, 60));
  if (!h.sealed) return;
  uint8_t* s = p + kSealOffset;
  Put32(s + 0, kFlagSealed | (h.compressed ? kFlagCompressed : 0));
  Put64(s + 8, h.seq);
  Put64(s + 16, h.count);
  Put64(s + 24, h.data_end);
  Put64(s + 32, static_cast<uint64_t>(h.min_time));
  Put64(s + 40, static_cast<uint64_t>(h.max_time));
  Put64(s + 48, h.compressed_bytes);
  Put32(s + 60, crc32c::Value(s, 60));
  uint8_t* x = p + kIndexOffset;
  const size_t n = std::min(h.index.size(), kMaxIndexEntries);
  Put32(x, static_cast<uint32_t>(n));
  for (size_t i = 0; i < n; ++i) {
    uint8_t* e = x + 8 + i * kIndexEntryBytes;
    Put64(e, h.index[i].first_id);
    Put64(e + 8, h.index[i].offset);
    Put64(e + 16, static_cast<uint64_t>(h.index[i].min_time));
  }
  // The CRC covers the count and the entries, and is bound to the sequence number.
  uint32_t crc = crc32c::Value(x, 4);
  crc = crc32c::Extend(crc, x + 8, n * kIndexEntryBytes);
  crc = crc32c::Extend(crc, p + 16, 8);
  Put32(x + 4, crc);
}

HeaderCheck DecodeHeaderBlock(std::span<const uint8_t> block, SegmentHeader& h) {
  h = SegmentHeader();
  if (block.size() < kIndexOffset || std::memcmp(block.data(), kSegmentMagic, 8) != 0) {
    return HeaderCheck::kNotASegment;
  }
  const uint8_t* p = block.data();
  if (Get32(p + 60) != crc32c::Value(p, 60)) return HeaderCheck::kCorrupt;
  h.version = Get32(p + 8);
  if (h.version != kFormatVersion) return HeaderCheck::kUnknownVersion;
  if (Get32(p + 12) != kHeaderBytes) return HeaderCheck::kCorrupt;
  h.seq = Get64(p + 16);
  h.first_id = Get64(p + 24);
  h.tag_fingerprint = Get64(p + 32);
  h.segment_bytes = Get64(p + 40);
  h.created_ns = static_cast<int64_t>(Get64(p + 48));
  const uint8_t* s = p + kSealOffset;
  const uint32_t flags = Get32(s);
  if (Get32(s + 60) == crc32c::Value(s, 60) && (flags & kFlagSealed) != 0 &&
      Get64(s + 8) == h.seq) {
    h.sealed = true;
    h.compressed = (flags & kFlagCompressed) != 0;
    h.count = Get64(s + 16);
    h.data_end = Get64(s + 24);
    h.min_time = static_cast<int64_t>(Get64(s + 32));
    h.max_time = static_cast<int64_t>(Get64(s + 40));
    h.compressed_bytes = Get64(s + 48);
    if (block.size() >= kHeaderBytes) {
      const uint8_t* x = p + kIndexOffset;
      const size_t n = Get32(x);
      if (n <= kMaxIndexEntries) {
        uint32_t crc = crc32c::Value(x, 4);
        crc = crc32c::Extend(crc, x + 8, n * kIndexEntryBytes);
        crc = crc32c::Extend(crc, p + 16, 8);
        if (crc == Get32(x + 4)) {
          h.index.resize(n);
          for (size_t i = 0; i < n; ++i) {
            const uint8_t* e = x + 8 + i * kIndexEntryBytes;
            h.index[i] = IndexEntry{Get64(e), Get64(e + 8), static_cast<int64_t>(Get64(e + 16))};
          }
        }
      }
    }
  }
  return HeaderCheck::kOk;
}

void EncodeFrameHeader(const FrameHeader& f, uint8_t* out) {
  Put32(out, f.payload_bytes);
  Put32(out + 4, f.crc);
  Put32(out + 8, f.seq);
  Put32(out + 12, f.count);
  Put64(out + 16, f.first_id);
  Put64(out + 24, static_cast<uint64_t>(f.base_time));
}

FrameHeader DecodeFrameHeader(const uint8_t* in) {
  FrameHeader f;
  f.payload_bytes = Get32(in);
  f.crc = Get32(in + 4);
  f.seq = Get32(in + 8);
  f.count = Get32(in + 12);
  f.first_id = Get64(in + 16);
  f.base_time = static_cast<int64_t>(Get64(in + 24));
  return f;
}

uint32_t FrameCrc(const uint8_t* frame, uint32_t payload_bytes) {
  const uint32_t crc = crc32c::Value(frame, 4);
  return crc32c::Extend(crc, frame + 8, kFrameHeaderBytes - 8 + payload_bytes);
}

void EncodeAcksHeader(std::vector<uint8_t>& out) {
  const size_t at = out.size();
  out.resize(at + kAcksHeaderBytes, 0);
  std::memcpy(out.data() + at, kAcksMagic, 8);
  Put32(out.data() + at + 8, kFormatVersion);
}

void EncodeAcksEntry(std::span<const IdRange> ranges, std::vector<uint8_t>& out) {
  const size_t at = out.size();
  out.resize(at + 8 + ranges.size() * 16);
  uint8_t* p = out.data() + at;
  Put32(p + 4, static_cast<uint32_t>(ranges.size()));
  for (size_t i = 0; i < ranges.size(); ++i) {
    Put64(p + 8 + i * 16, ranges[i].first);
    Put64(p + 16 + i * 16, ranges[i].count);
  }
  Put32(p, crc32c::Value(p + 4, 4 + ranges.size() * 16));
}

AcksParse ParseAcks(std::span<const uint8_t> bytes) {
  AcksParse r;
  if (bytes.size() < kAcksHeaderBytes || std::memcmp(bytes.data(), kAcksMagic, 8) != 0 ||
      Get32(bytes.data() + 8) != kFormatVersion) {
    r.torn_bytes = bytes.size();
    return r;
  }
  r.header_ok = true;
  size_t pos = kAcksHeaderBytes;
  while (bytes.size() - pos >= 8) {
    const uint8_t* p = bytes.data() + pos;
    const uint64_t n = Get32(p + 4);
    if (n == 0 || n > kMaxRangesPerAcksEntry || bytes.size() - pos - 8 < n * 16) break;
    if (Get32(p) != crc32c::Value(p + 4, 4 + n * 16)) break;
    for (uint64_t i = 0; i < n; ++i) {
      r.ranges.push_back(IdRange{Get64(p + 8 + i * 16), Get64(p + 16 + i * 16)});
    }
    pos += 8 + n * 16;
  }
  r.valid_bytes = pos;
  r.torn_bytes = bytes.size() - pos;
  return r;
}

std::string SegmentFileName(uint64_t first_id, bool compressed) {
  return fmt::format("seg-{:020}.{}", first_id, compressed ? "zst" : "log");
}

std::string SpareFileName(uint64_t n) { return fmt::format("spare-{}.log", n); }

bool ParseSegmentFileName(std::string_view name, uint64_t& first_id, bool& compressed) {
  if (name.size() != 4 + 20 + 4 || name.substr(0, 4) != "seg-") return false;
  const std::string_view ext = name.substr(24);
  if (ext == ".log") {
    compressed = false;
  } else if (ext == ".zst") {
    compressed = true;
  } else {
    return false;
  }
  return ParseDecimal(name.substr(4, 20), first_id);
}

bool ParseSpareFileName(std::string_view name, uint64_t& n) {
  if (name.size() < 11 || name.substr(0, 6) != "spare-" || name.substr(name.size() - 4) != ".log") {
    return false;
  }
  return ParseDecimal(name.substr(6, name.size() - 10), n);
}

}  // namespace kiln::queue::internal
