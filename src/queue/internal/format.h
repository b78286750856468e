#pragma once
// On-disk format of the journal (docs/formats/journal.md): constants, little-endian and
// varint helpers, the segment header block, the record frame header and acks.log entries.
// Private to kiln::queue.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "queue/id_set.h"

namespace kiln::queue::internal {

inline constexpr uint32_t kFormatVersion = 1;
// The header block at offset 0 of every segment file; records start after it.
inline constexpr uint64_t kHeaderBytes = 4096;
inline constexpr size_t kSealOffset = 64;    // seal part: bytes [64, 128)
inline constexpr size_t kIndexOffset = 128;  // index part: bytes [128, 4096)
inline constexpr size_t kMaxIndexEntries = 160;
inline constexpr size_t kFrameHeaderBytes = 32;
inline constexpr size_t kAcksHeaderBytes = 16;
inline constexpr char kSegmentMagic[8] = {'K', 'I', 'L', 'N', 'J', 'S', 'E', 'G'};
inline constexpr char kAcksMagic[8] = {'K', 'I', 'L', 'N', 'A', 'C', 'K', 'S'};

// --- Little-endian fixed-width fields (the format is little-endian on every host).
inline void Put32(uint8_t* p, uint32_t v) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap32(v);
#endif
  std::memcpy(p, &v, 4);
}
inline void Put64(uint8_t* p, uint64_t v) {
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  std::memcpy(p, &v, 8);
}
inline uint32_t Get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap32(v);
#endif
  return v;
}
inline uint64_t Get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

// --- Varints (LEB128, at most 10 bytes) and zigzag.
inline constexpr size_t kMaxVarint64 = 10;
inline uint8_t* PutVarint(uint8_t* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<uint8_t>(v);
  return p;
}
// Reads a varint from [p, end); nullptr when truncated or longer than 10 bytes.
inline const uint8_t* GetVarint(const uint8_t* p, const uint8_t* end, uint64_t& v) {
  if (p < end && *p < 0x80) {
    v = *p;
    return p + 1;
  }
  uint64_t result = 0;
  for (unsigned shift = 0; shift < 64 && p < end; shift += 7) {
    const uint64_t byte = *p++;
    result |= (byte & 0x7F) << shift;
    if (byte < 0x80) {
      v = result;
      return p;
    }
  }
  return nullptr;
}
inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1)); }

// --- Segment header block.
struct IndexEntry {
  uint64_t first_id = 0;  // first id of the record at `offset`
  uint64_t offset = 0;
  int64_t min_time = 0;  // smallest source time in that record (ns since epoch)
  friend bool operator==(const IndexEntry&, const IndexEntry&) = default;
};

struct SegmentHeader {
  // Identity, written when the segment is created.
  uint32_t version = kFormatVersion;
  uint64_t seq = 0;
  uint64_t first_id = 0;
  uint64_t tag_fingerprint = 0;
  uint64_t segment_bytes = 0;
  int64_t created_ns = 0;
  // Seal, written when the segment is sealed.
  bool sealed = false;
  bool compressed = false;
  uint64_t count = 0;
  uint64_t data_end = 0;
  int64_t min_time = 0;
  int64_t max_time = 0;
  uint64_t compressed_bytes = 0;
  // Sparse index of the records (every k-th record), written with the seal.
  std::vector<IndexEntry> index;
};

// The whole block: identity, plus the seal and index when h.sealed (zeros otherwise).
void EncodeHeaderBlock(const SegmentHeader& h, std::span<uint8_t, kHeaderBytes> out);

enum class HeaderCheck {
  kOk,
  kNotASegment,     // wrong magic (e.g. a zeroed or foreign file)
  kCorrupt,         // identity CRC mismatch
  kUnknownVersion,  // written by a newer format
};
// Decodes a header block. The seal fields are set only when the seal part is intact and
// belongs to this identity (h.sealed), the index only when its CRC matches.
HeaderCheck DecodeHeaderBlock(std::span<const uint8_t> block, SegmentHeader& h);

// --- Record frame: 32-byte header, then the payload (encoded samples).
//   0 u32 payload_bytes (0: end of data)   4 u32 crc32c of [0,4) and [8, 32 + payload_bytes)
//   8 u32 seq (low 32 bits)  12 u32 count  16 u64 first_id  24 i64 base_time_ns
struct FrameHeader {
  uint32_t payload_bytes = 0;
  uint32_t crc = 0;
  uint32_t seq = 0;
  uint32_t count = 0;
  uint64_t first_id = 0;
  int64_t base_time = 0;
};
void EncodeFrameHeader(const FrameHeader& f, uint8_t* out);
FrameHeader DecodeFrameHeader(const uint8_t* in);
// The CRC of a complete frame (header + payload_bytes of payload).
uint32_t FrameCrc(const uint8_t* frame, uint32_t payload_bytes);

// --- acks.log: 16-byte header (magic, u32 version, u32 0), then entries
//   u32 crc32c of the rest of the entry, u32 n, n x (u64 first, u64 count).
void EncodeAcksHeader(std::vector<uint8_t>& out);
void EncodeAcksEntry(std::span<const IdRange> ranges, std::vector<uint8_t>& out);
inline constexpr size_t kMaxRangesPerAcksEntry = 4096;
struct AcksParse {
  bool header_ok = false;
  std::vector<IdRange> ranges;
  uint64_t valid_bytes = 0;  // header + intact entries
  uint64_t torn_bytes = 0;   // what follows the last intact entry
};
AcksParse ParseAcks(std::span<const uint8_t> bytes);

// File names: seg-<first id, 20 digits>.log/.zst, spare-<n>.log.
std::string SegmentFileName(uint64_t first_id, bool compressed);
std::string SpareFileName(uint64_t n);
// Parses a segment file name; false for other names.
bool ParseSegmentFileName(std::string_view name, uint64_t& first_id, bool& compressed);
bool ParseSpareFileName(std::string_view name, uint64_t& n);

}  // namespace kiln::queue::internal
