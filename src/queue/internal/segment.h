#pragma once
// Reading the records of a segment (from its file or from its decompressed data), the
// recovery scan of a segment without a valid seal, the sparse record index, and zstd
// compression of sealed segments. Private to kiln::queue; not thread-safe.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/env.h"
#include "core/status.h"
#include "queue/internal/format.h"

namespace kiln::queue::internal {

// Where a segment's records come from: the file, or the decompressed bytes of a .zst
// (`memory` holds the bytes [kHeaderBytes, data_end) of the uncompressed layout).
struct SegmentSource {
  std::shared_ptr<File> file;
  std::shared_ptr<const std::vector<uint8_t>> memory;
};

enum class ReadOutcome {
  kRecord,     // a record was read
  kEnd,        // reached the end given to the reader
  kZero,       // a zero length: the end of written data in pre-zeroed space
  kStale,      // a frame of another sequence number: old data of a recycled file
  kTorn,       // the frame runs past the end, or a short read
  kBadCrc,     // CRC mismatch
  kBadRecord,  // intact frame with an unexpected first id or no samples
  kIoError,    // the read failed (io_status())
};
const char* ReadOutcomeName(ReadOutcome o);

struct RecordView {
  uint64_t offset = 0;  // of the frame
  FrameHeader header;
  std::span<const uint8_t> payload;  // valid until the next call to Next()
  uint64_t end_offset() const { return offset + kFrameHeaderBytes + header.payload_bytes; }
  uint64_t end_id() const { return header.first_id + header.count; }
};

// Reads consecutive records of segment `seq` in [offset, end), expecting the first to start
// with id `first_id`. File reads go through `buffer` in large chunks.
class RecordReader {
 public:
  RecordReader(const SegmentSource& source, uint64_t seq, uint64_t offset, uint64_t first_id,
               uint64_t end, std::vector<uint8_t>& buffer);
  ReadOutcome Next(RecordView& rec);
  uint64_t offset() const { return offset_; }    // where the next frame starts
  uint64_t next_id() const { return next_id_; }  // the id it must start with
  // For kTorn and kBadCrc: the size of the bad frame (clipped to the end).
  uint64_t bad_bytes() const { return bad_bytes_; }
  const Status& io_status() const { return io_status_; }

 private:
  // Makes [off, off + n) available; returns a pointer or nullptr (short read or I/O error).
  const uint8_t* Fill(uint64_t off, uint64_t n);

  const SegmentSource& source_;
  const uint32_t seq_;
  uint64_t offset_;
  uint64_t next_id_;
  const uint64_t end_;
  std::vector<uint8_t>& buffer_;
  uint64_t window_offset_ = 0;
  uint64_t window_size_ = 0;
  uint64_t bad_bytes_ = 0;
  Status io_status_;
};

// Keeps at most kMaxIndexEntries evenly spaced records: one every `stride` records, the
// stride doubling whenever the index fills up.
class IndexBuilder {
 public:
  void Add(const IndexEntry& e);
  const std::vector<IndexEntry>& entries() const { return entries_; }
  // Starts from the index of a sealed segment (never added to).
  void Reset(std::vector<IndexEntry> entries);

 private:
  std::vector<IndexEntry> entries_;
  uint64_t records_ = 0;
  uint64_t stride_ = 1;
};

// What a recovery scan found in a segment without a valid seal.
struct ScanResult {
  uint64_t data_end = kHeaderBytes;
  uint64_t end_id = 0;
  int64_t min_time = 0;
  int64_t max_time = 0;
  IndexBuilder index;
  ReadOutcome stop = ReadOutcome::kEnd;  // why the scan ended
  uint64_t bad_bytes = 0;                // size of the torn or corrupt frame at data_end
};
// Scans the records of segment `h` in `file` up to `file_size`. Errors: I/O errors only
// (a torn or stale tail is reported in the result).
Result<ScanResult> ScanSegment(const SegmentSource& source, const SegmentHeader& h,
                               uint64_t file_size, std::vector<uint8_t>& buffer);

// Writes the compressed form of sealed segment `h` (read from `source`) to `out`: the header
// block marked compressed, then one zstd frame of the bytes [kHeaderBytes, data_end).
// Verifies every record on the way. Errors: DataLoss naming the offset of a bad record;
// I/O errors of `out`.
Status CompressSegment(const SegmentSource& source, const SegmentHeader& h, File& out, int level,
                       std::vector<uint8_t>& buffer, uint64_t& compressed_bytes);
// Reads and decompresses a .zst segment. Errors: DataLoss when the data does not
// decompress to exactly data_end - kHeaderBytes bytes; I/O errors.
Result<std::shared_ptr<const std::vector<uint8_t>>> DecompressSegment(const File& file,
                                                                      const SegmentHeader& h);

}  // namespace kiln::queue::internal
