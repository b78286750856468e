#pragma once
// On-disk format of the journal (docs/formats/journal.md): constants, the segment header
// block, the record frame header and acks.log entries. Fields are encoded with core/coding.h.
// Private to kiln::queue.
#include <cstddef>
#include <cstdint>
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
