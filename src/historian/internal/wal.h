#pragma once
// The historian's write-ahead log (docs/formats/historian.md, "WAL"): segment files
// wal/<seq, 20 digits>.wal, each a 32-byte header and then CRC32C-framed records that
// hold series definitions and batches of points. Private to kiln::historian.
//
// - WalRecordBuilder encodes records (one builder per thread; its buffer is reused).
// - WalPointReader / ParseTextRecord / ParseSeriesRecord decode record payloads and never
//   trust them.
// - ReplayWal reads every segment of a directory at open, cutting off a torn tail.
// - WalWriter appends to the newest segment, rotates, syncs (group commit) and removes
//   segments that are no longer needed.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/log.h"
#include "core/mutex.h"
#include "core/status.h"
#include "historian/historian.h"

namespace kiln::historian::internal {

inline constexpr uint32_t kWalVersion = 1;
inline constexpr size_t kWalHeaderBytes = 32;
inline constexpr size_t kWalFrameHeaderBytes = 9;  // u32 crc, u32 length, u8 type
inline constexpr char kWalMagic[8] = {'K', 'I', 'L', 'N', 'H', 'W', 'A', 'L'};
// Bounds a reader enforces on a record; a writer splits batches to stay below them.
inline constexpr uint32_t kMaxWalRecordBytes = 64u << 20;
inline constexpr size_t kMaxPointsPerRecord = 65536;

enum class WalRecordType : uint8_t {
  kPoints = 1,  // numeric points of any series
  kText = 2,    // one text point
  kSeries = 3,  // a series was created
};

// "wal/00000000000000000042.wal" naming without the directory.
std::string WalSegmentName(uint64_t seq);
bool ParseWalSegmentName(std::string_view name, uint64_t& seq);
void EncodeWalHeader(uint64_t seq, uint8_t* out);  // kWalHeaderBytes
enum class WalHeaderCheck { kOk, kShort, kBadMagic, kBadCrc, kBadSeq, kUnknownVersion };
WalHeaderCheck CheckWalHeader(std::span<const uint8_t> bytes, uint64_t seq);

// Builds framed records back to back in one buffer. Not thread-safe.
class WalRecordBuilder {
 public:
  void Clear() { bytes_.clear(); }
  // Points of `points`, in order, in as many records as needed.
  void AddPoints(std::span<const PointWrite> points);
  void AddText(SeriesId series, const TextPoint& point);
  void AddSeries(SeriesId id, SeriesKind kind, std::string_view path);
  std::span<const std::byte> bytes() const { return std::as_bytes(std::span(bytes_)); }
  size_t size() const { return bytes_.size(); }

 private:
  size_t BeginFrame(WalRecordType type);
  void EndFrame(size_t frame_start);
  std::vector<uint8_t> bytes_;
};

// Decodes the payload of a kPoints record.
class WalPointReader {
 public:
  explicit WalPointReader(std::span<const uint8_t> payload);
  // False when the count is missing or implausible.
  bool ok() const { return ok_; }
  uint64_t count() const { return count_; }
  // The next point; false at the end or when the payload is malformed (then `malformed()`).
  bool Next(PointWrite& out);
  bool malformed() const { return malformed_; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  uint64_t count_ = 0;
  uint64_t read_ = 0;
  bool ok_ = false;
  bool malformed_ = false;
  SeriesId series_ = 0;
  uint32_t q_ = 0;
  int64_t t_ = 0;
  uint64_t bits_ = 0;
};
bool ParseTextRecord(std::span<const uint8_t> payload, SeriesId& series, TextPoint& point);
bool ParseSeriesRecord(std::span<const uint8_t> payload, SeriesId& id, SeriesKind& kind,
                       std::string& path);

// What ReplayWal found.
struct WalReplayResult {
  std::map<uint64_t, uint64_t> segments;  // seq -> file size (after cutting a torn tail)
  uint64_t max_seq = 0;
  uint64_t records = 0;
  uint64_t corrupt_bytes = 0;  // skipped: torn tails and corrupt records
};
// Calls `on_record(seq, type, payload)` for every intact record of every segment in `dir`,
// oldest segment first. A torn or corrupt tail of the newest segment is cut off (truncated)
// and logged; a corrupt record in an older segment is logged and the rest of that segment
// skipped. Files that are not segments are left alone. Errors: I/O errors, and what
// `on_record` returns (which stops the replay).
Result<WalReplayResult> ReplayWal(Env& env, const std::string& dir, const Logger& log,
                                  const std::function<Status(uint64_t seq, WalRecordType type,
                                                             std::span<const uint8_t>)>& on_record);

// Appends to the newest segment. Append and Rotate must be serialized by the caller; SyncTo,
// RemoveBelow and the accessors are thread-safe.
class WalWriter {
 public:
  // Starts segment `seq` (a new file) in `dir`; `existing` are older segments (seq -> bytes).
  static Result<std::unique_ptr<WalWriter>> Create(Env& env, std::string dir, uint64_t seq,
                                                   std::map<uint64_t, uint64_t> existing,
                                                   uint64_t segment_bytes, Logger log);
  ~WalWriter();

  // Writes `data` (whole records) at the end of the current segment, first starting a new
  // segment when this one is full or a write or sync failed on it. On error nothing of
  // `data` counts as written (a partial write is truncated away when possible).
  Status Append(std::span<const std::byte> data);
  // Syncs the current segment and starts a new one. Returns the new segment's seq.
  Result<uint64_t> Rotate();
  // Blocks until every byte appended before the call is durable. Concurrent callers share
  // one fdatasync (group commit).
  Status SyncTo(uint64_t lsn);
  Status SyncAll() { return SyncTo(written_lsn()); }
  // Removes the segments with seq < `seq` (never the current one). Errors: the first
  // removal that failed (the others are still tried).
  Status RemoveBelow(uint64_t seq);

  uint64_t current_seq() const;
  uint64_t written_lsn() const;  // bytes appended since open
  bool has_unsynced() const;
  uint64_t total_bytes() const;  // every segment file
  // Bytes of the segments with seq >= `seq`.
  uint64_t bytes_from(uint64_t seq) const;
  uint64_t oldest_seq() const;
  // The smallest seq such that the segments from it on hold at most `budget` bytes (the
  // current segment's seq when it alone is larger).
  uint64_t SeqWithin(uint64_t budget) const;
  // True when the current segment holds no record.
  bool current_empty() const;
  uint64_t syncs() const;

 private:
  WalWriter(Env& env, std::string dir, uint64_t segment_bytes, Logger log);
  Status StartSegmentLocked(uint64_t seq) KILN_REQUIRES(mu_);
  std::string Path(uint64_t seq) const;

  Env& env_;
  const std::string dir_;
  const uint64_t segment_bytes_;
  const Logger log_;

  mutable Mutex mu_;
  CondVar sync_cv_;
  std::shared_ptr<File> file_ KILN_GUARDED_BY(mu_);
  uint64_t seq_ KILN_GUARDED_BY(mu_) = 0;
  uint64_t size_ KILN_GUARDED_BY(mu_) = 0;  // of the current segment
  bool poisoned_ KILN_GUARDED_BY(mu_) = false;
  std::map<uint64_t, uint64_t> segments_ KILN_GUARDED_BY(mu_);  // seq -> bytes, current too
  uint64_t written_lsn_ KILN_GUARDED_BY(mu_) = 0;
  uint64_t durable_lsn_ KILN_GUARDED_BY(mu_) = 0;
  bool sync_running_ KILN_GUARDED_BY(mu_) = false;
  uint64_t sync_round_ KILN_GUARDED_BY(mu_) = 0;
  Status last_sync_ KILN_GUARDED_BY(mu_);
  uint64_t last_sync_target_ KILN_GUARDED_BY(mu_) = 0;
  uint64_t syncs_ KILN_GUARDED_BY(mu_) = 0;
};

}  // namespace kiln::historian::internal
